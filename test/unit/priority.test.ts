import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/domain/errors.js';
import { maxPriorityFor, resolvePriority } from '../../src/domain/priority.js';

describe('maxPriorityFor', () => {
  it('is 5 for users and 10 for admins unless the user has an override', () => {
    expect(maxPriorityFor('user', null)).toBe(5);
    expect(maxPriorityFor('admin', null)).toBe(10);
    expect(maxPriorityFor('user', 8)).toBe(8);
    expect(maxPriorityFor('admin', 0)).toBe(0);
  });
});

describe('resolvePriority', () => {
  it('keeps a priority up to the maximum', () => {
    expect(resolvePriority(0, 5)).toBe(0);
    expect(resolvePriority(5, 5)).toBe(5);
  });

  it('gives the default 5, lowered to a maximum below it, when none is asked', () => {
    expect(resolvePriority(undefined, 10)).toBe(5);
    expect(resolvePriority(undefined, 2)).toBe(2);
  });

  it('refuses more than the maximum with PRIORITY_NOT_ALLOWED naming the field and the maximum', () => {
    let error: unknown;
    try {
      resolvePriority(6, 5);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({
      code: 'PRIORITY_NOT_ALLOWED',
      status: 400,
      message: 'priority 6 is above your maximum of 5',
      extra: {
        max_priority: 5,
        errors: [{ field: 'priority', pointer: '/priority', in: 'body', code: 'PRIORITY_NOT_ALLOWED' }],
      },
    });
  });
});
