import multipart from '@fastify/multipart';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
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
import { multipartSubmitLimits, readSubmitForm } from '../multipart-submit.js';
import { readPageQuery } from '../page-query.js';
import { preferredWaitSeconds } from '../prefer.js';
import { toTaskResource } from '../task-resource.js';
import { linksFor, type LinkBuilder } from '../image-delivery.js';
import { taskOwnerFor } from '../task-owner.js';

export interface TaskRoutesOptions {
  tasks: TaskService;
  /** Absolute (and signed) image links: EASEL_PUBLIC_URL or the request's own origin. */
  links: LinkBuilder;
  waitMaxSeconds: number;
  /** EASEL_UPLOAD_MAX_BYTES: the largest `image` file of a multipart submit (413 beyond). */
  uploadMaxBytes: number;
  /** The largest text field of a multipart submit: what a JSON body may carry (EASEL_BODY_LIMIT_BYTES). */
  formFieldMaxBytes: number;
}

const problems = { 400: ProblemSchema, 404: ProblemSchema, 409: ProblemSchema };
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export const taskRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (
  app,
  { tasks, links, waitMaxSeconds, uploadMaxBytes, formFieldMaxBytes },
) => {
  // Problems a submit can answer beyond the common ones: a full queue.
  const submitProblems = { ...problems, 503: ProblemSchema };
  // The form parser lives in this scope alone: every other route still takes JSON only.
  await app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    await scope.register(multipart, { limits: multipartSubmitLimits(uploadMaxBytes, formFieldMaxBytes) });
    scope.post(
      '/v1/tasks',
      {
        schema: {
          summary: 'Submit a generation task',
          description:
            'Queues a task and answers 202 with its id, queue position and ETA. With `Prefer: wait=N` the answer waits up to N seconds and is 200 with the finished task if it finishes in time. With `Idempotency-Key`, repeating the same request (compared after defaults are applied) returns the same task with `Idempotent-Replayed: true` and the status a fresh submit would get; the same key with a different request is 409. While the queue is full: 503 QUEUE_FULL with Retry-After.',
          tags: ['tasks'],
          body: SubmitTaskBody,
          headers: Type.Object({
            'idempotency-key': Type.Optional(Type.String()),
            prefer: Type.Optional(Type.String()),
          }),
          response: { 200: TaskSchema, 202: TaskSchema, ...submitProblems },
        },
        // A form becomes the JSON body here, before the schema checks it.
        preValidation: async (request) => {
          if (request.isMultipart()) request.body = (await readSubmitForm(request)) as SubmitTaskBody;
        },
      },
      async (request, reply) => {
        const key = request.headers['idempotency-key'];
        if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
          throw new ApiError('VALIDATION_FAILED', 'Idempotency-Key must be 1–255 visible ASCII characters', {
            errors: [
              {
                field: 'Idempotency-Key',
                pointer: '/idempotency-key',
                in: 'header',
                code: 'BAD_FORMAT',
                message: 'Idempotency-Key must be 1–255 visible ASCII characters',
              },
            ],
          });
        }
        const wait = preferredWaitSeconds(request.headers.prefer, waitMaxSeconds);
        const { view, replayed, degradedBy } = await tasks.submit(request.userId, request.body, key);
        if (degradedBy)
          request.log.warn({ err: degradedBy, taskId: view.task.id }, 'task queued; reading its position failed');
        // From here on the task exists: nothing may turn the answer into an error, or a client
        // without an Idempotency-Key would submit it again.
        let current = view;
        let waited = false;
        if (wait !== undefined) {
          try {
            current = await tasks.waitForFinish(request.userId, view.task.id, wait * 1000);
            waited = true;
            reply.header('preference-applied', `wait=${wait}`);
          } catch (error) {
            request.log.warn({ err: error, taskId: view.task.id }, 'task queued; waiting for it failed');
          }
        }
        if (replayed) reply.header('idempotent-replayed', 'true');
        // One rule for fresh submits and replays alike: 200 only when the answer waited and the
        // task is finished; otherwise 202, "accepted", whatever state the body shows.
        return reply
          .code(waited && isTerminal(current.task.status) ? 200 : 202)
          .header('location', `/v1/tasks/${current.task.id}`)
          .send(toTaskResource(current, linksFor(links, request)));
      },
    );
  });

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
    async (request) =>
      toTaskResource(await tasks.get(taskOwnerFor(request), request.params.id), linksFor(links, request)),
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
      const { status, provider } = request.query;
      const { limit, cursor } = readPageQuery(request.query);
      const page = await tasks.list(request.userId, { status, provider, before: cursor, limit });
      return {
        data: page.views.map((view) => toTaskResource(view, linksFor(links, request))),
        next_cursor: page.nextCursor,
      };
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
      const { outcome, view } = await tasks.cancel(taskOwnerFor(request), request.params.id);
      return reply.code(outcome === 'canceled' ? 200 : 202).send(toTaskResource(view, linksFor(links, request)));
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
      reply
        .code(202)
        .send(toTaskResource(await tasks.retry(taskOwnerFor(request), request.params.id), linksFor(links, request))),
  );
};
