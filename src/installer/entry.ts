/**
 * Our entry in the node's conflist: the plugin config that the runtime hands
 * to dist/meshless-cni. Built once from the installer's flags and validated
 * here, so a typo never reaches a node's network config.
 */
import { isAbsolute } from 'node:path';
import {
  DEFAULT_SOCKET_PATH,
  PLUGIN_LOG_LEVELS,
  PLUGIN_TYPE,
  type PluginLogLevel,
} from '../cni/plugin-config.js';
import { MeshlessError } from '../errors.js';

// One source of truth with the plugin's own config parser: the `type` that
// marks an entry as ours (also the binary's name in the CNI bin dir), the
// daemon socket it defaults to, and the log levels it accepts.
export { DEFAULT_SOCKET_PATH, PLUGIN_TYPE };

/** Installer options that become fields of our entry. */
export interface EntryOptions {
  /** Absolute path of the daemon's CNI socket. */
  readonly socketPath?: string | undefined;
  /** Absolute path of a kubeconfig the plugin may use. */
  readonly kubeconfig?: string | undefined;
  /** Namespaces the plugin never enrols; replaces the plugin's default (kube-system). */
  readonly excludeNamespaces?: readonly string[] | undefined;
  /** Absolute path of the plugin's log file (the plugin never logs to stdout). */
  readonly logFile?: string | undefined;
  readonly logLevel?: string | undefined;
}

/** Our entry as written into `plugins`, in this key order. */
export interface MeshlessEntry {
  readonly type: typeof PLUGIN_TYPE;
  readonly socketPath: string;
  readonly kubeconfig?: string;
  readonly excludeNamespaces?: readonly string[];
  readonly logFile?: string;
  readonly logLevel?: PluginLogLevel;
}

// RFC 1123 label: what Kubernetes allows as a namespace name.
const NAMESPACE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

function absolute(flag: string, value: string): string {
  if (!isAbsolute(value))
    throw new MeshlessError('MESHLESS_E_INSTALL', `${flag} "${value}" must be an absolute path`);
  return value;
}

/**
 * Validates installer options and builds our entry. Optional fields are
 * omitted when not given, so the entry stays minimal.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL` naming the flag at fault.
 */
export function buildEntry(options: EntryOptions = {}): MeshlessEntry {
  const entry: {
    type: typeof PLUGIN_TYPE;
    socketPath: string;
    kubeconfig?: string;
    excludeNamespaces?: readonly string[];
    logFile?: string;
    logLevel?: PluginLogLevel;
  } = {
    type: PLUGIN_TYPE,
    socketPath: absolute('--socket-path', options.socketPath ?? DEFAULT_SOCKET_PATH),
  };
  if (options.kubeconfig !== undefined)
    entry.kubeconfig = absolute('--kubeconfig', options.kubeconfig);
  if (options.excludeNamespaces !== undefined && options.excludeNamespaces.length > 0) {
    for (const ns of options.excludeNamespaces)
      if (!NAMESPACE.test(ns))
        throw new MeshlessError(
          'MESHLESS_E_INSTALL',
          `--exclude-namespaces: "${ns}" is not a valid namespace name`,
        );
    entry.excludeNamespaces = [...new Set(options.excludeNamespaces)];
  }
  if (options.logFile !== undefined) entry.logFile = absolute('--log-file', options.logFile);
  if (options.logLevel !== undefined) {
    const level = PLUGIN_LOG_LEVELS.find((l) => l === options.logLevel);
    if (level === undefined)
      throw new MeshlessError(
        'MESHLESS_E_INSTALL',
        `--log-level "${options.logLevel}" is not one of ${PLUGIN_LOG_LEVELS.join(', ')}`,
      );
    entry.logLevel = level;
  }
  return entry;
}

/** Splits `a,b, c` into names, dropping empty items. */
export function parseNamespaceList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
