/**
 * Part of `npm run build`: make dist/db/migrations an exact copy of src/db/migrations (tsc
 * copies no .sql), writing only the files that differ, so a warm build touches nothing.
 * A copy whose source is gone is removed: the runtime applies whatever it finds there.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';

const from = new URL('../src/db/migrations/', import.meta.url);
const to = new URL('../dist/db/migrations/', import.meta.url);

await mkdir(to, { recursive: true });
const sources = new Set(await readdir(from));
for (const name of sources) {
  const content = await readFile(new URL(name, from));
  const copy = await readFile(new URL(name, to)).catch(() => undefined);
  if (!copy?.equals(content)) await writeFile(new URL(name, to), content);
}
for (const name of await readdir(to)) {
  if (!sources.has(name)) await rm(new URL(name, to), { recursive: true, force: true });
}
