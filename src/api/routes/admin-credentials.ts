import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CredentialService, CredentialStatus } from '../../credentials/service.js';
import { PROVIDER_ID_PATTERN } from '../../providers/registry.js';
import { requireAdmin } from '../auth.js';
import { ProblemSchema, SECRET_PATTERN, StorableText, Uuid, Nullable } from '../schemas/task.js';

export interface AdminCredentialRoutesOptions {
  credentials: CredentialService;
}

const ProviderId = Type.String({
  pattern: PROVIDER_ID_PATTERN.source,
  description: 'A provider id, e.g. `replicate`.',
});
const Label = StorableText({ minLength: 1, maxLength: 200, description: 'A name for people.' });
const Concurrency = Type.Integer({ minimum: 1, maximum: 10_000, description: 'Tasks it may run at once.' });
const DailyLimit = Type.Union([Type.Integer({ minimum: 1, maximum: 100_000_000 }), Type.Null()], {
  description: 'Uses per day; null = no limit.',
});
const ResetHour = Type.Integer({ minimum: 0, maximum: 23, description: 'The UTC hour its day starts.' });

const AddCredentialBody = Type.Object(
  {
    provider: ProviderId,
    secret: Type.String({
      minLength: 8,
      maxLength: 4096,
      pattern: SECRET_PATTERN,
      description: 'The API token. Stored encrypted; never shown again.',
    }),
    label: Type.Optional(Label),
    concurrency: Type.Optional(Concurrency),
    daily_limit: Type.Optional(DailyLimit),
    daily_reset_utc_hour: Type.Optional(ResetHour),
  },
  { additionalProperties: false },
);
type AddCredentialBody = Static<typeof AddCredentialBody>;

const UpdateCredentialBody = Type.Object(
  {
    label: Type.Optional(Label),
    concurrency: Type.Optional(Concurrency),
    daily_limit: Type.Optional(DailyLimit),
    daily_reset_utc_hour: Type.Optional(ResetHour),
  },
  { additionalProperties: false, minProperties: 1 },
);

const DisableBody = Type.Object(
  { reason: Type.Optional(StorableText({ minLength: 1, maxLength: 500 })) },
  { additionalProperties: false },
);

const CredentialIdParams = Type.Object({ id: Uuid({ description: 'The credential id.' }) });
const ListQuery = Type.Object({ provider: Type.Optional(ProviderId) }, { additionalProperties: false });

const Timestamp = Type.String({ format: 'date-time' });

export const CredentialSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    provider: Type.String(),
    label: Type.String(),
    secret_hint: Type.String({ description: 'The last 4 characters of the secret, as `…abcd`.' }),
    state: Type.Union(
      [Type.Literal('active'), Type.Literal('cooling_down'), Type.Literal('disabled'), Type.Literal('exhausted')],
      { description: '`exhausted`: its daily limit is used up until `next_reset_at`.' },
    ),
    concurrency: Type.Integer(),
    in_use: Type.Integer({ description: 'Tasks running on it now (on live workers), out of `concurrency`.' }),
    used_today: Type.Integer(),
    daily_limit: Type.Union([Type.Integer(), Type.Null()]),
    daily_reset_utc_hour: Type.Integer(),
    next_reset_at: Timestamp,
    cooldown_until: Nullable(Timestamp),
    disabled_reason: Nullable(Type.String()),
    last_error: Type.Union([Type.Object({ code: Type.String(), at: Timestamp }), Type.Null()]),
    last_used_at: Nullable(Timestamp),
    created_at: Timestamp,
    token: Type.Optional(
      Type.Object(
        {
          state: Type.Union(
            [
              Type.Literal('none'),
              Type.Literal('valid'),
              Type.Literal('expiring'),
              Type.Literal('expired'),
              Type.Literal('damaged'),
            ],
            {
              description:
                '`none`: nothing cached (the next task signs in, or the secret is a token itself); `expiring`: under 10 days left, renewed at the next task; `damaged`: the entry does not open, the next task signs in again.',
            },
          ),
          expires_at: Nullable(Timestamp),
          days_left: Type.Union([Type.Integer(), Type.Null()]),
        },
        {
          description:
            'Only for providers that sign in with their credentials (NovelAI accounts): the cached sign-in token.',
        },
      ),
    ),
  },
  { $id: 'Credential' },
);
type CredentialView = Static<typeof CredentialSchema>;

const iso = (date: Date | null) => (date ? date.toISOString() : null);

/** The view of a credential: never its secret, only a hint of its last 4 characters. */
export function credentialView(row: CredentialStatus): CredentialView {
  return {
    id: row.id,
    provider: row.provider,
    label: row.label,
    secret_hint: `…${row.secret_last4}`,
    state: row.state,
    concurrency: row.concurrency,
    in_use: row.in_use,
    used_today: row.used_today,
    daily_limit: row.daily_limit,
    daily_reset_utc_hour: row.daily_reset_utc_hour,
    next_reset_at: row.next_reset_at.toISOString(),
    cooldown_until: iso(row.cooldown_until),
    disabled_reason: row.disabled_reason,
    last_error:
      row.last_error_code && row.last_error_at
        ? { code: row.last_error_code, at: row.last_error_at.toISOString() }
        : null,
    last_used_at: iso(row.last_used_at),
    created_at: row.created_at.toISOString(),
    ...(row.token
      ? {
          token: {
            state: row.token.state,
            expires_at: iso(row.token.expires_at),
            days_left: row.token.days_left,
          },
        }
      : {}),
  };
}

const problems = { 400: ProblemSchema, 403: ProblemSchema, 404: ProblemSchema };

/** The credential pool's admin routes: admins only (an admin key, or local mode without a key). */
export const adminCredentialRoutes: FastifyPluginAsyncTypebox<AdminCredentialRoutesOptions> = async (app, options) => {
  const { credentials } = options;
  app.addHook('onRequest', requireAdmin);
  const tags = ['admin'];

  app.post(
    '/v1/admin/credentials',
    {
      schema: {
        summary: 'Add a provider credential',
        description:
          'The secret is encrypted (AES-256-GCM) before it is stored and never shown again. The same secret twice for one provider is 409 `CREDENTIAL_EXISTS`.',
        tags,
        body: AddCredentialBody,
        response: { 201: CredentialSchema, ...problems },
      },
    },
    async (request, reply) => {
      const body: AddCredentialBody = request.body;
      const row = await credentials.add({
        provider: body.provider,
        secret: body.secret,
        label: body.label ?? `added ${new Date().toISOString().slice(0, 10)}`,
        concurrency: body.concurrency,
        dailyLimit: body.daily_limit,
        dailyResetUtcHour: body.daily_reset_utc_hour,
      });
      return reply.code(201).send(credentialView(row));
    },
  );

  app.get(
    '/v1/admin/credentials',
    {
      schema: {
        summary: 'List credentials',
        tags,
        querystring: ListQuery,
        response: { 200: Type.Object({ data: Type.Array(CredentialSchema) }), ...problems },
      },
    },
    async (request) => ({ data: (await credentials.list(request.query.provider)).map(credentialView) }),
  );

  app.get(
    '/v1/admin/credentials/:id',
    {
      schema: {
        summary: 'One credential',
        tags,
        params: CredentialIdParams,
        response: { 200: CredentialSchema, ...problems },
      },
    },
    async (request) => credentialView(await credentials.get(request.params.id)),
  );

  app.patch(
    '/v1/admin/credentials/:id',
    {
      schema: {
        summary: "Change a credential's label or limits",
        tags,
        params: CredentialIdParams,
        body: UpdateCredentialBody,
        response: { 200: CredentialSchema, ...problems },
      },
    },
    async (request) => {
      const { label, concurrency, daily_limit, daily_reset_utc_hour } = request.body;
      return credentialView(
        await credentials.update(request.params.id, {
          label,
          concurrency,
          dailyLimit: daily_limit,
          dailyResetUtcHour: daily_reset_utc_hour,
        }),
      );
    },
  );

  app.post(
    '/v1/admin/credentials/:id/disable',
    {
      schema: {
        summary: 'Take a credential out of service',
        tags,
        params: CredentialIdParams,
        body: DisableBody,
        response: { 200: CredentialSchema, ...problems },
      },
      // The body is optional: no body at all means no reason given.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) =>
      credentialView(await credentials.disable(request.params.id, request.body.reason ?? 'disabled by an admin')),
  );

  app.post(
    '/v1/admin/credentials/:id/enable',
    {
      schema: {
        summary: 'Put a credential back in service',
        description: 'Clears its disable reason and any cooldown.',
        tags,
        params: CredentialIdParams,
        response: { 200: CredentialSchema, ...problems },
      },
    },
    async (request) => credentialView(await credentials.enable(request.params.id)),
  );

  app.delete(
    '/v1/admin/credentials/:id',
    {
      schema: {
        summary: 'Delete a credential',
        tags,
        params: CredentialIdParams,
        response: { 204: Type.Null({ description: 'Deleted.' }), ...problems },
      },
    },
    async (request, reply) => {
      await credentials.remove(request.params.id);
      return reply.code(204).send(null);
    },
  );
};
