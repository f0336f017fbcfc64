import { validationFailed, type ValidationIssue } from '../domain/validation.js';
import type { DeadLetterSelection } from '../tasks/dead-letters.js';
import { uuidBoundAt } from '../tasks/queries.js';

/** Turning the admin views' query and body fields into task filters, refusing bad ones by name. */

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

type Where = 'query' | 'body';

function issue(where: Where, field: string, code: string, message: string): ValidationIssue {
  return { field, pointer: `/${field}`, in: where, code, message };
}

/** `created_after` / `created_before` as id bounds (UUIDv7 ids carry their creation time). */
export function creationBounds(
  fields: { created_after?: string | undefined; created_before?: string | undefined },
  where: Where,
): { idFrom?: string; idBelow?: string } {
  const issues: ValidationIssue[] = [];
  const parse = (field: 'created_after' | 'created_before'): Date | undefined => {
    const value = fields[field];
    if (value === undefined) return undefined;
    const time = RFC3339.test(value) ? new Date(value) : undefined;
    if (!time || Number.isNaN(time.getTime())) {
      issues.push(issue(where, field, 'BAD_FORMAT', `${field} must be an RFC 3339 time such as 2026-01-31T12:00:00Z`));
      return undefined;
    }
    return time;
  };
  const after = parse('created_after');
  const before = parse('created_before');
  if (issues.length > 0) throw validationFailed(issues);
  return {
    ...(after ? { idFrom: uuidBoundAt(after) } : {}),
    ...(before ? { idBelow: uuidBoundAt(before) } : {}),
  };
}

export interface SelectionFields {
  ids?: string[] | undefined;
  provider?: string | undefined;
  error_code?: string | undefined;
  user_id?: string | undefined;
  created_after?: string | undefined;
  created_before?: string | undefined;
  max?: number | undefined;
}

const FILTER_FIELDS = ['provider', 'error_code', 'user_id', 'created_after', 'created_before', 'max'] as const;

/**
 * Dead letters picked by `ids` or by filters, never both (which would be ambiguous: ids within
 * the filter, or both sets?). With `requireOne`, an empty selection is refused, so a retry of
 * every dead letter is always asked for by name.
 */
export function deadLetterSelection(body: SelectionFields, options: { requireOne: boolean }): DeadLetterSelection {
  const filters = FILTER_FIELDS.filter((field) => body[field] !== undefined);
  if (body.ids !== undefined) {
    if (filters.length > 0) {
      throw validationFailed(
        filters.map((field) =>
          issue('body', field, 'NOT_ALLOWED', `${field} cannot be sent with ids: pick by ids or by filters`),
        ),
      );
    }
    return { ids: body.ids };
  }
  if (options.requireOne && filters.filter((field) => field !== 'max').length === 0) {
    throw validationFailed([
      issue(
        'body',
        'ids',
        'REQUIRED',
        'give ids, or at least one filter (provider, error_code, user_id, created_after, created_before)',
      ),
    ]);
  }
  return {
    filter: {
      provider: body.provider,
      errorCode: body.error_code,
      userId: body.user_id,
      ...creationBounds(body, 'body'),
    },
    max: body.max ?? 1000,
  };
}

/** A confirmation field that must hold one exact word; refused by name otherwise. */
export function requireConfirmation(value: string | undefined, word: string, consequence: string): void {
  if (value === word) return;
  const message = `confirm must be "${word}": ${consequence}`;
  throw validationFailed([issue('body', 'confirm', value === undefined ? 'REQUIRED' : 'BAD_VALUE', message)]);
}
