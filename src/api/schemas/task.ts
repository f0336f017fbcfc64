import { Type, type Static, type StringOptions } from '@sinclair/typebox';
import { UnavailableReasonSchema } from './providers.js';
import { PROVIDER_OPTIONS_LIMITS } from '../../tasks/provider-options.js';
import { STORABLE_TEXT_PATTERN, UNSTORABLE_TEXT_MESSAGE, type PatternRule } from '../../domain/validation.js';

/** Request and response shapes of the task routes: one source for validation and OpenAPI. */

export const PROMPT_MAX_LENGTH = 4000;

const VISIBLE_PATTERN = '\\S';
/**
 * A canonical UUID, hex with dashes. Ajv's `uuid` format also accepts `urn:uuid:…`, which
 * PostgreSQL refuses; every id the API takes uses this pattern instead (routes of other areas
 * too: import `Uuid`).
 */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
/** Provider secrets (API tokens): printable ASCII, no spaces, as every provider issues them. */
export const SECRET_PATTERN = '^[!-~]+$';
export const UUID_REGEXP = new RegExp(UUID_PATTERN);

/** What each pattern means, for validation messages ("prompt must contain a visible character"). */
export const PATTERN_RULES: Record<string, PatternRule> = {
  [STORABLE_TEXT_PATTERN]: { code: 'INVALID_CHARACTER', message: UNSTORABLE_TEXT_MESSAGE },
  [VISIBLE_PATTERN]: { code: 'BAD_FORMAT', message: 'must contain a visible character' },
  [UUID_PATTERN]: { code: 'BAD_FORMAT', message: 'must be a UUID such as 0190a0a0-0000-7000-8000-000000000000' },
  '^[0-9]{1,3}$': { code: 'BAD_FORMAT', message: 'must be a whole number' },
  '^[0-9]{1,2}$': { code: 'BAD_FORMAT', message: 'must be a whole number' },
  [SECRET_PATTERN]: { code: 'BAD_FORMAT', message: 'must be printable ASCII without spaces' },
};

/** A string that is safe to store; every free-text input uses it. */
export const StorableText = (options: StringOptions = {}) =>
  Type.String({ ...options, pattern: STORABLE_TEXT_PATTERN });

export const Uuid = (options: StringOptions = {}) =>
  Type.String({ ...options, pattern: UUID_PATTERN, description: options.description ?? 'A UUID.' });

export const SubmitTaskBody = Type.Object(
  {
    prompt: StorableText({
      minLength: 1,
      maxLength: PROMPT_MAX_LENGTH,
      // A second pattern needs its own subschema; the type repeats so strict mode knows it.
      allOf: [{ type: 'string', pattern: VISIBLE_PATTERN }],
      description: 'What to draw: at least one visible character.',
    }),
    negative_prompt: Type.Optional(StorableText({ maxLength: PROMPT_MAX_LENGTH, description: 'What to avoid.' })),
    kind: Type.Optional(
      Type.Union([Type.Literal('txt2img'), Type.Literal('img2img')], {
        description: 'txt2img (the default) draws from the prompt; img2img also starts from `image`.',
      }),
    ),
    image: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'img2img only: the input image, as a base64 data URL (`data:image/png;base64,…`) or `upload:<id>` from POST /v1/uploads. PNG, JPEG or WebP; larger than the model takes is shrunk to fit.',
      }),
    ),
    strength: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description: 'img2img only: how far the result may move away from the input, 0–1. Default 0.75.',
      }),
    ),
    provider: Type.Optional(
      StorableText({ minLength: 1, maxLength: 64, description: 'Defaults to EASEL_DEFAULT_PROVIDER.' }),
    ),
    model: Type.Optional(
      StorableText({ minLength: 1, maxLength: 200, description: "Defaults to the provider's first model." }),
    ),
    width: Type.Optional(Type.Integer({ minimum: 64, maximum: 4096, multipleOf: 8 })),
    height: Type.Optional(Type.Integer({ minimum: 64, maximum: 4096, multipleOf: 8 })),
    steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 150 })),
    guidance: Type.Optional(Type.Number({ minimum: 0, maximum: 30 })),
    n: Type.Optional(Type.Integer({ minimum: 1, maximum: 8, description: 'Number of images.' })),
    seed: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 4294967295, description: 'Random when omitted; always stored.' }),
    ),
    output_format: Type.Optional(
      Type.Union([Type.Literal('png'), Type.Literal('webp'), Type.Literal('jpeg')], {
        description:
          'The format the images are stored in, converted once after the provider answers. Default EASEL_OUTPUT_FORMAT; when that is unset, the format the provider returned.',
      }),
    ),
    output_quality: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100,
        description:
          'JPEG or WebP quality, 1–100 (default EASEL_OUTPUT_QUALITY, 90). Only with output_format jpeg or webp (given or by default); PNG is lossless.',
      }),
    ),
    priority: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 10,
        description:
          'Higher runs first. Default 5 (or your maximum, when lower). At most your maximum: 5 for users, 10 for admins, unless set per user; more is 400 PRIORITY_NOT_ALLOWED.',
      }),
    ),
    max_attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
    provider_options: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: `Options of the chosen model (see its \`options\` schema at GET /v1/providers); at most ${PROVIDER_OPTIONS_LIMITS.maxBytes} bytes as JSON and ${PROVIDER_OPTIONS_LIMITS.maxDepth} levels deep.`,
      }),
    ),
  },
  { additionalProperties: false, $id: 'SubmitTask' },
);
export type SubmitTaskBody = Static<typeof SubmitTaskBody>;

/** `schema` or null: the one way API schemas say a field may be null. */
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

export const TaskErrorSchema = Type.Object({ code: Type.String(), message: Type.String() });

export const ImageSchema = Type.Object({
  index: Type.Integer(),
  url: Type.String({
    description: 'Stable absolute URL of the image (needs an API key); with S3 storage it redirects to the object.',
  }),
  signed_url: Nullable(
    Type.String({
      description:
        'The same URL signed to work without an API key (for an `<img>` tag) until it expires (EASEL_SIGNED_URL_SECONDS); null when the server has no signing key.',
    }),
  ),
  content_type: Type.String(),
  bytes: Type.Integer(),
  width: Type.Integer(),
  height: Type.Integer(),
  seed: Type.Integer(),
  sha256: Type.String(),
  expired_at: Nullable(
    Type.String({
      format: 'date-time',
      description:
        'When retention expired the image (docs/retention.md): its bytes are deleted and its url answers 410 IMAGE_EXPIRED. Null while it is kept.',
    }),
  ),
  thumbnail_url: Nullable(
    Type.String({
      description:
        'A WebP at most 256 px on its longest side, for listings; null for images stored before thumbnails existed.',
    }),
  ),
  thumbnail_signed_url: Nullable(
    Type.String({
      description:
        'The thumbnail URL signed to work without an API key until it expires (as `signed_url`); null without a thumbnail or a signing key.',
    }),
  ),
});

export const InputImageSchema = Type.Object({
  url: Type.String({ description: 'Where the checked input image is served (absolute).' }),
  signed_url: Nullable(
    Type.String({ description: 'The same URL signed to work without an API key until it expires.' }),
  ),
  content_type: Type.String(),
  bytes: Type.Integer(),
  width: Type.Integer(),
  height: Type.Integer(),
  sha256: Type.String(),
});

export const TaskStatusSchema = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('canceled'),
]);

export const TaskSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    status: TaskStatusSchema,
    kind: Type.String(),
    provider: Type.String(),
    model: Type.String(),
    route: Nullable(
      Type.Object(
        {
          name: Type.String({ description: 'The route the task was submitted to (`model` in the request).' }),
          target: Type.Integer({ description: 'Index in `targets` of the target the task is on (or finished on).' }),
          targets: Type.Array(Type.Object({ provider: Type.String(), model: Type.String() }), {
            description: 'The route targets that can serve this request, in order.',
          }),
          fallbacks: Type.Array(
            Type.Object({ provider: Type.String(), model: Type.String(), error: TaskErrorSchema }),
            { description: 'Each target the task left, with the error that made it move on.' },
          ),
        },
        {
          description:
            'Set when the task was submitted to a named route; `provider` and `model` then name the current (or producing) target.',
        },
      ),
    ),
    priority: Type.Integer(),
    params: Type.Object({
      prompt: Type.String(),
      negative_prompt: Nullable(Type.String()),
      width: Type.Integer(),
      height: Type.Integer(),
      steps: Type.Integer(),
      guidance: Type.Number(),
      n: Type.Integer(),
      seed: Type.Integer(),
      strength: Type.Optional(Type.Number({ description: 'img2img only.' })),
      output_format: Type.Optional(
        Type.Union([Type.Literal('png'), Type.Literal('webp'), Type.Literal('jpeg')], {
          description: 'The stored format; absent when the images keep the format the provider returned.',
        }),
      ),
      output_quality: Type.Optional(Type.Integer({ description: 'Set exactly when output_format is jpeg or webp.' })),
    }),
    input_image: Nullable(InputImageSchema),
    provider_options: Type.Record(Type.String(), Type.Unknown()),
    stage: Nullable(Type.String()),
    progress: Type.Integer({ minimum: 0, maximum: 100 }),
    preview_url: Nullable(
      Type.String({
        description:
          'While the task runs on a backend that shows intermediate images (AUTOMATIC1111, ComfyUI): the latest preview, at most one new one per `EASEL_PREVIEW_INTERVAL_MS`. Null otherwise. Progress events carry it too.',
      }),
    ),
    attempt: Type.Integer(),
    max_attempts: Type.Integer(),
    queue_position: Nullable(Type.Integer({ description: 'Tasks ahead of this one; only on a single queued task.' })),
    eta_seconds: Nullable(
      Type.Number({
        description:
          'Estimated seconds until finished, from recent run times. Null without recent runs, and while `waiting_for` is set.',
      }),
    ),
    waiting_for: Nullable(
      Type.Object(
        {
          reason: UnavailableReasonSchema,
          available_again_at: Nullable(
            Type.String({
              format: 'date-time',
              description: 'When a credential comes back by itself; null when only an admin can help.',
            }),
          ),
        },
        {
          description:
            'Set on a queued task whose provider has no usable credential now: the task waits (it is never failed for it) and starts as soon as one is usable. Only on a single queued task, like `queue_position`; null otherwise. The same reasons as `unavailable_reason` at GET /v1/providers.',
        },
      ),
    ),
    cancel_requested: Type.Boolean(),
    error: Nullable(TaskErrorSchema),
    images: Type.Array(ImageSchema),
    predict_time: Nullable(Type.Number({ description: 'Seconds the provider spent on the last attempt.' })),
    cost: Nullable(
      Type.Number({
        description:
          'Credits charged for the task once it has finished (0 when it failed or was canceled); null while unfinished or when the task is unpriced.',
      }),
    ),
    hold: Nullable(Type.Number({ description: 'Credits held for the task while its hold is open; null otherwise.' })),
    created_at: Type.String({ format: 'date-time' }),
    started_at: Nullable(Type.String({ format: 'date-time' })),
    finished_at: Nullable(Type.String({ format: 'date-time' })),
  },
  { $id: 'Task' },
);
export type TaskResource = Static<typeof TaskSchema>;

export const TaskIdParams = Type.Object({ id: Uuid({ description: 'The task id.' }) });

export const ListTasksQuery = Type.Object(
  {
    status: Type.Optional(TaskStatusSchema),
    provider: Type.Optional(StorableText({ maxLength: 64 })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1–100, default 20.' })),
    cursor: Type.Optional(Type.String({ description: 'next_cursor from the previous page.' })),
  },
  { additionalProperties: false },
);

export const TaskListSchema = Type.Object({
  data: Type.Array(TaskSchema),
  next_cursor: Nullable(Type.String()),
});

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'Stable machine code; see docs/errors.md.' }),
    detail: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          field: Type.String({ description: 'Dotted name, kept for older clients; prefer `pointer`.' }),
          pointer: Type.String({ description: 'JSON pointer to the value within the part named by `in`.' }),
          in: Type.Union([Type.Literal('body'), Type.Literal('query'), Type.Literal('path'), Type.Literal('header')]),
          code: Type.String({ description: 'Rule code: REQUIRED, UNKNOWN_FIELD, WRONG_TYPE, …' }),
          message: Type.String(),
        }),
        { description: 'Every bad field, one entry per field and rule.' },
      ),
    ),
  },
  { $id: 'Problem', additionalProperties: true },
);
