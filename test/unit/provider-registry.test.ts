import { describe, expect, it } from 'vitest';
import { ProviderRegistry } from '../../src/providers/registry.js';
import type { Provider } from '../../src/providers/types.js';

const provider = (id: string): Provider => ({ id, models: () => [], run: async () => [] });

describe('ProviderRegistry', () => {
  it.each(['sketch', 'replicate', 'comfy-1', 'fal.flux_pro', '0', 'a'.repeat(64)])('accepts the id %j', (id) => {
    expect(new ProviderRegistry([provider(id)]).ids()).toEqual([id]);
  });

  it.each(['', 'Sketch', "evil$2'name", 'a b', '-leading', '.hidden', 'über', 'x;drop', 'a'.repeat(65)])(
    'refuses the id %j with an error that names it and the rule',
    (id) => {
      expect(() => new ProviderRegistry([provider(id)])).toThrow(
        `invalid provider id ${JSON.stringify(id)}: use 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`,
      );
    },
  );

  it('refuses an id registered twice', () => {
    expect(() => new ProviderRegistry([provider('sketch'), provider('sketch')])).toThrow(/registered twice/);
  });
});
