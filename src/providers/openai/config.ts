import { ConfigError, readString, readUrl, type Env } from '../../config/env.js';
import { OPENAI_MODEL_IDS } from './models.js';

/** Settings of the OpenAI Images adapter; the API key itself lives in the credential pool (`openai`). */
export interface OpenAIConfig {
  /** With `/v1`, as the official clients take it (`OPENAI_BASE_URL`). */
  baseUrl: string;
  /** The model a task gets when it names none. */
  defaultModel: string;
  /** Sent as `OpenAI-Organization` when set. */
  organization?: string;
  /** Sent as `OpenAI-Project` when set. */
  project?: string;
}

export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';

function optional(env: Env, names: string[]): string | undefined {
  for (const name of names) {
    const value = readString(env, name, '');
    if (value !== '') return value;
  }
  return undefined;
}

/**
 * `OPENAI_BASE_URL`, `OPENAI_DEFAULT_MODEL`, and the organization and project headers. The
 * official clients read `OPENAI_ORG_ID` and `OPENAI_PROJECT_ID`; `OPENAI_ORGANIZATION` and
 * `OPENAI_PROJECT` are accepted too, the client's names winning when both are set.
 */
export function readOpenAIConfig(env: Env): OpenAIConfig {
  const baseUrl = (readUrl(env, 'OPENAI_BASE_URL', ['https:', 'http:']) ?? OPENAI_DEFAULT_BASE_URL).replace(/\/+$/, '');
  const defaultModel = readString(env, 'OPENAI_DEFAULT_MODEL', 'gpt-image-1');
  if (!OPENAI_MODEL_IDS.includes(defaultModel)) {
    throw new ConfigError(
      `OPENAI_DEFAULT_MODEL=${JSON.stringify(defaultModel)} is not valid: expected one of ${OPENAI_MODEL_IDS.join(', ')}`,
    );
  }
  const organization = optional(env, ['OPENAI_ORG_ID', 'OPENAI_ORGANIZATION']);
  const project = optional(env, ['OPENAI_PROJECT_ID', 'OPENAI_PROJECT']);
  return {
    baseUrl,
    defaultModel,
    ...(organization ? { organization } : {}),
    ...(project ? { project } : {}),
  };
}
