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

  describe('previews', () => {
    const frame = (n: number, bytes = 100) => ({ data: Buffer.alloc(bytes, n), contentType: 'image/png' });

    function previewRecorder(limits = { intervalMs: 1000, maxBytes: 500 }) {
      const writes: Array<{ stage: string; pct: number; preview: number | undefined }> = [];
      const reporter = createProgressReporter(
        async (stage, pct, preview) => {
          writes.push({ stage, pct, preview: preview?.data[0] });
        },
        { minIntervalMs: 500, onError: () => undefined, preview: limits },
      );
      return { reporter, writes };
    }

    const settle = () => new Promise((resolve) => setImmediate(resolve));

    it('many previews a second become one write per preview interval, carrying the latest frame', async () => {
      const { reporter, writes } = previewRecorder();
      vi.advanceTimersByTime(600);
      // 50 frames a second for 3 seconds, progress unchanged.
      for (let i = 1; i <= 150; i += 1) {
        reporter.report('generating', 40, frame(i));
        await settle();
        vi.advanceTimersByTime(20);
      }
      const withPreview = writes.filter((write) => write.preview !== undefined);
      expect(writes.length).toBeLessThanOrEqual(4);
      expect(withPreview.length).toBeGreaterThanOrEqual(3);
      // Each write takes the newest frame seen, not the first of its interval.
      expect(withPreview[1]!.preview).toBeGreaterThan(50);
    });

    it('skips previews over the size cap, and keeps none without limits configured', async () => {
      const { reporter, writes } = previewRecorder();
      vi.advanceTimersByTime(600);
      reporter.report('generating', 10, frame(1, 501));
      await settle();
      expect(writes).toEqual([{ stage: 'generating', pct: 10, preview: undefined }]);

      const plain = createProgressReporter(
        async (stage, pct, preview) => {
          writes.push({ stage, pct, preview: preview?.data[0] });
        },
        { minIntervalMs: 500, onError: () => undefined },
      );
      vi.advanceTimersByTime(600);
      plain.report('other', 10, frame(2));
      await settle();
      expect(writes.at(-1)).toEqual({ stage: 'other', pct: 10, preview: undefined });
    });

    it('a preview seen in the first interval goes out with the first write; none after stop()', async () => {
      const { reporter, writes } = previewRecorder();
      reporter.report('generating', 5, frame(7));
      vi.advanceTimersByTime(600);
      reporter.report('generating', 6);
      await settle();
      expect(writes).toEqual([{ stage: 'generating', pct: 6, preview: 7 }]);
      await reporter.stop();
      vi.advanceTimersByTime(2000);
      reporter.report('generating', 9, frame(8));
      await settle();
      expect(writes).toHaveLength(1);
    });
  });
});
