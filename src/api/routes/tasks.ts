import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ApiError } from '../../domain/errors.js';
import { isTerminal } from '../../domain/task.js';
import type { TaskService } from '../../tasks/service.js';
import {
  ListTasksQuery,
  ProblemSchema,
  SubmitTaskBody,
  TaskIdParams,
  TaskListSchema,
  TaskSchema,
} from '../schemas/task.js';
import { toTaskResource } from '../task-resource.js';

export interface TaskRoutesOptions {
  tasks: TaskService;
  baseUrl: string;
  waitMaxSeconds: number;
}

const problems = { 400: ProblemSchema, 404: ProblemSchema, 409: ProblemSchema };
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** `Prefer: wait=N` (RFC 7240); a bare `wait` means the server's maximum. */
function parseWait(header: string | undefined, maxSeconds: number): number | undefined {
  if (!header) return undefined;
  const match = /(?:^|[,;\s])wait(?:=(\d+))?/i.exec(header);
  if (!match) return undefined;
  return Math.min(maxSeconds, match[1] === undefined ? maxSeconds : Number(match[1]));
}

export const taskRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (
  app,
  { tasks, baseUrl, waitMaxSeconds },
) => {
  app.post(
    '/v1/tasks',
    {
      schema: {
        summary: 'Submit a generation task',
        description:
          'Queues a task and answers 202 with its id, queue position and ETA. With `Prefer: wait=N` the answer waits up to N seconds and is 200 with the finished task if it finishes in time. With `Idempotency-Key`, repeating the same request returns the same task; the same key with a different body is 409.',
        tags: ['tasks'],
        body: SubmitTaskBody,
        headers: Type.Object({
          'idempotency-key': Type.Optional(Type.String()),
          prefer: Type.Optional(Type.String()),
        }),
        response: { 200: TaskSchema, 202: TaskSchema, ...problems },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
        throw new ApiError('VALIDATION_FAILED', 'Idempotency-Key must be 1–255 visible ASCII characters', {
          errors: [
            {
              field: 'Idempotency-Key',
              code: 'BAD_FORMAT',
              message: 'Idempotency-Key must be 1–255 visible ASCII characters',
            },
          ],
        });
      }
      const { view, replayed } = await tasks.submit(request.userId, request.body, key);
      const wait = parseWait(request.headers.prefer, waitMaxSeconds);
      let current = view;
      if (wait !== undefined) {
        reply.header('preference-applied', `wait=${wait}`);
        current = await tasks.waitForFinish(request.userId, view.task.id, wait * 1000);
      }
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply
        .code(isTerminal(current.task.status) ? 200 : 202)
        .header('location', `/v1/tasks/${current.task.id}`)
        .send(toTaskResource(current, baseUrl));
    },
  );

  app.get(
    '/v1/tasks/:id',
    {
      schema: {
        summary: 'Get a task',
        tags: ['tasks'],
        params: TaskIdParams,
        response: { 200: TaskSchema, ...problems },
      },
    },
    async (request) => toTaskResource(await tasks.get(request.userId, request.params.id), baseUrl),
  );

  app.get(
    '/v1/tasks',
    {
      schema: {
        summary: 'List your tasks, newest first',
        tags: ['tasks'],
        querystring: ListTasksQuery,
        response: { 200: TaskListSchema, ...problems },
      },
    },
    async (request) => {
      const { status, provider, cursor } = request.query;
      const limit = request.query.limit === undefined ? 20 : Number(request.query.limit);
      if (limit < 1 || limit > 100) {
        throw new ApiError('VALIDATION_FAILED', 'limit must be from 1 to 100', {
          errors: [
            { field: 'limit', code: limit < 1 ? 'TOO_SMALL' : 'TOO_LARGE', message: 'limit must be from 1 to 100' },
          ],
        });
      }
      if (cursor !== undefined && !/^[0-9a-f-]{36}$/i.test(cursor)) throw new ApiError('INVALID_CURSOR');
      const page = await tasks.list(request.userId, { status, provider, before: cursor, limit });
      return { data: page.views.map((view) => toTaskResource(view, baseUrl)), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/v1/tasks/:id/cancel',
    {
      schema: {
        summary: 'Cancel a task',
        description:
          'A queued task is canceled at once (200). A running task is asked to stop (202): its worker aborts the provider call and the task ends `canceled` unless its result arrived first.',
        tags: ['tasks'],
        params: TaskIdParams,
        response: { 200: TaskSchema, 202: TaskSchema, ...problems },
      },
    },
    async (request, reply) => {
      const { outcome, view } = await tasks.cancel(request.userId, request.params.id);
      return reply.code(outcome === 'canceled' ? 200 : 202).send(toTaskResource(view, baseUrl));
    },
  );

  app.post(
    '/v1/tasks/:id/retry',
    {
      schema: {
        summary: 'Run a failed or canceled task again',
        tags: ['tasks'],
        params: TaskIdParams,
        response: { 202: TaskSchema, ...problems },
      },
    },
    async (request, reply) =>
      reply.code(202).send(toTaskResource(await tasks.retry(request.userId, request.params.id), baseUrl)),
  );
};
