import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { TSchema } from '@sinclair/typebox';
import {
  describeSchemaErrors,
  isStorableText,
  pointerSegment,
  UNSTORABLE_TEXT_MESSAGE,
  validationFailed,
  type SchemaError,
  type ValidationIssue,
} from '../domain/validation.js';

/**
 * `provider_options` is stored with the task and echoed on every list row, so it is bounded,
 * and it must be storable as jsonb. These bounds are the API's; a model's own `options` schema
 * says which options it takes.
 */
export const PROVIDER_OPTIONS_LIMITS = { maxBytes: 8192, maxDepth: 8 } as const;

const ROOT = '/provider_options';

// One compiler for every model's options schema (JSON Schema 2020-12, as OpenAPI 3.1 uses):
// every error, no coercion, no defaults written into the caller's object.
const ajv = new Ajv2020({ allErrors: true, strict: true, coerceTypes: false, useDefaults: false });
const compiled = new WeakMap<TSchema, ValidateFunction>();

function validatorFor(schema: TSchema): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  return validate;
}

/** True when some value is nested deeper than `maxDepth`. Iterative: the input may be 100k deep. */
function tooDeep(value: unknown, maxDepth: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth > maxDepth) return true;
    for (const inner of Object.values(current)) stack.push({ value: inner, depth: depth + 1 });
  }
  return false;
}

/** Every key and string (at a bounded depth) that PostgreSQL would refuse. */
function unstorableText(value: unknown, pointer: string, issues: ValidationIssue[]): void {
  if (typeof value === 'string') {
    if (!isStorableText(value)) issues.push(characterIssue(pointer));
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [key, inner] of Object.entries(value)) {
    const innerPointer = `${pointer}/${pointerSegment(key)}`;
    if (!isStorableText(key)) issues.push(characterIssue(innerPointer));
    unstorableText(inner, innerPointer, issues);
  }
}

function characterIssue(pointer: string): ValidationIssue {
  const field = pointer.slice(1).replace(/\//g, '.');
  return { field, pointer, in: 'body', code: 'INVALID_CHARACTER', message: `${field} ${UNSTORABLE_TEXT_MESSAGE}` };
}

function wholeIssue(code: string, message: string): ValidationIssue {
  return { field: 'provider_options', pointer: ROOT, in: 'body', code, message: `provider_options ${message}` };
}

/**
 * Throw a 400 listing every problem with `options`: too deep, too large, unstorable text, or
 * not what the model declares (`modelSchema`; a model without one takes any options).
 * Runs before anything is written.
 */
export function checkProviderOptions(options: Record<string, unknown>, modelSchema: TSchema | undefined): void {
  const { maxBytes, maxDepth } = PROVIDER_OPTIONS_LIMITS;
  // Depth first: everything after it walks or serialises the value recursively.
  if (tooDeep(options, maxDepth)) {
    throw validationFailed([wholeIssue('TOO_DEEP', `must be at most ${maxDepth} levels deep`)]);
  }
  const issues: ValidationIssue[] = [];
  const bytes = Buffer.byteLength(JSON.stringify(options));
  if (bytes > maxBytes) issues.push(wholeIssue('TOO_LARGE', `must be at most ${maxBytes} bytes as JSON, not ${bytes}`));
  unstorableText(options, ROOT, issues);
  if (modelSchema) {
    const validate = validatorFor(modelSchema);
    if (!validate(options)) {
      issues.push(
        ...describeSchemaErrors(validate.errors as SchemaError[], {
          in: 'body',
          prefix: ROOT,
          fallback: 'provider_options',
        }),
      );
    }
  }
  if (issues.length > 0) throw validationFailed(issues);
}
