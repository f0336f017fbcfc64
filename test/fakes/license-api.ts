import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local licence API speaking Easel's contract (src/billing/license-api.ts): balances by email,
 * deductions applied once per reference (a repeat answers success and changes nothing), and
 * faults to script: `down` (connections are cut), `delayMs` (answers late), `status` (answers
 * that status, a 5xx say). Amounts are kept in micro-credits so sums are exact.
 */
export interface FakeLicenseApi {
  url: string;
  /** Micro-credits per email; absent = no such account (404). */
  balances: Map<string, number>;
  /** Applied deductions by reference (the task id). */
  deductions: Map<string, { email: string; micro: number }>;
  /** Every deduct request received, by reference, applied or not. */
  deductRequests: string[];
  balanceRequests: number;
  down: boolean;
  delayMs: number;
  status: number | undefined;
  close(): Promise<void>;
}

export async function startFakeLicenseApi(): Promise<FakeLicenseApi> {
  const fake = {
    url: '',
    balances: new Map<string, number>(),
    deductions: new Map<string, { email: string; micro: number }>(),
    deductRequests: [] as string[],
    balanceRequests: 0,
    down: false,
    delayMs: 0,
    status: undefined as number | undefined,
  };
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (fake.down) {
      request.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const url = new URL(request.url ?? '/', 'http://fake');
    if (request.method === 'POST' && url.pathname === '/deduct') {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { reference: string };
      fake.deductRequests.push(body.reference);
    } else if (url.pathname === '/balance') {
      fake.balanceRequests += 1;
    }
    if (fake.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, fake.delayMs));
    const send = (status: number, body: unknown) => {
      if (response.destroyed) return;
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (fake.status !== undefined) return send(fake.status, { error: 'scripted' });
    if (request.method === 'GET' && url.pathname === '/balance') {
      const email = url.searchParams.get('email') ?? '';
      const micro = fake.balances.get(email);
      if (micro === undefined) return send(404, { error: 'no such account' });
      return send(200, { email, credits: micro / 1e6 });
    }
    if (request.method === 'POST' && url.pathname === '/deduct') {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { email: string; amount: number; reference: string };
      const micro = fake.balances.get(body.email);
      if (micro === undefined) return send(404, { error: 'no such account' });
      // Applied once per reference, even when the first answer never reached the caller.
      if (!fake.deductions.has(body.reference)) {
        const amount = Math.round(body.amount * 1e6);
        fake.deductions.set(body.reference, { email: body.email, micro: amount });
        fake.balances.set(body.email, micro - amount);
      }
      return send(200, { email: body.email, credits: fake.balances.get(body.email)! / 1e6 });
    }
    send(404, { error: 'no such route' });
  };
  const server = createServer((request, response) => {
    handle(request, response).catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(fake, {
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
