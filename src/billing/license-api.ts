import type { LicenseApiConfig } from '../config/license-api.js';
import { describeError } from '../domain/errors.js';
import { MICRO_PER_CREDIT, toCredits } from './money.js';

/**
 * Client of the external licence API: Easel's own small contract (docs/billing.md, "External
 * billing"), since the deployments it replaces never documented theirs.
 *
 *   GET  {endpoint}/balance?email=E              → 200 {"email": E, "credits": 12.5}; 404 = no such account
 *   POST {endpoint}/deduct {"email", "amount", "reference"}
 *                                                 → 200 {"email": E, "credits": <new balance>}
 *
 * `amount` is in credits (at most 6 decimals); `reference` is the task id, sent as the
 * Idempotency-Key header too: the licence API must apply a reference at most once and answer a
 * repeat as a success, because Easel resends whenever it did not see an answer.
 */

/** The licence API could not answer: unreachable, timed out, a 5xx, 408/429, or nonsense. */
export class LicenseApiUnavailable extends Error {
  override name = 'LicenseApiUnavailable';
}

/** The licence API answered and refused (a 4xx other than 408/429): resending will not help. */
export class LicenseApiRefused extends Error {
  override name = 'LicenseApiRefused';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface LicenseApi {
  /** Micro-credits on the account of `email`, or null when the licence API knows no such account. */
  balance(email: string): Promise<number | null>;
  /** Deduct `amountMicro` once per `reference`. Throws LicenseApiUnavailable or LicenseApiRefused. */
  deduct(email: string, amountMicro: number, reference: string): Promise<void>;
}

export function createLicenseApi(config: LicenseApiConfig): LicenseApi {
  const request = async (path: string, init: RequestInit): Promise<Response> => {
    try {
      return await fetch(config.endpoint + path, { ...init, signal: AbortSignal.timeout(config.timeoutMs) });
    } catch (error) {
      const timedOut = error instanceof Error && error.name === 'TimeoutError';
      throw new LicenseApiUnavailable(
        timedOut ? `no answer within ${config.timeoutMs} ms` : `unreachable: ${describeError(error)}`,
      );
    }
  };
  return {
    async balance(email) {
      const response = await request(`/balance?email=${encodeURIComponent(email)}`, {
        headers: { accept: 'application/json' },
      });
      if (response.status === 404) {
        await response.body?.cancel();
        return null;
      }
      const body = await answer(response);
      const credits = (body as { credits?: unknown }).credits;
      if (typeof credits !== 'number' || !Number.isFinite(credits)) {
        throw new LicenseApiUnavailable('the balance answer has no numeric "credits"');
      }
      // Rounded down: an account is never credited with a fraction it does not have.
      return Math.floor(credits * MICRO_PER_CREDIT + 1e-6);
    },
    async deduct(email, amountMicro, reference) {
      const response = await request('/deduct', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'idempotency-key': reference },
        body: JSON.stringify({ email, amount: toCredits(amountMicro), reference }),
      });
      await answer(response);
    },
  };
}

async function answer(response: Response): Promise<unknown> {
  const text = await response.text().catch(() => '');
  if (response.status >= 500 || response.status === 408 || response.status === 429) {
    throw new LicenseApiUnavailable(`answered ${response.status}: ${text.slice(0, 200)}`);
  }
  if (response.status >= 400)
    throw new LicenseApiRefused(response.status, `answered ${response.status}: ${text.slice(0, 200)}`);
  if (!response.ok) throw new LicenseApiUnavailable(`answered ${response.status}`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new LicenseApiUnavailable('answered with something other than JSON');
  }
}
