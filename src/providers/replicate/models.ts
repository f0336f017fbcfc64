import { Type, type TObject } from '@sinclair/typebox';
import { PermanentError } from '../errors.js';
import type { ModelInfo, TaskInput } from '../types.js';

/**
 * What Easel knows about a Replicate model: how a task's parameters become that model's `input`
 * (field names differ between models, even between versions of one family) and which
 * `provider_options` it takes. Models are matched by `owner/name`, so any version of a known
 * model uses its mapper. Sources for each schema are in docs/providers/replicate.md.
 */
export interface ReplicateModelSpec {
  description: string;
  maxWidth: number;
  maxHeight: number;
  maxSteps: number;
  /** How many images one prediction can make (1 when the model has no count field). */
  maxOutputs: number;
  options?: TObject;
  /** The model's own input for a task, before provider_options are laid over it. */
  input(task: TaskInput): Record<string, unknown>;
}

const SDXL_MAX = 2048;

/** Animagine XL 4.0 (aisha-ai-official): `steps`, `cfg_scale`, seed -1 = random, no count field. */
const animagine40: ReplicateModelSpec = {
  description: 'Animagine XL 4.0 (SDXL anime model). One image per prediction; tags work best as prompts.',
  maxWidth: SDXL_MAX,
  maxHeight: SDXL_MAX,
  maxSteps: 100,
  maxOutputs: 1,
  options: Type.Object(
    {
      prepend_preprompt: Type.Optional(
        Type.Boolean({
          description: "Let the model prepend its recommended quality tags to the prompt (the model's default).",
        }),
      ),
    },
    { additionalProperties: false },
  ),
  input: (task) => ({
    prompt: task.prompt,
    ...(task.negativePrompt ? { negative_prompt: task.negativePrompt } : {}),
    width: task.width,
    height: task.height,
    steps: task.steps,
    cfg_scale: task.guidance,
    seed: task.seed,
  }),
};

/** Animagine XL 3.1 (cjwbw): diffusers names (`num_inference_steps`, `guidance_scale`, `num_outputs`). */
const animagine31: ReplicateModelSpec = {
  description: 'Animagine XL 3.1 (SDXL anime model) with its style and quality presets.',
  maxWidth: SDXL_MAX,
  maxHeight: SDXL_MAX,
  maxSteps: 100,
  maxOutputs: 4,
  options: Type.Object(
    {
      scheduler: Type.Optional(
        Type.String({ minLength: 1, maxLength: 64, description: 'Sampler, e.g. "DPMSolverMultistep" or "Euler a".' }),
      ),
      style_selector: Type.Optional(
        Type.String({ minLength: 1, maxLength: 64, description: 'Style preset, e.g. "(None)" or "Anime".' }),
      ),
      quality_selector: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 64,
          description: 'Quality-tag preset, e.g. "Standard v3.1" or "(None)".',
        }),
      ),
    },
    { additionalProperties: false },
  ),
  input: (task) => ({
    prompt: task.prompt,
    ...(task.negativePrompt ? { negative_prompt: task.negativePrompt } : {}),
    width: task.width,
    height: task.height,
    num_inference_steps: task.steps,
    guidance_scale: task.guidance,
    num_outputs: task.n,
    seed: task.seed,
  }),
};

const FLUX_ASPECT_RATIOS = ['1:1', '16:9', '21:9', '3:2', '2:3', '4:5', '5:4', '3:4', '4:3', '9:16', '9:21'] as const;

/** The listed aspect ratio nearest to width:height (on a log scale, so 2:1 and 1:2 are as far from 1:1). */
export function nearestAspectRatio(width: number, height: number, ratios: readonly string[]): string {
  const wanted = Math.log(width / height);
  let best = ratios[0]!;
  let bestDistance = Infinity;
  for (const ratio of ratios) {
    const [w, h] = ratio.split(':').map(Number);
    const distance = Math.abs(Math.log(w! / h!) - wanted);
    if (distance < bestDistance) [best, bestDistance] = [ratio, distance];
  }
  return best;
}

/** FLUX.1 [schnell] (official model): size by `aspect_ratio`, 1–4 steps, no guidance, no negative prompt. */
const fluxSchnell: ReplicateModelSpec = {
  description:
    'FLUX.1 [schnell]: fast general-purpose model. Size is sent as the nearest aspect ratio (about 1 megapixel); guidance and negative prompt are not used.',
  maxWidth: 2048,
  maxHeight: 2048,
  maxSteps: 4,
  maxOutputs: 4,
  options: Type.Object(
    {
      aspect_ratio: Type.Optional(
        Type.Union(
          FLUX_ASPECT_RATIOS.map((ratio) => Type.Literal(ratio)),
          { description: 'Overrides the ratio derived from width and height.' },
        ),
      ),
      output_format: Type.Optional(
        Type.Union([Type.Literal('webp'), Type.Literal('jpg'), Type.Literal('png')], { description: 'File format.' }),
      ),
      output_quality: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'JPEG/WebP quality.' })),
      go_fast: Type.Optional(Type.Boolean({ description: 'Faster, fp8-quantised run.' })),
      megapixels: Type.Optional(
        Type.Union([Type.Literal('1'), Type.Literal('0.25')], { description: 'Approximate output size.' }),
      ),
    },
    { additionalProperties: false },
  ),
  input: (task) => ({
    prompt: task.prompt,
    aspect_ratio: nearestAspectRatio(task.width, task.height, FLUX_ASPECT_RATIOS),
    num_outputs: task.n,
    num_inference_steps: task.steps,
    seed: task.seed,
  }),
};

/**
 * Any other model: the field names most Cog/diffusers text-to-image models use. Its options are
 * not known, so none are described and none are checked (Replicate checks the input itself).
 */
const genericDiffusers: ReplicateModelSpec = {
  description: 'A Replicate model Easel has no table entry for: sent the common diffusers field names.',
  maxWidth: SDXL_MAX,
  maxHeight: SDXL_MAX,
  maxSteps: 150,
  maxOutputs: 4,
  input: (task) => ({
    prompt: task.prompt,
    ...(task.negativePrompt ? { negative_prompt: task.negativePrompt } : {}),
    width: task.width,
    height: task.height,
    num_outputs: task.n,
    num_inference_steps: task.steps,
    guidance_scale: task.guidance,
    seed: task.seed,
  }),
};

/** Known models by `owner/name`, with the version listed at GET /v1/providers. */
const KNOWN: Record<string, { spec: ReplicateModelSpec; listedAs: string }> = {
  'aisha-ai-official/animagine-xl-4.0': {
    spec: animagine40,
    listedAs: 'aisha-ai-official/animagine-xl-4.0:057e2276ac5dcd8d1575dc37b131f903df9c10c41aed53d47cd7d4f068c19fa5',
  },
  'cjwbw/animagine-xl-3.1': {
    spec: animagine31,
    listedAs: 'cjwbw/animagine-xl-3.1:6afe2e6b27dad2d6f480b59195c221884b6acc589ff4d05ff0e5fc058690fbb9',
  },
  'black-forest-labs/flux-schnell': { spec: fluxSchnell, listedAs: 'black-forest-labs/flux-schnell' },
};

/** `owner/name:version` → { name: `owner/name`, version }; `owner/name` → { name }. */
export function parseModelRef(ref: string): { name: string; version?: string } {
  const colon = ref.indexOf(':');
  return colon === -1 ? { name: ref } : { name: ref.slice(0, colon), version: ref.slice(colon + 1) };
}

export function modelSpec(ref: string): ReplicateModelSpec {
  return KNOWN[parseModelRef(ref).name]?.spec ?? genericDiffusers;
}

/** The configured default first, then the known models (each once). */
export function listModels(defaultModel: string): ModelInfo[] {
  const refs = [defaultModel, ...Object.values(KNOWN).map((known) => known.listedAs)];
  const seen = new Set<string>();
  return refs
    .filter((ref) => (seen.has(ref) ? false : (seen.add(ref), true)))
    .map((ref) => {
      const spec = modelSpec(ref);
      return {
        id: ref,
        kinds: ['txt2img'],
        maxWidth: spec.maxWidth,
        maxHeight: spec.maxHeight,
        maxSteps: spec.maxSteps,
        maxN: spec.maxOutputs,
        description: spec.description,
        ...(spec.options ? { options: spec.options } : {}),
      };
    });
}

/**
 * The prediction `input`: the model's mapping of the task, then provider_options over it for
 * the keys the model's options schema names (the API already refused any other key).
 */
export function buildInput(task: TaskInput): Record<string, unknown> {
  const spec = modelSpec(task.model);
  if (task.n > spec.maxOutputs) {
    throw new PermanentError(
      'PROVIDER_REJECTED',
      `replicate: ${task.model} makes at most ${spec.maxOutputs} image${spec.maxOutputs === 1 ? '' : 's'} per task (n=${task.n})`,
    );
  }
  const input = spec.input(task);
  const allowed = spec.options ? new Set(Object.keys(spec.options.properties)) : undefined;
  for (const [key, value] of Object.entries(task.options)) {
    if (allowed && !allowed.has(key)) {
      throw new PermanentError('INVALID_PROVIDER_OPTIONS', `replicate: ${task.model} takes no option ${key}`);
    }
    input[key] = value;
  }
  return input;
}
