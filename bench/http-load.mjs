// A load generator that runs on its own thread, so the HTTP client's work does not share the
// event loop of the server it measures. Plain JavaScript: worker threads start without a loader.
import { parentPort, workerData } from 'node:worker_threads';

const { baseUrl, from, to, inFlight } = workerData;
let next = from;
const started = performance.now();
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (next < to) {
      const i = next++;
      const response = await fetch(`${baseUrl}/v1/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: `throughput ${i}`, width: 64, height: 64, steps: 1, seed: i }),
      });
      if (response.status !== 202) throw new Error(`submit ${i} answered ${response.status}: ${await response.text()}`);
      await response.arrayBuffer();
    }
  }),
);
parentPort.postMessage({ ms: performance.now() - started });
