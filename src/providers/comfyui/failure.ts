import { PermanentError, type ProviderError, RetryableError } from '../errors.js';

/**
 * An `execution_error` (websocket, or the `status.messages` of a history entry) as a provider
 * error. Running out of GPU memory depends on what else the card holds at the moment, so it
 * is worth another attempt; anything else a node raises (a missing model file, a custom node
 * that breaks on this input) would raise again: permanent, with ComfyUI's own words.
 */
export function errorForExecution(promptId: string, data: Record<string, unknown>): ProviderError {
  const type = typeof data.exception_type === 'string' ? data.exception_type : 'error';
  const text = typeof data.exception_message === 'string' ? data.exception_message.trim() : '';
  const node = [data.node_type, data.node_id !== undefined ? `node ${String(data.node_id)}` : undefined]
    .filter(Boolean)
    .join(' ');
  const short = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  const message = `comfyui: prompt ${promptId} failed${node ? ` in ${node}` : ''}: ${type}${short ? `: ${short}` : ''}`;
  if (/OutOfMemory|\bOOM\b/i.test(type) || /out of memory|CUDA error|failed to allocate/i.test(text)) {
    return new RetryableError('PROVIDER_UNAVAILABLE', message);
  }
  return new PermanentError('PROVIDER_REJECTED', message);
}

/** The `execution_error` recorded in a failed history entry, if it carries one. */
export function executionErrorOf(
  messages: Array<[string, Record<string, unknown>]> | undefined,
): Record<string, unknown> | undefined {
  return messages?.find(([type]) => type === 'execution_error')?.[1];
}
