import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../config/env.js';

/**
 * Named model routes (EASEL_ROUTES_FILE): `model: "anime"` runs on the first target that can
 * take it and falls through to the next one when a target fails for provider-side reasons.
 * This file only reads and shape-checks the file; `checkRoutes` (./check-routes.ts) checks the
 * targets against the providers this process has.
 */

export const ROUTE_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';
const DEFAULT_FALLBACK_AFTER_SECONDS = 300;

const TargetSchema = Type.Object(
  {
    provider: Type.String({ minLength: 1 }),
    model: Type.String({ minLength: 1 }),
    /** Request fields this target uses when the request leaves them out. */
    defaults: Type.Optional(
      Type.Object(
        {
          width: Type.Optional(Type.Integer({ minimum: 64, maximum: 8192 })),
          height: Type.Optional(Type.Integer({ minimum: 64, maximum: 8192 })),
          steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          guidance: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
          negative_prompt: Type.Optional(Type.String({ maxLength: 4000 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** The target's `provider_options`, checked against its model's schema at start. */
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

const RouteSchema = Type.Object(
  {
    description: Type.Optional(Type.String()),
    /**
     * A queued task moves on to the next target once it has waited this long on one whose
     * credentials are all unusable.
     */
    fallback_after_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600 })),
    targets: Type.Array(TargetSchema, { minItems: 1, maxItems: 16 }),
  },
  { additionalProperties: false },
);

const FileSchema = Type.Object({ routes: Type.Record(Type.String(), RouteSchema) }, { additionalProperties: false });

type RouteEntry = Static<typeof RouteSchema>;
export type RouteTargetDefaults = NonNullable<Static<typeof TargetSchema>['defaults']>;

export interface RouteTarget {
  provider: string;
  model: string;
  defaults: RouteTargetDefaults;
  options: Record<string, unknown>;
}

export interface ModelRoute {
  name: string;
  description: string | null;
  fallbackAfterMs: number;
  targets: RouteTarget[];
}

const validateFile = new Ajv2020({ allErrors: true, strict: false }).compile(FileSchema);

/** Parse routes from the text of a JSON or YAML file (YAML is a superset of JSON). */
export function parseRoutes(text: string, source: string): ModelRoute[] {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${source} is not valid JSON or YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!validateFile(document)) {
    const problems = (validateFile.errors ?? [])
      .slice(0, 5)
      .map((error) => `${error.instancePath || '/'} ${error.message ?? 'is invalid'}`)
      .join('; ');
    throw new ConfigError(
      `${source} does not describe routes (${problems}); expected {"routes": {"<name>": {"targets": [{"provider": "...", "model": "..."}]}}}`,
    );
  }
  const routes = (document as Static<typeof FileSchema>).routes;
  const badName = Object.keys(routes).find((name) => !new RegExp(ROUTE_NAME_PATTERN).test(name));
  if (badName !== undefined) {
    throw new ConfigError(
      `${source}: route name ${JSON.stringify(badName)} must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return Object.entries(routes).map(([name, entry]: [string, RouteEntry]) => ({
    name,
    description: entry.description ?? null,
    fallbackAfterMs: (entry.fallback_after_seconds ?? DEFAULT_FALLBACK_AFTER_SECONDS) * 1000,
    targets: entry.targets.map((target) => ({
      provider: target.provider,
      model: target.model,
      defaults: target.defaults ?? {},
      options: target.options ?? {},
    })),
  }));
}

/** EASEL_ROUTES_FILE: read once at start; unset = no routes. */
export function readRoutesFile(file: string | undefined): ModelRoute[] {
  if (!file) return [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `EASEL_ROUTES_FILE ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
  return parseRoutes(text, `EASEL_ROUTES_FILE ${file}`);
}
