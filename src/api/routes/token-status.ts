import { createHash, timingSafeEqual } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CredentialService, CredentialStatus } from '../../credentials/service.js';
import { ApiError } from '../../domain/errors.js';
import { ProblemSchema, Nullable } from '../schemas/task.js';

export interface TokenStatusRoutesOptions {
  credentials: CredentialService;
  /** ADMIN_SECRET; the plugin is registered only when it is set. */
  adminSecret: string;
}

/** The Hugging Face token pool: the tokens that deployments of seed 001 rotated through. */
export const TOKEN_STATUS_POOL = 'huggingface';

const Timestamp = Type.String({ format: 'date-time' });

const TokenStatusSchema = Type.Object({
  totalTokens: Type.Integer(),
  availableTokens: Type.Integer({ description: 'Tokens usable now (not disabled, cooling down or at their limit).' }),
  tokens: Type.Array(
    Type.Object({
      index: Type.Integer({ description: 'Position in the pool, oldest first.' }),
      id: Type.String({ format: 'uuid' }),
      label: Type.String(),
      token: Type.String({ description: 'Masked: the last 4 characters only, as `…abcd`.' }),
      status: Type.String({ description: '`active`, `cooling_down`, `exhausted` or `disabled`.' }),
      isAvailable: Type.Boolean(),
      usageCount: Type.Integer({ description: 'Uses in the current usage day.' }),
      dailyLimit: Nullable(Type.Integer()),
      inUse: Type.Integer({ description: 'Tasks running on it now.' }),
      lastUsed: Nullable(Timestamp),
      resetTime: Timestamp,
      cooldownUntil: Nullable(Timestamp),
      disabledReason: Nullable(Type.String()),
      lastError: Nullable(Type.String({ description: 'The code of its last error, never a message with a secret.' })),
    }),
  ),
});

/** Equal secrets, compared in constant time: hashing first makes the lengths equal too. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function tokenView(row: CredentialStatus, index: number) {
  return {
    index,
    id: row.id,
    label: row.label,
    token: `…${row.secret_last4}`,
    status: row.state,
    isAvailable: row.state === 'active',
    usageCount: row.used_today,
    dailyLimit: row.daily_limit,
    inUse: row.in_use,
    lastUsed: row.last_used_at?.toISOString() ?? null,
    resetTime: row.next_reset_at.toISOString(),
    cooldownUntil: row.cooldown_until?.toISOString() ?? null,
    disabledReason: row.disabled_reason,
    lastError: row.last_error_code,
  };
}

/**
 * `GET /api/token-status?secret=ADMIN_SECRET`: the token view of existing Hugging Face
 * deployments (seed 001), served from the credential pool so their dashboards keep working.
 * The secret travels in the query string there, so the request log line drops the query
 * (see app.ts); prefer `GET /v1/admin/credentials` for anything new.
 */
export const tokenStatusRoutes: FastifyPluginAsyncTypebox<TokenStatusRoutesOptions> = async (app, options) => {
  app.get(
    '/api/token-status',
    {
      schema: {
        summary: 'Hugging Face token status (compatibility with existing deployments)',
        description:
          'Present only when `ADMIN_SECRET` is set. The tokens of the `huggingface` credential pool with their use today, limits and state; never a secret.',
        tags: ['admin'],
        querystring: Type.Object({
          secret: Type.Optional(Type.String({ description: 'The value of ADMIN_SECRET.' })),
        }),
        response: { 200: TokenStatusSchema, 401: ProblemSchema },
      },
    },
    async (request) => {
      const { secret } = request.query;
      if (secret === undefined || !sameSecret(secret, options.adminSecret)) {
        throw new ApiError('ADMIN_SECRET_INVALID', 'the query parameter secret must be the value of ADMIN_SECRET');
      }
      const rows = await options.credentials.list(TOKEN_STATUS_POOL);
      return {
        totalTokens: rows.length,
        availableTokens: rows.filter((row) => row.state === 'active').length,
        tokens: rows.map(tokenView),
      };
    },
  );
};
