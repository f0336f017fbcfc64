import type { TSchema } from '@sinclair/typebox';
import type { Logger } from 'pino';

export type TaskKind = 'txt2img' | 'img2img';

/** What a model can do; shown at `GET /v1/providers` and used to validate submissions. */
export interface ModelInfo {
  id: string;
  kinds: TaskKind[];
  maxWidth: number;
  maxHeight: number;
  maxSteps: number;
  /** When set, the only sizes the model makes (e.g. OpenAI's); otherwise any size within the maxima. */
  sizes?: ReadonlyArray<{ width: number; height: number }>;
  /** Most images one task may ask for (`n`); unset = the API's limit. */
  maxN?: number;
  description?: string;
  /**
   * The `provider_options` this model takes, as a JSON Schema (2020-12, written with TypeBox).
   * The API refuses options it rejects before queueing the task; without one, any options pass.
   * Shown to clients, so it says ranges and descriptions, not only types.
   */
  options?: TSchema;
}

/** The generation request as an adapter sees it: already validated, defaults applied. */
export interface TaskInput {
  taskId: string;
  kind: TaskKind;
  model: string;
  prompt: string;
  negativePrompt: string | null;
  width: number;
  height: number;
  steps: number;
  guidance: number;
  n: number;
  /** Always set: the API picks one when the caller did not, so every result can be reproduced. */
  seed: number;
  /** img2img only: the checked input image (PNG, EXIF applied and stripped, fits the model). */
  inputImage?: InputImage;
  /** img2img only: how far the result may move from the input, 0 (keep it) – 1 (ignore it). */
  strength?: number;
  /** Provider-specific extras (`provider_options` in the API), passed through untouched. */
  options: Record<string, unknown>;
  /** 1 on the first run, 2 on the first retry, … */
  attempt: number;
  /** The provider's own request id from an earlier attempt: resume it instead of paying twice. */
  providerRef: string | null;
}

export interface InputImage {
  data: Buffer;
  contentType: string;
  width: number;
  height: number;
}

export interface GeneratedImage {
  data: Buffer;
  contentType: string;
  width: number;
  height: number;
  seed: number;
}

/** An intermediate image a backend shows while it works (A1111's live preview, ComfyUI's frames). */
export interface PreviewImage {
  data: Buffer;
  contentType: string;
}

/** The pool credential chosen for this attempt (see `Provider.credentialPool`). */
export interface Credential {
  id: string;
  /** For log lines: the admin's name for it, never the secret. */
  label: string;
  /** The API token in clear. Send it to the provider and nowhere else: never log it or put it in an error. */
  secret: string;
}

/** Everything an adapter may use. Adapters import no infrastructure of their own. */
export interface RunContext {
  /** Fires on cancel and on shutdown; adapters stop promptly and cancel upstream where they can. */
  signal: AbortSignal;
  /** Set exactly when the provider has a `credentialPool`: the credential claimed with the task. */
  credential?: Credential;
  /**
   * Report progress; `pct` is 0–100. Cheap to call often: the worker throttles what it stores.
   * `preview` is the backend's latest intermediate image, where it offers one.
   */
  progress(stage: string, pct?: number, preview?: PreviewImage): void;
  /** Save the provider's request id as soon as it has accepted the request. */
  saveProviderRef(ref: string): Promise<void>;
  /**
   * The provider's own measure of compute time (e.g. Replicate's `metrics.predict_time`), kept
   * as the task's predict time instead of the attempt's wall time.
   */
  recordPredictTime(seconds: number): void;
  log: Logger;
  fetch: typeof fetch;
}

export interface Provider {
  /** Registry key and the `provider` field of a task, e.g. `sketch`. */
  readonly id: string;
  /**
   * The credential pool (`credentials.provider`) this provider draws its tokens from, e.g.
   * `huggingface` for both the Inference router and Gradio Spaces. Unset = needs no credential.
   * With a pool, a task is claimed only together with a usable credential of it.
   */
  readonly credentialPool?: string;
  /**
   * The provider signs in with its credentials and keeps the token it gets per credential
   * (see token-cache.ts): the credential view then shows each one's token state.
   */
  readonly signsIn?: boolean;
  /**
   * Why a secret of its pool cannot work (e.g. a NovelAI account whose JSON is broken), checked
   * when an admin adds it so the mistake is a 400 then rather than a disabled credential later.
   * Undefined when it may work. Never echo the secret in the answer.
   */
  checkSecret?(secret: string): string | undefined;
  models(): ModelInfo[];
  run(input: TaskInput, ctx: RunContext): Promise<GeneratedImage[]>;
}
