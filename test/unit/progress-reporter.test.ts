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
    const reporter = createProgressReporter(
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
    return { report: reporter.report, stop: reporter.stop, writes, release, maxInFlight: () => maxInFlight };
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

  it('stop() drops what is pending, ignores later reports, and resolves only after the write in flight', async () => {
    const { report, stop, writes, release } = recorder();
    vi.advanceTimersByTime(600);
    report('generating', 10);
    report('encoding', 90); // pending behind the write in flight
    let stopped = false;
    const stopping = stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false); // the write in flight has not finished
    report('finishing', 100); // after stop: ignored
    await release();
    await stopping;
    expect(stopped).toBe(true);
    expect(writes).toEqual([['generating', 10]]);
    vi.advanceTimersByTime(600);
    report('later', 50);
    expect(writes).toEqual([['generating', 10]]);
  });

  it('stop() resolves at once when nothing is in flight, and after a failed write', async () => {
    const idle = recorder();
    await idle.stop();
    const failing = createProgressReporter(() => Promise.reject(new Error('database down')), {
      minIntervalMs: 0,
      onError: () => undefined,
    });
    failing.report('generating', 5);
    await failing.stop();
  });
});
