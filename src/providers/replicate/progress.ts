/**
 * The percentage a prediction's logs show, from the last progress bar line: diffusers prints
 * tqdm bars such as ` 45%|████▌     | 13/28 [00:02<00:02,  6.1it/s]`. Undefined without one.
 */
export function percentFromLogs(logs: string | null | undefined): number | undefined {
  if (!logs) return undefined;
  let last: number | undefined;
  for (const match of logs.matchAll(/(\d{1,3})%\|/g)) {
    const value = Number(match[1]);
    if (value <= 100) last = value;
  }
  return last;
}
