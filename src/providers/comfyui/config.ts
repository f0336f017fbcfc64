import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, readInt, readString, type Env } from '../../config/env.js';
import { BUILTIN_TEMPLATES } from './builtin.js';
import { parseTemplate, TemplateError, type WorkflowTemplate } from './template.js';

/** One model as Easel lists it: a txt2img template, an img2img one, or both. */
export interface ComfyWorkflow {
  name: string;
  txt2img?: WorkflowTemplate;
  img2img?: WorkflowTemplate;
}

export interface ComfyUIConfig {
  /** Listed in this order; the first is the provider's default model. */
  workflows: ComfyWorkflow[];
  /** What `{{model}}` becomes when the task's `provider_options.checkpoint` does not say. */
  defaultCheckpoint: string;
  /** How often the outcome is read from `/history` while the websocket is down. */
  pollIntervalMs: number;
  /** How long a connection attempt to a backend may take before it counts as unreachable. */
  connectTimeoutMs: number;
}

export const DEFAULT_WORKFLOW_NAME = 'default';
const WORKFLOW_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

function loadTemplate(file: string, variable: string, kind: 'txt2img' | 'img2img'): WorkflowTemplate {
  let json: string;
  try {
    json = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`${variable}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return parseTemplate(json, file, kind);
  } catch (error) {
    if (error instanceof TemplateError) throw new ConfigError(`${variable}: ${error.message}`);
    throw error;
  }
}

/** `name.json` (txt2img) and `name.img2img.json` files of `COMFYUI_WORKFLOWS_DIR`, by name. */
function readWorkflowsDir(dir: string): ComfyWorkflow[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((file) => file.endsWith('.json'));
  } catch (error) {
    throw new ConfigError(
      `COMFYUI_WORKFLOWS_DIR: cannot read ${dir} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const byName = new Map<string, ComfyWorkflow>();
  for (const file of files.sort()) {
    const kind = file.endsWith('.img2img.json') ? 'img2img' : 'txt2img';
    const name = file.slice(0, -(kind === 'img2img' ? '.img2img.json' : '.json').length);
    if (!WORKFLOW_NAME.test(name)) {
      throw new ConfigError(
        `COMFYUI_WORKFLOWS_DIR: ${file}: a workflow name is letters, digits, dots, dashes and underscores (up to 64)`,
      );
    }
    const workflow = byName.get(name) ?? { name };
    workflow[kind] = loadTemplate(path.join(dir, file), 'COMFYUI_WORKFLOWS_DIR', kind);
    byName.set(name, workflow);
  }
  return [...byName.values()];
}

/**
 * Templates are read and checked here, at start: a template that lost a placeholder stops
 * Easel with the file and the missing marks named, instead of failing every task later.
 */
export function readComfyUIConfig(env: Env): ComfyUIConfig {
  const txt2imgFile = env.COMFYUI_WORKFLOW?.trim();
  const img2imgFile = env.COMFYUI_IMG2IMG_WORKFLOW?.trim();
  const builtin = (kind: 'txt2img' | 'img2img') => {
    try {
      return parseTemplate(BUILTIN_TEMPLATES[kind], `built-in ${kind} template`, kind);
    } catch (error) {
      // Only an edit to the shipped files can get here, and the unit tests parse them.
      throw new ConfigError((error as Error).message);
    }
  };
  const workflows: ComfyWorkflow[] = [
    {
      name: DEFAULT_WORKFLOW_NAME,
      txt2img: txt2imgFile ? loadTemplate(txt2imgFile, 'COMFYUI_WORKFLOW', 'txt2img') : builtin('txt2img'),
      img2img: img2imgFile ? loadTemplate(img2imgFile, 'COMFYUI_IMG2IMG_WORKFLOW', 'img2img') : builtin('img2img'),
    },
  ];
  const dir = env.COMFYUI_WORKFLOWS_DIR?.trim();
  for (const workflow of dir ? readWorkflowsDir(dir) : []) {
    if (workflow.name === DEFAULT_WORKFLOW_NAME) {
      throw new ConfigError(
        `COMFYUI_WORKFLOWS_DIR: "${DEFAULT_WORKFLOW_NAME}" is the built-in workflow's name; replace it with COMFYUI_WORKFLOW / COMFYUI_IMG2IMG_WORKFLOW or pick another name`,
      );
    }
    workflows.push(workflow);
  }
  return {
    workflows,
    defaultCheckpoint: readString(env, 'COMFYUI_CHECKPOINT', 'v1-5-pruned-emaonly.safetensors'),
    pollIntervalMs: readInt(env, 'COMFYUI_POLL_INTERVAL_MS', 1000, { min: 10, max: 60_000 }),
    connectTimeoutMs: readInt(env, 'COMFYUI_CONNECT_TIMEOUT_MS', 5000, { min: 100, max: 120_000 }),
  };
}
