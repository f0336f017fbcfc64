import { Type, type TSchema } from '@sinclair/typebox';
import type { ModelInfo } from '../types.js';

/**
 * The OpenAI image models and what each family takes (openai-node `src/resources/images.ts`,
 * `ImageGenerateParamsBase` / `ImageEditParamsBase`, and the API reference's
 * `CreateImageRequest` / `CreateImageEditRequest`). The families differ in sizes, `n`,
 * `quality`, and in how results come back: GPT image models always answer base64 and refuse
 * `response_format`; DALL·E answers a URL unless asked for `b64_json`.
 */
export type OpenAIFamily = 'gpt-image' | 'dall-e-3' | 'dall-e-2';

/** `info.sizes` (the only sizes the model makes) and `info.maxN` are always set for OpenAI models. */
export interface OpenAIModel {
  info: ModelInfo & Required<Pick<ModelInfo, 'sizes' | 'maxN'>>;
  family: OpenAIFamily;
}

/** `['1024x1024', …]` → ModelInfo sizes. */
const sizesOf = (sizes: readonly string[]) =>
  sizes.map((size) => {
    const [width, height] = size.split('x').map(Number) as [number, number];
    return { width, height };
  });

const choice = (values: readonly string[], description: string) =>
  Type.Union(
    values.map((value) => Type.Literal(value)),
    { description },
  );

const responseFormat = choice(
  ['b64_json', 'url'],
  'How OpenAI hands the image back: b64_json (default here, one round trip) or url (downloaded by Easel at once; OpenAI keeps it 60 minutes).',
);

function gptImageOptions(inputFidelity: boolean): TSchema {
  return Type.Object(
    {
      quality: Type.Optional(
        choice(['low', 'medium', 'high', 'auto'], 'Rendering quality; auto (default) lets the model choose.'),
      ),
      background: Type.Optional(
        choice(['transparent', 'opaque', 'auto'], 'Background; transparent needs output_format png or webp.'),
      ),
      output_format: Type.Optional(choice(['png', 'jpeg', 'webp'], 'Format of the returned image (default png).')),
      output_compression: Type.Optional(
        Type.Integer({ minimum: 0, maximum: 100, description: 'Compression 0–100 % for jpeg and webp (default 100).' }),
      ),
      moderation: Type.Optional(
        choice(['low', 'auto'], 'Content-moderation level for txt2img: low is less restrictive (default auto).'),
      ),
      ...(inputFidelity
        ? {
            input_fidelity: Type.Optional(
              choice(
                ['high', 'low'],
                'img2img: how closely to keep the input image’s features, faces above all (default low).',
              ),
            ),
          }
        : {}),
    },
    { additionalProperties: false },
  );
}

const DALL_E_3_OPTIONS = Type.Object(
  {
    quality: Type.Optional(choice(['standard', 'hd'], 'hd gives finer detail and consistency (default standard).')),
    style: Type.Optional(
      choice(['vivid', 'natural'], 'vivid leans hyper-real and dramatic, natural less so (default vivid).'),
    ),
    response_format: Type.Optional(responseFormat),
  },
  { additionalProperties: false },
);

const DALL_E_2_OPTIONS = Type.Object(
  { response_format: Type.Optional(responseFormat) },
  { additionalProperties: false },
);

const GPT_IMAGE_SIZES = ['1024x1024', '1536x1024', '1024x1536'] as const;

function gptImage(id: string, description: string, inputFidelity: boolean): OpenAIModel {
  return {
    family: 'gpt-image',
    info: {
      id,
      sizes: sizesOf(GPT_IMAGE_SIZES),
      maxN: 10,
      kinds: ['txt2img', 'img2img'],
      maxWidth: 1536,
      maxHeight: 1536,
      // OpenAI takes no step count; 1 makes a request for more steps a 400 at submit, not a silent no-op.
      maxSteps: 1,
      description: `${description} Sizes ${GPT_IMAGE_SIZES.join(', ')}; n 1–10; no seed.`,
      options: gptImageOptions(inputFidelity),
    },
  };
}

export const OPENAI_MODELS: readonly OpenAIModel[] = [
  gptImage('gpt-image-1', 'OpenAI GPT Image 1: generations and edits (img2img).', true),
  gptImage('gpt-image-1-mini', 'OpenAI GPT Image 1 mini: the cheaper GPT image model.', false),
  gptImage('gpt-image-1.5', 'OpenAI GPT Image 1.5: generations and edits (img2img).', true),
  {
    family: 'dall-e-3',
    info: {
      id: 'dall-e-3',
      sizes: sizesOf(['1024x1024', '1792x1024', '1024x1792']),
      maxN: 1,
      kinds: ['txt2img'],
      maxWidth: 1792,
      maxHeight: 1792,
      maxSteps: 1,
      description: 'OpenAI DALL·E 3: txt2img only. Sizes 1024x1024, 1792x1024, 1024x1792; n 1 only; no seed.',
      options: DALL_E_3_OPTIONS,
    },
  },
  {
    family: 'dall-e-2',
    info: {
      id: 'dall-e-2',
      sizes: sizesOf(['256x256', '512x512', '1024x1024']),
      maxN: 10,
      kinds: ['txt2img', 'img2img'],
      maxWidth: 1024,
      maxHeight: 1024,
      maxSteps: 1,
      description: 'OpenAI DALL·E 2: generations and square edits. Sizes 256x256, 512x512, 1024x1024; n 1–10; no seed.',
      options: DALL_E_2_OPTIONS,
    },
  },
];

export const OPENAI_MODEL_IDS: readonly string[] = OPENAI_MODELS.map((model) => model.info.id);

export function findOpenAIModel(id: string): OpenAIModel | undefined {
  return OPENAI_MODELS.find((model) => model.info.id === id);
}
