import { Type, type TSchema } from '@sinclair/typebox';
import type { ModelInfo, TaskInput } from '../types.js';

/**
 * The Seedream/SeedEdit models of Volcengine Ark's images endpoint, under the names users know
 * them by, with the dated model id each one is sent as. Fields: volcengine-python-sdk
 * `volcenginesdkarkruntime/resources/images/images.py` (`generate`); ranges and defaults from the
 * Ark image-generation API reference (docs 82379): `seed` and `guidance_scale` exist for the 3.0
 * models only, sizes are `WxH`, the 4.0 model takes 1280x720 to 4096x4096 pixels in area.
 */

export interface ArkModel {
  info: ModelInfo;
  /** The dated Ark model id sent unless `ARK_MODEL_ENDPOINTS` names another. */
  apiModel: string;
  /** Extra size rule beyond the per-side maxima; a message when the size is refused. */
  checkSize?: (width: number, height: number) => string | undefined;
  /** Model-specific body fields (prompt, model, image and common options are added by the request builder). */
  fields: (input: TaskInput, seed: number) => Record<string, unknown>;
}

const responseFormat = Type.Optional(
  Type.Union([Type.Literal('b64_json'), Type.Literal('url')], {
    description:
      'How Ark hands the image back: b64_json (default here, one round trip) or url (kept 24 h by Ark; Easel downloads it at once).',
  }),
);
const watermark = Type.Optional(
  Type.Boolean({ description: 'Add Ark’s "AI generated" mark at the bottom right. Ark’s default is true.' }),
);
const guidanceScale = (fallback: number) =>
  Type.Optional(
    Type.Number({
      minimum: 1,
      maximum: 10,
      description: `How closely the image follows the prompt, 1–10 (Ark's default ${fallback}). Easel's guidance field is not sent.`,
    }),
  );

const schema = (own: Record<string, TSchema>): TSchema =>
  Type.Object({ ...own, response_format: responseFormat, watermark }, { additionalProperties: false });

/** Ark's seed range is [-1, 2147483647]; Easel seeds go up to 2³²−1. */
export const arkSeed = (seed: number): number => seed % 2_147_483_648;

const pick = (input: TaskInput, keys: readonly string[]) =>
  Object.fromEntries(keys.filter((key) => input.options[key] !== undefined).map((key) => [key, input.options[key]]));

const SEEDREAM_40_MIN_AREA = 1280 * 720;
const SEEDREAM_40_MAX_AREA = 4096 * 4096;

export const ARK_MODELS: readonly ArkModel[] = [
  {
    apiModel: 'doubao-seedream-3-0-t2i-250415',
    info: {
      id: 'doubao-seedream-3.0-t2i',
      kinds: ['txt2img'],
      maxWidth: 2048,
      maxHeight: 2048,
      maxSteps: 1,
      maxN: 1,
      description:
        'Doubao Seedream 3.0 text-to-image on Ark. 512–2048 per side; recommended 1024x1024, 864x1152, 1152x864, 1280x720, 720x1280, 832x1248, 1248x832, 1512x648. Seed is sent.',
      options: schema({ guidance_scale: guidanceScale(2.5) }),
    },
    checkSize: (width, height) =>
      width < 512 || height < 512
        ? `doubao-seedream-3.0-t2i makes 512 to 2048 pixels per side, not ${width}x${height}`
        : undefined,
    fields: (input, seed) => ({ size: `${input.width}x${input.height}`, seed, ...pick(input, ['guidance_scale']) }),
  },
  {
    apiModel: 'doubao-seededit-3-0-i2i-250628',
    info: {
      id: 'doubao-seededit-3.0-i2i',
      kinds: ['img2img'],
      maxWidth: 4096,
      maxHeight: 4096,
      maxSteps: 1,
      maxN: 1,
      description:
        'Doubao SeedEdit 3.0 on Ark: edits one input image as the prompt says. The result keeps the input’s size (`size: adaptive`); width and height only bound the input.',
      options: schema({ guidance_scale: guidanceScale(5.5) }),
    },
    fields: (_input, seed) => ({ size: 'adaptive', seed, ...pick(_input, ['guidance_scale']) }),
  },
  {
    apiModel: 'doubao-seedream-4-0-250828',
    info: {
      id: 'doubao-seedream-4.0',
      kinds: ['txt2img', 'img2img'],
      maxWidth: 4096,
      maxHeight: 4096,
      maxSteps: 1,
      maxN: 1,
      description:
        'Doubao Seedream 4.0 on Ark: text-to-image and image editing with one reference image. Width×height between 1280x720 and 4096x4096 pixels in area (e.g. 2048x2048, 2304x1728, 2560x1440). No seed.',
      options: schema({}),
    },
    checkSize: (width, height) => {
      const area = width * height;
      return area < SEEDREAM_40_MIN_AREA || area > SEEDREAM_40_MAX_AREA
        ? `doubao-seedream-4.0 makes images of 1280x720 to 4096x4096 pixels in area, not ${width}x${height}`
        : undefined;
    },
    // One image per task: the model may otherwise answer a prompt asking for a series with several.
    fields: (input) => ({ size: `${input.width}x${input.height}`, sequential_image_generation: 'disabled' }),
  },
];

export const ARK_MODEL_IDS: readonly string[] = ARK_MODELS.map((model) => model.info.id);

export function findArkModel(id: string): ArkModel | undefined {
  return ARK_MODELS.find((model) => model.info.id === id);
}
