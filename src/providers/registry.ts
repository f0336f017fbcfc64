import type { ModelInfo, Provider } from './types.js';

/**
 * What a provider id may look like. Ids travel into SQL, NOTIFY payloads, URLs, logs and
 * config keys (EASEL_PROVIDER_CONCURRENCY); a small alphabet keeps every one of those simple
 * and leaves nothing to quote. Operators will name providers, so this is checked, not assumed.
 */
export const PROVIDER_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** The providers this process can run, by id. The API validates submissions against it. */
export class ProviderRegistry {
  private readonly byId = new Map<string, Provider>();

  constructor(providers: Provider[]) {
    for (const provider of providers) {
      if (!PROVIDER_ID_PATTERN.test(provider.id)) {
        throw new Error(
          `invalid provider id ${JSON.stringify(provider.id)}: use 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`,
        );
      }
      if (this.byId.has(provider.id)) throw new Error(`provider ${provider.id} registered twice`);
      this.byId.set(provider.id, provider);
    }
  }

  get(id: string): Provider | undefined {
    return this.byId.get(id);
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  list(): Provider[] {
    return [...this.byId.values()];
  }

  model(providerId: string, modelId: string | undefined): ModelInfo | undefined {
    const models = this.byId.get(providerId)?.models() ?? [];
    return modelId === undefined ? models[0] : models.find((model) => model.id === modelId);
  }
}
