import { readUrl, type Env } from '../../config/env.js';

/** Settings of the Gradio Spaces adapter. */
export interface HfSpaceConfig {
  /** The Ghibli EasyControl Space's own URL (its `*.hf.space` host); `/gradio_api/...` is added. */
  ghibliUrl: string;
}

/** The Space seed 001 calls: `Client.connect("https://jamesliu1217-easycontrol-ghibli.hf.space/")`. */
export const HF_SPACE_GHIBLI_DEFAULT_URL = 'https://jamesliu1217-easycontrol-ghibli.hf.space';

export function readHfSpaceConfig(env: Env): HfSpaceConfig {
  const ghibliUrl = readUrl(env, 'HF_SPACE_GHIBLI_URL', ['http:', 'https:']) ?? HF_SPACE_GHIBLI_DEFAULT_URL;
  return { ghibliUrl: ghibliUrl.replace(/\/+$/, '') };
}
