import { describe, expect, it } from 'vitest';
import { compareCursors, formatCursor, parseCursor } from '../../src/events/cursor.js';

describe('event cursors', () => {
  it('round-trip through their wire form', () => {
    const cursor = { txId: '18446744073709551000', id: 42 };
    expect(parseCursor(formatCursor(cursor))).toEqual(cursor);
  });

  it('reject anything else', () => {
    for (const text of ['', '12', '12_', '_3', 'a_1', '1_2_3', '1-2']) expect(parseCursor(text)).toBeUndefined();
  });

  it('reject ids that parse but overflow xid8 or an exact event id', () => {
    expect(parseCursor('18446744073709551615_1')).toEqual({ txId: '18446744073709551615', id: 1 });
    for (const text of [
      '18446744073709551616_1',
      '99999999999999999999_1',
      '5_9007199254740992',
      '5_99999999999999999',
    ])
      expect(parseCursor(text)).toBeUndefined();
  });

  it('order by transaction, then by id, beyond 2^53', () => {
    expect(compareCursors({ txId: '9007199254740993', id: 1 }, { txId: '9007199254740992', id: 99 })).toBe(1);
    expect(compareCursors({ txId: '5', id: 1 }, { txId: '5', id: 2 })).toBeLessThan(0);
    expect(compareCursors({ txId: '5', id: 2 }, { txId: '5', id: 2 })).toBe(0);
  });
});
