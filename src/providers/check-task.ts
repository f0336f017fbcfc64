import { Value } from '@sinclair/typebox/value';
import { PermanentError } from './errors.js';
import type { ModelInfo, TaskInput } from './types.js';

/** A model as adapters with per-model size rules describe it (Jimeng, Ark). */
export interface CheckedModel {
  info: ModelInfo;
  /** Why this size is refused, beyond the maxima; undefined when it is fine. */
  checkSize?: (width: number, height: number) => string | undefined;
}

/**
 * The last line of defence for tasks queued by other means (submit checks the same from
 * ModelInfo): kind, size, one image per task, the input image of img2img, and the options
 * schema. Each refusal is permanent and names the model; `what` prefixes the message.
 */
export function checkOneImageTask(what: string, model: CheckedModel, input: TaskInput): void {
  const invalid = (code: string, message: string) => new PermanentError(code, `${what}: ${message}`);
  const { id, kinds, maxWidth, maxHeight } = model.info;
  if (!kinds.includes(input.kind)) throw invalid('UNSUPPORTED_KIND', `${id} does not do ${input.kind}`);
  if (input.width > maxWidth || input.height > maxHeight) {
    throw invalid(
      'UNSUPPORTED_SIZE',
      `${id} makes at most ${maxWidth}x${maxHeight}, not ${input.width}x${input.height}`,
    );
  }
  const sizeProblem = model.checkSize?.(input.width, input.height);
  if (sizeProblem) throw invalid('UNSUPPORTED_SIZE', sizeProblem);
  if (input.n > 1) throw invalid('UNSUPPORTED_N', `${id} makes one image per task, not ${input.n}`);
  if (input.kind === 'img2img' && !input.inputImage) {
    throw invalid('INPUT_IMAGE_MISSING', 'an img2img task without its input image');
  }
  const schema = model.info.options;
  if (schema && !Value.Check(schema, input.options)) {
    const first = Value.Errors(schema, input.options).First();
    throw invalid(
      'INVALID_PROVIDER_OPTIONS',
      `provider_options${first?.path ?? ''}: ${first?.message ?? 'not accepted'}`,
    );
  }
}
