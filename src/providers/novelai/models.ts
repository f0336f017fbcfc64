import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { ModelInfo } from '../types.js';

/**
 * NovelAI's image models (the ids of Aedial's novelai-api `ImageModel` and the web client),
 * by family: V3 takes a flat prompt; V4 and V4.5 take the structured prompt with character
 * captions. `qualityTags` is what the web client appends to the prompt when "Add Quality
 * Tags" is on (NovelAI does not add them itself: `qualityToggle` is only recorded).
 */
export type NovelAIFamily = 'v3' | 'v4';

export interface NovelAIModel {
  info: ModelInfo;
  family: NovelAIFamily;
  qualityTags: string;
  /** `skip_cfg_above_sigma` when "Variety+" is on (the web client's per-model value). */
  varietySigma: number;
}

export const NOVELAI_SAMPLERS = [
  'k_euler_ancestral',
  'k_euler',
  'k_dpmpp_2s_ancestral',
  'k_dpmpp_2m',
  'k_dpmpp_2m_sde',
  'k_dpmpp_sde',
] as const;
const V3_SAMPLERS = [...NOVELAI_SAMPLERS, 'ddim_v3'] as const;
export const NOVELAI_NOISE_SCHEDULES = ['karras', 'native', 'exponential', 'polyexponential'] as const;
/** NovelAI's 5×5 grid of character positions: column A–E (left to right), row 1–5 (top to bottom). */
export const POSITION_PATTERN = '^[A-E][1-5]$';
export const MAX_CHARACTERS = 6;

const choice = (values: readonly string[], description: string) =>
  Type.Union(
    values.map((value) => Type.Literal(value)),
    { description },
  );

const common = (samplers: readonly string[]) => ({
  sampler: Type.Optional(choice(samplers, 'The sampler (default k_euler_ancestral).')),
  noise_schedule: Type.Optional(
    choice(NOVELAI_NOISE_SCHEDULES, 'The noise schedule (default karras for V4 and V4.5, native for V3).'),
  ),
  quality_toggle: Type.Optional(
    Type.Boolean({
      description: "Append the model's quality tags to the prompt, as the web client does (default true).",
    }),
  ),
  uc_preset: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 3,
      description:
        "NovelAI's undesired-content preset index, recorded with the image (default 0). Put the preset's words in negative_prompt: the web client adds them itself, the API does not.",
    }),
  ),
  cfg_rescale: Type.Optional(
    Type.Number({ minimum: 0, maximum: 1, description: 'Prompt guidance rescale, 0–1 (default 0).' }),
  ),
  variety_plus: Type.Optional(
    Type.Boolean({ description: 'Variety+: skip guidance in the early steps for more varied images (default false).' }),
  ),
  noise: Type.Optional(
    Type.Number({
      minimum: 0,
      maximum: 0.99,
      description: 'img2img: extra noise added to the input image (default 0).',
    }),
  ),
});

const Character = Type.Object(
  {
    prompt: Type.String({ minLength: 1, maxLength: 4000, description: "The character's own caption." }),
    negative_prompt: Type.Optional(Type.String({ maxLength: 4000, description: 'What this character must not have.' })),
    position: Type.Optional(
      Type.String({
        pattern: POSITION_PATTERN,
        description: 'Where the character stands on a 5×5 grid: A–E left to right, 1–5 top to bottom (C3 = centre).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type NovelAICharacter = Static<typeof Character>;

export const V3Options = Type.Object(common(V3_SAMPLERS), { additionalProperties: false });
export const V4Options = Type.Object(
  {
    ...common(NOVELAI_SAMPLERS),
    characters: Type.Optional(
      Type.Array(Character, {
        maxItems: MAX_CHARACTERS,
        description: 'Up to 6 characters, each with its own caption, negative caption and position.',
      }),
    ),
    use_coords: Type.Optional(
      Type.Boolean({ description: 'Place characters at their positions (default: true when any character has one).' }),
    ),
    use_order: Type.Optional(Type.Boolean({ description: 'Characters listed first weigh more (default true).' })),
  },
  { additionalProperties: false },
);
export type NovelAIOptions = Static<typeof V4Options> & { sampler?: string };

const info = (id: string, description: string, options: TSchema): ModelInfo => ({
  id,
  kinds: ['txt2img', 'img2img'],
  // NovelAI takes multiples of 64 up to about 3 megapixels (the large presets, 1536×2048 at most).
  maxWidth: 2048,
  maxHeight: 2048,
  maxSteps: 50,
  maxN: 8,
  description,
  options,
});

const V45_TAGS = 'very aesthetic, masterpiece, no text';

export const NOVELAI_MODELS: readonly NovelAIModel[] = [
  {
    info: info('nai-diffusion-4-5-full', 'NovelAI Diffusion V4.5 Full (anime)', V4Options),
    family: 'v4',
    qualityTags: V45_TAGS,
    varietySigma: 58,
  },
  {
    info: info('nai-diffusion-4-5-curated', 'NovelAI Diffusion V4.5 Curated (anime, safe-for-work data)', V4Options),
    family: 'v4',
    qualityTags: `${V45_TAGS}, -0.8::feet::, rating:general`,
    varietySigma: 58,
  },
  {
    info: info('nai-diffusion-4-full', 'NovelAI Diffusion V4 Full (anime)', V4Options),
    family: 'v4',
    qualityTags: 'no text, best quality, very aesthetic, absurdres',
    varietySigma: 19,
  },
  {
    info: info('nai-diffusion-4-curated-preview', 'NovelAI Diffusion V4 Curated', V4Options),
    family: 'v4',
    qualityTags: 'rating:general, best quality, very aesthetic, absurdres',
    varietySigma: 16.92517469515569,
  },
  {
    info: info('nai-diffusion-3', 'NovelAI Diffusion Anime V3 (SDXL)', V3Options),
    family: 'v3',
    qualityTags: 'best quality, amazing quality, very aesthetic, absurdres',
    varietySigma: 9.36441710371274,
  },
  {
    info: info('nai-diffusion-furry-3', 'NovelAI Diffusion Furry V3 (SDXL)', V3Options),
    family: 'v3',
    qualityTags: '{best quality}, {amazing quality}',
    varietySigma: 11.84515480302779,
  },
];

export const NOVELAI_MODEL_IDS = NOVELAI_MODELS.map((model) => model.info.id);

export const findNovelAIModel = (id: string) => NOVELAI_MODELS.find((model) => model.info.id === id);
