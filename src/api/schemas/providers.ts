import { Type } from '@sinclair/typebox';
import { UnavailableReasons } from '../../credentials/availability.js';

const Timestamp = Type.String({ format: 'date-time' });

export const UnavailableReasonSchema = Type.Union(
  [
    Type.Literal(UnavailableReasons.NO_CREDENTIALS),
    Type.Literal(UnavailableReasons.ALL_DISABLED),
    Type.Literal(UnavailableReasons.COOLING_DOWN),
    Type.Literal(UnavailableReasons.DAILY_LIMIT_REACHED),
    Type.Literal(UnavailableReasons.SECRET_KEY_MISSING),
  ],
  {
    description:
      '`no_credentials`: the pool has none; `all_disabled`: every credential is disabled; `cooling_down`: resting after a 429 or quota answer; `daily_limit_reached`: daily limits used up until their reset; `secret_key_missing`: no EASEL_SECRET_KEY to open the stored secrets.',
  },
);

const Credits = Type.Number({ minimum: 0, description: 'Credits.' });
const PriceSchema = Type.Union(
  [
    Type.Object({ per_image: Credits }, { additionalProperties: false }),
    Type.Object({ per_second: Credits }, { additionalProperties: false }),
    Type.Object({ per_task: Credits }, { additionalProperties: false }),
  ],
  { description: 'From EASEL_PRICES (the model, else its provider); null when not priced.' },
);

const ModelSchema = Type.Object({
  id: Type.String(),
  kinds: Type.Array(Type.String(), { description: '`txt2img`, `img2img`.' }),
  max_width: Type.Integer(),
  max_height: Type.Integer(),
  max_steps: Type.Integer(),
  sizes: Type.Union([Type.Array(Type.Object({ width: Type.Integer(), height: Type.Integer() })), Type.Null()], {
    description: 'The only sizes the model makes (the first is the default); null when any size within the maxima.',
  }),
  max_n: Type.Union([Type.Integer(), Type.Null()], {
    description: 'Most images per task; null when only the API limit applies.',
  }),
  description: Type.Optional(Type.String()),
  options: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()], {
    description:
      'The `provider_options` this model takes, as a JSON Schema (2020-12); null when it takes any (they are passed through unchecked).',
  }),
  price: Type.Union([PriceSchema, Type.Null()]),
});

const CredentialsSummarySchema = Type.Object(
  {
    pool: Type.String({
      description: 'The credential pool the provider draws on (shared, e.g. by `huggingface` and `hf-space`).',
    }),
    total: Type.Integer(),
    active: Type.Integer({ description: 'Usable now (their concurrency may be busy).' }),
    cooling_down: Type.Integer(),
    exhausted: Type.Integer({ description: 'Daily limit used up until the reset.' }),
    disabled: Type.Integer(),
  },
  { description: 'Counts by state; never a secret. Null for a provider that needs no credential.' },
);

export const ProvidersSchema = Type.Object({
  data: Type.Array(
    Type.Object({
      id: Type.String(),
      concurrency_limit: Type.Integer(),
      available: Type.Boolean({
        description: 'True when the provider needs no credential, or one of its credentials is usable now.',
      }),
      unavailable_reason: Type.Union([UnavailableReasonSchema, Type.Null()]),
      available_again_at: Type.Union([Timestamp, Type.Null()], {
        description: 'When a credential comes back by itself (cooldown end or daily reset); null otherwise.',
      }),
      credentials: Type.Union([CredentialsSummarySchema, Type.Null()]),
      models: Type.Array(ModelSchema),
    }),
  ),
});
