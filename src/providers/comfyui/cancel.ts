import type { Logger } from 'pino';
import type { Backend } from '../self-hosted/backend.js';
import { deleteQueued, interruptPrompt, readQueue, type CallContext } from './api.js';

/** How long stopping a prompt may take; the attempt's own signal has already fired. */
const STOP_TIMEOUT_MS = 5000;

/**
 * Stop our prompt and nothing else. Queued: `POST /queue {"delete":[id]}`, which removes only
 * that id. Running: `POST /interrupt {"prompt_id"}`, but only after `/queue` shows our prompt
 * as the running one, because servers older than the targeted interrupt ignore the body and
 * stop whatever runs, and that may be another task's prompt. The delete is followed by a
 * second look, as the prompt may have started between the read and the delete.
 */
export async function stopPrompt(
  fetchFn: typeof fetch,
  backend: Backend,
  promptId: string,
  log: Logger,
): Promise<'deleted' | 'interrupted' | 'not found' | 'failed'> {
  const ctx: CallContext = { fetch: fetchFn, signal: AbortSignal.timeout(STOP_TIMEOUT_MS) };
  try {
    for (let look = 0; look < 2; look++) {
      const queue = await readQueue(ctx, backend);
      if (queue.running.includes(promptId)) {
        await interruptPrompt(ctx, backend, promptId);
        return 'interrupted';
      }
      if (!queue.pending.includes(promptId)) return look === 0 ? 'not found' : 'deleted';
      await deleteQueued(ctx, backend, promptId);
    }
    return 'deleted';
  } catch (error) {
    log.warn({ err: error, prompt: promptId }, 'could not stop the ComfyUI prompt');
    return 'failed';
  }
}
