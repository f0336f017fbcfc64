import { ApiError, type ErrorCode } from '../domain/errors.js';

/**
 * A refused input image. The problem names the `image` field of the body (of a task submit or
 * an upload alike), so clients can show the message beside the right field.
 */
export function inputImageError(code: ErrorCode, message: string): ApiError {
  return new ApiError(code, message, {
    errors: [{ field: 'image', pointer: '/image', in: 'body', code, message: `image: ${message}` }],
  });
}
