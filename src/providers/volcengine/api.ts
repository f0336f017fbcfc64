import { RetryableError } from '../errors.js';
import { providerFetch, readBodyLimited } from '../http.js';
import type { RunContext } from '../types.js';
import type { JimengConfig } from './config.js';
import { VOLCENGINE_VISUAL_SERVICE } from './config.js';
import { visualFailure, type VisualAnswer } from './errors.js';
import { signVolcengineRequest, type VolcengineKeys } from './signer.js';

/** The asynchronous pair of the visual API (version 2022-08-31): submit a task, then poll it. */
export const SUBMIT_ACTION = 'CVSync2AsyncSubmitTask';
export const GET_RESULT_ACTION = 'CVSync2AsyncGetResult';
export const VISUAL_API_VERSION = '2022-08-31';

/** Base64 results of several 4K images can be large; the limit only stops a runaway answer. */
const ANSWER_MAX_BYTES = 200 * 1024 * 1024;

type ApiContext = Pick<RunContext, 'fetch' | 'signal'>;

/**
 * One signed call: `POST {base}/?Action=…&Version=…` with a JSON body. Resolves to `data` of a
 * successful answer (`code` 10000); any other answer throws the matching provider error.
 */
export async function callVisual(
  ctx: ApiContext,
  config: JimengConfig,
  keys: VolcengineKeys,
  action: string,
  body: Record<string, unknown>,
  what: string,
): Promise<Record<string, unknown>> {
  const url = new URL(`${config.baseUrl}/`);
  url.searchParams.set('Action', action);
  url.searchParams.set('Version', VISUAL_API_VERSION);
  const json = JSON.stringify(body);
  const signed = signVolcengineRequest({
    method: 'POST',
    url,
    body: json,
    contentType: 'application/json',
    region: config.region,
    service: VOLCENGINE_VISUAL_SERVICE,
    keys,
  });
  // fetch sends Host itself, from the URL, exactly as signed (default port left out).
  const { host: _host, ...headers } = signed;
  const response = await providerFetch(ctx, url, { what, method: 'POST', headers, body: json });
  const text = (await readBodyLimited(ctx, response, ANSWER_MAX_BYTES, what)).toString('utf8');
  let answer: VisualAnswer | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    answer = typeof parsed === 'object' && parsed !== null ? (parsed as VisualAnswer) : undefined;
  } catch {
    answer = undefined;
  }
  if (response.ok && (answer === undefined || (answer.code === undefined && !answer.ResponseMetadata?.Error))) {
    throw new RetryableError(
      'PROVIDER_BAD_OUTPUT',
      `${what}: the answer is not the visual API's JSON (HTTP ${response.status})`,
    );
  }
  const failure = visualFailure(response.status, response.headers, answer, what);
  if (failure) {
    if (answer === undefined) {
      // Not JSON (a proxy's HTML page): keep the status meaning, say what came back.
      failure.message = `${what}: HTTP ${response.status}: ${text.replace(/\s+/g, ' ').trim().slice(0, 200) || 'empty answer'}`;
    }
    throw failure;
  }
  const data = answer?.data;
  if (typeof data !== 'object' || data === null) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: a successful answer without data`);
  }
  return data as Record<string, unknown>;
}
