import type { Env } from '../../config/env.js';
import { credentialsFromEnv } from '../../credentials/env-credentials.js';
import type { Credential } from '../../providers/types.js';

/**
 * A remote worker's own credentials, from its own environment (the variables `easel start`
 * imports into the central pool: `A1111_URLS`, `COMFYUI_URLS`, `REPLICATE_API_TOKEN`, …). The
 * central pool is not consulted: its secrets never leave the server, and a GPU box's backends are
 * on the GPU box (`http://127.0.0.1:7860` means this machine). Attempts take them in turn.
 */
export class LocalCredentials {
  private readonly byPool = new Map<string, Credential[]>();
  private readonly turn = new Map<string, number>();

  constructor(env: Env) {
    for (const [index, found] of credentialsFromEnv(env).entries()) {
      const list = this.byPool.get(found.provider) ?? [];
      list.push({ id: `local-${index + 1}`, label: found.label, secret: found.secret });
      this.byPool.set(found.provider, list);
    }
  }

  has(pool: string): boolean {
    return (this.byPool.get(pool)?.length ?? 0) > 0;
  }

  next(pool: string): Credential {
    const list = this.byPool.get(pool);
    if (!list || list.length === 0) throw new Error(`this worker has no ${pool} credential in its environment`);
    const turn = this.turn.get(pool) ?? 0;
    this.turn.set(pool, turn + 1);
    return list[turn % list.length]!;
  }
}
