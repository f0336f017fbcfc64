import type { EaselClient } from './client.js';
import { explainError } from './explain-error.js';

/** How long after the first Ctrl-C a second one cancels the task. */
export const SECOND_INTERRUPT_WINDOW_MS = 3000;

/** The conventional exit status of a program stopped by Ctrl-C (128 + SIGINT). */
const INTERRUPTED = 130;

/**
 * Ctrl-C while following a task: the task lives on the server, so leaving must not silently
 * abandon it nor silently cancel it. The first Ctrl-C says so and waits a moment; a second one
 * within the window cancels the task through the API; otherwise the CLI exits and the task
 * keeps running. Either way the exit status is 130. Returns a function that stops listening
 * (call it once the task is finished).
 */
export function handleInterrupts(client: EaselClient, taskId: string, pauseDisplay: () => void): () => void {
  let state: 'following' | 'warned' | 'canceling' = 'following';
  let leaveTimer: NodeJS.Timeout | undefined;

  const onInterrupt = () => {
    if (state === 'following') {
      state = 'warned';
      pauseDisplay();
      process.stderr.write(
        `\ntask ${taskId} is still running; press Ctrl-C again within ${SECOND_INTERRUPT_WINDOW_MS / 1000} s to cancel it, or it keeps running (easel tasks show ${taskId})\n`,
      );
      leaveTimer = setTimeout(() => process.exit(INTERRUPTED), SECOND_INTERRUPT_WINDOW_MS);
    } else if (state === 'warned') {
      state = 'canceling';
      clearTimeout(leaveTimer);
      client.request('POST', `/v1/tasks/${taskId}/cancel`).then(
        ({ status }) => {
          process.stderr.write(
            status === 202 ? `task ${taskId}: cancel requested; it stops shortly\n` : `task ${taskId} canceled\n`,
          );
          process.exit(INTERRUPTED);
        },
        (error: unknown) => {
          process.stderr.write(`easel: could not cancel task ${taskId}: ${explainError(error)}\n`);
          process.exit(1);
        },
      );
    }
    // While the cancel is on its way, a further Ctrl-C changes nothing.
  };

  process.on('SIGINT', onInterrupt);
  return () => {
    process.off('SIGINT', onInterrupt);
    clearTimeout(leaveTimer);
  };
}
