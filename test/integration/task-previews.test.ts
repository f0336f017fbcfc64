import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_HINTS } from '../../src/db/notifier.js';
import type { Pool } from '../../src/db/pool.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { failAttempt, releaseAttempt, reportProgress } from '../../src/tasks/attempt.js';
import { findTaskPreview } from '../../src/tasks/previews.js';
import type { Lease } from '../../src/tasks/rows.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import { enqueueTask } from '../helpers/queue.js';

/**
 * The preview rows of migration 0018 against real PostgreSQL: fenced by the lease like every
 * attempt write, one row per task replaced in place, and gone whenever the attempt ends or the
 * task is claimed again.
 */

let pool: Pool;
beforeAll(async () => {
  pool = await createTestPool(await createTestDatabase());
});
afterAll(async () => {
  await pool?.end();
});

const png = (marker: number) => ({ contentType: 'image/png', data: Buffer.from([0x89, 0x50, 0x4e, 0x47, marker]) });

/** A task running under a fresh lease, as a claim leaves it. */
async function runningTask(): Promise<Lease> {
  const task = await enqueueTask(pool, { userId: LOCAL_USER_ID, provider: 'a1111' });
  const token = randomUUID();
  await pool.query(`UPDATE tasks SET status = 'running', lease_token = $2, started_at = now() WHERE id = $1`, [
    task.id,
    token,
  ]);
  return { taskId: task.id, token, provider: 'a1111' };
}

const previewRows = async (taskId: string) =>
  (await pool.query('SELECT version FROM task_previews WHERE task_id = $1', [taskId])).rows;

const taskPreviewVersion = async (taskId: string) =>
  (await pool.query<{ preview_version: number | null }>('SELECT preview_version FROM tasks WHERE id = $1', [taskId]))
    .rows[0]!.preview_version;

describe('task previews', () => {
  it('keeps one row per task, replaced with a higher version, and a progress event naming it', async () => {
    const lease = await runningTask();
    expect(await reportProgress(pool, NO_HINTS, lease, 'generating', 10, png(1))).toBe(true);
    expect(await reportProgress(pool, NO_HINTS, lease, 'generating', 20)).toBe(true);
    expect(await reportProgress(pool, NO_HINTS, lease, 'generating', 30, png(2))).toBe(true);
    expect(await previewRows(lease.taskId)).toEqual([{ version: 2 }]);
    const preview = await findTaskPreview(pool, LOCAL_USER_ID, lease.taskId);
    expect(preview).toMatchObject({ contentType: 'image/png', version: 2 });
    expect((preview as { data: Buffer }).data.at(-1)).toBe(2);

    const { rows } = await pool.query<{ data: { progress: number; preview_version: number | null } }>(
      `SELECT data FROM task_events WHERE task_id = $1 AND type = 'task:progress' ORDER BY id`,
      [lease.taskId],
    );
    expect(rows.map((row) => [row.data.progress, row.data.preview_version])).toEqual([
      [10, 1],
      [20, 1],
      [30, 2],
    ]);
  });

  it('a write under a lease that is no longer the task’s stores nothing', async () => {
    const lease = await runningTask();
    const stale = { ...lease, token: randomUUID() };
    expect(await reportProgress(pool, NO_HINTS, stale, 'generating', 50, png(9))).toBe(false);
    expect(await previewRows(lease.taskId)).toEqual([]);
    expect(await findTaskPreview(pool, LOCAL_USER_ID, lease.taskId)).toBeUndefined();
  });

  it('is dropped when the attempt ends, whichever way', async () => {
    const failed = await runningTask();
    await reportProgress(pool, NO_HINTS, failed, 'generating', 50, png(1));
    await failAttempt(pool, NO_HINTS, failed, { code: 'PROVIDER_REJECTED', message: 'no' }, 1);
    expect(await previewRows(failed.taskId)).toEqual([]);
    expect(await taskPreviewVersion(failed.taskId)).toBeNull();

    const released = await runningTask();
    await reportProgress(pool, NO_HINTS, released, 'generating', 50, png(1));
    await releaseAttempt(pool, NO_HINTS, released);
    expect(await previewRows(released.taskId)).toEqual([]);
    expect(await taskPreviewVersion(released.taskId)).toBeNull();
  });

  it('is dropped when the task is claimed again under a new lease (a rescued attempt starts without one)', async () => {
    const lease = await runningTask();
    await reportProgress(pool, NO_HINTS, lease, 'generating', 50, png(1));
    await pool.query('UPDATE tasks SET lease_token = $2 WHERE id = $1', [lease.taskId, randomUUID()]);
    expect(await previewRows(lease.taskId)).toEqual([]);
    expect(await taskPreviewVersion(lease.taskId)).toBeNull();
  });

  it('is only ever shown to the task’s owner', async () => {
    const lease = await runningTask();
    await reportProgress(pool, NO_HINTS, lease, 'generating', 50, png(1));
    expect(await findTaskPreview(pool, randomUUID(), lease.taskId)).toBe('no_task');
    expect(await findTaskPreview(pool, null, lease.taskId)).toMatchObject({ version: 1 });
  });
});
