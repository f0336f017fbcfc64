import type { PoolClient } from '../../src/db/pool.js';

/** One node of an executed plan (`EXPLAIN (ANALYZE, FORMAT JSON)`), with the fields tests read. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

export const nodesOf = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodesOf)];

/**
 * Every node of the executed plan of `text` with `values`, planned for those values (as an
 * unnamed statement is), in a transaction that is rolled back: a locking statement keeps no lock
 * and changes nothing.
 */
export async function executedPlan(client: PoolClient, text: string, values: unknown[]): Promise<PlanNode[]> {
  await client.query(`SET plan_cache_mode = force_custom_plan`);
  await client.query('BEGIN');
  await client.query(`PREPARE plan_under_test AS ${text}`);
  try {
    const literals = values.map((value) => client.escapeLiteral(String(value))).join(', ');
    const execute = values.length > 0 ? `EXECUTE plan_under_test(${literals})` : 'EXECUTE plan_under_test';
    const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${execute}`);
    return nodesOf((rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0]!.Plan);
  } finally {
    await client.query('ROLLBACK');
    // Whether a rollback drops a statement prepared inside it or not, none is left after this.
    await client.query('DEALLOCATE ALL');
  }
}
