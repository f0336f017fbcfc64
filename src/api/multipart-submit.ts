import type { FastifyRequest } from 'fastify';
import { validationFailed, type ValidationIssue } from '../domain/validation.js';

/**
 * `POST /v1/tasks` as `multipart/form-data`: the JSON body's fields as form fields, and the
 * input image as the file field `image`. The form becomes the JSON body before validation, so
 * both encodings go through one schema and one submit path, and a bad form writes nothing:
 * the file turns into a data URL, which the submit checks and stores like any other input.
 */

/** Form fields that hold numbers in the JSON body; a value that is no number is left for the schema to refuse. */
const NUMERIC_FIELDS = new Set([
  'width',
  'height',
  'steps',
  'guidance',
  'n',
  'seed',
  'priority',
  'max_attempts',
  'strength',
  'output_quality',
]);
const NUMBER = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * The limits the form parser is registered with: a few dozen short fields, and two files, so
 * that a second file reaches readSubmitForm and is refused by its field name.
 */
export function multipartSubmitLimits(maxFileBytes: number, maxFieldBytes: number) {
  return { fileSize: maxFileBytes, files: 2, fields: 32, parts: 34, fieldSize: maxFieldBytes };
}

const issue = (field: string, code: string, message: string): ValidationIssue => ({
  field,
  pointer: `/${field}`,
  in: 'body',
  code,
  message,
});

function fieldValue(field: string, value: unknown): unknown {
  if (field === 'provider_options') {
    // A part sent as application/json arrives parsed already; a plain field holds the JSON text.
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value) as unknown;
    } catch {
      throw validationFailed([issue(field, 'WRONG_TYPE', 'provider_options must be a JSON object, sent as text')]);
    }
  }
  if (NUMERIC_FIELDS.has(field) && typeof value === 'string' && NUMBER.test(value.trim())) return Number(value);
  return value;
}

/** Reads the whole form into the JSON body's shape; refuses duplicate, cut-off and misplaced parts by name. */
export async function readSubmitForm(request: FastifyRequest): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for await (const part of request.parts()) {
    const field = part.fieldname;
    if (field in body) throw validationFailed([issue(field, 'NOT_ALLOWED', `${field} is given more than once`)]);
    if (part.type === 'file') {
      if (field !== 'image') {
        // Drain it so the connection can answer; its bytes are not kept.
        part.file.resume();
        throw validationFailed([issue(field, 'NOT_ALLOWED', `${field} cannot be a file; only image can`)]);
      }
      const bytes = await part.toBuffer();
      if (bytes.length === 0) throw validationFailed([issue('image', 'REQUIRED', 'the image file is empty')]);
      // The declared type is ignored downstream: the bytes say what they are.
      body.image = `data:application/octet-stream;base64,${bytes.toString('base64')}`;
      continue;
    }
    if (part.valueTruncated) throw validationFailed([issue(field, 'TOO_LONG', `${field} is too long`)]);
    body[field] = fieldValue(field, part.value);
  }
  return { ...body };
}
