import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Pool } from '../../db/pool.js';
import { ApiError } from '../../domain/errors.js';
import type { Storage } from '../../storage/storage.js';
import { findImage, findTask } from '../../tasks/queries.js';
import { Uuid } from '../schemas/task.js';
import { taskOwnerFor } from '../task-owner.js';
import { storedThumbnail, THUMBNAIL_CONTENT_TYPE, THUMBNAIL_MAX_SIDE } from '../../images/thumbnail.js';

export const imageRoutes: FastifyPluginAsyncTypebox<{ pool: Pool; storage: Storage }> = async (
  app,
  { pool, storage },
) => {
  app.get(
    '/v1/tasks/:id/images/:index',
    {
      schema: {
        summary: "Download one of a task's images",
        description: 'A stable URL: the bytes behind it never change, so it is cacheable forever.',
        tags: ['tasks'],
        params: Type.Object({
          id: Uuid({ description: 'The task id.' }),
          index: Type.String({ pattern: '^[0-9]{1,2}$' }),
        }),
        produces: ['image/png', 'image/jpeg', 'image/webp'],
      },
    },
    async (request, reply) => {
      const image = await findImage(pool, taskOwnerFor(request), request.params.id, Number(request.params.index));
      if (!image) throw new ApiError('IMAGE_NOT_FOUND');
      return sendStoredImage(request, reply, storage, image, 'image');
    },
  );

  app.get(
    '/v1/tasks/:id/images/:index/thumbnail',
    {
      schema: {
        summary: "Download a small preview of one of a task's images",
        description: `A WebP at most ${THUMBNAIL_MAX_SIDE} px on its longest side, made once when the image was stored. Stable and cacheable like the image.`,
        tags: ['tasks'],
        params: Type.Object({
          id: Uuid({ description: 'The task id.' }),
          index: Type.String({ pattern: '^[0-9]{1,2}$' }),
        }),
        produces: [THUMBNAIL_CONTENT_TYPE],
      },
    },
    async (request, reply) => {
      const image = await findImage(pool, taskOwnerFor(request), request.params.id, Number(request.params.index));
      if (!image) throw new ApiError('IMAGE_NOT_FOUND');
      const thumbnail = storedThumbnail(image);
      if (!thumbnail)
        throw new ApiError('IMAGE_NOT_FOUND', 'the image was stored before thumbnails existed; it has none');
      return sendStoredImage(request, reply, storage, thumbnail, 'thumbnail');
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
        produces: ['image/png'],
      },
    },
    async (request, reply) => {
      const task = await findTask(pool, taskOwnerFor(request), request.params.id);
      if (!task) throw new ApiError('TASK_NOT_FOUND', `no task ${request.params.id}`);
      const input = task.input_image;
      if (!input) throw new ApiError('IMAGE_NOT_FOUND', 'the task has no input image; only img2img tasks do');
      return sendStoredImage(request, reply, storage, input, 'input image');
    },
  );
};

/**
 * Serve an image recorded with its sha256: the bytes behind its URL never change, so the ETag is
 * the sha256 and it may be cached for a year (by this user only). A recorded image whose bytes
 * are gone from storage is a 404 and an error in the log, never a 500.
 */
export async function sendStoredImage(
  request: FastifyRequest,
  reply: FastifyReply,
  storage: Storage,
  image: { sha256: string; storage_key: string; content_type: string },
  what: string,
) {
  const etag = `"${image.sha256}"`;
  reply.header('etag', etag).header('cache-control', 'private, max-age=31536000, immutable');
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  const object = await storage.get(image.storage_key);
  if (!object) {
    request.log.error({ key: image.storage_key }, `${what} recorded but missing from storage`);
    throw new ApiError('IMAGE_NOT_FOUND', `the ${what} is recorded but its bytes are missing from storage`);
  }
  return reply.type(image.content_type).header('content-length', object.size).send(object.body);
}
