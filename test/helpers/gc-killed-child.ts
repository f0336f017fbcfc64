/**
 * A gc in a process of its own that kills itself with SIGKILL in the middle of its deletes: after
 * KILL_AFTER deletes storage confirmed, the next delete never returns. Run by
 * test/integration/retention-gc-kill.test.ts; nothing here cleans up, on purpose.
 */
import { createPool } from '../../src/db/pool.js';
import { collectGarbage } from '../../src/retention/gc.js';
import { createLocalStorage } from '../../src/storage/local.js';
import type { Storage } from '../../src/storage/storage.js';

const local = createLocalStorage(process.env.GC_ROOT!);
const killAfter = Number(process.env.KILL_AFTER);
let deletes = 0;
const dying: Storage = {
  ...local,
  async delete(key) {
    if (deletes === killAfter) process.kill(process.pid, 'SIGKILL');
    deletes += 1;
    return local.delete(key);
  },
};
const pool = createPool(process.env.DATABASE_URL!, { max: 3 });
await collectGarbage(pool, dying, {
  retention: { imageRetentionDays: 30, taskRetentionDays: 365, orphanGraceHours: 24 },
  batchSize: 3,
});
// Reaching this line means the kill never came: the test fails on the exit code.
process.exit(3);
