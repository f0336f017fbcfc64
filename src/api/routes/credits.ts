import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { addCredits, balanceOf, ledgerPage, type Balance, type LedgerRow } from '../../billing/accounts.js';
import { toCredits, toMicro } from '../../billing/money.js';
import type { Pool } from '../../db/pool.js';
import { ApiError } from '../../domain/errors.js';
import { requireAdmin } from '../auth.js';
import { ProblemSchema, StorableText, Uuid, Nullable } from '../schemas/task.js';

export interface CreditRoutesOptions {
  pool: Pool;
}

const Credits = (description: string) => Type.Number({ description });

const BalanceSchema = Type.Object(
  {
    balance: Credits('Credits on the account: top-ups and adjustments minus captures.'),
    held: Credits('Credits held for queued and running priced tasks.'),
    available: Credits('balance − held: what new priced tasks can use.'),
  },
  { $id: 'Balance' },
);

const LedgerEntrySchema = Type.Object(
  {
    id: Type.String({ description: 'Entry id; increases with time.' }),
    kind: Type.Union(
      ['top_up', 'hold', 'capture', 'release', 'refund', 'adjustment'].map((kind) => Type.Literal(kind)),
    ),
    amount: Credits('Change to the balance, in credits (negative for a capture).'),
    held: Credits('Change to the credits held (positive for a hold, negative for a capture or release).'),
    task_id: Nullable(Type.String({ format: 'uuid' })),
    actor_id: Nullable(Type.String({ format: 'uuid', description: 'Who caused it; null for the system.' })),
    reason: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'LedgerEntry' },
);

const LedgerPageSchema = Type.Object({
  data: Type.Array(Type.Ref(LedgerEntrySchema)),
  next_cursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next (older) page.' })),
});

const LedgerQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: 'Entries per page, 1–100 (50).' })),
    cursor: Type.Optional(Type.String({ description: '`next_cursor` from the previous page.' })),
  },
  { additionalProperties: false },
);

const CreditBody = Type.Object(
  {
    amount: Type.Number({
      description:
        'Credits, at most 6 decimals. Above 0 for a top_up; a non-zero amount for an adjustment (negative takes credits away).',
    }),
    reason: StorableText({ minLength: 1, maxLength: 500, description: 'Why; kept in the ledger.' }),
    kind: Type.Optional(
      Type.Union([Type.Literal('top_up'), Type.Literal('adjustment')], {
        description: 'top_up (default) or adjustment.',
      }),
    ),
  },
  { additionalProperties: false },
);

const CreditResultSchema = Type.Object({ entry: Type.Ref(LedgerEntrySchema), balance: Type.Ref(BalanceSchema) });

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const CURSOR = /^[1-9][0-9]{0,17}$/;

const toBalance = ({ balanceMicro, heldMicro }: Balance) => ({
  balance: toCredits(balanceMicro),
  held: toCredits(heldMicro),
  available: toCredits(balanceMicro - heldMicro),
});

const toEntry = (row: LedgerRow) => ({
  id: String(row.id),
  kind: row.kind,
  amount: toCredits(row.amount),
  held: toCredits(row.held),
  task_id: row.task_id,
  actor_id: row.actor_id,
  reason: row.reason,
  created_at: row.created_at.toISOString(),
});

const invalid = (field: string, where: 'body' | 'query' | 'header', message: string, code = 'BAD_FORMAT') =>
  new ApiError('VALIDATION_FAILED', message, {
    errors: [{ field, pointer: `/${field.toLowerCase()}`, in: where, code, message }],
  });

/** Balances and the ledger for their owner; top-ups and adjustments for admins. */
export const creditRoutes: FastifyPluginAsyncTypebox<CreditRoutesOptions> = async (app, { pool }) => {
  app.addSchema(BalanceSchema);
  app.addSchema(LedgerEntrySchema);

  app.get(
    '/v1/me/balance',
    {
      schema: {
        summary: 'Your credit balance',
        tags: ['credits'],
        response: { 200: Type.Ref(BalanceSchema) },
      },
    },
    async (request) => toBalance(await balanceOf(pool, request.userId)),
  );

  app.get(
    '/v1/me/ledger',
    {
      schema: {
        summary: 'Your credit ledger, newest first',
        tags: ['credits'],
        querystring: LedgerQuery,
        response: { 200: LedgerPageSchema, 400: ProblemSchema },
      },
    },
    async (request) => {
      const limit = request.query.limit === undefined ? 50 : Number(request.query.limit);
      if (limit < 1 || limit > 100) throw invalid('limit', 'query', 'limit must be from 1 to 100');
      const { cursor } = request.query;
      if (cursor !== undefined && !CURSOR.test(cursor)) {
        const message = 'cursor must be a next_cursor from an earlier page';
        throw new ApiError('INVALID_CURSOR', message, {
          errors: [{ field: 'cursor', pointer: '/cursor', in: 'query', code: 'BAD_FORMAT', message }],
        });
      }
      const page = await ledgerPage(pool, request.userId, {
        before: cursor === undefined ? undefined : Number(cursor),
        limit,
      });
      return {
        data: page.entries.map(toEntry),
        next_cursor: page.nextCursor === null ? null : String(page.nextCursor),
      };
    },
  );

  app.post(
    '/v1/users/:id/credits',
    {
      onRequest: requireAdmin,
      schema: {
        summary: 'Top up or adjust a user’s credits (admin)',
        description:
          'Adds a ledger entry and changes the balance in one transaction. With `Idempotency-Key`, a repeat of the same request returns the first entry (`Idempotent-Replayed: true`) and moves no money; the same key with another request is 409.',
        tags: ['credits'],
        params: Type.Object({ id: Uuid({ description: 'The user id.' }) }),
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String()) }),
        body: CreditBody,
        response: {
          201: CreditResultSchema,
          400: ProblemSchema,
          403: ProblemSchema,
          404: ProblemSchema,
          409: ProblemSchema,
        },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
        throw invalid('Idempotency-Key', 'header', 'Idempotency-Key must be 1–255 visible ASCII characters');
      }
      const kind = request.body.kind ?? 'top_up';
      const amountMicro = toMicro(request.body.amount);
      if (amountMicro === null) {
        throw invalid('amount', 'body', 'amount must be a number of credits with at most 6 decimals, at most 1e9');
      }
      if (kind === 'top_up' ? amountMicro <= 0 : amountMicro === 0) {
        throw invalid(
          'amount',
          'body',
          kind === 'top_up' ? 'a top_up amount must be above 0' : 'an adjustment amount must not be 0',
          'TOO_SMALL',
        );
      }
      const requestHash = createHash('sha256')
        .update(JSON.stringify([kind, amountMicro, request.body.reason]))
        .digest('hex');
      const outcome = await addCredits(pool, {
        userId: request.params.id,
        actorId: request.userId,
        kind,
        amountMicro,
        reason: request.body.reason,
        idempotencyKey: key,
        requestHash: key === undefined ? undefined : requestHash,
      });
      if (outcome.kind === 'user_not_found') throw new ApiError('USER_NOT_FOUND', `no user ${request.params.id}`);
      if (outcome.kind === 'key_conflict') {
        throw new ApiError('IDEMPOTENCY_KEY_REUSED', undefined, { entry_id: String(outcome.entry.id) });
      }
      if (outcome.kind === 'replayed') reply.header('idempotent-replayed', 'true');
      return reply.code(201).send({ entry: toEntry(outcome.entry), balance: toBalance(outcome.balance) });
    },
  );
};
