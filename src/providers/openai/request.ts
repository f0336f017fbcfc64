import { Value } from '@sinclair/typebox/value';
import { PermanentError } from '../errors.js';
import type { TaskInput } from '../types.js';
import type { OpenAIModel } from './models.js';

/**
 * A task turned into OpenAI's request: `POST /images/generations` (JSON) for txt2img and
 * `POST /images/edits` (multipart/form-data) for img2img. Field names are the API's
 * (`CreateImageRequest`, `CreateImageEditRequest`). Easel's steps, guidance, negative prompt,
 * seed and strength have no OpenAI counterpart and are not sent.
 */
export type OpenAIRequest =
  { path: '/images/generations'; body: Record<string, unknown> } | { path: '/images/edits'; body: FormData };

/** Options OpenAI takes on one endpoint only: sending them to the other is a 400 there. */
const GENERATIONS_ONLY = ['moderation', 'style'];
const EDITS_ONLY = ['input_fidelity'];

const invalid = (message: string) => new PermanentError('INVALID_PROVIDER_OPTIONS', `openai: ${message}`);

/**
 * The last line of defence for tasks queued by other means (submit checks the same from
 * ModelInfo): the model's fixed sizes, its largest `n`, and options that belong to one endpoint.
 */
function checkTask(model: OpenAIModel, input: TaskInput): void {
  const { id, sizes, maxN } = model.info;
  if (!sizes.some((size) => size.width === input.width && size.height === input.height)) {
    const allowed = sizes.map((size) => `${size.width}x${size.height}`).join(', ');
    throw new PermanentError(
      'UNSUPPORTED_SIZE',
      `openai: ${id} makes only ${allowed}, not ${input.width}x${input.height}`,
    );
  }
  if (input.n > maxN) {
    throw new PermanentError(
      'UNSUPPORTED_N',
      `openai: ${id} makes at most ${maxN} image${maxN === 1 ? '' : 's'} per task, not ${input.n}`,
    );
  }
  if (!model.info.kinds.includes(input.kind)) {
    throw new PermanentError('UNSUPPORTED_KIND', `openai: ${id} does not do ${input.kind}`);
  }
  const schema = model.info.options;
  if (schema && !Value.Check(schema, input.options)) {
    const first = Value.Errors(schema, input.options).First();
    throw invalid(`provider_options${first?.path ?? ''}: ${first?.message ?? 'not accepted'}`);
  }
  const wrongEndpoint = input.kind === 'img2img' ? GENERATIONS_ONLY : EDITS_ONLY;
  for (const key of wrongEndpoint) {
    if (key in input.options)
      throw invalid(`${key} applies to ${input.kind === 'img2img' ? 'txt2img' : 'img2img'} only`);
  }
}

/** Common fields in the model's own terms; DALL·E is asked for base64 unless the task wants a URL. */
function commonFields(model: OpenAIModel, input: TaskInput): Record<string, string | number> {
  const fields: Record<string, string | number> = {
    model: model.info.id,
    prompt: input.prompt,
    n: input.n,
    size: `${input.width}x${input.height}`,
  };
  for (const [key, value] of Object.entries(input.options)) fields[key] = value as string | number;
  // GPT image models always answer base64 and refuse `response_format` with a 400.
  if (model.family !== 'gpt-image' && fields.response_format === undefined) fields.response_format = 'b64_json';
  return fields;
}

const EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

export function buildOpenAIRequest(model: OpenAIModel, input: TaskInput): OpenAIRequest {
  checkTask(model, input);
  const fields = commonFields(model, input);
  if (input.kind === 'txt2img') return { path: '/images/generations', body: fields };
  if (!input.inputImage)
    throw new PermanentError('INPUT_IMAGE_MISSING', 'openai: an img2img task without its input image');
  const form = new FormData();
  for (const [key, value] of Object.entries(fields)) form.append(key, String(value));
  // One image goes in the field `image` (openai-node appends `image[]` only for an array of them).
  const { data, contentType } = input.inputImage;
  const extension = EXTENSIONS[contentType] ?? 'png';
  form.append('image', new Blob([data], { type: contentType }), `input.${extension}`);
  return { path: '/images/edits', body: form };
}
