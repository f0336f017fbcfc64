import type { Pool } from '../../src/db/pool.js';

/** Subtransactions per top-level transaction: each holds a lock until the top commits. */
const SUBTRANSACTIONS_PER_COMMIT = 1000;
/** Xids per statement, so no single statement runs long (pools may set a statement_timeout). */
const XIDS_PER_STATEMENT = 100_000;

/** The transaction id the next writing transaction will get (cluster-wide, 64-bit). */
export async function nextTransactionId(pool: Pool): Promise<bigint> {
  const { rows } = await pool.query<{ next: string }>('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS next');
  return BigInt(rows[0]!.next);
}

/**
 * Consume about `count` transaction ids, fast: a PL/pgSQL loop of subtransactions that each
 * write a row to a temporary table (a subtransaction gets an xid only when it writes), with a
 * COMMIT every 1000 so no transaction holds the xmin horizon back or fills the lock table.
 * Measured on the 2-core development machine: about 130 thousand xids per second when idle,
 * about 40 thousand under a load average of 6. Two more go to the temporary table's set-up.
 *
 * Xids are cluster-wide: this ages every database on the server, which disturbs nothing but
 * proves that code survives ids past 999, 2^31, … Other sessions consume xids meanwhile, so
 * callers must not expect an exact result; read `nextTransactionId` afterwards.
 */
export async function advanceTransactionIds(pool: Pool, count: number | bigint): Promise<void> {
  let remaining = BigInt(count);
  const client = await pool.connect();
  try {
    await client.query('CREATE TEMP TABLE IF NOT EXISTS easel_xid_burner (n int)');
    while (remaining > 0n) {
      const now = remaining < BigInt(XIDS_PER_STATEMENT) ? Number(remaining) : XIDS_PER_STATEMENT;
      // A top-level transaction of k xids: its own (taken by the first write) and k - 1
      // subtransactions. COMMIT inside DO needs the simple query protocol, hence no parameters.
      await client.query(`DO $$
        DECLARE
          todo int := ${now};
          k int;
        BEGIN
          WHILE todo > 0 LOOP
            k := least(todo, ${SUBTRANSACTIONS_PER_COMMIT});
            FOR s IN 2..k LOOP
              BEGIN
                INSERT INTO easel_xid_burner VALUES (s);
              EXCEPTION WHEN OTHERS THEN RAISE;
              END;
            END LOOP;
            TRUNCATE easel_xid_burner;
            COMMIT;
            todo := todo - k;
          END LOOP;
        END $$`);
      remaining -= BigInt(now);
    }
  } finally {
    await client.query('DROP TABLE IF EXISTS easel_xid_burner').catch(() => undefined);
    client.release();
  }
}

/**
 * Advance until the next writing transaction gets an id of at least `target`. The last thousand
 * go in one short step of their own, so xids that other sessions take meanwhile overshoot the
 * target by little.
 */
export async function advanceTransactionIdsTo(pool: Pool, target: bigint): Promise<void> {
  for (;;) {
    const gap = target - (await nextTransactionId(pool));
    if (gap <= 0n) return;
    await advanceTransactionIds(pool, gap > 2000n ? gap - 1000n : gap);
  }
}
