/**
 * The `Prefer` request header (RFC 7240): a comma-separated list of preferences, each
 * `token [= word] *(; parameter)`, where a word is a token or a quoted string. Names are
 * case-insensitive; when one is given twice the first counts (RFC 7240 §2). Several `Prefer`
 * headers arrive joined with ", ", which is the same list.
 */
export function parsePrefer(header: string | string[] | undefined): Map<string, string | undefined> {
  const preferences = new Map<string, string | undefined>();
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  for (const preference of splitOutsideQuotes(text, ',')) {
    const [head = ''] = splitOutsideQuotes(preference, ';');
    const equals = head.indexOf('=');
    const name = (equals === -1 ? head : head.slice(0, equals)).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name) || preferences.has(name)) continue;
    preferences.set(name, equals === -1 ? undefined : unquote(head.slice(equals + 1).trim()));
  }
  return preferences;
}

/**
 * Seconds to hold a submit's answer: `wait=N` (delta-seconds, capped at `maxSeconds`).
 * Anything else (`wait` alone, `wait=abc`, `wait=-1`, `waitlist`) is not a wait preference the
 * server understands, so it is ignored as RFC 7240 asks: no wait, no Preference-Applied.
 */
export function preferredWaitSeconds(header: string | string[] | undefined, maxSeconds: number): number | undefined {
  const value = parsePrefer(header).get('wait');
  if (value === undefined || !/^[0-9]{1,9}$/.test(value)) return undefined;
  return Math.min(maxSeconds, Number(value));
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quoted && char === '\\') {
      current += char + (text[i + 1] ?? '');
      i++;
      continue;
    }
    if (char === '"') quoted = !quoted;
    if (char === separator && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts.map((part) => part.trim()).filter((part) => part !== '');
}

function unquote(word: string): string {
  if (word.length < 2 || !word.startsWith('"') || !word.endsWith('"')) return word;
  return word.slice(1, -1).replace(/\\(.)/g, '$1');
}
