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

/** The largest xid8: transaction ids are unsigned 64-bit. */
const MAX_TX_ID = 2n ** 64n - 1n;

/**
 * The cursor in `text`, or undefined when it is not one this server could have sent: malformed,
 * or out of range (a transaction id past xid8, an event id past what a JS number holds exactly,
 * which bigserial ids never reach). Refusing here keeps such ids from failing in SQL mid-stream.
 */
export function parseCursor(text: string): EventCursor | undefined {
  const match = /^(\d{1,20})_(\d{1,16})$/.exec(text.trim());
  if (!match) return undefined;
  const txId = BigInt(match[1]!);
  const id = Number(match[2]);
  if (txId > MAX_TX_ID || !Number.isSafeInteger(id)) return undefined;
  return { txId: txId.toString(), id };
}

export function compareCursors(a: EventCursor, b: EventCursor): number {
  const tx = BigInt(a.txId) - BigInt(b.txId);
  if (tx !== 0n) return tx < 0n ? -1 : 1;
  return a.id - b.id;
}
