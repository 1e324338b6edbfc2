/**
 * Crash-safe file replacement for the CNI dirs: the runtime watching
 * /etc/cni/net.d (and kubelet executing /opt/cni/bin) must only ever see the
 * old file or the complete new one.
 *
 * The temp file is hidden and its name does not end in `.conf`, `.conflist`
 * or `.json`, so neither a runtime nor choosePrimaryConfig ever loads it.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MeshlessError, errorMessage, isErrno } from '../errors.js';

/** Permission bits and owner to give the new file. */
export interface FileAttributes {
  /** Permission bits (e.g. 0o644); applied with chmod, so the umask does not apply. */
  readonly mode: number;
  /** Owner to keep, when replacing a file someone else owns. */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `data` to `path` atomically: temp file in the same directory,
 * fsync, chmod/chown, rename over `path`, fsync the directory.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL` naming the path.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  attrs: FileAttributes,
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.meshless-tmp-${randomBytes(4).toString('hex')}`);
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(data);
      await handle.chmod(attrs.mode);
      if (attrs.uid !== undefined && attrs.gid !== undefined) {
        const st = await handle.stat();
        if (st.uid !== attrs.uid || st.gid !== attrs.gid) await handle.chown(attrs.uid, attrs.gid);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    await syncDir(dir);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw new MeshlessError('MESHLESS_E_INSTALL', `cannot write ${path}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/**
 * Removes `path` durably; a missing file is fine (removal is idempotent).
 *
 * @returns false when there was nothing to remove.
 */
export async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new MeshlessError('MESHLESS_E_INSTALL', `cannot remove ${path}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  await syncDir(dirname(path));
  return true;
}
