import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  createWorkerToken,
  listWorkerTokens,
  revokeWorkerToken,
  type WorkerTokenRow,
} from '../../auth/worker-tokens.js';
import type { Pool } from '../../db/pool.js';
import { ApiError } from '../../domain/errors.js';
import { Nullable, ProblemSchema, StorableText, Uuid } from '../schemas/task.js';

const Timestamp = Type.String({ format: 'date-time' });

export const WorkerTokenSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    label: Type.String(),
    display: Type.String({
      description: 'The start of the token (`easel_wk_` and 8 characters), to tell tokens apart.',
    }),
    created_by: Nullable(Type.String({ format: 'uuid' })),
    created_at: Timestamp,
    revoked_at: Nullable(Timestamp),
    last_seen_at: Nullable(Timestamp),
  },
  { $id: 'WorkerToken' },
);
type WorkerTokenView = Static<typeof WorkerTokenSchema>;

const CreateBody = Type.Object(
  { label: StorableText({ minLength: 1, maxLength: 200, description: 'Which machine it is for.' }) },
  { additionalProperties: false },
);
const TokenIdParams = Type.Object({ id: Uuid({ description: 'The worker token id.' }) });

const iso = (date: Date | null) => (date ? date.toISOString() : null);
const view = (row: WorkerTokenRow): WorkerTokenView => ({
  id: row.id,
  label: row.label,
  display: row.display,
  created_by: row.created_by,
  created_at: row.created_at.toISOString(),
  revoked_at: iso(row.revoked_at),
  last_seen_at: iso(row.last_seen_at),
});

const problems = { 400: ProblemSchema, 403: ProblemSchema, 404: ProblemSchema };

/** Worker tokens for remote workers: created, listed and revoked by admins (/v1/admin/ is admin-only). */
export const adminWorkerTokenRoutes: FastifyPluginAsyncTypebox<{ pool: Pool }> = async (app, { pool }) => {
  const tags = ['admin'];

  app.post(
    '/v1/admin/worker-tokens',
    {
      schema: {
        summary: 'Create a worker token for a remote worker',
        description:
          'The token (`easel_wk_…`) is in this answer only: only its SHA-256 is stored. It can call the `/v1/worker/` routes and nothing else.',
        tags,
        body: CreateBody,
        response: { 201: Type.Intersect([WorkerTokenSchema, Type.Object({ token: Type.String() })]), ...problems },
      },
    },
    async (request, reply) => {
      const { row, token } = await createWorkerToken(pool, request.body.label, request.principal.userId);
      return reply.code(201).send({ ...view(row), token });
    },
  );

  app.get(
    '/v1/admin/worker-tokens',
    {
      schema: {
        summary: 'List worker tokens',
        tags,
        response: { 200: Type.Object({ data: Type.Array(WorkerTokenSchema) }), ...problems },
      },
    },
    async () => ({ data: (await listWorkerTokens(pool)).map(view) }),
  );

  app.delete(
    '/v1/admin/worker-tokens/:id',
    {
      schema: {
        summary: 'Revoke a worker token',
        description:
          "At once on every API process: the token's next call is 401 `INVALID_WORKER_TOKEN`, and the remote worker exits. Its running tasks are rescued once its heartbeat stops.",
        tags,
        params: TokenIdParams,
        response: { 200: WorkerTokenSchema, ...problems },
      },
    },
    async (request) => {
      const row = await revokeWorkerToken(pool, request.params.id);
      if (!row) throw new ApiError('WORKER_TOKEN_NOT_FOUND');
      return view(row);
    },
  );
};
