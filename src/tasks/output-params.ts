import type { OutputConfig } from '../config/output.js';
import { isLossy, type OutputFormat } from '../domain/output-format.js';
import type { TaskParams } from '../domain/task.js';
import { validationFailed } from '../domain/validation.js';

/**
 * The output settings a task is stored with, resolved at submit from the request and the API's
 * config (EASEL_OUTPUT_FORMAT, EASEL_OUTPUT_QUALITY). They go into `tasks.params`, so the task
 * row alone says what the worker will make, whatever config the worker itself runs with.
 *
 * A quality that could never apply is refused rather than ignored: a client asking for
 * `output_quality` and getting a lossless PNG (or the provider's own bytes) would be surprised.
 */
export function resolveOutputParams(
  request: { output_format?: OutputFormat | undefined; output_quality?: number | undefined },
  config: OutputConfig,
): Pick<TaskParams, 'output_format' | 'output_quality'> {
  const format = request.output_format ?? config.format;
  if (format === undefined || !isLossy(format)) {
    if (request.output_quality !== undefined) {
      const message =
        format === undefined
          ? 'output_quality needs output_format jpeg or webp'
          : `output_quality is only for jpeg and webp; output_format ${format} is lossless`;
      throw validationFailed([
        { field: 'output_quality', pointer: '/output_quality', in: 'body', code: 'NOT_ALLOWED', message },
      ]);
    }
    return format === undefined ? {} : { output_format: format };
  }
  return { output_format: format, output_quality: request.output_quality ?? config.quality };
}
