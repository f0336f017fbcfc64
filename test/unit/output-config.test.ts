import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { readOutputConfig } from '../../src/config/output.js';
import { ApiError } from '../../src/domain/errors.js';
import { resolveOutputParams } from '../../src/tasks/output-params.js';

describe('output config', () => {
  it('keeps the provider format, quality 90 and no embedded metadata by default', () => {
    expect(loadConfig({}).output).toEqual({ format: undefined, quality: 90, embedMetadata: false });
    expect(readOutputConfig({ EASEL_OUTPUT_FORMAT: '  ' }).format).toBeUndefined();
  });

  it('reads EASEL_OUTPUT_FORMAT, EASEL_OUTPUT_QUALITY and EASEL_EMBED_METADATA', () => {
    expect(
      readOutputConfig({ EASEL_OUTPUT_FORMAT: 'webp', EASEL_OUTPUT_QUALITY: '75', EASEL_EMBED_METADATA: 'true' }),
    ).toEqual({ format: 'webp', quality: 75, embedMetadata: true });
  });

  it.each([
    [{ EASEL_OUTPUT_FORMAT: 'gif' }, /EASEL_OUTPUT_FORMAT="gif" is not valid: expected one of png, webp, jpeg/],
    [{ EASEL_OUTPUT_FORMAT: 'jpg' }, /EASEL_OUTPUT_FORMAT/],
    [{ EASEL_OUTPUT_QUALITY: '0' }, /EASEL_OUTPUT_QUALITY="0" is not valid: expected a whole number from 1 to 100/],
    [{ EASEL_OUTPUT_QUALITY: '101' }, /EASEL_OUTPUT_QUALITY/],
    [{ EASEL_EMBED_METADATA: 'yes' }, /EASEL_EMBED_METADATA="yes" is not valid: expected one of true, false/],
  ])('refuses %j at start', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('resolveOutputParams', () => {
  const keep = { format: undefined, quality: 90, embedMetadata: false };
  const jpegDefault = { format: 'jpeg' as const, quality: 70, embedMetadata: false };

  it('stores nothing when neither the request nor the config names a format', () => {
    expect(resolveOutputParams({}, keep)).toEqual({});
  });

  it("takes the request's format and quality over the config's", () => {
    expect(resolveOutputParams({ output_format: 'webp', output_quality: 40 }, jpegDefault)).toEqual({
      output_format: 'webp',
      output_quality: 40,
    });
    expect(resolveOutputParams({ output_format: 'webp' }, jpegDefault)).toEqual({
      output_format: 'webp',
      output_quality: 70,
    });
    expect(resolveOutputParams({}, jpegDefault)).toEqual({ output_format: 'jpeg', output_quality: 70 });
    expect(resolveOutputParams({ output_quality: 55 }, jpegDefault)).toEqual({
      output_format: 'jpeg',
      output_quality: 55,
    });
  });

  it('stores no quality for PNG, and refuses one that could never apply', () => {
    expect(resolveOutputParams({ output_format: 'png' }, jpegDefault)).toEqual({ output_format: 'png' });
    for (const [request, config] of [
      [{ output_format: 'png' as const, output_quality: 80 }, jpegDefault],
      [{ output_quality: 80 }, keep],
    ] as const) {
      const error = (() => {
        try {
          resolveOutputParams(request, config);
        } catch (caught) {
          return caught;
        }
      })();
      expect(error).toBeInstanceOf(ApiError);
      expect((error as ApiError).code).toBe('VALIDATION_FAILED');
    }
  });
});
