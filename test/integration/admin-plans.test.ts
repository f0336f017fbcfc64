import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withUntimedClient, type Pool, type PoolClient } from '../../src/db/pool.js';
import { anyTasksStatement, uuidBoundAt, type AnyTaskFilter } from '../../src/tasks/queries.js';
import { QUEUE_STATS_SQL } from '../../src/tasks/queue-stats.js';
import { executedPlan, type PlanNode } from '../helpers/plans.js';
import { createTestDatabase, createTestPool, createUser } from '../helpers/database.js';

/**
 * The admin views across every user stay index-backed on a long history: each list is an ordered
 * index range that stops after a page, and the statistics read only the rows they count. Checked
 * on the plans PostgreSQL picks for a large table (as task-list-plans.test.ts does), not by timing.
 */

const HISTORY = 200_000;
const LIMIT = 21;
const idOf = (i: number) => `01900000-0000-7000-8000-${i.toString(16).padStart(12, '0')}`;

let pool: Pool;
let client: PoolClient;
let userId: string;
let smallUserId: string;

beforeAll(async () => {
  pool = await createTestPool(await createTestDatabase());
  userId = await createUser(pool, 'one of three');
  const second = await createUser(pool, 'two of three');
  const third = await createUser(pool, 'three of three');
  smallUserId = await createUser(pool, 'a small user');
  // A slow machine may take longer than the pool's statement timeout to fill the table.
  await withUntimedClient(pool, async (seed) => {
    // 2 in 1000 failed (one with error TIMEOUT), 1 in 1000 queued, 1 in 2000 running, the rest
    // succeeded; 2 in 1000 on a rare provider. Finished tasks spread over the last 60 days.
    await seed.query(
      `INSERT INTO tasks (id, user_id, kind, provider, model, params, priority, vtime, status, max_attempts, error, finished_at)
       SELECT ('01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
              (ARRAY[$1::uuid, $2::uuid, $3::uuid])[i % 3 + 1], 'txt2img',
              CASE WHEN i % 1000 IN (1, 2) THEN 'rare' ELSE 'sketch' END, 'sketch-v1', '{}', i % 11, i, s.status, 1,
              CASE WHEN s.status = 'failed' THEN jsonb_build_object('code', CASE WHEN i % 1000 = 0 THEN 'TIMEOUT' ELSE 'OTHER' END, 'message', 'm') END,
              CASE WHEN s.status IN ('failed', 'succeeded') THEN now() - make_interval(days => i % 60) END
       FROM generate_series(1, $4::int) i,
            LATERAL (SELECT CASE WHEN i % 1000 IN (0, 1) THEN 'failed'
                                 WHEN i % 1000 = 500 THEN 'queued'
                                 WHEN i % 2000 = 777 THEN 'running'
                                 ELSE 'succeeded' END AS status) s`,
      [userId, second, third, HISTORY],
    );
    // A user with few tasks (1 in 100 of theirs failed), ids after the rest: their lists must keep
    // to the user indexes, not walk the cross-user ones filtering out everyone else.
    await seed.query(
      `INSERT INTO tasks (id, user_id, kind, provider, model, params, priority, vtime, status, max_attempts)
       SELECT ('01900000-0000-7000-8000-' || lpad(to_hex($2::int + i), 12, '0'))::uuid, $1::uuid, 'txt2img', 'sketch',
              'sketch-v1', '{}', 5, i, CASE WHEN i % 100 = 0 THEN 'failed' ELSE 'succeeded' END, 1
       FROM generate_series(1, 2000) i`,
      [smallUserId, HISTORY],
    );
    await seed.query('ANALYZE tasks');
  });
  client = await pool.connect();
}, 300_000);
afterAll(async () => {
  client?.release();
  await pool?.end();
});

const describePlan = (nodes: PlanNode[]) =>
  JSON.stringify(
    nodes.map((node) => [node['Node Type'], node['Index Name'], node['Actual Rows'], node['Rows Removed by Filter']]),
  );
const scansOfTasks = (nodes: PlanNode[]) => nodes.filter((node) => node['Relation Name'] === 'tasks');
const rowsRead = (scan: PlanNode) =>
  (scan['Actual Rows'] + (scan['Rows Removed by Filter'] ?? 0) + (scan['Rows Removed by Index Recheck'] ?? 0)) *
  scan['Actual Loops'];

const ALL = ['tasks_pkey'];
const BY_STATUS = ['tasks_by_status', 'tasks_by_provider_status'];
const BY_PROVIDER = ['tasks_by_provider', 'tasks_by_provider_status'];
const BY_USER = [
  'tasks_by_user',
  'tasks_pkey',
  'tasks_by_user_status',
  'tasks_by_user_provider',
  'tasks_by_user_provider_status',
];
const FAILED = HISTORY / 500;

describe("admin lists across every user's tasks", () => {
  it.each<[string, Omit<AnyTaskFilter, 'limit'>, string[], number]>([
    ['no filter', {}, ALL, 4 * LIMIT],
    ['no filter, deep cursor', { before: idOf(HISTORY / 2) }, ALL, 4 * LIMIT],
    ['a rare status', { status: 'failed' }, BY_STATUS, 4 * LIMIT],
    ['a rare status, deep cursor', { status: 'failed', before: idOf(HISTORY / 2) }, BY_STATUS, 4 * LIMIT],
    ['the queue', { status: 'queued' }, BY_STATUS, 4 * LIMIT],
    ['a rare provider', { provider: 'rare' }, BY_PROVIDER, 4 * LIMIT],
    ['an absent provider', { provider: 'nobody' }, BY_PROVIDER, 4 * LIMIT],
    ['a rare provider and status', { provider: 'rare', status: 'failed' }, [...BY_STATUS, ...BY_PROVIDER], 4 * LIMIT],
    ['a creation-time window', { idFrom: idOf(1000), idBelow: idOf(2000) }, ALL, 4 * LIMIT],
    ['one user', { userId }, BY_USER, 4 * LIMIT],
    ['one user, a rare status', { userId, status: 'failed' }, [...BY_USER, ...BY_STATUS], 4 * LIMIT],
    // Dead letters by error code: the code is checked on failed rows only, never on the history.
    ['dead letters by error code', { status: 'failed', errorCode: 'TIMEOUT' }, BY_STATUS, FAILED],
    ['dead letters locked for a batch', { status: 'failed', lock: 'skip' }, BY_STATUS, 4 * LIMIT],
  ])('%s: an ordered index range, reading a bounded number of rows', async (_name, filter, indexes, maxRows) => {
    const statement = anyTasksStatement({ ...filter, limit: LIMIT });
    const nodes = await executedPlan(client, statement.text, statement.values);
    const described = describePlan(nodes);
    const scans = scansOfTasks(nodes);
    expect(scans, described).toHaveLength(1);
    const [scan] = scans as [PlanNode];
    expect(scan['Node Type'], described).toMatch(/^Index (Only )?Scan$/);
    expect(indexes, described).toContain(scan['Index Name']);
    expect(
      nodes.some((node) => node['Node Type'] === 'Sort'),
      described,
    ).toBe(false);
    expect(rowsRead(scan), described).toBeLessThanOrEqual(maxRows);
  });

  it.each<[string, Omit<AnyTaskFilter, 'limit' | 'userId'>]>([
    ['a rare status', { status: 'failed' }],
    ['a rare status, deep cursor', { status: 'failed', before: idOf(HISTORY + 1000) }],
    ['a provider', { provider: 'sketch' }],
  ])('a user owning few tasks, %s: on a user index, reading about a page', async (_name, filter) => {
    const statement = anyTasksStatement({ ...filter, userId: smallUserId, limit: LIMIT });
    const nodes = await executedPlan(client, statement.text, statement.values);
    const described = describePlan(nodes);
    const scans = scansOfTasks(nodes);
    expect(scans, described).toHaveLength(1);
    expect(BY_USER, described).toContain(scans[0]!['Index Name']);
    expect(rowsRead(scans[0]!), described).toBeLessThanOrEqual(4 * LIMIT);
  });

  it('turns a creation time into an id bound that orders with UUIDv7 ids', () => {
    const at = new Date('2026-03-01T10:00:00.123Z');
    const bound = uuidBoundAt(at);
    expect(bound).toBe(
      `${at
        .getTime()
        .toString(16)
        .padStart(12, '0')
        .replace(/^(.{8})(.{4})$/, '$1-$2')}-0000-0000-000000000000`,
    );
    expect(uuidBoundAt(new Date(at.getTime() + 1)) > bound).toBe(true);
    expect(uuidBoundAt(new Date(at.getTime() - 1)) < bound).toBe(true);
  });
});

describe('admin statistics', () => {
  it('per provider and priority: reads only queued, running and failed rows, on their indexes', async () => {
    const nodes = await executedPlan(client, QUEUE_STATS_SQL.byProviderAndPriority, []);
    const described = describePlan(nodes);
    const scans = scansOfTasks(nodes);
    expect(scans.length, described).toBeGreaterThan(0);
    for (const scan of scans) expect(scan['Node Type'], described).not.toBe('Seq Scan');
    const read = scans.reduce((sum, scan) => sum + rowsRead(scan), 0);
    // queued (1/1000) + running (1/2000) + failed (2/1000) of the history, with a margin.
    expect(read, described).toBeLessThanOrEqual(HISTORY * (3.5 / 1000) * 1.2);
  });

  it('per day: reads only the tasks finished in those days, on tasks_finished', async () => {
    const nodes = await executedPlan(client, QUEUE_STATS_SQL.perDay, [7]);
    const described = describePlan(nodes);
    const scans = scansOfTasks(nodes);
    expect(scans, described).toHaveLength(1);
    expect(scans[0]!['Node Type'], described).not.toBe('Seq Scan');
    expect(scans[0]!['Index Name'] ?? nodes.find((node) => node['Index Name'])?.['Index Name'], described).toBe(
      'tasks_finished',
    );
    // 7 (or 8, the day boundary) of 60 days of finishes.
    expect(rowsRead(scans[0]!), described).toBeLessThanOrEqual((HISTORY * 8) / 60 + 100);
  });
});
