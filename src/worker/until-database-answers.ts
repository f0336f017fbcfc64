import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '../db/pool.js';

const FIRST_DELAY_MS = 200;
const MAX_DELAY_MS = 5_000;

/**
 * Run `write` until the database answers it. An attempt's outcome exists only in this process
 * until it is written, so an outage must not drop it: the write is tried again with capped
 * backoff while the database is unreachable. Other errors are thrown at once, and so is the
 * last one once `abandon` fires (shutdown past its grace, or the worker giving up).
 *
 * Safe to repeat because every write of an attempt is fenced by its lease token: a try that
 * already won, or a lease lost meanwhile, makes the next try match no row.
 */
export async function untilDatabaseAnswers<T>(
  write: () => Promise<T>,
  options: { abandon: AbortSignal; log: Logger; what: string },
): Promise<T> {
  for (let delay = FIRST_DELAY_MS, tries = 1; ; delay = Math.min(delay * 2, MAX_DELAY_MS), tries++) {
    try {
      const result = await write();
      if (tries > 1) options.log.info({ tries }, `wrote ${options.what} once the database was back`);
      return result;
    } catch (error) {
      if (!isDatabaseUnavailable(error) || options.abandon.aborted) throw error;
      if (tries === 1)
        options.log.warn({ err: error }, `database unavailable; will write ${options.what} when it is back`);
      try {
        await sleep(delay, undefined, { signal: options.abandon });
      } catch {
        throw error;
      }
    }
  }
}
