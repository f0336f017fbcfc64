import { randomUUID } from 'node:crypto';
import { SecretBox } from '../src/credentials/secret-box.js';
import { insertCredential } from '../src/credentials/store.js';
import { NO_HINTS } from '../src/db/notifier.js';
import { createPool } from '../src/db/pool.js';
import { claimTasks } from '../src/tasks/claim.js';
import { submitTask } from '../src/tasks/submit.js';
import { medianOf, ms, sketchTask } from './support.js';

/**
 * (d) What choosing a credential adds to a claim. The same database, the same queue depth and
 * the same number of running tasks; one provider claims plainly, the other through a pool of 10
 * credentials (concurrency 8 each) with 40 tasks already running on them. Each sample claims one
 * task and finishes it, so the running set stays the same.
 */
export async function measureClaim(databaseUrl: string, samples: number): Promise<string> {
  const pool = createPool(databaseUrl, { max: 2 });
  try {
    const workerId = randomUUID();
    await pool.query(`INSERT INTO workers (id, host, pid, concurrency) VALUES ($1, 'bench', 1, 1000)`, [workerId]);
    const box = new SecretBox(Buffer.alloc(32, 1));
    for (let i = 0; i < 10; i++) {
      await insertCredential(pool, box, {
        provider: 'pooled',
        label: `c${i}`,
        secret: `bench-secret-${i}-0123456789`,
        concurrency: 8,
      });
    }
    for (const provider of ['plain', 'pooled']) {
      for (let i = 0; i < samples + 100; i++)
        await submitTask(pool, NO_HINTS, { ...sketchTask(`claim ${i}`, i), provider });
    }
    const claim = (provider: string, credentialPool: string | undefined) =>
      claimTasks(pool, NO_HINTS, {
        provider,
        workerId,
        want: 1,
        providerLimit: 1000,
        deadAfterMs: 60_000,
        credentialPool,
      });
    // 40 tasks stay running on each provider for the whole measurement.
    for (let i = 0; i < 40; i++) {
      await claim('plain', undefined);
      await claim('pooled', 'pooled');
    }
    const claimAndFinish = async (provider: string, credentialPool: string | undefined) => {
      const [task] = await claim(provider, credentialPool);
      await pool.query(`UPDATE tasks SET status = 'succeeded', finished_at = now() WHERE id = $1`, [task!.id]);
    };
    const plain = await medianOf(samples, () => claimAndFinish('plain', undefined));
    const pooled = await medianOf(samples, () => claimAndFinish('pooled', 'pooled'));
    const roundTrip = await medianOf(200, () => pool.query('SELECT 1'));
    return [
      `(d) claim + finish of one task, ${samples} samples each, 40 running, 10 credentials × 8 slots:`,
      `    without a credential pool ${ms(plain)}   with one ${ms(pooled)}   (pool costs ${(pooled / plain).toFixed(2)}×)`,
      `    baseline SELECT 1 round trip ${ms(roundTrip)}`,
    ].join('\n');
  } finally {
    await pool.end();
  }
}
