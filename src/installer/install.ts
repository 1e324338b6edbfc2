/**
 * The node installer's I/O shell: puts dist/meshless-cni into the CNI bin
 * dir and our entry into the node's primary network config, and takes both
 * out again. Decisions live in the pure modules next to this one; this file
 * reads, checks everything, and only then writes.
 *
 * Order matters to a running node. Install copies the binary before the
 * config refers to it; uninstall removes the config entry before the
 * binary. When a `.conf` becomes `<base>.conflist` (or back), the new file is
 * written before the old one is removed; the `.conf` sorts first, so the
 * runtime always has exactly one primary config to load.
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { access, constants, readFile, readdir, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshlessError, errorMessage, isErrno } from '../errors.js';
import {
  removeFile as removeStateFile,
  writeFileAtomic,
  type AtomicWriteOptions,
} from '../state/atomic-file.js';
import { insertEntry, originalRecordOf, removeEntry, RECORD_KEY } from './conflist-edit.js';
import { buildEntry, PLUGIN_TYPE, type EntryOptions } from './entry.js';
import { choosePrimaryConfig, isConfigFileName } from './primary-config.js';

/** Where to install, as given by flags or environment. */
export interface CniDirs {
  /** CNI bin dir (default /opt/cni/bin). */
  readonly binDir: string;
  /** CNI conf dir (default /etc/cni/net.d). */
  readonly confDir: string;
  /** Base name of the config to edit instead of the lexically first one. */
  readonly confFile?: string | undefined;
}

export interface InstallOptions extends CniDirs {
  /** The plugin binary to copy (normally dist/meshless-cni). */
  readonly pluginSource: string;
  readonly entryOptions?: EntryOptions;
}

/** One file touched (or found already right). */
export interface FileAction {
  readonly path: string;
  readonly action: 'written' | 'unchanged' | 'removed' | 'absent';
}

/** What a run did, for the human summary. */
export interface InstallResult {
  readonly actions: readonly FileAction[];
  readonly warnings: readonly string[];
}

function installError(message: string, cause?: unknown): MeshlessError {
  return new MeshlessError('MESHLESS_E_INSTALL', message, cause === undefined ? {} : { cause });
}

async function readText(path: string): Promise<{ text: string; stats: Stats }> {
  try {
    const [text, stats] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, stats };
  } catch (err) {
    throw installError(`cannot read ${path}: ${errorMessage(err)}`, err);
  }
}

async function listConfDir(confDir: string, missingOk: boolean): Promise<string[]> {
  try {
    return await readdir(confDir);
  } catch (err) {
    if (missingOk && isErrno(err, 'ENOENT')) return [];
    throw installError(
      isErrno(err, 'ENOENT')
        ? `CNI conf dir ${confDir} does not exist; is the node network plugin installed? (--cni-conf-dir)`
        : `cannot list CNI conf dir ${confDir}: ${errorMessage(err)}`,
      err,
    );
  }
}

/** Write options keeping an existing file's mode and owner; failures are install errors. */
function attrsOf(stats: Stats): AtomicWriteOptions {
  return {
    mode: stats.mode & 0o7777,
    uid: stats.uid,
    gid: stats.gid,
    errorCode: 'MESHLESS_E_INSTALL',
  };
}

function removeFile(path: string): Promise<boolean> {
  return removeStateFile(path, 'MESHLESS_E_INSTALL');
}

/**
 * Installs the plugin binary and our entry. Idempotent: a second run leaves
 * identical bytes and reports every file `unchanged`. Nothing is written
 * when any input (options, config, plugin source) is bad.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL`.
 */
export async function installCni(options: InstallOptions): Promise<InstallResult> {
  const entry = buildEntry(options.entryOptions);
  const { confDir, binDir } = options;

  const names = await listConfDir(confDir, false);
  const primary = choosePrimaryConfig(names, options.confFile, confDir);
  const primaryPath = join(confDir, primary);
  const { text, stats } = await readText(primaryPath);
  const change = insertEntry(text, entry, { fileName: primary, path: primaryPath });
  if (change.replaces !== undefined && names.includes(change.fileName)) {
    // Wrapping X.conf into X.conflist: only overwrite a conflist we made from X.conf.
    const target = join(confDir, change.fileName);
    const record = originalRecordOf((await readText(target)).text);
    if (record?.file !== primary)
      throw installError(
        `${primary} would become ${change.fileName}, but ${target} already exists and was not ` +
          `written by meshless from ${primary}; merge or remove one of them, or pick one with --conf-file`,
      );
  }

  let plugin: { path: string; size: number };
  try {
    await access(options.pluginSource, constants.R_OK);
    const st = await stat(options.pluginSource);
    if (!st.isFile()) throw new Error('not a regular file');
    plugin = { path: options.pluginSource, size: st.size };
  } catch (err) {
    throw installError(
      `cannot read the plugin binary ${options.pluginSource}: ${errorMessage(err)} (run npm run build, or pass --plugin)`,
      err,
    );
  }

  const actions: FileAction[] = [];
  const binPath = join(binDir, PLUGIN_TYPE);
  actions.push({ path: binPath, action: await installBinary(binDir, binPath, plugin) });

  const confPath = join(confDir, change.fileName);
  if (change.changed) await writeFileAtomic(confPath, change.text, attrsOf(stats));
  actions.push({ path: confPath, action: change.changed ? 'written' : 'unchanged' });
  if (change.replaces !== undefined) {
    await removeFile(primaryPath);
    actions.push({ path: primaryPath, action: 'removed' });
  }
  return { actions, warnings: change.warnings };
}

/**
 * sha256 of a file read in chunks: the plugin is a ~130 MB executable (Node
 * SEA), never held whole in memory (the installers run under a 128 MiB limit,
 * deploy/30-daemonset.yaml, and cni-watch re-checks every few seconds).
 */
async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function installBinary(
  binDir: string,
  binPath: string,
  plugin: { readonly path: string; readonly size: number },
): Promise<FileAction['action']> {
  try {
    await mkdir(binDir, { recursive: true });
  } catch (err) {
    throw installError(`cannot create CNI bin dir ${binDir}: ${errorMessage(err)}`, err);
  }
  try {
    const st = await stat(binPath);
    if (
      (st.mode & 0o7777) === 0o755 &&
      st.size === plugin.size &&
      (await fileDigest(binPath)) === (await fileDigest(plugin.path))
    )
      return 'unchanged';
  } catch (err) {
    if (!isErrno(err, 'ENOENT'))
      throw installError(`cannot read ${binPath}: ${errorMessage(err)}`, err);
  }
  await writeFileAtomic(binPath, createReadStream(plugin.path), {
    mode: 0o755,
    errorCode: 'MESHLESS_E_INSTALL',
  });
  return 'written';
}

/**
 * Removes our entry from every config that carries it (or only from the
 * named one), restoring recorded originals, then the plugin binary.
 * Idempotent: with nothing of ours left it changes nothing. Configs that
 * never mention meshless are not read further, even if broken.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL`.
 */
export async function uninstallCni(options: CniDirs): Promise<InstallResult> {
  const { confDir, binDir } = options;
  const names = await listConfDir(confDir, options.confFile === undefined);
  const candidates =
    options.confFile !== undefined
      ? [choosePrimaryConfig(names, options.confFile, confDir)]
      : names.filter(isConfigFileName).sort();

  // Plan every edit before writing anything.
  const plans = [];
  for (const name of candidates) {
    const path = join(confDir, name);
    const { text, stats } = await readText(path);
    if (options.confFile === undefined && !text.includes(PLUGIN_TYPE) && !text.includes(RECORD_KEY))
      continue;
    plans.push({ name, path, stats, change: removeEntry(text, { fileName: name, path }) });
  }

  const actions: FileAction[] = [];
  const warnings: string[] = [];
  for (const { name, path, stats, change } of plans) {
    warnings.push(...change.warnings);
    if (!change.changed) {
      actions.push({ path, action: 'unchanged' });
      continue;
    }
    const target = join(confDir, change.fileName);
    if (change.replaces !== undefined && names.includes(change.fileName)) {
      // The original .conf came back meanwhile (its owner rewrote it): keep theirs, drop our conflist.
      warnings.push(
        `${change.fileName} exists again; kept it and removed ${name} instead of restoring`,
      );
    } else {
      await writeFileAtomic(target, change.text, attrsOf(stats));
      actions.push({ path: target, action: 'written' });
    }
    if (change.replaces !== undefined) {
      await removeFile(path);
      actions.push({ path, action: 'removed' });
    }
  }

  const binPath = join(binDir, PLUGIN_TYPE);
  actions.push({ path: binPath, action: (await removeFile(binPath)) ? 'removed' : 'absent' });
  return { actions, warnings };
}
