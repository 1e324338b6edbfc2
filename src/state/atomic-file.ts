/**
 * Crash-safe file replacement, the one module every writer of durable files
 * uses: the daemon's registrations, the installer's CNI config, plugin
 * binary and kubeconfig. A reader (a daemon restarting after a crash, a
 * container runtime watching /etc/cni/net.d, kubelet executing /opt/cni/bin)
 * only ever sees the old content or the complete new one.
 *
 * How: write a temp file in the same directory, fsync, chmod (and chown
 * when an owner is to be kept), rename over the target, fsync the directory.
 *
 * The temp file is hidden and its name does not end in `.conf`, `.conflist`
 * or `.json`, so neither a container runtime nor choosePrimaryConfig
 * (src/installer/primary-config.ts) ever loads it.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MeshlessError, errorMessage, isErrno, type ErrorCode } from '../errors.js';

/** Permission bits and owner to give the new file, and the error code to fail with. */
export interface AtomicWriteOptions {
  /** Permission bits (default 0o600); applied with chmod, so the umask does not apply. */
  readonly mode?: number | undefined;
  /** Owner to keep, when replacing a file someone else owns (both or neither). */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  /** Code of the MeshlessError thrown on failure (default `MESHLESS_E_STATE`). */
  readonly errorCode?: ErrorCode | undefined;
}

/** Suffix of our in-flight temp files (after a leading dot and the target's name). */
export const TEMP_MARKER = '.meshless-tmp-';

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `data` to `path` atomically. `data` may be a stream (a large file
 * copied without holding it in memory).
 *
 * @param options a mode (e.g. `0o644`) or the full options; default mode 0o600.
 * @throws MeshlessError with `options.errorCode` (default `MESHLESS_E_STATE`) naming the path.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | AsyncIterable<Uint8Array>,
  options: number | AtomicWriteOptions = {},
): Promise<void> {
  const opts: AtomicWriteOptions = typeof options === 'number' ? { mode: options } : options;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}${TEMP_MARKER}${randomBytes(4).toString('hex')}`);
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      if (typeof data === 'string' || data instanceof Uint8Array) await handle.writeFile(data);
      else for await (const chunk of data) await handle.write(chunk);
      await handle.chmod(opts.mode ?? 0o600);
      if (opts.uid !== undefined && opts.gid !== undefined) {
        const st = await handle.stat();
        if (st.uid !== opts.uid || st.gid !== opts.gid) await handle.chown(opts.uid, opts.gid);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    await syncDir(dir);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw new MeshlessError(
      opts.errorCode ?? 'MESHLESS_E_STATE',
      `cannot write ${path}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

/**
 * Removes `path` durably; a missing file is fine (removal is idempotent).
 *
 * @param errorCode code of the MeshlessError thrown on failure (default `MESHLESS_E_STATE`).
 * @returns false when there was nothing to remove.
 */
export async function removeFile(
  path: string,
  errorCode: ErrorCode = 'MESHLESS_E_STATE',
): Promise<boolean> {
  try {
    await unlink(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new MeshlessError(errorCode, `cannot remove ${path}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  await syncDir(dirname(path));
  return true;
}
