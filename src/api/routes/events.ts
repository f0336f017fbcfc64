import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Pool } from '../../db/pool.js';
import { ApiError } from '../../domain/errors.js';
import { parseCursor, START_CURSOR, type EventCursor } from '../../events/cursor.js';
import { readEvents, type TaskEvent } from '../../events/event-log.js';
import type { EventHub } from '../../events/hub.js';
import { findTask } from '../../tasks/queries.js';
import { ProblemSchema } from '../schemas/task.js';
import { toTaskUpdate } from '../task-resource.js';

export interface EventRoutesOptions {
  pool: Pool;
  hub: EventHub;
  baseUrl: string;
  heartbeatMs: number;
}

/** A client this far behind is cut off; it reconnects with Last-Event-ID and replays. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const REPLAY_PAGE = 500;

export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (
  app,
  { pool, hub, baseUrl, heartbeatMs },
) => {
  app.get(
    '/v1/events',
    {
      schema: {
        summary: 'Live task updates (server-sent events)',
        description:
          "Streams `connected`, then `task_update` for each change to your tasks (or to one task with `task_id`), and a `heartbeat` every few seconds. Each `task_update` has an id; reconnect with `Last-Event-ID` to receive exactly the updates you missed. With `task_id` and no `Last-Event-ID`, the task's history is sent first.",
        tags: ['events'],
        querystring: Type.Object(
          {
            task_id: Type.Optional(Type.String({ format: 'uuid' })),
            last_event_id: Type.Optional(Type.String({ description: 'Same as the Last-Event-ID header.' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.String({ description: 'text/event-stream' }), 400: ProblemSchema, 404: ProblemSchema },
      },
    },
    async (request, reply) => {
      const { userId } = request;
      const taskId = request.query.task_id;
      const lastEventId = request.headers['last-event-id'] ?? request.query.last_event_id;
      let resumeFrom: EventCursor | undefined;
      if (typeof lastEventId === 'string' && lastEventId !== '') {
        resumeFrom = parseCursor(lastEventId);
        if (!resumeFrom)
          throw new ApiError('INVALID_EVENT_ID', `Last-Event-ID ${JSON.stringify(lastEventId)} is not an event id`);
      }
      if (taskId && !(await findTask(pool, userId, taskId))) throw new ApiError('TASK_NOT_FOUND', `no task ${taskId}`);
      // A task stream with no Last-Event-ID starts from the task's first event.
      if (!resumeFrom && taskId) resumeFrom = START_CURSOR;

      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      out.flushHeaders();
      let open = true;
      let unsubscribe = () => {};
      let heartbeat: NodeJS.Timeout | undefined = undefined;
      const close = () => {
        if (!open) return;
        open = false;
        clearInterval(heartbeat);
        unsubscribe();
        out.end();
      };
      // The response's 'close' fires however the connection ends; registered before any await.
      out.on('close', close);
      const write = (chunk: string) => {
        if (!open) return;
        out.write(chunk);
        if (out.writableLength > MAX_BUFFERED_BYTES) close();
      };
      const send = (event: TaskEvent) => {
        const update = toTaskUpdate(event, baseUrl);
        write(`id: ${update.event_id}\nevent: task_update\ndata: ${JSON.stringify(update)}\n\n`);
      };

      // Join live delivery first, buffering, then replay up to the join point: no gap, no repeat.
      let buffered: TaskEvent[] | undefined = [];
      const subscription = await hub.subscribe({
        userId,
        taskId,
        deliver: (event) => (buffered ? buffered.push(event) : send(event)),
      });
      unsubscribe = subscription.unsubscribe;
      if (!open) return unsubscribe();
      heartbeat = setInterval(
        () => write(`event: heartbeat\ndata: {"time":"${new Date().toISOString()}"}\n\n`),
        heartbeatMs,
      );

      write(`retry: 2000\nevent: connected\ndata: ${JSON.stringify({ user_id: userId, task_id: taskId ?? null })}\n\n`);
      try {
        let after = resumeFrom;
        while (after && open) {
          const page = await readEvents(pool, { userId, taskId }, after, {
            until: subscription.joinedAt,
            limit: REPLAY_PAGE,
          });
          page.forEach(send);
          after = page.length === REPLAY_PAGE ? page.at(-1)!.cursor : undefined;
        }
      } catch (error) {
        request.log.warn({ err: error }, 'event replay failed');
        close();
        return;
      }
      const pending = buffered;
      buffered = undefined;
      pending.forEach(send);
    },
  );
};
