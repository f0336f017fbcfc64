/**
 * SQL fragments for recording task events inside the statement that changes the task, so the
 * change and its event commit (or vanish) together; the NOTIFY hint follows the commit. `source` names a CTE or table
 * alias holding the changed `tasks` rows.
 */
export function eventDataSql(source: string): string {
  return `jsonb_build_object(
    'status', ${source}.status, 'stage', ${source}.stage, 'progress', ${source}.progress,
    'attempt', ${source}.attempt, 'max_attempts', ${source}.max_attempts, 'error', ${source}.error,
    'run_after', ${source}.run_after)`;
}

/** `typeSql` is an SQL expression (a parameter like `$3` or a quoted literal). */
export function insertEventsSql(source: string, typeSql: string, extraDataSql?: string): string {
  const data = extraDataSql ? `${eventDataSql(source)} || ${extraDataSql}` : eventDataSql(source);
  return `INSERT INTO task_events (task_id, user_id, type, data)
          SELECT ${source}.id, ${source}.user_id, ${typeSql}, ${data} FROM ${source}`;
}

export const sqlLiteral = (value: string): string => `'${value.replace(/'/g, "''")}'`;
