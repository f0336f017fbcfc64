import { InvalidArgumentError } from 'commander';

/** Parsers for command-line option values; each refuses a bad value with a reason commander prints. */

export const integer = (value: string): number => {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isInteger(parsed)) throw new InvalidArgumentError('not a whole number');
  return parsed;
};

export const integerFrom =
  (min: number, max: number) =>
  (value: string): number => {
    const parsed = integer(value);
    if (parsed < min || parsed > max) throw new InvalidArgumentError(`must be from ${min} to ${max}`);
    return parsed;
  };

/** A number from 0 to 1 (img2img strength). */
export const fraction = (value: string): number => {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed < 0 || parsed > 1) {
    throw new InvalidArgumentError('must be a number from 0 to 1');
  }
  return parsed;
};

/** `--option key=value` pairs for provider_options; values parse as JSON when they can. */
export const collectOption = (pair: string, all: Record<string, unknown> = {}): Record<string, unknown> => {
  const at = pair.indexOf('=');
  if (at < 1) throw new InvalidArgumentError('expected key=value');
  const raw = pair.slice(at + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // a plain string
  }
  return { ...all, [pair.slice(0, at)]: value };
};

/** Help text lines: `  $ easel …` examples under a heading, for commander's addHelpText. */
export const examples = (...lines: string[]): string =>
  `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`;
