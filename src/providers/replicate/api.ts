import { RetryableError } from '../errors.js';
import { failFromResponse, providerFetch, readJson } from '../http.js';
import type { RunContext } from '../types.js';
import type { ReplicateConfig } from './config.js';
import { parseModelRef } from './models.js';

/**
 * Replicate's prediction endpoints, as replicate-javascript calls them (`lib/predictions.js`):
 * `POST /predictions` with `version` for a pinned version, `POST /models/{owner}/{name}/predictions`
 * for an official model, `GET /predictions/{id}`, `POST /predictions/{id}/cancel`.
 */

export const PREDICTION_STATUSES = ['starting', 'processing', 'succeeded', 'failed', 'canceled', 'aborted'] as const;
export type PredictionStatus = (typeof PREDICTION_STATUSES)[number];
/** `aborted`: the prediction's deadline passed before it started (Replicate lifecycle docs). */
export const TERMINAL_STATUSES: ReadonlySet<PredictionStatus> = new Set(['succeeded', 'failed', 'canceled', 'aborted']);

/** The fields of a prediction (replicate-javascript `index.d.ts` `Prediction`) the adapter reads. */
export interface Prediction {
  id: string;
  status: PredictionStatus;
  output?: unknown;
  error?: unknown;
  logs?: string | null;
  data_removed?: boolean;
  metrics?: { predict_time?: number; total_time?: number };
}

type ApiContext = Pick<RunContext, 'fetch' | 'signal'>;

function headers(token: string, extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...extra };
}

/** A prediction object, or a retryable malformed-answer error: never trust the shape blindly. */
function asPrediction(body: unknown, what: string): Prediction {
  const candidate = body as Partial<Prediction> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.id !== 'string' ||
    candidate.id === '' ||
    !PREDICTION_STATUSES.includes(candidate.status as PredictionStatus)
  ) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the answer is not a prediction`);
  }
  return candidate as Prediction;
}

export async function createPrediction(
  ctx: ApiContext,
  config: ReplicateConfig,
  token: string,
  modelRef: string,
  input: Record<string, unknown>,
): Promise<Prediction> {
  const { name, version } = parseModelRef(modelRef);
  const url = version ? `${config.baseUrl}/predictions` : `${config.baseUrl}/models/${name}/predictions`;
  const what = `replicate: creating a prediction of ${modelRef}`;
  const response = await providerFetch(ctx, url, {
    what,
    method: 'POST',
    // Replicate holds the request open until the prediction ends or N seconds pass, so a fast
    // model needs no poll at all; a slow one answers with the unfinished prediction.
    headers: headers(token, { prefer: `wait=${config.waitSeconds}` }),
    body: JSON.stringify(version ? { version, input } : { input }),
  });
  if (!response.ok) await failFromResponse(response, what);
  return asPrediction(await readJson(ctx, response, what), what);
}

/** The prediction, or `gone` when Replicate no longer knows it (404). */
export async function getPrediction(
  ctx: ApiContext,
  config: ReplicateConfig,
  token: string,
  id: string,
): Promise<Prediction | 'gone'> {
  const what = `replicate: reading prediction ${id}`;
  const response = await providerFetch(ctx, `${config.baseUrl}/predictions/${encodeURIComponent(id)}`, {
    what,
    headers: headers(token),
  });
  if (response.status === 404) {
    await response.body?.cancel();
    return 'gone';
  }
  if (!response.ok) await failFromResponse(response, what);
  return asPrediction(await readJson(ctx, response, what), what);
}

/** How long a best-effort cancel may take: the attempt is already over when it is sent. */
const CANCEL_TIMEOUT_MS = 5000;

/**
 * Ask Replicate to stop a prediction so it is not billed further. Best effort: it runs after
 * the attempt's signal fired, so it has its own short timeout and never throws.
 */
export async function cancelPrediction(
  fetchFn: typeof fetch,
  config: ReplicateConfig,
  token: string,
  id: string,
): Promise<boolean> {
  try {
    const response = await fetchFn(`${config.baseUrl}/predictions/${encodeURIComponent(id)}/cancel`, {
      method: 'POST',
      headers: headers(token),
      signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}
