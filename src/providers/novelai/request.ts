import { PermanentError } from '../errors.js';
import type { TaskInput } from '../types.js';
import type { NovelAICharacter, NovelAIModel, NovelAIOptions } from './models.js';

/** The body of `POST /ai/generate-image` (NovelAI's `ImageGenerationRequest`). */
export interface NovelAIRequest {
  input: string;
  model: string;
  action: 'generate' | 'img2img';
  parameters: Record<string, unknown>;
}

interface Center {
  x: number;
  y: number;
}

const SIZE_STEP = 64;
const MAX_SCALE = 10;

/** `C3` → the centre of that cell of NovelAI's 5×5 grid, in 0–1 image coordinates. */
export function positionCenter(position: string | undefined): Center {
  if (!position) return { x: 0.5, y: 0.5 };
  const column = position.charCodeAt(0) - 'C'.charCodeAt(0);
  const row = Number(position[1]) - 3;
  // Rounded so that 0.5 + 0.2·k reads 0.1, 0.3, … as the web client sends them, not 0.30000000000000004.
  return { x: Math.round((0.5 + 0.2 * column) * 10) / 10, y: Math.round((0.5 + 0.2 * row) * 10) / 10 };
}

function withQualityTags(prompt: string, model: NovelAIModel, on: boolean): string {
  return on ? `${prompt}, ${model.qualityTags}` : prompt;
}

/** V4 and V4.5: the prompt as base caption plus one caption per character, and the negative the same way. */
function structuredPrompt(input: string, negative: string, characters: NovelAICharacter[], options: NovelAIOptions) {
  const useCoords = options.use_coords ?? characters.some((character) => character.position !== undefined);
  const useOrder = options.use_order ?? true;
  const centered = characters.map((character) => ({ character, center: positionCenter(character.position) }));
  return {
    use_coords: useCoords,
    characterPrompts: centered.map(({ character, center }) => ({
      prompt: character.prompt,
      uc: character.negative_prompt ?? '',
      center,
      enabled: true,
    })),
    v4_prompt: {
      caption: {
        base_caption: input,
        char_captions: centered.map(({ character, center }) => ({
          char_caption: character.prompt,
          centers: [center],
        })),
      },
      use_coords: useCoords,
      use_order: useOrder,
    },
    v4_negative_prompt: {
      caption: {
        base_caption: negative,
        char_captions: centered.map(({ character, center }) => ({
          char_caption: character.negative_prompt ?? '',
          centers: [center],
        })),
      },
      legacy_uc: false,
    },
    legacy_v3_extend: false,
    legacy_uc: false,
  };
}

/**
 * The request NovelAI's web client would send for this task. Checks what the API's generic
 * validation cannot know: sizes are multiples of 64, guidance is NovelAI's 0–10 scale.
 */
export function buildNovelAIRequest(model: NovelAIModel, task: TaskInput): NovelAIRequest {
  if (task.width % SIZE_STEP !== 0 || task.height % SIZE_STEP !== 0) {
    throw new PermanentError(
      'PROVIDER_REJECTED',
      `novelai: width and height must be multiples of 64 (got ${task.width}×${task.height})`,
    );
  }
  if (task.guidance < 0 || task.guidance > MAX_SCALE) {
    throw new PermanentError('PROVIDER_REJECTED', `novelai: guidance must be 0–10 (got ${task.guidance})`);
  }
  const options = task.options as NovelAIOptions;
  const qualityToggle = options.quality_toggle ?? true;
  const input = withQualityTags(task.prompt, model, qualityToggle);
  const negative = task.negativePrompt ?? '';
  const parameters: Record<string, unknown> = {
    params_version: 3,
    width: task.width,
    height: task.height,
    scale: task.guidance,
    sampler: options.sampler ?? 'k_euler_ancestral',
    steps: task.steps,
    n_samples: task.n,
    seed: task.seed,
    ucPreset: options.uc_preset ?? 0,
    qualityToggle,
    noise_schedule: options.noise_schedule ?? (model.family === 'v3' ? 'native' : 'karras'),
    cfg_rescale: options.cfg_rescale ?? 0,
    sm: false,
    sm_dyn: false,
    dynamic_thresholding: false,
    legacy: false,
    prefer_brownian: true,
    deliberate_euler_ancestral_bug: false,
    skip_cfg_above_sigma: options.variety_plus ? model.varietySigma : null,
    negative_prompt: negative,
    ...(model.family === 'v4' ? structuredPrompt(input, negative, options.characters ?? [], options) : {}),
  };
  if (task.kind === 'img2img') {
    if (!task.inputImage) throw new PermanentError('PROVIDER_REJECTED', 'novelai: img2img without an input image');
    Object.assign(parameters, {
      image: task.inputImage.data.toString('base64'),
      strength: task.strength ?? 0.7,
      noise: options.noise ?? 0,
      extra_noise_seed: task.seed,
      add_original_image: true,
    });
  }
  return { input, model: model.info.id, action: task.kind === 'img2img' ? 'img2img' : 'generate', parameters };
}
