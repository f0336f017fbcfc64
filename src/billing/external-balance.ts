import type { Logger } from 'pino';
import type { Queryable } from '../db/pool.js';
import { ApiError } from '../domain/errors.js';
import type { HoldPlan } from './estimate.js';
import { LicenseApiRefused, LicenseApiUnavailable, type LicenseApi } from './license-api.js';
import { toCredits } from './money.js';

/** What a client told BILLING_UNAVAILABLE should wait before trying again. */
export const BILLING_RETRY_AFTER_SECONDS = 30;

/**
 * The licence API's half of "may this task start": the user's external balance must cover the
 * task's hold estimate and EASEL_MIN_BALANCE, like Easel's own credits (both apply). Read-only,
 * run before a submit or retry writes anything, so a refusal changes nothing.
 *
 * Not checked (and never charged externally): unpriced tasks, and users without an email, since
 * the licence API knows accounts only by email.
 */
export class ExternalBalanceCheck {
  constructor(private readonly deps: { pool: Queryable; api: LicenseApi; failOpen: boolean; log: Logger }) {}

  async check(userId: string, plan: HoldPlan | null, minBalanceMicro: number): Promise<void> {
    if (!plan) return;
    const { rows } = await this.deps.pool.query<{ email: string | null }>('SELECT email FROM users WHERE id = $1', [
      userId,
    ]);
    const email = rows[0]?.email;
    if (!email) return;
    let balance: number | null;
    try {
      balance = await this.deps.api.balance(email);
    } catch (error) {
      if (!(error instanceof LicenseApiUnavailable || error instanceof LicenseApiRefused)) throw error;
      if (this.deps.failOpen) {
        // Seed 000's behaviour: the task runs; its charge waits as pending until the API is back.
        this.deps.log.warn(
          { user: userId, err: error },
          'licence API did not answer the balance check; letting the task run (LICENSE_API_FAIL_OPEN)',
        );
        return;
      }
      throw new ApiError('BILLING_UNAVAILABLE', `the billing service did not answer: ${error.message}`, {
        retry_after_seconds: BILLING_RETRY_AFTER_SECONDS,
      });
    }
    const needed = Math.max(plan.amount, minBalanceMicro);
    if (balance !== null && balance >= needed) return;
    const credits = toCredits(balance ?? 0);
    throw new ApiError(
      'INSUFFICIENT_CREDITS',
      balance === null
        ? `the billing service has no account for ${email}`
        : `this task needs ${toCredits(needed)} credits on your billing account; it has ${credits}`,
      {
        source: 'license_api',
        balance: credits,
        held: 0,
        available: credits,
        needed: toCredits(plan.amount),
        min_balance: toCredits(minBalanceMicro),
      },
    );
  }
}
