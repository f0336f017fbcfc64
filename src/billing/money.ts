/**
 * Credits are decimal numbers in the API and integer micro-credits in the database, so sums are
 * exact. A number of credits converts only when it has at most 6 decimals; no rounding is
 * silent.
 */
export const MICRO_PER_CREDIT = 1_000_000;

/** Largest amount one request may move: far below 2^53 micro-credits, so numbers stay exact. */
export const MAX_CREDITS = 1_000_000_000;

/** Micro-credits for `credits`, or null when it is not a whole number of micro-credits. */
export function toMicro(credits: number): number | null {
  if (!Number.isFinite(credits) || Math.abs(credits) > MAX_CREDITS) return null;
  const micro = Math.round(credits * MICRO_PER_CREDIT);
  return micro / MICRO_PER_CREDIT === credits ? micro : null;
}

/** Credits for an integer number of micro-credits (division by 10^6 prints exactly in JSON). */
export const toCredits = (micro: number): number => micro / MICRO_PER_CREDIT;
