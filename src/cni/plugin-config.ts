/**
 * The plugin's network configuration: its entry in the conflist, as the
 * runtime hands it on stdin (with `name`, `cniVersion` and, when chained,
 * `prevResult` injected). Parsed and checked once; everything later works on
 * the returned object.
 */
import { parseLabelSelector, type LabelRequirement } from '../config/label.js';
import { CNI_CODES, CniError } from './cni-error.js';
import { isSupportedVersion, SUPPORTED_VERSIONS, type CniVersion } from './versions.js';

export const PLUGIN_TYPE = 'meshless-cni';
export const DEFAULT_SOCKET_PATH = '/var/run/meshless/cni.sock';
export const PLUGIN_LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type PluginLogLevel = (typeof PLUGIN_LOG_LEVELS)[number];

/** One `{containerID, ifname}` the runtime still uses (GC, SPEC 1.1). */
export interface Attachment {
  readonly containerId: string;
  readonly ifname: string;
}

export interface PluginConfig {
  readonly cniVersion: CniVersion;
  /** The network name (the conflist's `name`). */
  readonly name: string;
  readonly socketPath: string;
  readonly kubeconfig: string | undefined;
  readonly excludeNamespaces: readonly string[];
  readonly enrolmentLabel: LabelRequirement;
  readonly logFile: string | undefined;
  readonly logLevel: PluginLogLevel;
  /** How long to wait for the node daemon before falling back, ms. */
  readonly daemonTimeoutMs: number;
  /** The previous plugin's result, as given (undefined when absent). */
  readonly prevResult: Record<string, unknown> | undefined;
  /** `cni.dev/valid-attachments` (GC only). */
  readonly validAttachments: readonly Attachment[] | undefined;
}

function invalid(field: string, why: string): CniError {
  return new CniError(CNI_CODES.invalidConfig, `network config field "${field}" ${why}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalString(doc: Record<string, unknown>, field: string): string | undefined {
  const v = doc[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw invalid(field, 'must be a non-empty string');
  return v;
}

function optionalAbsolutePath(doc: Record<string, unknown>, field: string): string | undefined {
  const v = optionalString(doc, field);
  if (v !== undefined && !v.startsWith('/'))
    throw invalid(field, `must be an absolute path, got "${v}"`);
  return v;
}

/**
 * How deep a network config may nest. Real ones nest about five levels;
 * JSON.parse takes any depth, but printing the result back (JSON.stringify
 * of prevResult) overflows the stack near 10,000, so deeper documents are
 * refused as undecodable, as Go's encoding/json refuses them past 10,000.
 */
export const MAX_CONFIG_DEPTH = 256;

/** True when `doc` nests deeper than `limit` (iterative: no stack to overflow). */
function nestsDeeperThan(doc: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[doc, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [value, depth] = item;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > limit) return true;
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Decodes stdin; code 6 when it is not a JSON object or nests too deep. */
export function decodeStdin(stdin: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(
      CNI_CODES.decodeFailure,
      `network config on stdin is not valid JSON: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (!isRecord(doc))
    throw new CniError(CNI_CODES.decodeFailure, 'network config on stdin must be a JSON object');
  if (nestsDeeperThan(doc, MAX_CONFIG_DEPTH))
    throw new CniError(
      CNI_CODES.decodeFailure,
      `network config on stdin nests deeper than ${MAX_CONFIG_DEPTH} levels`,
    );
  return doc;
}

/** Validates a decoded network config. Throws CniError 1 or 7. */
export function parsePluginConfig(doc: Record<string, unknown>): PluginConfig {
  const version = doc['cniVersion'];
  if (typeof version !== 'string' || version === '')
    throw invalid('cniVersion', 'is required (a string such as "1.0.0")');
  if (!isSupportedVersion(version))
    throw new CniError(
      CNI_CODES.incompatibleVersion,
      `cniVersion "${version}" is not supported by meshless-cni; use one of ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  const name = optionalString(doc, 'name');
  if (name === undefined) throw invalid('name', 'is required');
  const type = doc['type'];
  if (type !== PLUGIN_TYPE) throw invalid('type', `must be "${PLUGIN_TYPE}"`);

  const excludeRaw = doc['excludeNamespaces'];
  let excludeNamespaces: readonly string[] = ['kube-system'];
  if (excludeRaw !== undefined && excludeRaw !== null) {
    if (!Array.isArray(excludeRaw) || !excludeRaw.every((s) => typeof s === 'string' && s !== ''))
      throw invalid('excludeNamespaces', 'must be a list of namespace names');
    excludeNamespaces = excludeRaw as string[];
  }

  let enrolmentLabel = parseLabelSelector('io.cilium/mtls-enabled=true');
  const labelRaw = optionalString(doc, 'enrolmentLabel');
  if (labelRaw !== undefined) {
    try {
      enrolmentLabel = parseLabelSelector(labelRaw);
    } catch (err) {
      throw invalid('enrolmentLabel', (err as Error).message);
    }
  }

  const level = doc['logLevel'] ?? 'info';
  if (typeof level !== 'string' || !(PLUGIN_LOG_LEVELS as readonly string[]).includes(level))
    throw invalid('logLevel', `must be one of ${PLUGIN_LOG_LEVELS.join(', ')}`);

  const timeout = doc['daemonTimeoutMs'] ?? 5000;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 100 || timeout > 60000)
    throw invalid('daemonTimeoutMs', 'must be a whole number of milliseconds from 100 to 60000');

  const prev = doc['prevResult'];
  if (prev !== undefined && prev !== null && !isRecord(prev))
    throw invalid('prevResult', 'must be an object');

  return {
    cniVersion: version,
    name,
    socketPath: optionalAbsolutePath(doc, 'socketPath') ?? DEFAULT_SOCKET_PATH,
    kubeconfig: optionalAbsolutePath(doc, 'kubeconfig'),
    excludeNamespaces,
    enrolmentLabel,
    logFile: optionalAbsolutePath(doc, 'logFile'),
    logLevel: level as PluginLogLevel,
    daemonTimeoutMs: timeout,
    prevResult: isRecord(prev) ? prev : undefined,
    validAttachments: parseValidAttachments(doc['cni.dev/valid-attachments']),
  };
}

function parseValidAttachments(raw: unknown): readonly Attachment[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  const field = 'cni.dev/valid-attachments';
  if (!Array.isArray(raw)) throw invalid(field, 'must be a list of {containerID, ifname}');
  return raw.map((a, i) => {
    if (!isRecord(a) || typeof a['containerID'] !== 'string' || typeof a['ifname'] !== 'string')
      throw invalid(`${field}[${i}]`, 'must be {"containerID": string, "ifname": string}');
    return { containerId: a['containerID'], ifname: a['ifname'] };
  });
}
