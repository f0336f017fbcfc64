import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withUntimedClient, type Pool, type PoolClient } from '../../src/db/pool.js';
import { listTasksStatement, type TaskFilter } from '../../src/tasks/queries.js';
import { executedPlan, type PlanNode } from '../helpers/plans.js';
import { createTestDatabase, createTestPool, createUser } from '../helpers/database.js';

/**
 * Every task list is an ordered index range that stops after `limit` rows, however long the
 * user's history: checked on the plans PostgreSQL picks for a large table, not by timing.
 */

const HISTORY = 200_000;
const LIMIT = 21; // what a page of 20 asks for (one more, to know whether there is a next page)
const idOf = (i: number) => `01900000-0000-7000-8000-${i.toString(16).padStart(12, '0')}`;

let pool: Pool;
let client: PoolClient;
let userId: string;

beforeAll(async () => {
  pool = await createTestPool(await createTestDatabase());
  userId = await createUser(pool, 'long history');
  const otherUserId = await createUser(pool, 'someone else');
  // Ids ascend with i, like UUIDv7s. 2 in 1000 failed, 2 in 1000 on a rare provider, 1 in 1000
  // both. Every third task is someone else's, so that scanning all tasks would not be bounded.
  // A slow machine may take longer than the pool's statement timeout to fill the table.
  await withUntimedClient(pool, async (seed) => {
    await seed.query(
      `INSERT INTO tasks (id, user_id, kind, provider, model, params, priority, vtime, status, max_attempts)
       SELECT ('01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
              CASE WHEN i % 3 = 0 THEN $2::uuid ELSE $1::uuid END, 'txt2img',
              CASE WHEN i % 1000 IN (1, 2) THEN 'rare' ELSE 'sketch' END, 'sketch-v1', '{}', 5, i,
              CASE WHEN i % 1000 IN (0, 1) THEN 'failed' ELSE 'succeeded' END, 1
       FROM generate_series(1, $3::int) i`,
      [userId, otherUserId, HISTORY],
    );
    await seed.query('ANALYZE tasks');
  });
  client = await pool.connect();
}, 300_000);
afterAll(async () => {
  client?.release();
  await pool?.end();
});

/**
 * The executed plan of the statement listTasks sends. It is sent unnamed, so PostgreSQL plans
 * it for its values each time: a prepared statement with a custom plan is the same.
 */
function planOf(filter: TaskFilter): Promise<PlanNode[]> {
  const statement = listTasksStatement(userId, filter);
  return executedPlan(client, statement.text, statement.values);
}

/** Rows a page may read: the page, or a few pages' worth when a second filter is checked row by row. */
const MAX_ROWS_READ = 4 * LIMIT;
// When the user owns most tasks (two thirds here), walking the primary key is as good.
const BY_USER = ['tasks_by_user', 'tasks_pkey'];
// For a user who owns most tasks (two thirds here), the admin views' indexes across users
// (migration 0013) are as good: the user's rows are dense in them, so the range still stops
// after about a page (MAX_ROWS_READ checks that). A user owning few tasks gets the user indexes.
const ACROSS_USERS = ['tasks_by_status', 'tasks_by_provider', 'tasks_by_provider_status'];
const BY_STATUS = ['tasks_by_user_status', 'tasks_by_user_provider_status', ...ACROSS_USERS];
const BY_PROVIDER = ['tasks_by_user_provider', 'tasks_by_user_provider_status', ...ACROSS_USERS];

describe('task lists', () => {
  it.each<[string, Omit<TaskFilter, 'limit'>, string[]]>([
    ['no filter', {}, BY_USER],
    ['no filter, deep cursor', { before: idOf(HISTORY / 2) }, BY_USER],
    ['a rare status', { status: 'failed' }, BY_STATUS],
    ['a rare status, deep cursor', { status: 'failed', before: idOf(HISTORY / 2) }, BY_STATUS],
    ['a common status', { status: 'succeeded' }, [...BY_USER, ...BY_STATUS]],
    ['a rare provider', { provider: 'rare' }, BY_PROVIDER],
    ['an absent provider', { provider: 'nobody' }, BY_PROVIDER],
    ['a rare provider and status', { provider: 'rare', status: 'failed' }, [...BY_STATUS, ...BY_PROVIDER]],
    ['a common provider and a rare status', { provider: 'sketch', status: 'failed' }, [...BY_STATUS, ...BY_PROVIDER]],
  ])('%s: an ordered range on a user index, reading a bounded number of rows', async (_name, filter, indexes) => {
    const nodes = await planOf({ ...filter, limit: LIMIT });
    const described = JSON.stringify(
      nodes.map((node) => [node['Node Type'], node['Index Name'], node['Actual Rows'], node['Rows Removed by Filter']]),
    );
    const scans = nodes.filter((node) => node['Relation Name'] === 'tasks');
    expect(scans, described).toHaveLength(1);
    const [scan] = scans as [PlanNode];
    expect(scan['Node Type'], described).toMatch(/^Index (Only )?Scan$/);
    expect(indexes, described).toContain(scan['Index Name']);
    expect(
      nodes.some((node) => node['Node Type'] === 'Sort'),
      described,
    ).toBe(false);
    const rowsRead = (scan['Actual Rows'] + (scan['Rows Removed by Filter'] ?? 0)) * scan['Actual Loops'];
    expect(rowsRead, described).toBeLessThanOrEqual(MAX_ROWS_READ);
  });
});
