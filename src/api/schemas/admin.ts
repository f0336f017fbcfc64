import { Type } from '@sinclair/typebox';
import { PROVIDER_ID_PATTERN } from '../../providers/registry.js';
import { StorableText, TaskSchema, TaskStatusSchema, Uuid, Nullable } from './task.js';

/** Request and response shapes of the /v1/admin/ task, queue and user views. */

const Timestamp = Type.String({ format: 'date-time' });

const ProviderFilter = Type.String({ pattern: PROVIDER_ID_PATTERN.source, description: 'A provider id.' });
const UserFilter = Uuid({ description: "Only this user's tasks." });
const ErrorCodeFilter = StorableText({
  minLength: 1,
  maxLength: 100,
  description: 'Only tasks that failed with this error code (`error.code`).',
});
const CreatedAfter = Type.String({
  description: 'RFC 3339 time: only tasks created at or after it (to the millisecond).',
});
const CreatedBefore = Type.String({ description: 'RFC 3339 time: only tasks created before it.' });
const Limit = Type.String({ pattern: '^[0-9]{1,3}$', description: '1–100, default 20.' });
const Cursor = Type.String({ description: 'next_cursor from the previous page.' });

export const AdminTasksQuery = Type.Object(
  {
    user_id: Type.Optional(UserFilter),
    status: Type.Optional(TaskStatusSchema),
    provider: Type.Optional(ProviderFilter),
    created_after: Type.Optional(CreatedAfter),
    created_before: Type.Optional(CreatedBefore),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

export const DeadLettersQuery = Type.Object(
  {
    provider: Type.Optional(ProviderFilter),
    error_code: Type.Optional(ErrorCodeFilter),
    user_id: Type.Optional(UserFilter),
    created_after: Type.Optional(CreatedAfter),
    created_before: Type.Optional(CreatedBefore),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

/** The fields that pick dead letters in a retry or purge body: `ids`, or the list's filters. */
const selectionFields = {
  ids: Type.Optional(
    Type.Array(Uuid(), {
      minItems: 1,
      maxItems: 1000,
      description: 'These failed tasks (at most 1000). Not with the filters.',
    }),
  ),
  provider: Type.Optional(ProviderFilter),
  error_code: Type.Optional(ErrorCodeFilter),
  user_id: Type.Optional(UserFilter),
  created_after: Type.Optional(CreatedAfter),
  created_before: Type.Optional(CreatedBefore),
  max: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 10_000,
      description: 'By filter: act on at most this many (default 1000); `more` says whether some were left.',
    }),
  ),
};

export const RetryDeadLettersBody = Type.Object(selectionFields, { additionalProperties: false });

export const PurgeDeadLettersBody = Type.Object(
  {
    confirm: Type.Optional(
      Type.String({ description: 'Must be `purge`: purged tasks and their images are gone for good.' }),
    ),
    ...selectionFields,
  },
  { additionalProperties: false },
);

export const ClearQueueBody = Type.Object(
  {
    confirm: Type.Optional(Type.String({ description: 'Must be `clear`.' })),
    provider: Type.Optional(ProviderFilter),
  },
  { additionalProperties: false },
);

export const StatsQuery = Type.Object(
  { days: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1–90 days, default 7.' })) },
  { additionalProperties: false },
);

export const AdminUsersQuery = Type.Object(
  { limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) },
  { additionalProperties: false },
);

export const AdminTaskSchema = Type.Object(
  { ...TaskSchema.properties, user_id: Type.String({ format: 'uuid', description: 'Who owns the task.' }) },
  { $id: 'AdminTask' },
);

export const AdminTaskListSchema = Type.Object({
  data: Type.Array(AdminTaskSchema),
  next_cursor: Nullable(Type.String()),
});

const selectionOutcome = {
  ids: Type.Array(Type.String({ format: 'uuid' }), { description: 'The tasks acted on.' }),
  skipped: Type.Array(Type.String({ format: 'uuid' }), {
    description: 'By `ids`: those that were not failed (or not found, or taken by another admin meanwhile).',
  }),
  more: Type.Boolean({ description: 'By filter: the call stopped at `max`; more may match, so call again.' }),
};

export const RetryOutcomeSchema = Type.Object({
  retried: Type.Integer({ description: 'Tasks queued again.' }),
  ...selectionOutcome,
});

export const PurgeOutcomeSchema = Type.Object({
  purged: Type.Integer({ description: 'Tasks deleted.' }),
  images_deleted: Type.Integer({
    description: 'Files removed from storage: result images, and img2img inputs no upload still holds.',
  }),
  ...selectionOutcome,
});

export const ClearOutcomeSchema = Type.Object({
  canceled: Type.Integer({ description: 'Queued tasks canceled, each with its `task:canceled` event.' }),
});

const counts = {
  queued: Type.Integer({ description: 'Queued for a first run.' }),
  running: Type.Integer(),
  retrying: Type.Integer({ description: 'Queued again after a failed attempt.' }),
  dead: Type.Integer({ description: 'Failed: the dead letters.' }),
};

export const StatsSchema = Type.Object({
  queues: Type.Array(Type.Object({ provider: Type.String(), priority: Type.Integer(), ...counts }), {
    description: 'Per provider and priority; only pairs with a task in one of the four states.',
  }),
  totals: Type.Object(counts),
  days: Type.Array(
    Type.Object({
      date: Type.String({ format: 'date', description: 'A UTC day.' }),
      processed: Type.Integer({ description: 'Tasks finished that day, succeeded or failed.' }),
      failed: Type.Integer(),
    }),
    { description: 'The last `days` UTC days, today first, each listed even when nothing finished.' },
  ),
});

export const AdminUserSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  email: Nullable(Type.String()),
  role: Type.Union([Type.Literal('user'), Type.Literal('admin')]),
  created_at: Timestamp,
  deleted_at: Nullable(Timestamp),
  tasks: Type.Object({
    queued: Type.Integer(),
    running: Type.Integer(),
    succeeded: Type.Integer(),
    failed: Type.Integer(),
    canceled: Type.Integer(),
  }),
  balance: Type.Number({ description: 'Credits on the account (0 when never credited).' }),
});

export const AdminUserListSchema = Type.Object({
  data: Type.Array(AdminUserSchema),
  next_cursor: Nullable(Type.String()),
});
