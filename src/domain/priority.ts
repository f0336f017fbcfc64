/** Who may ask for which task priority. Pure: the store (src/limits/user-priority.ts) reads the override. */
import type { ApiError } from './errors.js';
import { fieldRefusal } from './validation.js';

/** A user's ceiling when `users.max_priority` is NULL: admins may use the whole range. */
export const DEFAULT_MAX_PRIORITY = { user: 5, admin: 10 } as const;
/** What a submit that names no priority gets, lowered to the user's ceiling when that is below it. */
export const DEFAULT_PRIORITY = 5;

export type Role = keyof typeof DEFAULT_MAX_PRIORITY;

export const maxPriorityFor = (role: Role, override: number | null): number => override ?? DEFAULT_MAX_PRIORITY[role];

/**
 * The priority a task gets: the one asked for, if the user may have it, or the default (never
 * above the user's ceiling, so a user capped low is not refused for a request that asked nothing).
 * Asking above the ceiling is 400 PRIORITY_NOT_ALLOWED: silently lowering it would hide the
 * refusal, and queue fairness between users is the point of the ceiling.
 */
export function resolvePriority(requested: number | undefined, maxPriority: number): number {
  if (requested === undefined) return Math.min(DEFAULT_PRIORITY, maxPriority);
  if (requested > maxPriority) throw priorityNotAllowed(requested, maxPriority);
  return requested;
}

/** `subject` names what asked: the request's `priority`, or a retried task's. */
export function priorityNotAllowed(requested: number, maxPriority: number, subject = 'priority'): ApiError {
  const message = `${subject} ${requested} is above your maximum of ${maxPriority}`;
  return fieldRefusal('PRIORITY_NOT_ALLOWED', ['priority'], message, { max_priority: maxPriority });
}
