import { describe, expect, it } from 'vitest';
import { parseRoutes } from '../../src/routing/routes-file.js';

describe('parseRoutes', () => {
  it('reads YAML with defaults filled in', () => {
    const routes = parseRoutes(
      `routes:
  anime:
    description: Anime pictures
    fallback_after_seconds: 60
    targets:
      - provider: replicate
        model: cjwbw/animagine-xl-3.1
        defaults: { steps: 28, guidance: 7 }
        options: { scheduler: DPMSolverMultistep }
      - provider: huggingface
        model: stabilityai/stable-diffusion-xl-base-1.0
`,
      'routes.yaml',
    );
    expect(routes).toEqual([
      {
        name: 'anime',
        description: 'Anime pictures',
        fallbackAfterMs: 60_000,
        targets: [
          {
            provider: 'replicate',
            model: 'cjwbw/animagine-xl-3.1',
            defaults: { steps: 28, guidance: 7 },
            options: { scheduler: 'DPMSolverMultistep' },
          },
          { provider: 'huggingface', model: 'stabilityai/stable-diffusion-xl-base-1.0', defaults: {}, options: {} },
        ],
      },
    ]);
  });

  it('reads JSON, with the default wait', () => {
    const [route] = parseRoutes(
      '{"routes": {"a": {"targets": [{"provider": "sketch", "model": "sketch-v1"}]}}}',
      'r.json',
    );
    expect(route!.fallbackAfterMs).toBe(300_000);
  });

  it.each([
    ['not YAML', 'routes: [', /not valid JSON or YAML/],
    ['no routes key', '{"anime": {}}', /does not describe routes/],
    ['no targets', '{"routes": {"a": {"targets": []}}}', /does not describe routes/],
    [
      'a bad name',
      '{"routes": {"Bad Name": {"targets": [{"provider": "sketch", "model": "m"}]}}}',
      /route name "Bad Name"/,
    ],
    [
      'an unknown field',
      '{"routes": {"a": {"targets": [{"provider": "sketch", "model": "m", "weight": 2}]}}}',
      /does not describe routes/,
    ],
  ])('refuses %s with a message naming the file', (_name, text, message) => {
    expect(() => parseRoutes(text, 'EASEL_ROUTES_FILE x.yaml')).toThrow(message);
    expect(() => parseRoutes(text, 'EASEL_ROUTES_FILE x.yaml')).toThrow(/x\.yaml/);
  });
});
