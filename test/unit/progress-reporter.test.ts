import { describe, expect, it } from 'vitest';
import { createProgressReporter } from '../../src/worker/progress-reporter.js';

describe('createProgressReporter', () => {
  it('writes stage changes, throttles progress within a stage, and never overlaps writes', async () => {
    const writes: Array<[string, number]> = [];
    let release!: () => void;
    let inFlight = 0;
    let maxInFlight = 0;
    const report = createProgressReporter(
      async (stage, pct) => {
        writes.push([stage, pct]);
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise<void>((resolve) => (release = resolve));
        inFlight--;
      },
      { minIntervalMs: 60_000, onError: () => undefined },
    );
    report('generating', 0);
    report('generating', 10); // throttled
    report('generating', 20); // throttled
    report('encoding', 90); // waits for the write in flight
    expect(writes).toEqual([['generating', 0]]);
    release();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(writes).toEqual([
      ['generating', 0],
      ['encoding', 90],
    ]);
    release();
    expect(maxInFlight).toBe(1);
  });
});
