import { Type, type Static } from '@sinclair/typebox';
import { StorableText, Uuid } from './task.js';

/** Request and response shapes of the user, key and `/v1/me` routes. */

const EMAIL_PATTERN = '^[^\\s@]+@[^\\s@]+$';
const Email = Type.String({
  maxLength: 254,
  pattern: EMAIL_PATTERN,
  description: 'Unique among live users, compared without regard to case.',
});
const Name = StorableText({ minLength: 1, maxLength: 200, description: 'A name for people.' });
const RoleSchema = Type.Union([Type.Literal('user'), Type.Literal('admin')], {
  description: '`admin` manages users, keys, credentials and any task by id.',
});
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

export const CreateUserBody = Type.Object(
  { email: Type.Optional(Email), name: Name, role: Type.Optional(RoleSchema) },
  { additionalProperties: false },
);
export type CreateUserBody = Static<typeof CreateUserBody>;

export const UpdateUserBody = Type.Object(
  {
    email: Type.Optional(Type.Union([Email, Type.Null()], { description: 'null removes the email.' })),
    name: Type.Optional(Name),
    role: Type.Optional(RoleSchema),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const UserIdParams = Type.Object({ id: Uuid({ description: 'The user id.' }) });
export const KeyIdParams = Type.Object({ id: Uuid({ description: 'The API key id.' }) });

export const ListUsersQuery = Type.Object(
  {
    email: Type.Optional(Type.String({ maxLength: 254, description: 'Find the live user with this email.' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1–100, default 20.' })),
    cursor: Type.Optional(Type.String({ description: 'next_cursor from the previous page.' })),
  },
  { additionalProperties: false },
);

export const UserSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.Union([Type.String(), Type.Null()]),
  name: Type.String(),
  role: RoleSchema,
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type UserResource = Static<typeof UserSchema>;

export const UserListSchema = Type.Object({
  data: Type.Array(UserSchema),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

export const MeSchema = Type.Object({
  user: UserSchema,
  authenticated_by: Type.Union([Type.Literal('api_key'), Type.Literal('local')], {
    description: '`local`: a keyless request in EASEL_AUTH=local mode, acting as the built-in local admin.',
  }),
  key: Type.Union(
    [Type.Object({ id: Type.String({ format: 'uuid' }), display: Type.String(), name: Type.String() }), Type.Null()],
    { description: 'The key the request was sent with (never the key itself); null in local mode.' },
  ),
});

export const CreateKeyBody = Type.Object(
  { name: Type.Optional(StorableText({ maxLength: 200, description: 'What the key is for.' })) },
  { additionalProperties: false },
);

export const ApiKeySchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  user_id: Type.String({ format: 'uuid' }),
  display: Type.String({ description: 'The start of the key (`easel_sk_` and 8 characters), to tell keys apart.' }),
  name: Type.String(),
  created_at: Timestamp,
  last_used_at: NullableTimestamp,
  revoked_at: NullableTimestamp,
});

export const CreatedKeySchema = Type.Composite([
  Type.Omit(ApiKeySchema, ['last_used_at', 'revoked_at']),
  Type.Object({ key: Type.String({ description: 'The API key. Shown this once; only its hash is stored.' }) }),
]);

export const KeyListSchema = Type.Object({ data: Type.Array(ApiKeySchema) });
