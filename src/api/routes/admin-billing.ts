import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { listUnreconciled, reconcile, unreconciledCounts } from '../../billing/external-charges.js';
import type { LicenseApi } from '../../billing/license-api.js';
import { toCredits } from '../../billing/money.js';
import type { Pool } from '../../db/pool.js';
import { ApiError } from '../../domain/errors.js';
import { requireAdmin } from '../auth.js';
import { readPageQuery } from '../page-query.js';
import { ProblemSchema } from '../schemas/task.js';

export interface AdminBillingRoutesOptions {
  pool: Pool;
  /** LICENSE_API_ENDPOINT; without it the list still answers and reconcile is 409. */
  licenseApi: { api: LicenseApi; timeoutMs: number } | undefined;
}

const ChargeSchema = Type.Object(
  {
    task_id: Type.String({
      format: 'uuid',
      description: 'The task charged; also the reference sent to the licence API.',
    }),
    user_id: Type.String({ format: 'uuid' }),
    email: Type.String({ description: 'The licence API account charged.' }),
    amount: Type.Number({ description: 'Credits to deduct.' }),
    status: Type.Union([Type.Literal('pending'), Type.Literal('failed')], {
      description: '`pending`: not confirmed yet, sent again. `failed`: the licence API refused it; not sent again.',
    }),
    attempts: Type.Integer({ description: 'Sends so far.' }),
    last_error: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'ExternalCharge' },
);

const UnreconciledQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1–100, default 20.' })),
    cursor: Type.Optional(Type.String({ description: 'next_cursor from the previous page.' })),
  },
  { additionalProperties: false },
);

const UnreconciledPage = Type.Object({
  data: Type.Array(Type.Ref(ChargeSchema)),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
  pending: Type.Integer({ description: 'Pending charges in all.' }),
  failed: Type.Integer({ description: 'Failed (refused) charges in all.' }),
});

const ReconcileQuery = Type.Object(
  {
    retry_failed: Type.Optional(
      Type.Union([Type.Literal('true'), Type.Literal('false')], {
        description: '`true`: send the failed (refused) charges again too.',
      }),
    ),
  },
  { additionalProperties: false },
);

const ReconcileOutcome = Type.Object({
  settled: Type.Integer({ description: 'Charges the licence API confirmed now.' }),
  failed: Type.Integer({ description: 'Charges it refused now (status failed).' }),
  retrying: Type.Integer({ description: 'Charges it did not answer now; still pending.' }),
  pending: Type.Integer({ description: 'Pending charges left.' }),
  failed_total: Type.Integer({ description: 'Failed charges left.' }),
});

/** The licence API's unsettled charges and settling them now (docs/billing.md): admins only. */
export const adminBillingRoutes: FastifyPluginAsyncTypebox<AdminBillingRoutesOptions> = async (
  app,
  { pool, licenseApi },
) => {
  app.addHook('onRequest', requireAdmin);
  app.addSchema(ChargeSchema);

  app.get(
    '/v1/admin/billing/unreconciled',
    {
      schema: {
        summary: 'Charges not settled with the licence API',
        description:
          'Charges recorded for succeeded tasks that the licence API (`LICENSE_API_ENDPOINT`) has not confirmed: `pending` ones are sent again by workers and by reconcile; `failed` ones were refused. Oldest task first.',
        tags: ['admin'],
        querystring: UnreconciledQuery,
        response: { 200: UnreconciledPage, 400: ProblemSchema, 403: ProblemSchema },
      },
    },
    async (request) => {
      const page = readPageQuery(request.query);
      const [rows, counts] = await Promise.all([
        listUnreconciled(pool, { limit: page.limit + 1, cursor: page.cursor }),
        unreconciledCounts(pool),
      ]);
      const data = rows.slice(0, page.limit).map((row) => ({
        ...row,
        amount: toCredits(Number(row.amount)),
        created_at: row.created_at.toISOString(),
        updated_at: row.updated_at.toISOString(),
      }));
      const next = rows.length > page.limit ? data[data.length - 1]!.task_id : null;
      return { data, next_cursor: next, ...counts };
    },
  );

  app.post(
    '/v1/admin/billing/reconcile',
    {
      schema: {
        summary: 'Send pending charges to the licence API now',
        description:
          'Sends every pending charge once now (up to 1000), without waiting out the backoff workers keep, each with its task id as the idempotency reference; answers what happened. `retry_failed=true` sends refused ones again too.',
        tags: ['admin'],
        querystring: ReconcileQuery,
        response: { 200: ReconcileOutcome, 400: ProblemSchema, 403: ProblemSchema, 409: ProblemSchema },
      },
    },
    async (request) => {
      if (!licenseApi) throw new ApiError('BILLING_NOT_CONFIGURED');
      const outcome = await reconcile(pool, licenseApi.api, {
        timeoutMs: licenseApi.timeoutMs,
        retryFailed: request.query.retry_failed === 'true',
      });
      request.log.info({ ...outcome, by: request.principal.userId }, 'licence API charges reconciled');
      return outcome;
    },
  );
};
