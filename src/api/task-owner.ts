import type { FastifyRequest } from 'fastify';
import type { TaskOwner } from '../tasks/queries.js';

/**
 * Whose task a request may reach by id: an admin any user's (to look at, cancel or retry one
 * task someone reports), everyone else only their own, so another user's task is a 404 like a
 * task that does not exist. Lists and event streams always stay the caller's own.
 */
export const taskOwnerFor = (request: FastifyRequest): TaskOwner =>
  request.principal.role === 'admin' ? null : request.userId;
