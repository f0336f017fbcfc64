import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import type { TaskResource } from '../../src/api/schemas/task.js';
import { createTestDatabase } from '../helpers/database.js';
import { dataUrl, meanRgb, solidPng } from '../helpers/images.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { eventually, runCli, spawnEasel, succeeded, type EaselProcess } from '../helpers/processes.js';

let easel: TestEasel;
let outDir: string;
const spawned: EaselProcess[] = [];

/** `easel <args>` against the test server, run to its end; never throws. */
const cli = (...args: string[]) => runCli(args, { env: { EASEL_URL: easel.url } });

const submit = async (body: Record<string, unknown> = {}) =>
  (await api(easel.url, 'POST', '/v1/tasks', { prompt: 'a kite', width: 64, height: 64, steps: 2, ...body })).body;

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase());
  outDir = await mkdtemp(path.join(os.tmpdir(), 'easel-cli-client-'));
});
afterAll(async () => {
  for (const process of spawned) process.child.kill('SIGKILL');
  await easel?.stop();
  await rm(outDir, { recursive: true, force: true });
});

describe('easel tasks ls', () => {
  it('pages with the --cursor it suggests', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await submit({ priority: 0, provider_options: { delay_ms: 1 } })).id);
    await Promise.all(ids.map((id) => waitForStatus(easel.url, id, ['succeeded'])));

    const first = succeeded(await cli('tasks', 'ls', '--limit', '2'));
    const hint = /… more: (easel tasks ls .*--cursor (\S+))$/m.exec(first.stdout);
    expect(hint, first.stdout).not.toBeNull();
    const second = succeeded(await cli(...hint![1]!.split(' ').slice(1)));
    const listed = (text: string) => [...text.matchAll(/^([0-9a-f-]{36}) /gm)].map((match) => match[1]);
    expect(listed(first.stdout)).toHaveLength(2);
    expect(listed(second.stdout)).not.toContain(listed(first.stdout)[0]);
    expect([...listed(first.stdout), ...listed(second.stdout)]).toEqual(expect.arrayContaining(ids));
  }, 120_000);

  it.each(['0', '101', '-1', 'ten'])(
    'refuses --limit %s in one line',
    async (limit) => {
      const result = await cli('tasks', 'ls', '--limit', limit);
      expect(result.code).not.toBe(0);
      expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
      expect(result.stderr).toMatch(
        /^easel: option '--limit <n>' argument '.*' is invalid\. (must be from 1 to 100|not a whole number)/,
      );
      expect(result.stdout).toBe('');
    },
    60_000,
  );
});

describe('--json for scripts', () => {
  it("prints the API's answers from tasks ls, show, cancel, retry and queue status", async () => {
    const task = await submit({ provider_options: { delay_ms: 30_000 } });
    const listed = JSON.parse(succeeded(await cli('tasks', 'ls', '--json')).stdout) as { data: TaskResource[] };
    expect(listed.data.map((t) => t.id)).toContain(task.id);
    expect(JSON.parse(succeeded(await cli('tasks', 'show', task.id, '--json')).stdout)).toMatchObject({ id: task.id });
    const canceled = JSON.parse(succeeded(await cli('tasks', 'cancel', task.id, '--json')).stdout) as TaskResource;
    expect(canceled.id).toBe(task.id);
    await waitForStatus(easel.url, task.id, ['canceled']);
    const retried = JSON.parse(succeeded(await cli('tasks', 'retry', task.id, '--json')).stdout) as TaskResource;
    expect(retried).toMatchObject({ id: task.id, status: 'queued' });
    await api(easel.url, 'POST', `/v1/tasks/${task.id}/cancel`);
    const queue = JSON.parse(succeeded(await cli('queue', 'status', '--json')).stdout) as { workers: { live: number } };
    expect(queue.workers.live).toBe(1);
  }, 120_000);

  it('generate prints the finished task and nothing else on stdout', async () => {
    const out = path.join(outDir, 'json');
    const result = succeeded(
      await cli('generate', 'a lighthouse', '--width', '64', '--height', '64', '--out', out, '--json'),
    );
    const task = JSON.parse(result.stdout) as TaskResource;
    expect(task).toMatchObject({ status: 'succeeded', images: [expect.objectContaining({ width: 64 })] });
    expect(await readdir(out)).toEqual([`${task.id}-0.png`]);
    expect(result.stderr).toContain(path.join(out, `${task.id}-0.png`));
  }, 120_000);

  it('generate --format webp --quality saves WebP bytes; an unknown format is refused before submitting', async () => {
    const out = path.join(outDir, 'webp');
    const result = succeeded(
      await cli(
        'generate',
        'a lighthouse',
        '--width',
        '64',
        '--height',
        '64',
        '--format',
        'webp',
        '--quality',
        '70',
        '--out',
        out,
        '--json',
      ),
    );
    const task = JSON.parse(result.stdout) as TaskResource;
    expect(task.params).toMatchObject({ output_format: 'webp', output_quality: 70 });
    expect(await readdir(out)).toEqual([`${task.id}-0.webp`]);
    const bytes = await readFile(path.join(out, `${task.id}-0.webp`));
    expect([bytes.toString('latin1', 0, 4), bytes.toString('latin1', 8, 12)]).toEqual(['RIFF', 'WEBP']);

    const refused = await cli('generate', 'x', '--format', 'gif', '--out', outDir);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/--format.*gif.*png, webp, jpeg/);
  }, 120_000);
});

describe.concurrent('easel --version and --help', () => {
  it('prints the version from package.json', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(succeeded(await cli('--version')).stdout.trim()).toBe(version);
  }, 120_000);

  it('easel --help, from the real process, has a description and examples', async () => {
    const { stdout } = succeeded(await cli('--help'));
    expect(stdout.split('\n')[2] ?? '', stdout).toMatch(/\w{3,}/);
    expect(stdout).toMatch(/\nExamples:\n {2}\$ easel \S/);
  }, 120_000);

  it('every command and subcommand has a description and examples in its --help', () => {
    const commands: Command[] = [];
    const walk = (command: Command) => {
      commands.push(command);
      command.commands.forEach(walk);
    };
    walk(buildProgram({}));
    expect(commands.length).toBeGreaterThanOrEqual(13);
    for (const command of commands) {
      let help = '';
      command.configureOutput({ writeOut: (text) => (help += text) });
      command.outputHelp();
      expect(command.description(), command.name()).toMatch(/\w{3,}/);
      expect(help, command.name()).toMatch(/\nExamples:\n {2}\$ \S/);
    }
  });
});

describe('Ctrl-C during easel generate', () => {
  /** A generate whose task runs for a while; resolves once it has printed the task id. */
  async function startSlowGenerate(): Promise<{ process: EaselProcess; taskId: string }> {
    const process = spawnEasel(
      ['generate', 'a slow kite', '--option', 'delay_ms=20000', '--out', path.join(outDir, 'slow')],
      { EASEL_URL: easel.url },
    );
    spawned.push(process);
    const taskId = await eventually(
      'generate to print its task id',
      async () => /^task ([0-9a-f-]{36})$/m.exec(process.output())?.[1],
      30_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${process.output()}`);
    });
    await waitForStatus(easel.url, taskId, ['running']);
    return { process, taskId };
  }

  it('once: says the task id and how to cancel, exits 130, the task keeps running', async () => {
    const { process, taskId } = await startSlowGenerate();
    process.child.kill('SIGINT');
    expect(await process.exited, process.output()).toBe(130);
    expect(process.output()).toContain(
      `task ${taskId} is still running; press Ctrl-C again within 3 s to cancel it, or it keeps running (easel tasks show ${taskId})`,
    );
    expect((await api(easel.url, 'GET', `/v1/tasks/${taskId}`)).body).toMatchObject({ status: 'running' });
    await api(easel.url, 'POST', `/v1/tasks/${taskId}/cancel`);
  }, 120_000);

  it('twice: cancels the task through the API and exits 130', async () => {
    const { process, taskId } = await startSlowGenerate();
    process.child.kill('SIGINT');
    await eventually(
      'the first Ctrl-C to be answered',
      async () => process.output().includes('press Ctrl-C again'),
      5000,
    );
    process.child.kill('SIGINT');
    expect(await process.exited, process.output()).toBe(130);
    expect(process.output()).toMatch(new RegExp(`task ${taskId}(: cancel requested| canceled)`));
    await waitForStatus(easel.url, taskId, ['canceled']);
  }, 120_000);
});

describe('easel generate --image (img2img)', () => {
  it('uploads a local file, submits upload:<id> with --strength, and saves a result derived from it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'easel-cli-img2img-'));
    try {
      const photo = path.join(dir, 'photo.png');
      await writeFile(photo, await solidPng(80, 60, [255, 0, 0]));
      const args = ['--width', '64', '--height', '64', '--steps', '2', '--strength', '0.2', '--out', dir, '--json'];
      const result = succeeded(await cli('generate', 'a red barn', '--image', photo, ...args));
      const task = JSON.parse(result.stdout) as TaskResource;
      expect(task).toMatchObject({ kind: 'img2img', status: 'succeeded', params: { strength: 0.2 } });
      expect(task.input_image).toMatchObject({ width: 80, height: 60 });
      const uploads = await easel.pool.query('SELECT sha256 FROM uploads WHERE sha256 = $1', [
        task.input_image!.sha256,
      ]);
      expect(uploads.rowCount).toBe(1);
      const saved = await readFile(path.join(dir, `${task.id}-0.png`));
      const [red, green] = await meanRgb(saved);
      expect(red).toBeGreaterThan(200);
      expect(green).toBeLessThan(55);

      // A data URL passes through without an upload.
      const inline = dataUrl(await solidPng(8, 8, [0, 0, 255]));
      const passed = succeeded(await cli('generate', 'blue', '--image', inline, ...args));
      expect((JSON.parse(passed.stdout) as TaskResource).input_image).toMatchObject({ width: 8, height: 8 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('refuses a missing file and a strength out of range in one line, submitting nothing', async () => {
    const tasks = async () => Number((await easel.pool.query('SELECT count(*) FROM tasks')).rows[0].count);
    const before = await tasks();
    const missing = await cli('generate', 'x', '--image', path.join(outDir, 'no-such.png'), '--out', outDir);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read --image .*no-such\.png/);
    const strength = await cli('generate', 'x', '--image', 'upload:x', '--strength', '2', '--out', outDir);
    expect(strength.code).not.toBe(0);
    expect(strength.stderr).toMatch(/--strength <0-1>.* must be a number from 0 to 1/);
    expect(await tasks()).toBe(before);
  }, 60_000);
});
