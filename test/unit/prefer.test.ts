import { describe, expect, it } from 'vitest';
import { parsePrefer, preferredWaitSeconds } from '../../src/api/prefer.js';

describe('Prefer (RFC 7240)', () => {
  it.each<[string | string[] | undefined, number | undefined]>([
    ['wait=10', 10],
    ['WAIT=10', 10],
    ['wait = 7', 7],
    ['respond-async, wait=5', 5],
    ['handling=lenient; foo="a,b", wait=3', 3],
    ['wait="4"', 4],
    [['respond-async', 'wait=2'], 2],
    ['wait=120', 60],
    ['wait=0', 0],
    ['wait=1, wait=9', 1],
    ['waitlist', undefined],
    ['waitlist=5', undefined],
    ['wait', undefined],
    ['wait=abc', undefined],
    ['wait=-1', undefined],
    ['wait=1.5', undefined],
    ['respond-async', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%j → %s', (header, seconds) => {
    expect(preferredWaitSeconds(header, 60)).toBe(seconds);
  });

  it('keeps names lower-cased, values unquoted, parameters apart', () => {
    expect([...parsePrefer('Return=minimal; x=1, Wait=3, handling="strict"')]).toEqual([
      ['return', 'minimal'],
      ['wait', '3'],
      ['handling', 'strict'],
    ]);
  });
});
