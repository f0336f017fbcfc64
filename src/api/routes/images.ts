import type { FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Pool } from '../../db/pool.js';
import { ApiError } from '../../domain/errors.js';
import type { Storage } from '../../storage/storage.js';
import { findTaskPreview } from '../../tasks/previews.js';
import { findImage, findTask } from '../../tasks/queries.js';
import { Uuid } from '../schemas/task.js';
import type { TaskOwner } from '../../tasks/queries.js';
import { deliverImage, SIGNED_QUERY_DESCRIPTION } from '../image-delivery.js';
import { taskOwnerFor } from '../task-owner.js';
import { storedThumbnail, THUMBNAIL_CONTENT_TYPE, THUMBNAIL_MAX_SIDE } from '../../images/thumbnail.js';

/** The query of a signable image URL: both parameters, or neither (then an API key is needed). */
export const SignedQuery = Type.Object({
  expires: Type.Optional(Type.String({ pattern: '^[0-9]{1,12}$', description: SIGNED_QUERY_DESCRIPTION.expires })),
  signature: Type.Optional(Type.String({ maxLength: 100, description: SIGNED_QUERY_DESCRIPTION.signature })),
});

/** A signed URL reaches the image it was signed for, whoever owns the task. */
export const imageOwnerFor = (request: FastifyRequest): TaskOwner =>
  request.signedAccess ? null : taskOwnerFor(request);

export const imageRoutes: FastifyPluginAsyncTypebox<{ pool: Pool; storage: Storage; presignSeconds: number }> = async (
  app,
  { pool, storage, presignSeconds },
) => {
  const delivery = { storage, presignSeconds };
  app.get(
    '/v1/tasks/:id/images/:index',
    {
      schema: {
        summary: "Download one of a task's images",
        description:
          "A stable URL: the bytes behind it never change. With S3 storage the answer is a 302 to a fresh public or presigned URL of the object; otherwise the bytes themselves. With `expires` and `signature` (a task's `signed_url`) no API key is needed until it expires.",
        tags: ['tasks'],
        params: Type.Object({
          id: Uuid({ description: 'The task id.' }),
          index: Type.String({ pattern: '^[0-9]{1,2}$' }),
        }),
        querystring: SignedQuery,
        produces: ['image/png', 'image/jpeg', 'image/webp'],
      },
    },
    async (request, reply) => {
      const image = await findImage(pool, imageOwnerFor(request), request.params.id, Number(request.params.index));
      if (!image) throw new ApiError('IMAGE_NOT_FOUND');
      if (image.expired_at) throw imageExpired(image.expired_at);
      return deliverImage(request, reply, delivery, image, 'image');
    },
  );

  app.get(
    '/v1/tasks/:id/images/:index/thumbnail',
    {
      schema: {
        summary: "Download a small preview of one of a task's images",
        description: `A WebP at most ${THUMBNAIL_MAX_SIDE} px on its longest side, made once when the image was stored. Stable and cacheable like the image, delivered the same way (a 302 with S3 storage), and signable the same way (\`thumbnail_signed_url\`).`,
        tags: ['tasks'],
        params: Type.Object({
          id: Uuid({ description: 'The task id.' }),
          index: Type.String({ pattern: '^[0-9]{1,2}$' }),
        }),
        querystring: SignedQuery,
        produces: [THUMBNAIL_CONTENT_TYPE],
      },
    },
    async (request, reply) => {
      const image = await findImage(pool, imageOwnerFor(request), request.params.id, Number(request.params.index));
      if (!image) throw new ApiError('IMAGE_NOT_FOUND');
      if (image.expired_at) throw imageExpired(image.expired_at);
      const thumbnail = storedThumbnail(image);
      if (!thumbnail)
        throw new ApiError('IMAGE_NOT_FOUND', 'the image was stored before thumbnails existed; it has none');
      return deliverImage(request, reply, delivery, thumbnail, 'thumbnail');
    },
  );

  app.get(
    '/v1/tasks/:id/input-image',
    {
      schema: {
        summary: "Download an img2img task's input image",
        description: 'The checked input the task runs on: upright, without metadata, sized for the model.',
        tags: ['tasks'],
        params: Type.Object({ id: Uuid({ description: 'The task id.' }) }),
        querystring: SignedQuery,
        produces: ['image/png'],
      },
    },
    async (request, reply) => {
      const task = await findTask(pool, imageOwnerFor(request), request.params.id);
      if (!task) throw new ApiError('TASK_NOT_FOUND', `no task ${request.params.id}`);
      const input = task.input_image;
      if (!input) throw new ApiError('IMAGE_NOT_FOUND', 'the task has no input image; only img2img tasks do');
      return deliverImage(request, reply, delivery, input, 'input image');
    },
  );

  app.get(
    '/v1/tasks/:id/preview',
    {
      schema: {
        summary: "A running task's latest progress preview",
        description:
          'The intermediate image the backend showed most recently (AUTOMATIC1111, ComfyUI), while the task runs. It changes as the task advances: follow `preview_url` on the task or its progress events.',
        tags: ['tasks'],
        params: Type.Object({ id: Uuid({ description: 'The task id.' }) }),
        querystring: Type.Object({
          v: Type.Optional(
            Type.String({
              pattern: '^[0-9]{1,10}$',
              description: 'The version from `preview_url`; only makes each URL distinct.',
            }),
          ),
        }),
        produces: ['image/png', 'image/jpeg', 'image/webp'],
      },
    },
    async (request, reply) => {
      const preview = await findTaskPreview(pool, taskOwnerFor(request), request.params.id);
      if (preview === 'no_task') throw new ApiError('TASK_NOT_FOUND', `no task ${request.params.id}`);
      if (!preview) throw new ApiError('PREVIEW_NOT_FOUND');
      // A preview is replaced within seconds and gone when the attempt ends: never cache it.
      return reply.type(preview.contentType).header('cache-control', 'private, no-store').send(preview.data);
    },
  );
};

/** The 410 of an image retention expired (docs/retention.md); the thumbnail route answers it too. */
export function imageExpired(expiredAt: Date): ApiError {
  return new ApiError(
    'IMAGE_EXPIRED',
    `this image expired on ${expiredAt.toISOString()} under the retention settings (EASEL_IMAGE_RETENTION_DAYS, or EASEL_TASK_RETENTION_DAYS for a task kept for its billing records) and its bytes were deleted; the task keeps its size, seed and sha256`,
    { expired_at: expiredAt.toISOString() },
  );
}
