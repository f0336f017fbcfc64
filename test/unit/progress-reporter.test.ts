import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createProgressReporter } from '../../src/worker/progress-reporter.js';

describe('createProgressReporter', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['Date'] }));
  afterEach(() => vi.useRealTimers());

  function recorder() {
    const writes: Array<[string, number]> = [];
    const releases: Array<() => void> = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const report = createProgressReporter(
      async (stage, pct) => {
        writes.push([stage, pct]);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise<void>((resolve) => releases.push(resolve));
        inFlight--;
      },
      { minIntervalMs: 500, onError: () => undefined },
    );
    const release = async () => {
      releases.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    };
    return { report, writes, release, maxInFlight: () => maxInFlight };
  }

  it('writes nothing for an attempt that finishes within the first interval', () => {
    const { report, writes } = recorder();
    report('generating', 0);
    report('generating', 50);
    report('encoding', 100);
    expect(writes).toEqual([]);
  });

  it('then writes stage changes promptly, throttles progress within a stage, and never overlaps writes', async () => {
    const { report, writes, release, maxInFlight } = recorder();
    vi.advanceTimersByTime(600);
    report('generating', 10);
    report('generating', 20); // throttled: same stage, too soon
    report('encoding', 90); // a stage change: waits for the write in flight
    expect(writes).toEqual([['generating', 10]]);
    await release();
    expect(writes).toEqual([
      ['generating', 10],
      ['encoding', 90],
    ]);
    await release();
    report('encoding', 95); // same stage, within the interval
    vi.advanceTimersByTime(600);
    report('encoding', 99);
    expect(writes.at(-1)).toEqual(['encoding', 99]);
    await release();
    expect(maxInFlight()).toBe(1);
  });
});
