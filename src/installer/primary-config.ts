/**
 * Which file in the CNI conf dir is the node's primary network config: the
 * one the container runtime loads, and the one our entry goes into.
 *
 * Same rule as libcni's `ConfFiles` + `sort.Strings` used by containerd,
 * CRI-O and istio-cni: among `*.conf`, `*.conflist` and `*.json`, the
 * lexically (byte-wise) first name wins. We additionally skip hidden files,
 * which is where our own in-flight temp files live (see src/state/atomic-file.ts), so a
 * crash mid-write can never make a temp file the primary config.
 */
import { MeshlessError } from '../errors.js';

/** File name extensions a CNI runtime loads from the conf dir. */
export const CONFIG_EXTENSIONS = ['.conf', '.conflist', '.json'] as const;

/** True when a runtime would load `fileName` as a network config. */
export function isConfigFileName(fileName: string): boolean {
  if (fileName.startsWith('.')) return false;
  return CONFIG_EXTENSIONS.some((ext) => fileName.endsWith(ext) && fileName.length > ext.length);
}

/** Byte-wise comparison, as Go's `sort.Strings` (not locale order). */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The primary config among `fileNames` (base names in the conf dir).
 *
 * With `named`, that file is used; when it is a `.conf` that we already
 * wrapped into `<base>.conflist` (or a `.conflist` we restored to
 * `<base>.conf`), the sibling is used instead, so a re-run with the same
 * `--conf-file` finds the file again.
 *
 * @param confDir only used in error messages.
 * @throws MeshlessError `MESHLESS_E_INSTALL` when there is no config, or the named one is missing.
 */
export function choosePrimaryConfig(
  fileNames: readonly string[],
  named?: string,
  confDir = 'the CNI conf dir',
): string {
  const present = new Set(fileNames);
  if (named !== undefined) {
    if (named.includes('/') || !isConfigFileName(named))
      throw new MeshlessError(
        'MESHLESS_E_INSTALL',
        `--conf-file "${named}" must be a file name in ${confDir} ending in ${CONFIG_EXTENSIONS.join(', ')}`,
      );
    if (present.has(named)) return named;
    const sibling = named.endsWith('.conflist')
      ? named.slice(0, -'list'.length)
      : named.endsWith('.conf')
        ? `${named}list`
        : undefined;
    if (sibling !== undefined && present.has(sibling)) return sibling;
    throw new MeshlessError('MESHLESS_E_INSTALL', `CNI config ${named} not found in ${confDir}`);
  }
  const first = fileNames.filter(isConfigFileName).sort(byteOrder)[0];
  if (first === undefined)
    throw new MeshlessError(
      'MESHLESS_E_INSTALL',
      `no CNI network config (*.conf, *.conflist, *.json) in ${confDir}; ` +
        'install the node network plugin first, or point --cni-conf-dir at its directory',
    );
  return first;
}
