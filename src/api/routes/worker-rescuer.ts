import type { FastifyBaseLogger } from 'fastify';
import type { WorkerConfig } from '../../config/config.js';
import type { Hints } from '../../db/notifier.js';
import type { Pool } from '../../db/pool.js';
import { pruneDeadWorkers, rescueLostTasks } from '../../tasks/rescue.js';

/** How long after the last remote worker's call the API keeps rescuing: ten dead-afters. */
const ACTIVE_FOR_DEAD_AFTERS = 10;

/**
 * The rescuer of a local worker (tasks/rescue.ts), run by an API process while remote workers
 * talk to it. A deployment of API processes and remote workers only has no local worker whose
 * rescue pass would return a dead remote worker's task to the queue. Any number of processes
 * may rescue at once (SKIP LOCKED), so this runs beside local workers' passes harmlessly. It
 * runs only while remote workers call, so an API without them does no background writes.
 */
export function startApiRescuer(deps: { pool: Pool; hints: Hints; config: WorkerConfig; log: FastifyBaseLogger }): {
  touch(): void;
  stop(): Promise<void>;
} {
  const { config } = deps;
  let lastCall = 0;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let stopped = false;
  const pass = async () => {
    try {
      const rescued = await rescueLostTasks(deps.pool, deps.hints, config);
      if (rescued.length > 0) deps.log.warn({ tasks: rescued }, 'rescued tasks from lost attempts');
      await pruneDeadWorkers(deps.pool, config.deadAfterMs);
    } catch (error) {
      deps.log.warn({ err: error }, 'rescue pass failed');
    }
  };
  const schedule = () => {
    timer = setTimeout(() => {
      timer = undefined;
      if (stopped) return;
      if (Date.now() - lastCall > config.deadAfterMs * ACTIVE_FOR_DEAD_AFTERS) return;
      inFlight = pass().finally(() => {
        inFlight = undefined;
        if (!stopped) schedule();
      });
    }, config.rescueIntervalMs);
    timer.unref();
  };
  return {
    touch() {
      lastCall = Date.now();
      if (!timer && !inFlight && !stopped) schedule();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
    },
  };
}
