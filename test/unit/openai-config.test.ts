import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/env.js';
import { readOpenAIConfig } from '../../src/providers/openai/config.js';

describe('readOpenAIConfig', () => {
  it('defaults to the public API with /v1 and gpt-image-1, no organization or project', () => {
    expect(readOpenAIConfig({})).toEqual({ baseUrl: 'https://api.openai.com/v1', defaultModel: 'gpt-image-1' });
  });

  it('takes a base URL as the clients do, without a trailing slash', () => {
    expect(readOpenAIConfig({ OPENAI_BASE_URL: 'http://127.0.0.1:4010/v1/' }).baseUrl).toBe('http://127.0.0.1:4010/v1');
    expect(() => readOpenAIConfig({ OPENAI_BASE_URL: 'ftp://example.com/v1' })).toThrow(ConfigError);
  });

  it("reads the official clients' OPENAI_ORG_ID / OPENAI_PROJECT_ID first, then OPENAI_ORGANIZATION / OPENAI_PROJECT", () => {
    expect(readOpenAIConfig({ OPENAI_ORGANIZATION: 'org-b', OPENAI_PROJECT: 'proj_b' })).toMatchObject({
      organization: 'org-b',
      project: 'proj_b',
    });
    expect(
      readOpenAIConfig({ OPENAI_ORG_ID: 'org-a', OPENAI_ORGANIZATION: 'org-b', OPENAI_PROJECT_ID: 'proj_a' }),
    ).toMatchObject({ organization: 'org-a', project: 'proj_a' });
  });

  it('refuses a default model it does not know, listing the known ones', () => {
    expect(() => readOpenAIConfig({ OPENAI_DEFAULT_MODEL: 'dall-e-4' })).toThrow(/gpt-image-1, .*dall-e-2/);
  });
});
