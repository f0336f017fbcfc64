import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/env.js';
import { BUILTIN_TEMPLATES } from '../../src/providers/comfyui/builtin.js';
import { readComfyUIConfig } from '../../src/providers/comfyui/config.js';
import { listModels } from '../../src/providers/comfyui/models.js';
import { fillTemplate, parseTemplate, TemplateError } from '../../src/providers/comfyui/template.js';

const values = {
  prompt: 'a lighthouse',
  negative_prompt: 'blurry',
  width: 640,
  height: 384,
  seed: 123456789,
  steps: 25,
  cfg: 6.5,
  denoise: 0.6,
  batch_size: 2,
  model: 'sd_xl_base_1.0.safetensors',
  image: 'easel-task.png',
};

describe('ComfyUI workflow templates', () => {
  it('fills the built-in txt2img graph: numbers stay numbers, links and fixed inputs are untouched', () => {
    const template = parseTemplate(BUILTIN_TEMPLATES.txt2img, 'built-in', 'txt2img');
    const graph = fillTemplate(template, values);
    expect(graph['3']!.inputs).toEqual({
      seed: 123456789,
      steps: 25,
      cfg: 6.5,
      sampler_name: 'euler',
      scheduler: 'normal',
      denoise: 1,
      model: ['4', 0],
      positive: ['6', 0],
      negative: ['7', 0],
      latent_image: ['5', 0],
    });
    expect(graph['4']!.inputs).toEqual({ ckpt_name: 'sd_xl_base_1.0.safetensors' });
    expect(graph['5']!.inputs).toEqual({ width: 640, height: 384, batch_size: 2 });
    expect(graph['6']!.inputs.text).toBe('a lighthouse');
    expect(graph['7']!.inputs.text).toBe('blurry');
    // The template itself is not changed by filling it.
    expect(template.graph['6']!.inputs.text).toBe('{{prompt}}');
  });

  it('fills the built-in img2img graph with the uploaded image and the denoise strength', () => {
    const graph = fillTemplate(parseTemplate(BUILTIN_TEMPLATES.img2img, 'built-in', 'img2img'), values);
    expect(graph['10']!.inputs.image).toBe('easel-task.png');
    expect(graph['3']!.inputs.denoise).toBe(0.6);
    expect(graph['12']!.inputs.amount).toBe(2);
  });

  it('embeds text placeholders in longer strings, and never a number one', () => {
    const graph = {
      '1': { class_type: 'CLIPTextEncode', inputs: { text: 'masterpiece, {{prompt}}, by {{ model }}' } },
      '2': { class_type: 'KSampler', inputs: { seed: '{{seed}}', steps: '{{steps}}' } },
      '3': { class_type: 'EmptyLatentImage', inputs: { width: '{{width}}', height: '{{height}}' } },
    };
    const template = parseTemplate(JSON.stringify(graph), 't.json', 'txt2img');
    expect(fillTemplate(template, values)['1']!.inputs.text).toBe(
      'masterpiece, a lighthouse, by sd_xl_base_1.0.safetensors',
    );
    expect(template.placeholders.get('prompt')).toEqual(['"1".inputs.text']);

    const embedded = { ...graph, '2': { class_type: 'KSampler', inputs: { seed: 'x{{seed}}', steps: '{{steps}}' } } };
    expect(() => parseTemplate(JSON.stringify(embedded), 't.json', 'txt2img')).toThrow(/must be the whole value/);
  });

  it('refuses a template missing a required mark, naming the file and the marks', () => {
    const graph = { '1': { class_type: 'CLIPTextEncode', inputs: { text: '{{prompt}}' } } };
    const error = (() => {
      try {
        parseTemplate(JSON.stringify(graph), 'mine.json', 'txt2img');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error).toBeInstanceOf(TemplateError);
    expect(error!.message).toBe(
      "mine.json: a txt2img template must mark {{width}}, {{height}}, {{seed}}, {{steps}} (set a node input's value to the placeholder)",
    );
    expect(() => parseTemplate(BUILTIN_TEMPLATES.txt2img, 'built-in', 'img2img')).toThrow(
      /\{\{image\}\}, \{\{denoise\}\}/,
    );
  });

  it('refuses unknown placeholders, the UI format, nodes without class_type, and bad JSON', () => {
    const unknown = { '1': { class_type: 'X', inputs: { text: '{{promt}}' } } };
    expect(() => parseTemplate(JSON.stringify(unknown), 'a.json', 'txt2img')).toThrow(
      /unknown placeholder \{\{promt\}\}/,
    );
    expect(() => parseTemplate(JSON.stringify({ nodes: [], links: [] }), 'ui.json', 'txt2img')).toThrow(
      /Export \(API\)/,
    );
    expect(() => parseTemplate(JSON.stringify({ '1': { inputs: {} } }), 'b.json', 'txt2img')).toThrow(/no class_type/);
    expect(() => parseTemplate('{', 'c.json', 'txt2img')).toThrow(/not valid JSON/);
  });

  it('a value missing at fill time is an error, not a literal placeholder sent to ComfyUI', () => {
    const template = parseTemplate(BUILTIN_TEMPLATES.txt2img, 'built-in', 'txt2img');
    const { batch_size: _omitted, ...rest } = values;
    expect(() => fillTemplate(template, rest)).toThrow(/no value for \{\{batch_size\}\}/);
  });
});

describe('ComfyUI config', () => {
  it('defaults to the built-in workflow, which makes both kinds and batches', () => {
    const config = readComfyUIConfig({});
    expect(config.defaultCheckpoint).toBe('v1-5-pruned-emaonly.safetensors');
    expect(listModels(config)).toEqual([
      expect.objectContaining({ id: 'default', kinds: ['txt2img', 'img2img'], maxN: 8 }),
    ]);
  });

  it('reads COMFYUI_WORKFLOW and a workflows directory, and stops at start on a broken template', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'comfy-workflows-'));
    const single = JSON.parse(BUILTIN_TEMPLATES.txt2img) as Record<string, { inputs: Record<string, unknown> }>;
    single['5']!.inputs.batch_size = 1;
    await writeFile(path.join(dir, 'flux.json'), JSON.stringify(single));
    await writeFile(path.join(dir, 'flux.img2img.json'), BUILTIN_TEMPLATES.img2img);
    const config = readComfyUIConfig({ COMFYUI_WORKFLOWS_DIR: dir, COMFYUI_WORKFLOW: path.join(dir, 'flux.json') });
    const models = listModels(config);
    expect(models.map((m) => [m.id, m.kinds, m.maxN])).toEqual([
      ['default', ['txt2img', 'img2img'], 1],
      ['flux', ['txt2img', 'img2img'], 1],
    ]);

    const broken = { ...single, '6': { class_type: 'CLIPTextEncode', inputs: { text: 'fixed', clip: ['4', 1] } } };
    await writeFile(path.join(dir, 'broken.json'), JSON.stringify(broken));
    expect(() => readComfyUIConfig({ COMFYUI_WORKFLOWS_DIR: dir })).toThrow(ConfigError);
    expect(() => readComfyUIConfig({ COMFYUI_WORKFLOWS_DIR: dir })).toThrow(
      /COMFYUI_WORKFLOWS_DIR: .*broken\.json: a txt2img template must mark \{\{prompt\}\}/,
    );
    expect(() => readComfyUIConfig({ COMFYUI_WORKFLOW: path.join(dir, 'missing.json') })).toThrow(
      /COMFYUI_WORKFLOW: cannot read .*missing\.json \(ENOENT\)/,
    );
  });
});
