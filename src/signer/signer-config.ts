/**
 * The cluster signer's configuration (`meshless-ca --config FILE`, YAML or
 * JSON), checked once at start into one immutable object; errors name the key.
 *
 *   trustDomain: cluster.local
 *   listen: 0.0.0.0:15012
 *   serverNames: [meshless-ca.meshless-system.svc]
 *   root: { certFile: /etc/meshless-ca/ca.crt, keyFile: /etc/meshless-ca/ca.key }
 *   discovery: { kubernetes: {} }        # or { file: /path/cluster.yaml }
 *   attestation:
 *     kubernetes: { audience: meshless-ca, daemonServiceAccounts: [meshless-system/meshless] }
 *     joinCredentials: { keyFile: /etc/meshless-ca-join/join.key }
 *   publishTrustBundle: meshless-system/meshless-trust-bundle   # a ConfigMap (Kubernetes)
 *   svidTtlSeconds: 3600
 */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MeshlessError, errorMessage } from '../errors.js';

export interface SignerProgramConfig {
  readonly trustDomain: string;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly serverNames: readonly string[];
  /** PEM roots (the bundle: old and new during a rotation) and the signing key. */
  readonly rootCertFile: string;
  readonly rootKeyFile: string;
  readonly discovery:
    | { readonly source: 'file'; readonly file: string }
    | { readonly source: 'kubernetes'; readonly kubeconfig: string | undefined };
  readonly kubernetesAttestation:
    | {
        readonly audience: string;
        readonly daemonServiceAccounts: readonly string[];
        readonly kubeconfig: string | undefined;
      }
    | undefined;
  /** The join key file, when join credentials are accepted. */
  readonly joinKeyFile: string | undefined;
  /** `namespace/name` of the ConfigMap the bundle is published to (Kubernetes only). */
  readonly publishTrustBundle: string | undefined;
  readonly svidTtlSeconds: number;
  readonly logLevel: string;
}

function bad(key: string, message: string): MeshlessError {
  return new MeshlessError('MESHLESS_E_SIGNER_CONFIG', `signer config key "${key}": ${message}`, {
    details: { key },
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function path(key: string, value: unknown): string {
  if (typeof value !== 'string' || !isAbsolute(value)) throw bad(key, 'must be an absolute path');
  return value;
}

/** Parses the signer config text (YAML or JSON). */
export function parseSignerConfig(text: string, origin: string): SignerProgramConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (err) {
    throw new MeshlessError('MESHLESS_E_SIGNER_CONFIG', `${origin}: ${errorMessage(err)}`);
  }
  if (!isRecord(doc))
    throw new MeshlessError('MESHLESS_E_SIGNER_CONFIG', `${origin} must hold a map`);
  const known = [
    'trustDomain',
    'listen',
    'serverNames',
    'root',
    'discovery',
    'attestation',
    'publishTrustBundle',
    'svidTtlSeconds',
    'logLevel',
  ];
  for (const k of Object.keys(doc)) if (!known.includes(k)) throw bad(k, 'is not a known key');
  const trustDomain = doc['trustDomain'] ?? 'cluster.local';
  if (typeof trustDomain !== 'string' || !/^[a-z0-9._-]{1,255}$/.test(trustDomain))
    throw bad('trustDomain', 'must be lowercase letters, digits, ".", "-" or "_"');
  const listen = doc['listen'] ?? '0.0.0.0:15012';
  const m = typeof listen === 'string' ? /^(.*):(\d{1,5})$/.exec(listen) : null;
  if (!m || Number(m[2]) > 65535) throw bad('listen', 'must be "host:port"');
  const serverNames = doc['serverNames'] ?? ['meshless-ca'];
  if (
    !Array.isArray(serverNames) ||
    serverNames.length === 0 ||
    !serverNames.every((n) => typeof n === 'string' && /^[a-z0-9.-]+$/.test(n))
  )
    throw bad('serverNames', 'must be a non-empty list of DNS names');
  const root = doc['root'];
  if (!isRecord(root)) throw bad('root', 'is required: {certFile, keyFile}');
  const rootCertFile = path('root.certFile', root['certFile']);
  const rootKeyFile = path('root.keyFile', root['keyFile']);
  const disc = doc['discovery'];
  let discovery: SignerProgramConfig['discovery'];
  if (isRecord(disc) && typeof disc['file'] === 'string')
    discovery = { source: 'file', file: path('discovery.file', disc['file']) };
  else if (isRecord(disc) && disc['kubernetes'] !== undefined) {
    const k = isRecord(disc['kubernetes']) ? disc['kubernetes'] : {};
    discovery = {
      source: 'kubernetes',
      kubeconfig:
        k['kubeconfig'] === undefined
          ? undefined
          : path('discovery.kubernetes.kubeconfig', k['kubeconfig']),
    };
  } else throw bad('discovery', 'is required: "file: PATH" or "kubernetes: {kubeconfig?}"');
  const att = isRecord(doc['attestation']) ? doc['attestation'] : {};
  let kubernetesAttestation: SignerProgramConfig['kubernetesAttestation'];
  if (att['kubernetes'] !== undefined) {
    const k = att['kubernetes'];
    if (!isRecord(k)) throw bad('attestation.kubernetes', 'must be a map');
    const audience = k['audience'] ?? 'meshless-ca';
    if (typeof audience !== 'string' || audience === '')
      throw bad('attestation.kubernetes.audience', 'must be a non-empty string');
    const accounts = k['daemonServiceAccounts'];
    if (
      !Array.isArray(accounts) ||
      accounts.length === 0 ||
      !accounts.every((a) => typeof a === 'string' && /^[a-z0-9-]+\/[a-z0-9.-]+$/.test(a))
    )
      throw bad(
        'attestation.kubernetes.daemonServiceAccounts',
        'must list "namespace/name" service accounts',
      );
    kubernetesAttestation = {
      audience,
      daemonServiceAccounts: accounts as string[],
      kubeconfig: discovery.source === 'kubernetes' ? discovery.kubeconfig : undefined,
    };
  }
  const join = att['joinCredentials'];
  let joinKeyFile: string | undefined;
  if (join !== undefined) {
    if (!isRecord(join)) throw bad('attestation.joinCredentials', 'must be {keyFile}');
    joinKeyFile = path('attestation.joinCredentials.keyFile', join['keyFile']);
  }
  if (!kubernetesAttestation && joinKeyFile === undefined)
    throw bad('attestation', 'enable "kubernetes" or "joinCredentials" (or both)');
  const publish = doc['publishTrustBundle'];
  if (publish !== undefined) {
    if (typeof publish !== 'string' || !/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(publish))
      throw bad('publishTrustBundle', 'must be "namespace/name" of a ConfigMap');
    if (discovery.source !== 'kubernetes')
      throw bad('publishTrustBundle', 'needs Kubernetes (discovery.kubernetes)');
  }
  const ttl = doc['svidTtlSeconds'] ?? 3600;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 60 || ttl > 86400)
    throw bad('svidTtlSeconds', 'must be whole seconds from 60 to 86400');
  const logLevel = doc['logLevel'] ?? 'info';
  if (typeof logLevel !== 'string') throw bad('logLevel', 'must be a level name');
  return Object.freeze({
    trustDomain,
    listenHost: m[1] ?? '',
    listenPort: Number(m[2]),
    serverNames: Object.freeze([...(serverNames as string[])]),
    rootCertFile,
    rootKeyFile,
    discovery: Object.freeze(discovery),
    kubernetesAttestation: kubernetesAttestation && Object.freeze(kubernetesAttestation),
    joinKeyFile,
    publishTrustBundle: publish as string | undefined,
    svidTtlSeconds: ttl,
    logLevel,
  });
}

/** Reads and parses the config file. */
export function loadSignerConfig(file: string): SignerProgramConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new MeshlessError(
      'MESHLESS_E_SIGNER_CONFIG',
      `cannot read ${file}: ${errorMessage(err)}`,
    );
  }
  return parseSignerConfig(text, file);
}
