import { Type, type Static } from '@sinclair/typebox';
import { PROVIDER_ID_PATTERN } from '../../providers/registry.js';
import { StorableText, Uuid } from './task.js';

/**
 * The wire protocol between Easel and its remote workers (`/v1/worker/…`). The server validates
 * with these schemas and the remote worker (src/worker/remote) builds its calls from their types,
 * so the two cannot disagree on a field.
 */

const ProviderId = Type.String({ pattern: PROVIDER_ID_PATTERN.source, description: 'A provider id, e.g. `sketch`.' });
const WorkerId = Uuid({ description: 'The id the remote worker chose for this process (a UUID).' });
const LeaseToken = Uuid({ description: 'The lease token the claim answered; every call of the attempt presents it.' });
const Seconds = Type.Number({ minimum: 0, maximum: 86_400 * 7, description: 'Time the provider spent, in seconds.' });

export const RegisterBody = Type.Object(
  {
    worker_id: WorkerId,
    providers: Type.Array(ProviderId, { minItems: 1, maxItems: 100, uniqueItems: true }),
    concurrency: Type.Integer({ minimum: 1, maximum: 1000 }),
    version: StorableText({ maxLength: 100 }),
    host: StorableText({ maxLength: 200, description: 'What the machine calls itself, for the admin.' }),
  },
  { additionalProperties: false },
);
export type RegisterBody = Static<typeof RegisterBody>;

export const RegisterAnswer = Type.Object({
  worker_id: Type.String(),
  heartbeat_ms: Type.Integer({ description: 'Heartbeat at least this often (EASEL_HEARTBEAT_MS of the server).' }),
  dead_after_ms: Type.Integer({ description: 'Silent this long, the worker is presumed dead and its tasks rescued.' }),
  max_wait_seconds: Type.Integer({ description: 'The longest claim long poll the server holds open.' }),
  task_timeout_ms: Type.Integer({
    description:
      "The server's EASEL_TASK_TIMEOUT_MS: the worker aborts an attempt by then at the latest, before the rescuer would take it over.",
  }),
});
export type RegisterAnswer = Static<typeof RegisterAnswer>;

export const ClaimBody = Type.Object(
  {
    worker_id: WorkerId,
    providers: Type.Array(ProviderId, { minItems: 1, maxItems: 100, uniqueItems: true }),
    want: Type.Integer({ minimum: 1, maximum: 1000, description: 'Free slots: claim at most this many tasks.' }),
    wait_seconds: Type.Integer({
      minimum: 0,
      maximum: 60,
      default: 20,
      description: 'Hold the request open up to this long until a task is claimable (capped by the server).',
    }),
  },
  { additionalProperties: false },
);
export type ClaimBody = Static<typeof ClaimBody>;

export const ClaimedTaskSchema = Type.Object({
  id: Type.String(),
  provider: Type.String(),
  kind: Type.Union([Type.Literal('txt2img'), Type.Literal('img2img')]),
  model: Type.String(),
  attempt: Type.Integer(),
  lease_token: Type.String(),
  provider_ref: Type.Union([Type.String(), Type.Null()], {
    description: 'Set when an earlier attempt saved the request id: resume it instead of submitting again.',
  }),
  params: Type.Object({
    prompt: Type.String(),
    negative_prompt: Type.Union([Type.String(), Type.Null()]),
    width: Type.Integer(),
    height: Type.Integer(),
    steps: Type.Integer(),
    guidance: Type.Number(),
    n: Type.Integer(),
    seed: Type.Integer(),
    strength: Type.Optional(Type.Number()),
  }),
  provider_options: Type.Record(Type.String(), Type.Unknown()),
  input_image: Type.Union([
    Type.Object({
      content_type: Type.String(),
      width: Type.Integer(),
      height: Type.Integer(),
      data_base64: Type.String({ description: 'The img2img input bytes.' }),
    }),
    Type.Null(),
  ]),
  cancel_requested: Type.Boolean({ description: 'The user canceled while it was queued: abort at once.' }),
});
export type ClaimedTask = Static<typeof ClaimedTaskSchema>;

export const ClaimAnswer = Type.Object({ tasks: Type.Array(ClaimedTaskSchema) });
export type ClaimAnswer = Static<typeof ClaimAnswer>;

export const HeartbeatBody = Type.Object(
  {
    worker_id: WorkerId,
    concurrency: Type.Integer({ minimum: 1, maximum: 1000 }),
    leases: Type.Array(Type.Object({ task_id: Uuid(), lease_token: LeaseToken }, { additionalProperties: false }), {
      maxItems: 1000,
    }),
  },
  { additionalProperties: false },
);
export type HeartbeatBody = Static<typeof HeartbeatBody>;

export const HeartbeatAnswer = Type.Object({
  cancel: Type.Array(Type.String(), { description: 'Running tasks of this worker whose cancel was requested.' }),
  lost: Type.Array(Type.String(), {
    description: 'Tasks whose lease this worker no longer holds: stop, touch nothing.',
  }),
});
export type HeartbeatAnswer = Static<typeof HeartbeatAnswer>;

export const AttemptParams = Type.Object({ id: Uuid({ description: 'The task id.' }) });
export const ImageParams = Type.Object({
  id: Uuid({ description: 'The task id.' }),
  // Path parameters are text (the API coerces no types): 0 to 99.
  index: Type.String({ pattern: '^(0|[1-9][0-9]?)$', description: 'The image index within the attempt, 0–99.' }),
});
export const UploadQuery = Type.Object(
  { lease_token: LeaseToken, seed: Type.Optional(Type.Integer()) },
  { additionalProperties: false },
);

export const PreviewBody = Type.Object(
  {
    content_type: Type.Union([Type.Literal('image/png'), Type.Literal('image/jpeg'), Type.Literal('image/webp')]),
    data_base64: Type.String({ maxLength: 4 * 1024 * 1024, description: 'The preview bytes, base64 (at most 3 MiB).' }),
  },
  { additionalProperties: false },
);
export type PreviewBody = Static<typeof PreviewBody>;

export const ProgressBody = Type.Object(
  {
    lease_token: LeaseToken,
    stage: StorableText({ minLength: 1, maxLength: 100 }),
    progress: Type.Number({ minimum: 0, maximum: 100 }),
    preview: Type.Optional(PreviewBody),
  },
  { additionalProperties: false },
);
export type ProgressBody = Static<typeof ProgressBody>;

export const ProviderRefBody = Type.Object(
  { lease_token: LeaseToken, provider_ref: StorableText({ minLength: 1, maxLength: 500 }) },
  { additionalProperties: false },
);

export const UploadAnswer = Type.Object({ storage_key: Type.String(), bytes: Type.Integer(), sha256: Type.String() });

const ImageContentType = Type.Union([
  Type.Literal('image/png'),
  Type.Literal('image/jpeg'),
  Type.Literal('image/webp'),
]);

export const SucceedBody = Type.Object(
  {
    lease_token: LeaseToken,
    predict_time_seconds: Seconds,
    images: Type.Array(
      Type.Object(
        { index: Type.Integer({ minimum: 0, maximum: 99 }), content_type: ImageContentType, seed: Type.Integer() },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 100, description: 'Every image, each uploaded under this lease first.' },
    ),
  },
  { additionalProperties: false },
);
export type SucceedBody = Static<typeof SucceedBody>;

export const FailBody = Type.Object(
  {
    lease_token: LeaseToken,
    aborted: Type.Optional(
      Type.Union([Type.Literal('cancel'), Type.Literal('timeout'), Type.Literal('shutdown')], {
        description:
          '`cancel`: the user canceled; `timeout`: past the task timeout; `shutdown`: the worker is stopping (handed back uncounted).',
      }),
    ),
    error_class: Type.Union(
      [Type.Literal('retryable'), Type.Literal('rate_limited'), Type.Literal('credential'), Type.Literal('permanent')],
      { description: "The adapter error's class; decides retry, as for a local worker." },
    ),
    error: Type.Object(
      {
        code: StorableText({ minLength: 1, maxLength: 100 }),
        message: StorableText({ minLength: 1, maxLength: 2000 }),
      },
      { additionalProperties: false },
    ),
    retry_after_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
    predict_time_seconds: Seconds,
  },
  { additionalProperties: false },
);
export type FailBody = Static<typeof FailBody>;

export const DoneAnswer = Type.Object({ ok: Type.Literal(true) });
