import { ApiError } from '../domain/errors.js';
import { validationFailed } from '../domain/validation.js';
import { UUID_REGEXP } from './schemas/task.js';

/**
 * `limit` and `cursor` of a keyset-paginated list (tasks, admin views): a limit from 1 to 100
 * (default 20) and a cursor that is an id an earlier page gave as `next_cursor`.
 */
export function readPageQuery(query: { limit?: string | undefined; cursor?: string | undefined }): {
  limit: number;
  cursor: string | undefined;
} {
  const limit = query.limit === undefined ? 20 : Number(query.limit);
  if (limit < 1 || limit > 100) {
    throw validationFailed([
      {
        field: 'limit',
        pointer: '/limit',
        in: 'query',
        code: limit < 1 ? 'TOO_SMALL' : 'TOO_LARGE',
        message: 'limit must be from 1 to 100',
      },
    ]);
  }
  // A cursor is an id; anything else would reach PostgreSQL's uuid cast and fail there.
  const { cursor } = query;
  if (cursor !== undefined && !UUID_REGEXP.test(cursor)) {
    const message = 'cursor must be a next_cursor from an earlier page';
    throw new ApiError('INVALID_CURSOR', message, {
      errors: [{ field: 'cursor', pointer: '/cursor', in: 'query', code: 'BAD_FORMAT', message }],
    });
  }
  return { limit, cursor };
}
