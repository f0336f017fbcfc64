/**
 * Validation failures as the API reports them: one entry per field and rule, each with a JSON
 * pointer, a stable rule code and a plain sentence. Pure: it reads JSON Schema validator errors
 * (Ajv's shape, which both Fastify's validator and the provider-options validator produce).
 */

import { ApiError, type ErrorCode } from './errors.js';

/**
 * Text PostgreSQL can store: no NUL (text and jsonb refuse it) and no unpaired UTF-16 surrogate
 * (not valid Unicode; jsonb refuses its escape). Validators compile patterns with the `u` flag,
 * so a surrogate *pair* is one code point and passes; only a lone half matches the class.
 */
export const STORABLE_TEXT_PATTERN = '^[^\\u0000\\uD800-\\uDFFF]*$';
// eslint-disable-next-line no-control-regex -- matching NUL is the point
const UNSTORABLE_CHARACTER = /[\u0000\uD800-\uDFFF]/u;
export const isStorableText = (text: string): boolean => !UNSTORABLE_CHARACTER.test(text);
export const UNSTORABLE_TEXT_MESSAGE = 'must not contain NUL characters or unpaired surrogates';

/** Where the bad value was: the JSON body, the query string, the path or a header. */
export type IssueLocation = 'body' | 'query' | 'path' | 'header';

export interface ValidationIssue {
  /** Dotted name kept for older clients (`provider_options.delay_ms`); prefer `pointer`. */
  field: string;
  /** RFC 6901 pointer into the part named by `in` (`/width`, `/provider_options/fail`). */
  pointer: string;
  in: IssueLocation;
  /** Stable rule code; docs/errors.md lists them. */
  code: string;
  message: string;
}

/** The subset of an Ajv error object this module reads. */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** Patterns with a meaning of their own: their rule code and what to tell a person. */
export interface PatternRule {
  code: string;
  /** Completes "<field> …". */
  message: string;
}

const RULE_CODES: Record<string, string> = {
  required: 'REQUIRED',
  dependentRequired: 'REQUIRED',
  additionalProperties: 'UNKNOWN_FIELD',
  type: 'WRONG_TYPE',
  minLength: 'TOO_SHORT',
  maxLength: 'TOO_LONG',
  pattern: 'BAD_FORMAT',
  format: 'BAD_FORMAT',
  minimum: 'TOO_SMALL',
  exclusiveMinimum: 'TOO_SMALL',
  maximum: 'TOO_LARGE',
  exclusiveMaximum: 'TOO_LARGE',
  maxProperties: 'TOO_LARGE',
  multipleOf: 'NOT_MULTIPLE',
  const: 'NOT_ALLOWED',
  enum: 'NOT_ALLOWED',
  anyOf: 'NOT_ALLOWED',
  oneOf: 'NOT_ALLOWED',
};

const TYPE_NAMES: Record<string, string> = {
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

const FORMAT_NAMES: Record<string, string> = { uuid: 'a UUID', 'date-time': 'a date-time', uri: 'a URI' };

const escapePointer = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');
const unescapePointer = (segment: string) => segment.replace(/~1/g, '/').replace(/~0/g, '~');
const nameOf = (pointer: string, fallback: string) =>
  pointer === '' ? fallback : pointer.slice(1).split('/').map(unescapePointer).join('.');
const list = (values: unknown[]) => values.map((value) => String(value)).join(', ');

/** The pointer of the value a rule is about: `required` names the missing member, not its parent. */
function pointerOf(error: SchemaError): string {
  const member =
    (error.params.missingProperty as string | undefined) ?? (error.params.additionalProperty as string | undefined);
  return member === undefined ? error.instancePath : `${error.instancePath}/${escapePointer(member)}`;
}

function sentence(error: SchemaError, field: string, patterns: Record<string, PatternRule>): string {
  const { params } = error;
  switch (error.keyword) {
    case 'required':
      return `${field} is required`;
    case 'dependentRequired':
      return `${field} is required when ${String(params.property)} is given`;
    case 'additionalProperties':
      return `${field} is not a known field`;
    case 'type':
      return `${field} must be ${String(params.type)
        .split(',')
        .map((type) => TYPE_NAMES[type] ?? type)
        .join(' or ')}`;
    case 'minLength':
      return `${field} must be at least ${String(params.limit)} characters long`;
    case 'maxLength':
      return `${field} must be at most ${String(params.limit)} characters long`;
    case 'minimum':
      return `${field} must be at least ${String(params.limit)}`;
    case 'maximum':
      return `${field} must be at most ${String(params.limit)}`;
    case 'exclusiveMinimum':
      return `${field} must be more than ${String(params.limit)}`;
    case 'exclusiveMaximum':
      return `${field} must be less than ${String(params.limit)}`;
    case 'maxProperties':
      return `${field} must have at most ${String(params.limit)} members`;
    case 'multipleOf':
      return `${field} must be a multiple of ${String(params.multipleOf)}`;
    case 'const':
      return `${field} must be ${String(params.allowedValue)}`;
    case 'enum':
      return `${field} must be one of ${list(params.allowedValues as unknown[])}`;
    case 'pattern':
      return `${field} ${patterns[String(params.pattern)]?.message ?? 'has the wrong format'}`;
    case 'format':
      return `${field} must be ${FORMAT_NAMES[String(params.format)] ?? `a valid ${String(params.format)}`}`;
    default:
      return `${field} is not valid`;
  }
}

/**
 * Collapse a union's noise: Ajv reports each failed branch of an `anyOf` and then the `anyOf`
 * itself. When every branch is a constant (a closed vocabulary such as a status), say once
 * which values are allowed; otherwise keep only the `anyOf` entry.
 */
function collapseUnions(errors: SchemaError[]): SchemaError[] {
  const unions = errors.filter((error) => error.keyword === 'anyOf' || error.keyword === 'oneOf');
  if (unions.length === 0) return errors;
  const branchesOf = (union: SchemaError) =>
    errors.filter((error) => error !== union && error.schemaPath.startsWith(`${union.schemaPath}/`));
  const hidden = new Set<SchemaError>();
  const replaced = new Map<SchemaError, SchemaError>();
  for (const union of unions) {
    const branches = branchesOf(union);
    branches.forEach((branch) => hidden.add(branch));
    const constants = branches.filter((branch) => branch.keyword === 'const' || branch.keyword === 'type');
    const allowed = branches.filter((branch) => branch.keyword === 'const').map((branch) => branch.params.allowedValue);
    if (allowed.length > 0 && constants.length === branches.length) {
      replaced.set(union, { ...union, keyword: 'enum', params: { allowedValues: [...new Set(allowed)] } });
    }
  }
  return errors.filter((error) => !hidden.has(error)).map((error) => replaced.get(error) ?? error);
}

/**
 * Turn validator errors into API issues, one per (pointer, rule code). `prefix` is the pointer
 * of the validated value within its part (`/provider_options` when options are checked alone);
 * `fallback` names the part itself when an error is about all of it.
 */
export function describeSchemaErrors(
  errors: readonly SchemaError[],
  options: { in: IssueLocation; prefix?: string; fallback?: string; patterns?: Record<string, PatternRule> },
): ValidationIssue[] {
  const prefix = options.prefix ?? '';
  const patterns = options.patterns ?? {};
  const seen = new Set<string>();
  const issues: ValidationIssue[] = [];
  for (const error of collapseUnions([...errors])) {
    const pointer = prefix + pointerOf(error);
    const code =
      error.keyword === 'pattern'
        ? (patterns[String(error.params.pattern)]?.code ?? 'BAD_FORMAT')
        : (RULE_CODES[error.keyword] ?? 'INVALID');
    if (seen.has(`${pointer} ${code}`)) continue;
    seen.add(`${pointer} ${code}`);
    const field = nameOf(pointer, options.fallback ?? options.in);
    issues.push({ field, pointer, in: options.in, code, message: sentence(error, field, patterns) });
  }
  return issues;
}

/** The 400 for checks beyond the request schema; it lists every issue. */
/**
 * A refusal with its own code (UNSUPPORTED_SIZE, UNKNOWN_MODEL, …) that still names the request
 * fields it is about in `errors[]`, the way VALIDATION_FAILED does, so clients handle both alike.
 */
export function fieldRefusal(
  code: ErrorCode,
  fields: string[],
  message: string,
  extra: Record<string, unknown> = {},
): ApiError {
  const errors: ValidationIssue[] = fields.map((field) => ({ field, pointer: `/${field}`, in: 'body', code, message }));
  return new ApiError(code, message, { ...extra, errors });
}

export function validationFailed(issues: ValidationIssue[]): ApiError {
  return new ApiError('VALIDATION_FAILED', issues.map((issue) => issue.message).join('; '), { errors: issues });
}

export const pointerSegment = escapePointer;
