import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/env.js';
import { readRetention } from '../../src/config/retention.js';
import { recordingKey } from '../../src/retention/keys.js';
import { thumbnailKey } from '../../src/images/thumbnail.js';

describe('retention settings', () => {
  it('keeps everything by default, with gc hourly and a day of grace', () => {
    expect(readRetention({})).toEqual({
      imageRetentionDays: 0,
      taskRetentionDays: 0,
      gcIntervalMs: 3_600_000,
      orphanGraceHours: 24,
    });
  });

  it('reads every variable', () => {
    expect(
      readRetention({
        EASEL_IMAGE_RETENTION_DAYS: '30',
        EASEL_TASK_RETENTION_DAYS: '365',
        EASEL_GC_INTERVAL_MS: '0',
        EASEL_ORPHAN_GRACE_HOURS: '6',
      }),
    ).toEqual({ imageRetentionDays: 30, taskRetentionDays: 365, gcIntervalMs: 0, orphanGraceHours: 6 });
  });

  it('refuses negative days and a grace under an hour, naming the variable', () => {
    expect(() => readRetention({ EASEL_IMAGE_RETENTION_DAYS: '-1' })).toThrow(ConfigError);
    expect(() => readRetention({ EASEL_TASK_RETENTION_DAYS: 'a year' })).toThrow(/EASEL_TASK_RETENTION_DAYS/);
    // With no grace, an attempt's bytes written a moment ago would look like an orphan.
    expect(() => readRetention({ EASEL_ORPHAN_GRACE_HOURS: '0' })).toThrow(/EASEL_ORPHAN_GRACE_HOURS/);
  });
});

describe('thumbnail keys', () => {
  it('are recorded by their image key', () => {
    const image = 'tasks/ab/0193-deadbeef-0.png';
    expect(recordingKey(thumbnailKey(image))).toBe(image);
    expect(recordingKey(image)).toBe(image);
    expect(recordingKey('.thumb.webp')).toBe('.thumb.webp');
  });
});
