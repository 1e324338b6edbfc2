/**
 * What a set of directories holds, for run-twice and undo tests: install
 * then uninstall must leave them as they were, to the byte, mode and owner.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Every file directly in `dirs` (a missing directory holds nothing), keyed
 * by path: its mode, owner and bytes. Compare two with `assert.deepEqual`.
 */
export async function snapshotFiles(dirs: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const dir of dirs) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.sort()) {
      const p = join(dir, name);
      const st = await stat(p);
      out[p] =
        `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}\n` +
        (await readFile(p)).toString('base64');
    }
  }
  return out;
}
