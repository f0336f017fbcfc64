import { randomUUID } from 'node:crypto';
import type { EaselClient } from '../client.js';
import { CliError } from '../client.js';

const print = (text: string): void => void process.stdout.write(`${text}\n`);
const printJson = (value: unknown) => print(JSON.stringify(value, null, 2));

interface Balance {
  balance: number;
  held: number;
  available: number;
}

export interface AddCreditsOptions {
  reason: string;
  adjustment?: boolean;
  idempotencyKey?: string;
  json?: boolean;
}

/**
 * `easel credits add <user-id> <amount> --reason …`: a top-up (or, with --adjustment, a signed
 * adjustment). Always sent with an Idempotency-Key (a fresh one unless given), and the key is
 * printed on failure, so an operator whose command died mid-way can repeat it with the same key
 * without crediting twice.
 */
export async function addCredits(
  client: EaselClient,
  userId: string,
  amountText: string,
  options: AddCreditsOptions,
): Promise<void> {
  const amount = Number(amountText);
  if (!/^-?\d+(\.\d{1,6})?$/.test(amountText) || !Number.isFinite(amount)) {
    throw new CliError(
      `amount must be a number of credits with at most 6 decimals, such as 10 or 2.5, not ${amountText}`,
    );
  }
  const key = options.idempotencyKey ?? randomUUID();
  let answer: { data: { entry: { id: string; kind: string; amount: number }; balance: Balance } };
  try {
    answer = await client.request(
      'POST',
      `/v1/users/${encodeURIComponent(userId)}/credits`,
      { amount, reason: options.reason, kind: options.adjustment ? 'adjustment' : 'top_up' },
      { 'idempotency-key': key },
    );
  } catch (error) {
    if (error instanceof CliError) {
      throw new CliError(`${error.message}\n(to repeat it safely, add --idempotency-key ${key})`);
    }
    throw error;
  }
  if (options.json) return printJson(answer.data);
  const { entry, balance } = answer.data;
  print(
    `${entry.kind} ${entry.amount} credits for ${userId}: balance ${balance.balance}, held ${balance.held}, available ${balance.available}`,
  );
}

/** `easel credits balance`: the balance of the key's user (the local admin without a key). */
export async function showBalance(client: EaselClient, options: { json?: boolean }): Promise<void> {
  const { data } = await client.request<Balance>('GET', '/v1/me/balance');
  if (options.json) return printJson(data);
  print(`balance ${data.balance}, held ${data.held}, available ${data.available}`);
}
