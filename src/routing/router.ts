import { ConfigError } from '../config/env.js';
import { fieldRefusal } from '../domain/validation.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { ModelInfo } from '../providers/types.js';
import { checkProviderOptions } from '../tasks/provider-options.js';
import type { ModelRoute, RouteTargetDefaults } from './routes-file.js';

/** One provider/model a submit may run on, with what its route says about it. */
export interface Candidate {
  provider: string;
  model: ModelInfo;
  /** From the route target: request fields used when the request leaves them out. */
  defaults: RouteTargetDefaults;
  /** From the route target: its provider_options. Undefined = the request's own. */
  options: Record<string, unknown> | undefined;
}

export interface Plan {
  /** Set when the request named a route: the candidates are its targets, in order. */
  route: ModelRoute | undefined;
  candidates: Candidate[];
}

/**
 * Decides where a submit runs. A request names a `provider` (and maybe a `model`), or only a
 * `model`: a route's name, or a model id that exactly one provider serves; or neither (the
 * default provider and its first model).
 */
export class Router {
  private readonly byName: Map<string, ModelRoute>;

  constructor(
    private readonly registry: ProviderRegistry,
    routes: readonly ModelRoute[],
    private readonly defaultProvider: string,
  ) {
    this.byName = new Map(routes.map((route) => [route.name, route]));
    this.check();
  }

  list(): ModelRoute[] {
    return [...this.byName.values()];
  }

  plan(request: { provider?: string | undefined; model?: string | undefined }): Plan {
    if (request.provider === undefined && request.model !== undefined) {
      const route = this.byName.get(request.model);
      if (route) return { route, candidates: route.targets.map((target) => this.candidate(target)) };
      const serving = this.registry.list().filter((provider) => provider.models().some((m) => m.id === request.model));
      if (serving.length > 1) {
        throw fieldRefusal(
          'AMBIGUOUS_MODEL',
          ['model'],
          `model ${request.model} is served by ${serving.map((p) => p.id).join(' and ')}; name the provider`,
          { model: request.model, providers: serving.map((p) => p.id) },
        );
      }
      if (serving.length === 0) {
        throw fieldRefusal(
          'UNKNOWN_MODEL',
          ['model'],
          `no provider or route serves model ${request.model}; see GET /v1/providers`,
          { model: request.model },
        );
      }
      return { route: undefined, candidates: [this.candidate({ provider: serving[0]!.id, model: request.model })] };
    }
    const providerId = request.provider ?? this.defaultProvider;
    if (!this.registry.get(providerId)) {
      throw fieldRefusal('UNKNOWN_PROVIDER', ['provider'], `no provider named ${providerId}; see GET /v1/providers`, {
        provider: providerId,
      });
    }
    const model = this.registry.model(providerId, request.model);
    if (!model) {
      throw fieldRefusal('UNKNOWN_MODEL', ['model'], `provider ${providerId} has no model ${request.model}`, {
        model: request.model,
      });
    }
    return { route: undefined, candidates: [{ provider: providerId, model, defaults: {}, options: undefined }] };
  }

  private candidate(target: {
    provider: string;
    model: string;
    defaults?: RouteTargetDefaults;
    options?: Record<string, unknown>;
  }): Candidate {
    return {
      provider: target.provider,
      model: this.registry.model(target.provider, target.model)!,
      defaults: target.defaults ?? {},
      options: target.options,
    };
  }

  /** Every target must exist here and its options must suit its model: checked once, at start. */
  private check(): void {
    const modelIds = new Set(this.registry.list().flatMap((provider) => provider.models().map((model) => model.id)));
    for (const route of this.byName.values()) {
      const where = `EASEL_ROUTES_FILE route ${route.name}`;
      if (modelIds.has(route.name)) {
        throw new ConfigError(`${where}: the name is also a model id; pick a name no provider uses for a model`);
      }
      route.targets.forEach((target, index) => {
        const at = `${where} target ${index + 1} (${target.provider}/${target.model})`;
        if (!this.registry.get(target.provider)) throw new ConfigError(`${at}: no provider named ${target.provider}`);
        const model = this.registry.model(target.provider, target.model);
        if (!model) throw new ConfigError(`${at}: ${target.provider} has no model ${target.model}`);
        try {
          checkProviderOptions(target.options, model.options);
        } catch (error) {
          const detail = error instanceof Error ? error.message : String(error);
          throw new ConfigError(`${at}: options do not suit the model: ${detail}`);
        }
      });
    }
  }
}
