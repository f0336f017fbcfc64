import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AdminService } from '../../admin/service.js';
import { requireAdmin } from '../auth.js';
import { creationBounds, deadLetterSelection, requireConfirmation } from '../admin-filters.js';
import { readPageQuery } from '../page-query.js';
import {
  AdminTaskListSchema,
  AdminTasksQuery,
  DeadLettersQuery,
  PurgeDeadLettersBody,
  PurgeOutcomeSchema,
  RetryDeadLettersBody,
  RetryOutcomeSchema,
} from '../schemas/admin.js';
import { ProblemSchema } from '../schemas/task.js';
import { toTaskResource } from '../task-resource.js';
import { linksFor, type LinkBuilder } from '../image-delivery.js';

export interface AdminTaskRoutesOptions {
  admin: AdminService;
  links: LinkBuilder;
}

const problems = { 400: ProblemSchema, 403: ProblemSchema };

/** Every user's tasks, and the dead letters (failed tasks) with retry and purge: admins only. */
export const adminTaskRoutes: FastifyPluginAsyncTypebox<AdminTaskRoutesOptions> = async (app, { admin, links }) => {
  app.addHook('onRequest', requireAdmin);

  const page = async (request: FastifyRequest, query: Parameters<typeof admin.listTasks>[0]) => {
    const { views, nextCursor } = await admin.listTasks(query);
    return {
      data: views.map((view) => ({ ...toTaskResource(view, linksFor(links, request)), user_id: view.userId })),
      next_cursor: nextCursor,
    };
  };

  app.get(
    '/v1/admin/tasks',
    {
      schema: {
        summary: "List every user's tasks, newest first",
        description:
          'Filters combine; `created_after` / `created_before` compare creation times to the millisecond. Paginated like GET /v1/tasks.',
        tags: ['admin'],
        querystring: AdminTasksQuery,
        response: { 200: AdminTaskListSchema, ...problems },
      },
    },
    async (request) => {
      const { limit, cursor } = readPageQuery(request.query);
      const { user_id, status, provider } = request.query;
      return page(request, {
        userId: user_id,
        status,
        provider,
        before: cursor,
        limit,
        ...creationBounds(request.query, 'query'),
      });
    },
  );

  app.get(
    '/v1/admin/dead-letters',
    {
      schema: {
        summary: 'List the dead letters (failed tasks), newest first',
        tags: ['admin'],
        querystring: DeadLettersQuery,
        response: { 200: AdminTaskListSchema, ...problems },
      },
    },
    async (request) => {
      const { limit, cursor } = readPageQuery(request.query);
      const { user_id, provider, error_code } = request.query;
      return page(request, {
        status: 'failed',
        userId: user_id,
        provider,
        errorCode: error_code,
        before: cursor,
        limit,
        ...creationBounds(request.query, 'query'),
      });
    },
  );

  app.post(
    '/v1/admin/dead-letters/retry',
    {
      schema: {
        summary: 'Queue dead letters again',
        description:
          'By `ids`, or by the filters of GET /v1/admin/dead-letters (at least one; at most `max` tasks per call). Each task goes back to the queue with fresh attempts, as POST /v1/tasks/{id}/retry does, with its `task:queued` event.',
        tags: ['admin'],
        body: RetryDeadLettersBody,
        response: { 200: RetryOutcomeSchema, ...problems },
      },
    },
    async (request) => {
      const outcome = await admin.retryDeadLetters(deadLetterSelection(request.body, { requireOne: true }));
      request.log.info({ retried: outcome.ids.length, by: request.principal.userId }, 'dead letters retried');
      return { retried: outcome.ids.length, ...outcome };
    },
  );

  app.post(
    '/v1/admin/dead-letters/purge',
    {
      schema: {
        summary: 'Delete dead letters and their images',
        description:
          'Needs `confirm: "purge"`. By `ids`, or by the filters of GET /v1/admin/dead-letters (none: every dead letter, at most `max` per call). Deletes the task rows, their result images and img2img inputs no upload still holds, rows first, then the files. Their events stay in the event log until retention prunes them.',
        tags: ['admin'],
        body: PurgeDeadLettersBody,
        response: { 200: PurgeOutcomeSchema, ...problems },
      },
    },
    async (request) => {
      const { confirm, ...fields } = request.body;
      requireConfirmation(confirm, 'purge', 'purged tasks and their images are deleted for good');
      const outcome = await admin.purgeDeadLetters(deadLetterSelection(fields, { requireOne: false }), (key, error) =>
        request.log.warn({ err: error, key }, 'purged task: its image could not be deleted from storage'),
      );
      request.log.info({ purged: outcome.ids.length, by: request.principal.userId }, 'dead letters purged');
      return {
        purged: outcome.ids.length,
        images_deleted: outcome.imagesDeleted,
        ids: outcome.ids,
        skipped: outcome.skipped,
        more: outcome.more,
      };
    },
  );
};
