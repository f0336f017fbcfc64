import multipart from '@fastify/multipart';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ApiError } from '../../domain/errors.js';
import { validationFailed } from '../../domain/validation.js';
import { createUpload, type UploadDeps } from '../../inputs/upload-service.js';
import { ProblemSchema } from '../schemas/task.js';

export interface UploadRoutesOptions extends UploadDeps {
  /** EASEL_UPLOAD_MAX_BYTES: a larger file is 413 BODY_TOO_LARGE. */
  maxBytes: number;
}

export const UploadSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid', description: 'Name it in a task as `upload:<id>`.' }),
    content_type: Type.String({ description: 'Always image/png: inputs are re-encoded without metadata.' }),
    bytes: Type.Integer(),
    width: Type.Integer(),
    height: Type.Integer(),
    sha256: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Upload' },
);

/**
 * Input images uploaded ahead of a task. The multipart parser is registered inside this plugin
 * only, so every other route still takes JSON alone.
 */
export const uploadRoutes: FastifyPluginAsyncTypebox<UploadRoutesOptions> = async (app, options) => {
  await app.register(multipart, { limits: { fileSize: options.maxBytes, files: 1, fields: 0, parts: 1 } });
  app.post(
    '/v1/uploads',
    {
      schema: {
        summary: 'Upload an input image',
        description:
          'multipart/form-data with one file field `image` (PNG, JPEG or WebP, at most `EASEL_UPLOAD_MAX_BYTES`). The image is decoded, turned upright by its EXIF orientation, stripped of all metadata and kept as PNG. Use it in img2img tasks as `upload:<id>`, as often as you like; only you can.',
        tags: ['tasks'],
        response: { 201: UploadSchema, 400: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema },
      },
    },
    async (request, reply) => {
      if (!request.isMultipart()) {
        throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send the image as multipart/form-data in the field image');
      }
      const part = await request.file();
      if (!part || part.fieldname !== 'image') {
        throw validationFailed([
          {
            field: 'image',
            pointer: '/image',
            in: 'body',
            code: 'REQUIRED',
            message: 'image is required: one file in the multipart field image',
          },
        ]);
      }
      const upload = await createUpload(options, request.userId, await part.toBuffer());
      return reply.code(201).send({
        id: upload.id,
        content_type: upload.content_type,
        bytes: upload.bytes,
        width: upload.width,
        height: upload.height,
        sha256: upload.sha256,
        created_at: upload.created_at.toISOString(),
      });
    },
  );
};
