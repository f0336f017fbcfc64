import { priceOf, type Prices } from '../config/prices.js';
import { toMicro } from './money.js';

/**
 * How much to hold for a task before it runs. Pure: the caller supplies the recent run times.
 *
 * per_image: price × n; per_task: price. per_second: price × the recent median of the provider's
 * own seconds for that provider/model, never less than PER_SECOND_FLOOR_SECONDS, and
 * PER_SECOND_DEFAULT_SECONDS without history. The hold is an estimate: success captures the
 * real cost, which may be more (then the balance may dip below zero) or less (the rest is
 * released). A routed task holds the most any of its targets would cost, since it may end on any.
 */
export const PER_SECOND_FLOOR_SECONDS = 10;
export const PER_SECOND_DEFAULT_SECONDS = 30;

export type PriceUnit = 'per_image' | 'per_second' | 'per_task';

/** Frozen on the hold (credit_holds.prices), keyed `provider/model`. */
export type FrozenPrices = Record<string, { unit: PriceUnit; micro: number }>;

export interface HoldPlan {
  /** Micro-credits to hold. */
  amount: number;
  prices: FrozenPrices;
}

export interface BillableTarget {
  provider: string;
  model: string;
  n: number;
}

/** `provider/model` → recent median seconds, or null without history. */
export type RunSeconds = (provider: string, model: string) => number | null;

/**
 * The hold for a task on `targets`, or null when the task is unpriced: none of its targets has
 * a price above 0. Unpriced tasks need no balance and write no ledger rows.
 */
export function planHold(prices: Prices, targets: BillableTarget[], runSeconds: RunSeconds): HoldPlan | null {
  const frozen: FrozenPrices = {};
  let amount = 0;
  for (const target of targets) {
    const price = priceOf(prices, target.provider, target.model);
    if (!price) continue;
    const [unit, credits] = Object.entries(price)[0] as [PriceUnit, number];
    // readPrices accepts only whole micro-credits, so this never falls back.
    const micro = toMicro(credits) ?? Math.round(credits * 1e6);
    if (micro <= 0) continue;
    frozen[`${target.provider}/${target.model}`] = { unit, micro };
    amount = Math.max(amount, estimate(unit, micro, target, runSeconds));
  }
  return amount > 0 ? { amount, prices: frozen } : null;
}

function estimate(unit: PriceUnit, micro: number, target: BillableTarget, runSeconds: RunSeconds): number {
  switch (unit) {
    case 'per_image':
      return micro * target.n;
    case 'per_task':
      return micro;
    case 'per_second': {
      const recent = runSeconds(target.provider, target.model);
      const seconds = recent === null ? PER_SECOND_DEFAULT_SECONDS : Math.max(recent, PER_SECOND_FLOOR_SECONDS);
      return Math.ceil(micro * seconds);
    }
  }
}
