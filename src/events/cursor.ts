/**
 * A position in the task_events log: (transaction id, event id). Events are read in this order
 * and only below the oldest still-running transaction, so every event lands exactly once in
 * the sequence even when transactions commit out of order. On the wire it is `<tx>_<id>`.
 */
export interface EventCursor {
  txId: string;
  id: number;
}

export const START_CURSOR: EventCursor = { txId: '0', id: 0 };

export function formatCursor(cursor: EventCursor): string {
  return `${cursor.txId}_${cursor.id}`;
}

export function parseCursor(text: string): EventCursor | undefined {
  const match = /^(\d{1,20})_(\d{1,18})$/.exec(text.trim());
  if (!match) return undefined;
  return { txId: match[1]!, id: Number(match[2]) };
}

export function compareCursors(a: EventCursor, b: EventCursor): number {
  const tx = BigInt(a.txId) - BigInt(b.txId);
  if (tx !== 0n) return tx < 0n ? -1 : 1;
  return a.id - b.id;
}
