import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/env.js';
import { PermanentError, RetryableError } from '../../src/providers/errors.js';
import { DEFAULT_REPLICATE_MODEL, readReplicateConfig } from '../../src/providers/replicate/config.js';
import { errorForFailedPrediction } from '../../src/providers/replicate/failure.js';
import { listModels, nearestAspectRatio } from '../../src/providers/replicate/models.js';
import { percentFromLogs } from '../../src/providers/replicate/progress.js';

describe('readReplicateConfig', () => {
  it('defaults to api.replicate.com/v1, Animagine XL 4.0 and a 60 s wait', () => {
    expect(readReplicateConfig({})).toEqual({
      baseUrl: 'https://api.replicate.com/v1',
      defaultModel: DEFAULT_REPLICATE_MODEL,
      waitSeconds: 60,
      pollIntervalMs: 1000,
    });
  });

  it('drops a trailing slash and refuses bad values with the variable named', () => {
    expect(readReplicateConfig({ REPLICATE_BASE_URL: 'http://proxy.local/v1/' }).baseUrl).toBe('http://proxy.local/v1');
    expect(() => readReplicateConfig({ REPLICATE_WAIT_SECONDS: '61' })).toThrow(/REPLICATE_WAIT_SECONDS/);
    expect(() => readReplicateConfig({ REPLICATE_WAIT_SECONDS: '0' })).toThrow(ConfigError);
    expect(() => readReplicateConfig({ REPLICATE_DEFAULT_MODEL: 'animagine' })).toThrow(/REPLICATE_DEFAULT_MODEL/);
    expect(() => readReplicateConfig({ REPLICATE_DEFAULT_MODEL: 'a/b:123' })).toThrow(/64-hex/);
    expect(readReplicateConfig({ REPLICATE_DEFAULT_MODEL: 'black-forest-labs/flux-schnell' }).defaultModel).toBe(
      'black-forest-labs/flux-schnell',
    );
  });
});

describe('listModels', () => {
  it('lists the configured default first, then each known model once', () => {
    const ids = listModels('someone/custom-sdxl').map((model) => model.id);
    expect(ids[0]).toBe('someone/custom-sdxl');
    expect(ids).toContain(DEFAULT_REPLICATE_MODEL);
    expect(new Set(listModels(DEFAULT_REPLICATE_MODEL).map((model) => model.id)).size).toBe(
      listModels(DEFAULT_REPLICATE_MODEL).length,
    );
  });
});

describe('percentFromLogs', () => {
  it('takes the last tqdm percentage, and nothing without one', () => {
    expect(percentFromLogs('Using seed: 1\n  0%|          | 0/28\n 46%|████▋     | 13/28 [00:02<00:02]\n')).toBe(46);
    expect(percentFromLogs('100%|██████████| 28/28')).toBe(100);
    expect(percentFromLogs('loading weights')).toBeUndefined();
    expect(percentFromLogs(null)).toBeUndefined();
  });
});

describe('errorForFailedPrediction', () => {
  it.each([
    ['NSFW content detected. Try running it again, or try a different prompt.', PermanentError],
    ['All generated images contained NSFW content. Try running it again with a different prompt.', PermanentError],
    ['Invalid input: width must be a multiple of 8', PermanentError],
    ['CUDA out of memory. Tried to allocate 1.50 GiB', RetryableError],
    ['Prediction timed out', RetryableError],
    ['something new went wrong', RetryableError],
    [null, RetryableError],
  ])('%j → %o', (text, kind) => {
    const error = errorForFailedPrediction('p1', text);
    expect(error).toBeInstanceOf(kind);
    expect(error.message).toMatch(/^replicate: prediction p1 failed: /);
  });
});

describe('nearestAspectRatio', () => {
  it('picks the listed ratio closest on a log scale', () => {
    const ratios = ['1:1', '16:9', '9:16', '3:2', '2:3'];
    expect(nearestAspectRatio(1024, 1024, ratios)).toBe('1:1');
    expect(nearestAspectRatio(1920, 1080, ratios)).toBe('16:9');
    expect(nearestAspectRatio(832, 1216, ratios)).toBe('2:3');
  });
});
