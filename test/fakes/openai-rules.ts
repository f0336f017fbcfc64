import type { IncomingMessage } from 'node:http';
import sharp from 'sharp';

/**
 * What the real OpenAI Images API accepts per model and endpoint, and how it refuses the rest
 * (400 with `{error: {message, type, param, code}}`). From openai-node `src/resources/images.ts`
 * and the API reference in that repository (`api_reference/openapi.transformed.yml`); refusal
 * wording follows the API's style (`Unknown parameter: 'x'.`) but is not copied from live answers.
 */

export type Family = 'gpt-image' | 'dall-e-3' | 'dall-e-2';
export interface ModelRules {
  family: Family;
  sizes: string[];
  maxN: number;
  maxPrompt: number;
  qualities: string[];
  edits: boolean;
}

const GPT_IMAGE: ModelRules = {
  family: 'gpt-image',
  sizes: ['1024x1024', '1536x1024', '1024x1536', 'auto'],
  maxN: 10,
  maxPrompt: 32000,
  qualities: ['low', 'medium', 'high', 'auto'],
  edits: true,
};
export const MODELS: Record<string, ModelRules> = {
  'gpt-image-1': GPT_IMAGE,
  'gpt-image-1-mini': GPT_IMAGE,
  'gpt-image-1.5': GPT_IMAGE,
  'dall-e-3': {
    family: 'dall-e-3',
    sizes: ['1024x1024', '1792x1024', '1024x1792'],
    maxN: 1,
    maxPrompt: 4000,
    qualities: ['standard', 'hd', 'auto'],
    edits: false,
  },
  'dall-e-2': {
    family: 'dall-e-2',
    sizes: ['256x256', '512x512', '1024x1024'],
    maxN: 10,
    maxPrompt: 1000,
    qualities: ['standard', 'auto'],
    edits: true,
  },
};

const GENERATION_FIELDS = new Set([
  'prompt',
  'model',
  'n',
  'size',
  'quality',
  'response_format',
  'output_format',
  'output_compression',
  'background',
  'moderation',
  'style',
  'user',
  'stream',
  'partial_images',
]);
const EDIT_FIELDS = new Set([
  'image',
  'image[]',
  'prompt',
  'mask',
  'model',
  'n',
  'size',
  'quality',
  'response_format',
  'output_format',
  'output_compression',
  'background',
  'input_fidelity',
  'user',
  'stream',
  'partial_images',
]);
/** Parameters only the GPT image models take, and those only DALL·E takes. */
const GPT_ONLY = ['output_format', 'output_compression', 'background', 'moderation', 'input_fidelity'];

export interface SeenRequest {
  path: string;
  authorization: string | undefined;
  headers: IncomingMessage['headers'];
  /** The JSON body, or the text fields of the form. */
  fields: Record<string, unknown>;
  /** Files of a multipart body, by field name. */
  files: Record<string, { filename: string; contentType: string; bytes: Buffer }>;
  contentType: string | undefined;
}

export class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null,
    readonly code: string | null,
    readonly type = 'invalid_request_error',
  ) {
    super(message);
  }
}

/** The rules of the real API, checked in the order it reports them. Returns the model's rules. */
export async function validate(seen: SeenRequest): Promise<ModelRules> {
  const { fields, files } = seen;
  const edits = seen.path.endsWith('/edits');
  const allowed = edits ? EDIT_FIELDS : GENERATION_FIELDS;
  for (const key of [...Object.keys(fields), ...Object.keys(files)]) {
    if (!allowed.has(key)) throw new Refusal(400, `Unknown parameter: '${key}'.`, key, 'unknown_parameter');
  }
  if (typeof fields.prompt !== 'string' || fields.prompt === '') {
    throw new Refusal(400, "Missing required parameter: 'prompt'.", 'prompt', 'missing_required_parameter');
  }
  const modelId = String(fields.model ?? (edits ? 'gpt-image-1.5' : 'dall-e-2'));
  const rules = MODELS[modelId];
  if (!rules)
    throw new Refusal(400, `Invalid value: '${modelId}'. Value must be a known image model.`, 'model', 'invalid_value');
  if (edits && !rules.edits) {
    throw new Refusal(
      400,
      `Invalid value: '${modelId}'. Value must be 'dall-e-2' or a GPT image model.`,
      'model',
      'invalid_value',
    );
  }
  if (fields.prompt.length > rules.maxPrompt) {
    throw new Refusal(
      400,
      `Invalid 'prompt': string too long. Expected a string with maximum length ${rules.maxPrompt}, but got a string with length ${fields.prompt.length} instead.`,
      'prompt',
      'string_above_max_length',
    );
  }
  if (rules.family === 'gpt-image' && fields.response_format !== undefined) {
    throw new Refusal(400, "Unknown parameter: 'response_format'.", 'response_format', 'unknown_parameter');
  }
  if (rules.family !== 'gpt-image') {
    for (const key of GPT_ONLY) {
      if (fields[key] !== undefined) throw new Refusal(400, `Unknown parameter: '${key}'.`, key, 'unknown_parameter');
    }
  }
  if (fields.style !== undefined && rules.family !== 'dall-e-3') {
    throw new Refusal(400, "Unknown parameter: 'style'.", 'style', 'unknown_parameter');
  }
  const n = fields.n === undefined ? 1 : Number(fields.n);
  if (!Number.isInteger(n) || n < 1 || n > 10) {
    throw new Refusal(
      400,
      `Invalid 'n': integer between 1 and 10 expected, got ${String(fields.n)}.`,
      'n',
      'integer_out_of_range',
    );
  }
  if (n > rules.maxN)
    throw new Refusal(400, `Invalid 'n': for '${modelId}', only n=1 is supported.`, 'n', 'invalid_value');
  if (fields.size !== undefined && !rules.sizes.includes(String(fields.size))) {
    throw new Refusal(
      400,
      `Invalid value: '${String(fields.size)}'. Supported values are: ${rules.sizes.map((s) => `'${s}'`).join(', ')}.`,
      'size',
      'invalid_value',
    );
  }
  checkChoice(fields, 'quality', rules.qualities);
  checkChoice(fields, 'response_format', ['url', 'b64_json']);
  checkChoice(fields, 'style', ['vivid', 'natural']);
  checkChoice(fields, 'output_format', ['png', 'jpeg', 'webp']);
  checkChoice(fields, 'background', ['transparent', 'opaque', 'auto']);
  checkChoice(fields, 'moderation', ['low', 'auto']);
  checkChoice(fields, 'input_fidelity', ['high', 'low']);
  if (edits) await checkEditImage(files, rules);
  return rules;
}

function checkChoice(fields: Record<string, unknown>, key: string, values: string[]): void {
  const value = fields[key];
  if (value !== undefined && !values.includes(String(value))) {
    throw new Refusal(
      400,
      `Invalid value: '${String(value)}'. Supported values are: ${values.map((v) => `'${v}'`).join(', ')}.`,
      key,
      'invalid_value',
    );
  }
}

async function checkEditImage(files: SeenRequest['files'], rules: ModelRules): Promise<void> {
  const image = files.image ?? files['image[]'];
  if (!image) throw new Refusal(400, "Missing required parameter: 'image'.", 'image', 'missing_required_parameter');
  const magic = image.bytes.subarray(0, 4).toString('hex');
  const isPng = magic === '89504e47';
  if (rules.family === 'dall-e-2') {
    // DALL·E 2: one square PNG; without a mask its transparent pixels are the mask, so it must
    // have some (openai-node before a0010fdb: "If mask is not provided, image must have
    // transparency"). The wording of these refusals is the fake's own.
    if (!isPng) throw new Refusal(400, 'Invalid input image - format must be PNG.', 'image', 'invalid_image_format');
    const metadata = await sharp(image.bytes).metadata();
    if (metadata.width !== metadata.height) {
      throw new Refusal(400, 'Invalid input image - image must be square.', 'image', 'invalid_image');
    }
    const stats = await sharp(image.bytes).stats();
    if (!files.mask && (!metadata.hasAlpha || stats.channels[3]!.min > 0)) {
      throw new Refusal(
        400,
        'Invalid input image - image must have transparency when no mask is given.',
        'image',
        'invalid_image',
      );
    }
    return;
  }
  if (!isPng && magic.slice(0, 6) !== 'ffd8ff' && image.bytes.subarray(8, 12).toString('latin1') !== 'WEBP') {
    throw new Refusal(400, "Invalid file 'image': unsupported mimetype.", 'image', 'invalid_image_format');
  }
}
