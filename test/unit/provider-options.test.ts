import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/domain/errors.js';
import { parseSketchOptions, SketchOptionsSchema } from '../../src/providers/sketch/options.js';
import { checkProviderOptions } from '../../src/tasks/provider-options.js';

const refusal = (options: Record<string, unknown>) => {
  try {
    checkProviderOptions(options, SketchOptionsSchema);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return (error as ApiError).extra.errors as { pointer: string; code: string; message: string }[];
  }
};

describe("the sketch model's declared options", () => {
  // The schema the API checks and the parser the adapter keeps must agree on every case.
  it.each<Record<string, unknown>>([
    {},
    { delay_ms: 0 },
    { delay_ms: 600_000, fail: 'permanent' },
    { fail: 'retryable', fail_attempts: 2 },
    { fail: 'rate_limited', retry_after_ms: 100, fail_attempts: 1 },
  ])('accepts %o, as the adapter does', (options) => {
    expect(refusal(options)).toBeUndefined();
    expect(() => parseSketchOptions(options)).not.toThrow();
  });

  it.each<[Record<string, unknown>, string, string]>([
    [{ delay_ms: -1 }, '/provider_options/delay_ms', 'TOO_SMALL'],
    [{ delay_ms: 1.5 }, '/provider_options/delay_ms', 'WRONG_TYPE'],
    [{ delay_ms: '100' }, '/provider_options/delay_ms', 'WRONG_TYPE'],
    [{ delay_ms: 600_001 }, '/provider_options/delay_ms', 'TOO_LARGE'],
    [{ fail: 'sometimes' }, '/provider_options/fail', 'NOT_ALLOWED'],
    [{ colour: 'red' }, '/provider_options/colour', 'UNKNOWN_FIELD'],
    [{ fail: 'retryable', fail_attempts: 0 }, '/provider_options/fail_attempts', 'TOO_SMALL'],
    [{ fail_attempts: 2 }, '/provider_options/fail', 'REQUIRED'],
    [{ fail: 'retryable', retry_after_ms: 100 }, '/provider_options/fail', 'NOT_ALLOWED'],
  ])('refuses %o at %s (%s), as the adapter does', (options, pointer, code) => {
    expect(refusal(options)).toContainEqual(expect.objectContaining({ pointer, code }));
    expect(() => parseSketchOptions(options)).toThrow();
  });

  it('says which values an enum allows, once', () => {
    expect(refusal({ fail: 'sometimes' })).toEqual([
      expect.objectContaining({
        message: 'provider_options.fail must be one of retryable, rate_limited, credential, permanent',
      }),
    ]);
  });

  it('reports every bad option, not only the first', () => {
    expect(
      refusal({ delay_ms: -1, colour: 'red' })
        ?.map((issue) => issue.pointer)
        .sort(),
    ).toEqual(['/provider_options/colour', '/provider_options/delay_ms']);
  });
});

describe('bounds on any provider_options', () => {
  it('refuses more than 8 levels, without walking the rest', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    expect(() => checkProviderOptions({ a: deep }, undefined)).toThrow(/at most 8 levels deep/);
    expect(() => checkProviderOptions({ a: { b: { c: { d: { e: { f: { g: 1 } } } } } } }, undefined)).not.toThrow();
  });
});
