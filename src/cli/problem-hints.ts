/**
 * What to do about an API refusal that concerns the CLI's own set-up rather than the request:
 * the key in EASEL_API_KEY. Appended to the server's `CODE: detail` line.
 */
const HINTS: Partial<Record<string, string>> = {
  AUTH_REQUIRED: 'set EASEL_API_KEY to your API key (an admin makes one with `easel keys create <user>`)',
  INVALID_API_KEY:
    'EASEL_API_KEY is not a key this server knows (mistyped, revoked, or its user was deleted); ask an admin for a new one',
  ADMIN_REQUIRED: "this command needs an admin's key in EASEL_API_KEY",
};

export function problemLine(code: string | undefined, detail: string | undefined, fallback: string): string {
  const line = `${code ?? fallback}: ${detail ?? fallback}`;
  const hint = code !== undefined ? HINTS[code] : undefined;
  return hint ? `${line}; ${hint}` : line;
}
