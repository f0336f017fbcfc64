import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ApiKeyRow } from '../../auth/api-keys.js';
import { ApiError } from '../../domain/errors.js';
import type { UserService } from '../../users/service.js';
import type { UserRow } from '../../users/store.js';
import { UUID_REGEXP } from '../schemas/task.js';
import {
  ApiKeySchema,
  CreatedKeySchema,
  CreateKeyBody,
  CreateUserBody,
  KeyIdParams,
  KeyListSchema,
  ListUsersQuery,
  MeSchema,
  UpdateUserBody,
  UserIdParams,
  UserListSchema,
  UserSchema,
  type UserResource,
} from '../schemas/users.js';

export const toUserResource = (user: UserRow): UserResource => ({
  id: user.id,
  email: user.email,
  name: user.name,
  role: user.role,
  created_at: user.created_at.toISOString(),
  updated_at: user.updated_at.toISOString(),
});

const toKeyResource = (key: ApiKeyRow) => ({
  id: key.id,
  user_id: key.user_id,
  display: key.display,
  name: key.name,
  created_at: key.created_at.toISOString(),
  last_used_at: key.last_used_at?.toISOString() ?? null,
  revoked_at: key.revoked_at?.toISOString() ?? null,
});

/** Users (admins only, but a user may read themself), their API keys, and `/v1/me`. */
export const userRoutes: FastifyPluginAsyncTypebox<{ users: UserService }> = async (app, { users }) => {
  // Admin-only routes say so in their config: the auth hook guards them and OpenAPI documents it.
  const admin = { config: { admin: true } };

  app.post(
    '/v1/users',
    {
      ...admin,
      schema: {
        summary: 'Create a user',
        tags: ['users'],
        body: CreateUserBody,
        response: { 201: UserSchema },
      },
    },
    async (request, reply) => reply.code(201).send(toUserResource(await users.create(request.body))),
  );

  app.get(
    '/v1/users',
    {
      ...admin,
      schema: {
        summary: 'List users, or find one by email',
        description: 'Oldest first, cursor-paginated. With `email`, the one live user with that email (or none).',
        tags: ['users'],
        querystring: ListUsersQuery,
        response: { 200: UserListSchema },
      },
    },
    async (request) => {
      const { email, cursor } = request.query;
      if (email !== undefined) {
        const user = await users.findByEmail(email);
        return { data: user ? [toUserResource(user)] : [], next_cursor: null };
      }
      const limit = request.query.limit === undefined ? 20 : Number(request.query.limit);
      if (limit < 1 || limit > 100) {
        const message = 'limit must be from 1 to 100';
        throw new ApiError('VALIDATION_FAILED', message, {
          errors: [
            { field: 'limit', pointer: '/limit', in: 'query', code: limit < 1 ? 'TOO_SMALL' : 'TOO_LARGE', message },
          ],
        });
      }
      if (cursor !== undefined && !UUID_REGEXP.test(cursor)) {
        const message = 'cursor must be a next_cursor from an earlier page';
        throw new ApiError('INVALID_CURSOR', message, {
          errors: [{ field: 'cursor', pointer: '/cursor', in: 'query', code: 'BAD_FORMAT', message }],
        });
      }
      const page = await users.list(cursor, limit);
      return { data: page.users.map(toUserResource), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/users/:id',
    {
      schema: {
        summary: 'Get a user (admins: anyone; users: themself)',
        tags: ['users'],
        params: UserIdParams,
        response: { 200: UserSchema },
      },
    },
    async (request) => toUserResource(await users.get(request.principal, request.params.id)),
  );

  app.patch(
    '/v1/users/:id',
    {
      ...admin,
      schema: {
        summary: "Change a user's name, email or role",
        tags: ['users'],
        params: UserIdParams,
        body: UpdateUserBody,
        response: { 200: UserSchema },
      },
    },
    async (request) => toUserResource(await users.update(request.params.id, request.body)),
  );

  app.delete(
    '/v1/users/:id',
    {
      ...admin,
      schema: {
        summary: 'Delete a user',
        description:
          'A soft delete: their tasks, images and history stay; their API keys stop working at once. The built-in local user and the last admin cannot be deleted.',
        tags: ['users'],
        params: UserIdParams,
        response: { 204: Type.Null({ description: 'Deleted.' }) },
      },
    },
    async (request, reply) => {
      await users.delete(request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/me',
    {
      schema: {
        summary: 'Who this request acts as',
        tags: ['users'],
        response: { 200: MeSchema },
      },
    },
    async (request) => {
      const { principal } = request;
      const user = await users.get(principal, principal.userId);
      const key = principal.keyId
        ? (await users.listKeys(principal, user.id)).find((k) => k.id === principal.keyId)
        : undefined;
      return {
        user: toUserResource(user),
        authenticated_by: principal.keyId ? ('api_key' as const) : ('local' as const),
        key: key ? { id: key.id, display: key.display, name: key.name } : null,
      };
    },
  );

  app.post(
    '/v1/users/:id/keys',
    {
      schema: {
        summary: 'Create an API key (admins: for anyone; users: for themself)',
        description: 'The answer holds the key in `key`, this once: only its hash is stored.',
        tags: ['users'],
        params: UserIdParams,
        body: CreateKeyBody,
        response: { 201: CreatedKeySchema },
      },
    },
    async (request, reply) => {
      const { row, key } = await users.createKey(request.principal, request.params.id, request.body.name ?? '');
      const { last_used_at: _used, revoked_at: _revoked, ...view } = toKeyResource(row);
      return reply.code(201).send({ ...view, key });
    },
  );

  app.get(
    '/v1/users/:id/keys',
    {
      schema: {
        summary: "List a user's API keys (never the keys themselves)",
        tags: ['users'],
        params: UserIdParams,
        response: { 200: KeyListSchema },
      },
    },
    async (request) => ({ data: (await users.listKeys(request.principal, request.params.id)).map(toKeyResource) }),
  );

  app.delete(
    '/v1/keys/:id',
    {
      schema: {
        summary: 'Revoke an API key (admins: any; users: their own)',
        description: 'Takes effect at once on every API process. Revoking a revoked key changes nothing.',
        tags: ['users'],
        params: KeyIdParams,
        response: { 200: ApiKeySchema },
      },
    },
    async (request) => toKeyResource(await users.revokeKey(request.principal, request.params.id)),
  );
};
