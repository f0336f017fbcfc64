import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AdminService } from '../../admin/service.js';
import { validationFailed } from '../../domain/validation.js';
import { requireAdmin } from '../auth.js';
import { requireConfirmation } from '../admin-filters.js';
import { readPageQuery } from '../page-query.js';
import {
  AdminUserListSchema,
  AdminUsersQuery,
  ClearOutcomeSchema,
  ClearQueueBody,
  StatsQuery,
  StatsSchema,
} from '../schemas/admin.js';
import { ProblemSchema } from '../schemas/task.js';

export interface AdminQueueRoutesOptions {
  admin: AdminService;
}

const problems = { 400: ProblemSchema, 403: ProblemSchema };
const MAX_DAYS = 90;

/** Queue statistics, clearing the queue, and users with their task counts: admins only. */
export const adminQueueRoutes: FastifyPluginAsyncTypebox<AdminQueueRoutesOptions> = async (app, { admin }) => {
  app.addHook('onRequest', requireAdmin);

  app.get(
    '/v1/admin/stats',
    {
      schema: {
        summary: 'Queue statistics',
        description:
          'Queued, running, retrying and dead (failed) tasks per provider and priority, and tasks processed (succeeded or failed) and failed per UTC day for the last `days` days.',
        tags: ['admin'],
        querystring: StatsQuery,
        response: { 200: StatsSchema, ...problems },
      },
    },
    async (request) => {
      const days = request.query.days === undefined ? 7 : Number(request.query.days);
      if (days < 1 || days > MAX_DAYS) {
        const message = `days must be from 1 to ${MAX_DAYS}`;
        throw validationFailed([
          { field: 'days', pointer: '/days', in: 'query', code: days < 1 ? 'TOO_SMALL' : 'TOO_LARGE', message },
        ]);
      }
      return admin.stats(days);
    },
  );

  app.post(
    '/v1/admin/queue/clear',
    {
      schema: {
        summary: 'Cancel every queued task',
        description:
          'Needs `confirm: "clear"`. Cancels (does not delete) every task queued when the call starts, or only those of `provider`; each gets its `task:canceled` event. Running tasks are untouched.',
        tags: ['admin'],
        body: ClearQueueBody,
        response: { 200: ClearOutcomeSchema, ...problems },
      },
    },
    async (request) => {
      const { confirm, provider } = request.body;
      requireConfirmation(confirm, 'clear', 'every queued task' + (provider ? ` of ${provider}` : '') + ' is canceled');
      const canceled = await admin.clearQueue(provider);
      request.log.info({ canceled, provider, by: request.principal.userId }, 'queue cleared');
      return { canceled };
    },
  );

  app.get(
    '/v1/admin/users',
    {
      schema: {
        summary: 'List users with their task counts',
        description: 'In id order, deleted users included (`deleted_at` set). Paginated like GET /v1/tasks.',
        tags: ['admin'],
        querystring: AdminUsersQuery,
        response: { 200: AdminUserListSchema, ...problems },
      },
    },
    async (request) => {
      const { limit, cursor } = readPageQuery(request.query);
      const { users, nextCursor } = await admin.users({ after: cursor, limit });
      return {
        data: users.map((user) => ({
          ...user,
          created_at: user.created_at.toISOString(),
          deleted_at: user.deleted_at ? user.deleted_at.toISOString() : null,
        })),
        next_cursor: nextCursor,
      };
    },
  );
};
