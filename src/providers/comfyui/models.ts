import { Type, type TSchema } from '@sinclair/typebox';
import type { ModelInfo, TaskKind } from '../types.js';
import type { ComfyUIConfig } from './config.js';

/** ComfyUI checks sizes itself (EmptyLatentImage takes up to 16384); this keeps requests sane. */
const MAX_SIDE = 4096;
/** A batch larger than this rarely fits a consumer GPU at SD sizes. */
const MAX_BATCH = 8;

const OPTIONS: TSchema = Type.Object(
  {
    checkpoint: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description:
          'The checkpoint file the template\'s {{model}} input receives (a name from ComfyUI\'s models/checkpoints, e.g. "sd_xl_base_1.0.safetensors"); defaults to COMFYUI_CHECKPOINT.',
      }),
    ),
  },
  { additionalProperties: false },
);

/** One model per workflow: the kinds it has templates for, `n` > 1 only where it marks `{{batch_size}}`. */
export function listModels(config: ComfyUIConfig): ModelInfo[] {
  return config.workflows.map((workflow) => {
    const kinds = (['txt2img', 'img2img'] as const).filter((kind) => workflow[kind]) as TaskKind[];
    const batches = kinds.every((kind) => workflow[kind]?.placeholders.has('batch_size'));
    return {
      id: workflow.name,
      kinds,
      maxWidth: MAX_SIDE,
      maxHeight: MAX_SIDE,
      maxSteps: 150,
      maxN: batches ? MAX_BATCH : 1,
      description: `ComfyUI workflow "${workflow.name}" (${kinds
        .map((kind) => `${kind}: ${workflow[kind]!.source}`)
        .join('; ')}) on your own ComfyUI servers (COMFYUI_URLS).`,
      options: OPTIONS,
    };
  });
}
