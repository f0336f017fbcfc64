import type { TaskInput } from '../types.js';
import { A1111_DEFAULT_MODEL } from './config.js';
import type { A1111Options } from './options.js';

/** The JSON body of `POST /sdapi/v1/txt2img` or `/img2img` (field names from `modules/api/models.py`). */
export type GenerationBody = Record<string, unknown>;

/** `<lora:name:weight>` tags for the `loras` option, appended to the prompt the way the WebUI reads them. */
export function loraTags(loras: A1111Options['loras']): string {
  return (loras ?? []).map((lora) => `<lora:${lora.name}:${lora.weight ?? 1}>`).join(' ');
}

/**
 * One task is one WebUI job of `n` images in a single batch (`batch_size = n`, `n_iter = 1`), so
 * progress covers the whole task. The options were checked against A1111OptionsSchema at submit.
 */
export function buildGenerationBody(input: TaskInput): GenerationBody {
  const options = input.options as A1111Options;
  const tags = loraTags(options.loras);
  const overrides: Record<string, unknown> = { ...options.override_settings };
  const checkpoint = options.checkpoint ?? (input.model === A1111_DEFAULT_MODEL ? undefined : input.model);
  if (checkpoint) overrides.sd_model_checkpoint = checkpoint;
  if (options.clip_skip !== undefined) overrides.CLIP_stop_at_last_layers = options.clip_skip;

  const body: GenerationBody = {
    prompt: tags ? `${input.prompt} ${tags}` : input.prompt,
    negative_prompt: input.negativePrompt ?? '',
    width: input.width,
    height: input.height,
    steps: input.steps,
    cfg_scale: input.guidance,
    seed: input.seed,
    batch_size: input.n,
    n_iter: 1,
    send_images: true,
    save_images: false,
  };
  if (options.sampler_name) body.sampler_name = options.sampler_name;
  if (options.scheduler) body.scheduler = options.scheduler;
  if (options.restore_faces !== undefined) body.restore_faces = options.restore_faces;
  if (options.tiling !== undefined) body.tiling = options.tiling;
  if (Object.keys(overrides).length > 0) {
    body.override_settings = overrides;
    body.override_settings_restore_afterwards = true;
  }

  if (input.kind === 'img2img') {
    if (!input.inputImage) throw new Error('an img2img task reached the adapter without its input image');
    body.init_images = [input.inputImage.data.toString('base64')];
    body.denoising_strength = input.strength ?? 0.75;
    body.resize_mode = 0;
    return body;
  }
  if (options.enable_hr) {
    body.enable_hr = true;
    if (options.hr_scale !== undefined) body.hr_scale = options.hr_scale;
    if (options.hr_upscaler) body.hr_upscaler = options.hr_upscaler;
    if (options.hr_second_pass_steps !== undefined) body.hr_second_pass_steps = options.hr_second_pass_steps;
    if (options.hr_denoising_strength !== undefined) body.denoising_strength = options.hr_denoising_strength;
  }
  return body;
}
