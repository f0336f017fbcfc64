import type { ModelInfo, Provider } from './types.js';

/** The providers this process can run, by id. The API validates submissions against it. */
export class ProviderRegistry {
  private readonly byId = new Map<string, Provider>();

  constructor(providers: Provider[]) {
    for (const provider of providers) {
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
