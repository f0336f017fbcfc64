import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Pool } from '../../db/pool.js';
import { ApiError } from '../../domain/errors.js';
import { isTerminal } from '../../domain/task.js';
import { compareCursors, parseCursor, START_CURSOR, type EventCursor } from '../../events/cursor.js';
import { findTaskEnding, isFinalEvent, readEvents, type TaskEnding, type TaskEvent } from '../../events/event-log.js';
import type { EventHub } from '../../events/hub.js';
import { checkResumePoint } from '../../events/retention.js';
import { StreamSlots, type StreamLimits } from '../../events/stream-slots.js';
import { sendProblem } from '../problem.js';
import { ProblemSchema, Uuid } from '../schemas/task.js';
import { toTaskUpdate } from '../task-resource.js';
import { linksFor, type LinkBuilder } from '../image-delivery.js';
import { taskOwnerFor } from '../task-owner.js';

export interface EventRoutesOptions {
  pool: Pool;
  hub: EventHub;
  links: LinkBuilder;
  heartbeatMs: number;
  limits: StreamLimits;
}

/** A client this far behind is cut off; it reconnects with Last-Event-ID and replays. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const REPLAY_PAGE = 500;
/** Seconds a refused client should wait: streams are long-lived, slots free up slowly. */
const STREAM_RETRY_AFTER_SECONDS = 10;

export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (
  app,
  { pool, hub, links, heartbeatMs, limits },
) => {
  const slots = new StreamSlots(limits);

  app.get(
    '/v1/events',
    {
      schema: {
        summary: 'Live task updates (server-sent events)',
        description:
          "Streams `connected`, then `task_update` for each change to your tasks (or to one task with `task_id`), and a `heartbeat` every few seconds. Each `task_update` has an id; reconnect with `Last-Event-ID` to receive exactly the updates you missed. With `task_id` and no `Last-Event-ID`, the task's history is sent first, and the stream ends with a `done` event after the task's final update. A `Last-Event-ID` older than the event retention answers 410 EVENT_ID_EXPIRED; too many open streams answer 429 TOO_MANY_STREAMS.",
        tags: ['events'],
        querystring: Type.Object(
          {
            task_id: Type.Optional(Uuid()),
            last_event_id: Type.Optional(Type.String({ description: 'Same as the Last-Event-ID header.' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.String({ description: 'text/event-stream' }),
          400: ProblemSchema,
          404: ProblemSchema,
          410: ProblemSchema,
          429: ProblemSchema,
        },
      },
    },
    async (request, reply) => {
      // Links are signed as each update goes out, so they stay fresh on a long-lived stream.
      const streamLinks = linksFor(links, request);
      const { userId } = request;
      const taskId = request.query.task_id;
      const lastEventId = request.headers['last-event-id'] ?? request.query.last_event_id;
      let resumeFrom: EventCursor | undefined;
      if (typeof lastEventId === 'string' && lastEventId !== '') {
        resumeFrom = parseCursor(lastEventId);
        if (!resumeFrom)
          throw new ApiError('INVALID_EVENT_ID', `Last-Event-ID ${JSON.stringify(lastEventId)} is not an event id`);
      }

      const slot = slots.tryAcquire(userId);
      if ('refused' in slot) {
        reply.header('retry-after', String(STREAM_RETRY_AFTER_SECONDS));
        const detail =
          slot.refused === 'user'
            ? `you already have ${limits.perUser} open event streams on this server; close one (one stream without task_id follows all your tasks)`
            : `this server already serves ${limits.total} event streams; try again later`;
        return sendProblem(reply, 'TOO_MANY_STREAMS', detail);
      }
      let task: TaskEnding | undefined;
      try {
        if (resumeFrom) await refuseUnusableResumePoint(pool, resumeFrom, lastEventId as string);
        if (taskId) {
          task = await findTaskEnding(pool, taskOwnerFor(request), taskId);
          if (!task) throw new ApiError('TASK_NOT_FOUND', `no task ${taskId}`);
        }
      } catch (error) {
        slot.release();
        throw error;
      }
      // A task stream with no Last-Event-ID starts from the task's first (still kept) event.
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
        slot.release();
        out.end();
      };
      // The response's 'close' fires however the connection ends; registered before any await.
      out.on('close', close);
      const write = (chunk: string) => {
        if (!open) return;
        out.write(chunk);
        if (out.writableLength > MAX_BUFFERED_BYTES) close();
      };
      const finish = (status: unknown) => {
        write(`event: done\ndata: ${JSON.stringify({ task_id: taskId, status })}\n\n`);
        close();
      };

      // Invariant: events go out in strictly increasing log order, each after the client's
      // resume point. Replay and live delivery overlap, and another API process the client
      // was on may have been ahead of this one's hub: anything at or before `sentThrough` is
      // something the client already has.
      let sentThrough = resumeFrom;
      const send = (event: TaskEvent) => {
        if (!open) return;
        if (!sentThrough || compareCursors(event.cursor, sentThrough) > 0) {
          sentThrough = event.cursor;
          const update = toTaskUpdate(event, streamLinks);
          write(`id: ${update.event_id}\nevent: task_update\ndata: ${JSON.stringify(update)}\n\n`);
        }
        // Sent now or earlier, the task's final event ends a task stream.
        if (task && endsTaskStream(task, event)) finish(event.data.status);
      };

      // A task stream follows the task found above, whoever owns it (an admin may follow any);
      // the unfiltered stream is always the caller's own tasks only.
      const eventUser = task ? undefined : userId;
      // Join live delivery first, buffering, then replay up to the join point: no gap, no repeat.
      let buffered: TaskEvent[] | undefined = [];
      const subscription = await hub.subscribe({
        userId: eventUser,
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
          const page = await readEvents(pool, { userId: eventUser, taskId }, after, {
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
      // A task that had finished before the client came and whose final event was not sent
      // above: the client resumed after it, or retention pruned it. Nothing more will come.
      if (open && task && isTerminal(task.status)) {
        const final = task.lastFinalEvent;
        if (!final || compareCursors(final, sentThrough!) <= 0) finish(task.status);
      }
    },
  );
};

/**
 * Whether `event` is the final event that ends a stream of its task: the task's latest final
 * event at connect when the task had finished then, or any final event after it. An earlier
 * one (a `task:failed` that a retry superseded) is just history.
 */
function endsTaskStream(task: TaskEnding, event: TaskEvent): boolean {
  if (!isFinalEvent(event)) return false;
  if (!task.lastFinalEvent) return true;
  const order = compareCursors(event.cursor, task.lastFinalEvent);
  return order > 0 || (order === 0 && isTerminal(task.status));
}

/** Refuse, before any stream bytes, a resume point that would fail mid-stream or leave a gap. */
async function refuseUnusableResumePoint(pool: Pool, resumeFrom: EventCursor, lastEventId: string): Promise<void> {
  const check = await checkResumePoint(pool, resumeFrom);
  if (check === 'unknown')
    throw new ApiError(
      'INVALID_EVENT_ID',
      `Last-Event-ID ${JSON.stringify(lastEventId)} is not an id this server sent`,
    );
  if (check === 'expired')
    throw new ApiError(
      'EVENT_ID_EXPIRED',
      `events after ${lastEventId} are no longer kept; re-read your tasks (GET /v1/tasks/:id or GET /v1/tasks) and reconnect without Last-Event-ID`,
    );
}
