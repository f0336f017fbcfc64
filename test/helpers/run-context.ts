import pino from 'pino';
import type { Credential, PreviewImage, RunContext, TaskInput } from '../../src/providers/types.js';

/** What an adapter reported through its RunContext, for assertions. */
export interface RunRecord {
  progress: Array<{ stage: string; pct: number | undefined; at: number }>;
  providerRefs: string[];
  predictTime: number | undefined;
  /** Preview images passed with progress, in order. */
  previews: PreviewImage[];
}

/**
 * A RunContext for calling an adapter directly, as the worker would: real `fetch`, a signal the
 * test controls, and everything the adapter reports recorded. `at` is ms since creation.
 */
export function createRunContext(
  options: { signal?: AbortSignal; credential?: Credential; onProgress?: (stage: string, pct?: number) => void } = {},
): { ctx: RunContext; record: RunRecord } {
  const started = performance.now();
  const record: RunRecord = { progress: [], providerRefs: [], predictTime: undefined, previews: [] };
  const ctx: RunContext = {
    signal: options.signal ?? new AbortController().signal,
    ...(options.credential ? { credential: options.credential } : {}),
    progress: (stage, pct, preview) => {
      record.progress.push({ stage, pct, at: performance.now() - started });
      if (preview) record.previews.push(preview);
      options.onProgress?.(stage, pct);
    },
    saveProviderRef: async (ref) => {
      record.providerRefs.push(ref);
    },
    recordPredictTime: (seconds) => {
      record.predictTime = seconds;
    },
    log: pino({ level: 'silent' }),
    fetch,
  };
  return { ctx, record };
}

/** A validated task input with defaults; override what the test is about. */
export const taskInput = (overrides: Partial<TaskInput> = {}): TaskInput => ({
  taskId: '01900000-0000-7000-8000-000000000001',
  kind: 'txt2img',
  model: 'default',
  prompt: 'a lighthouse at dusk',
  negativePrompt: null,
  width: 512,
  height: 512,
  steps: 20,
  guidance: 7,
  n: 1,
  seed: 42,
  options: {},
  attempt: 1,
  providerRef: null,
  ...overrides,
});

/** What a run threw; fails the test when it succeeded instead. */
export async function rejectionOf(run: Promise<unknown>): Promise<Error> {
  const error = await run.then(
    () => undefined,
    (thrown: unknown) => thrown as Error,
  );
  if (!error) throw new Error('expected the run to fail');
  return error;
}
