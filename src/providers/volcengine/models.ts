import { Type, type TSchema } from '@sinclair/typebox';
import type { ModelInfo, TaskInput } from '../types.js';

/**
 * The Jimeng (即梦) models of Volcengine's visual API, by `req_key`, and the submit body each one
 * takes. Field names and ranges: the jimeng_t2i_v40 API reference (a copy of volcengine.com docs
 * 85621) and, for v3.0/v3.1 and the 3.0 img2img, the parameters several independent clients send.
 * Every model makes one image per task here; seeds are sent as int32, the range these APIs take.
 */

export interface JimengModel {
  info: ModelInfo;
  /** Extra size rule beyond the per-side maxima; a message when the size is refused. */
  checkSize?: (width: number, height: number) => string | undefined;
  body: (input: TaskInput) => Record<string, unknown>;
}

/** Options read at GetResult (`req_json`), shared by every model: how results come back and the visible logo. */
const RESULT_OPTIONS = {
  return_url: Type.Optional(
    Type.Boolean({
      description:
        'Ask for image URLs (kept 24 h by Volcengine; Easel downloads them at once) instead of base64 in the answer. Default false.',
    }),
  ),
  logo_info: Type.Optional(
    Type.Object(
      {
        add_logo: Type.Optional(Type.Boolean({ description: 'Add a visible "AI generated" mark. Default false.' })),
        position: Type.Optional(
          Type.Integer({
            minimum: 0,
            maximum: 3,
            description: '0 bottom right (default), 1 bottom left, 2 top left, 3 top right.',
          }),
        ),
        language: Type.Optional(
          Type.Integer({ minimum: 0, maximum: 1, description: '0 Chinese (default), 1 English.' }),
        ),
        opacity: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Opacity of the mark, default 1.' })),
        logo_text_content: Type.Optional(Type.String({ maxLength: 100, description: 'Custom text of the mark.' })),
      },
      { additionalProperties: false, description: 'The visible watermark (`logo_info` of req_json).' },
    ),
  ),
};

const usePreLlm = Type.Optional(
  Type.Boolean({ description: 'Let Volcengine expand the prompt with its language model first. Default true.' }),
);

const options = (own: Record<string, TSchema>): TSchema =>
  Type.Object({ ...own, ...RESULT_OPTIONS }, { additionalProperties: false });

/** The int32 seed a Volcengine API takes for Easel's 0…2³²−1 seed. */
export const providerSeed = (seed: number): number => seed % 2_147_483_648;

/** Options that go into the submit body as they are (result options go in req_json instead). */
function submitOptions(input: TaskInput, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(
    keys.filter((key) => input.options[key] !== undefined).map((key) => [key, input.options[key]]),
  );
}

function v3(id: string, version: string): JimengModel {
  return {
    info: {
      id,
      kinds: ['txt2img'],
      maxWidth: 2048,
      maxHeight: 2048,
      maxSteps: 1,
      maxN: 1,
      description: `Jimeng text-to-image ${version} (即梦文生图 ${version}). 512–2048 per side; recommended 1328x1328, 1472x1104, 1584x1056, 1664x936, 2016x864. Prompt up to 800 characters.`,
      options: options({ use_pre_llm: usePreLlm }),
    },
    checkSize: (width, height) =>
      width < 512 || height < 512 ? `${id} makes 512 to 2048 pixels per side, not ${width}x${height}` : undefined,
    body: (input) => ({
      req_key: id,
      prompt: input.prompt,
      seed: providerSeed(input.seed),
      width: input.width,
      height: input.height,
      ...submitOptions(input, ['use_pre_llm']),
    }),
  };
}

const V40_MIN_AREA = 1024 * 1024;
const V40_MAX_AREA = 4096 * 4096;

const JIMENG_V40: JimengModel = {
  info: {
    id: 'jimeng_t2i_v40',
    kinds: ['txt2img'],
    maxWidth: 4096,
    maxHeight: 4096,
    maxSteps: 1,
    maxN: 1,
    description:
      'Jimeng 4.0 (即梦4.0). Width×height between 1024² and 4096² pixels (e.g. 2048x2048, 2304x1728, 2560x1440), aspect ratio at most 16:1. Image inputs of 4.0 are URLs only, so img2img goes to jimeng_i2i_v30.',
    options: options({
      scale: Type.Optional(
        Type.Number({
          minimum: 0,
          maximum: 1,
          description: 'How strongly the prompt steers the image, 0–1. Default 0.5.',
        }),
      ),
      force_single: Type.Optional(
        Type.Boolean({
          description:
            'Default true here: one image. false lets the model return a set of images when the prompt asks for one (each is billed).',
        }),
      ),
      min_ratio: Type.Optional(
        Type.Number({ minimum: 0.0625, maximum: 16, description: 'Lowest width/height ratio, default 1/3.' }),
      ),
      max_ratio: Type.Optional(
        Type.Number({ minimum: 0.0625, maximum: 16, description: 'Highest width/height ratio, default 3.' }),
      ),
    }),
  },
  checkSize: (width, height) => {
    const area = width * height;
    if (area < V40_MIN_AREA || area > V40_MAX_AREA) {
      return `jimeng_t2i_v40 makes images of 1024x1024 to 4096x4096 pixels in area, not ${width}x${height}`;
    }
    return undefined;
  },
  body: (input) => ({
    req_key: 'jimeng_t2i_v40',
    prompt: input.prompt,
    width: input.width,
    height: input.height,
    // Without it one call may answer with several images, each billed; a task asked for one.
    force_single: true,
    ...submitOptions(input, ['scale', 'force_single', 'min_ratio', 'max_ratio']),
  }),
};

const JIMENG_I2I_V30: JimengModel = {
  info: {
    id: 'jimeng_i2i_v30',
    kinds: ['img2img'],
    maxWidth: 2048,
    maxHeight: 2048,
    maxSteps: 1,
    maxN: 1,
    description:
      'Jimeng image-to-image 3.0 (即梦图生图3.0智能参考): one input image edited by the prompt. The task strength becomes `scale` (how far the prompt may move away from the input).',
    options: options({
      scale: Type.Optional(
        Type.Number({
          minimum: 0,
          maximum: 1,
          description: 'Prompt influence against the input image, 0–1; defaults to the task strength.',
        }),
      ),
    }),
  },
  checkSize: (width, height) =>
    width < 512 || height < 512
      ? `jimeng_i2i_v30 makes 512 to 2048 pixels per side, not ${width}x${height}`
      : undefined,
  body: (input) => ({
    req_key: 'jimeng_i2i_v30',
    prompt: input.prompt,
    binary_data_base64: input.inputImage ? [input.inputImage.data.toString('base64')] : [],
    seed: providerSeed(input.seed),
    width: input.width,
    height: input.height,
    scale: input.options.scale ?? input.strength ?? 0.5,
  }),
};

export const JIMENG_MODELS: readonly JimengModel[] = [
  v3('jimeng_t2i_v30', '3.0'),
  v3('jimeng_t2i_v31', '3.1'),
  JIMENG_V40,
  JIMENG_I2I_V30,
];

export const JIMENG_MODEL_IDS: readonly string[] = JIMENG_MODELS.map((model) => model.info.id);

export function findJimengModel(id: string): JimengModel | undefined {
  return JIMENG_MODELS.find((model) => model.info.id === id);
}

/** GetResult's `req_json`: a JSON-encoded string, not an object. */
export function resultReqJson(input: TaskInput): string {
  const reqJson: Record<string, unknown> = { return_url: input.options.return_url === true };
  if (input.options.logo_info !== undefined) reqJson.logo_info = input.options.logo_info;
  return JSON.stringify(reqJson);
}
