/**
 * The versioned JSON API between the CNI plugin and the node daemon, over
 * the daemon's Unix socket (HTTP/1.1, POST with a JSON body). The plugin
 * forwards one event per call; the daemon owns every decision.
 *
 *   POST /v1/add    AddRequest   -> AddResponse
 *   POST /v1/check  CheckRequest -> CheckResponse
 *   POST /v1/del    DelRequest   -> {}
 *   POST /v1/gc     GcRequest    -> GcResponse
 *   GET  /v1/status              -> StatusResponse
 * Errors: 4xx/5xx with ErrorResponse. 503 means "not ready, try again".
 */
import { isIP } from 'node:net';
import { MeshlessError } from '../errors.js';

export const API_VERSION = 'meshless.dev/cni/v1';
/** Bodies larger than this are refused (413). */
export const MAX_REQUEST_BYTES = 64 * 1024;

export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string | undefined;
  readonly infraContainerId?: string | undefined;
}

export interface Address {
  readonly family: 4 | 6;
  readonly ip: string;
}

export interface AddRequest {
  readonly apiVersion: typeof API_VERSION;
  readonly containerId: string;
  readonly netns: string;
  readonly ifname: string;
  /** The CNI network name. */
  readonly network: string;
  readonly pod: PodInfo;
  readonly addresses: readonly Address[];
}

export interface AddResponse {
  readonly enrolled: boolean;
  /** Why, in words, for logs and `meshless workloads`. */
  readonly reason: string;
  /** The workload's SPIFFE ID when enrolled and known. */
  readonly identity?: string | undefined;
}

export interface CheckRequest {
  readonly apiVersion: typeof API_VERSION;
  readonly containerId: string;
  readonly netns: string;
  readonly ifname: string;
}

export interface CheckResponse {
  readonly registered: boolean;
  readonly enrolled: boolean;
}

export interface DelRequest {
  readonly apiVersion: typeof API_VERSION;
  readonly containerId: string;
  readonly ifname: string;
  readonly netns?: string | undefined;
}

export interface GcRequest {
  readonly apiVersion: typeof API_VERSION;
  readonly network: string;
  readonly validAttachments: readonly { containerId: string; ifname: string }[];
}

export interface GcResponse {
  readonly removed: readonly string[];
}

export interface StatusResponse {
  readonly ready: boolean;
  readonly nodeName: string;
  readonly workloads: number;
  /** What discovery knows now (lets tools wait for a change to land). */
  readonly discovery: {
    readonly namespaces: number;
    readonly pods: number;
    readonly addresses: number;
    /**
     * Discovery changes the data plane has not applied yet (its workers
     * hold their own copies): 0 once every connection is decided on what
     * this status shows, policies included.
     */
    readonly dataPlaneBehind: number;
  };
}

export interface ErrorResponse {
  readonly error: { readonly code: string; readonly message: string };
}

function bad(message: string): MeshlessError {
  return new MeshlessError('MESHLESS_E_API_REQUEST', message);
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw bad(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function str(
  doc: Record<string, unknown>,
  key: string,
  opts: { optional?: boolean; max?: number } = {},
): string {
  const v = doc[key];
  if (v === undefined && opts.optional) return '';
  if (typeof v !== 'string') throw bad(`field "${key}" must be a string`);
  if (v.length > (opts.max ?? 1024)) throw bad(`field "${key}" is too long`);
  if (!opts.optional && v === '') throw bad(`field "${key}" must not be empty`);
  return v;
}

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function common(body: unknown): Record<string, unknown> {
  const doc = record(body, 'request body');
  if (doc['apiVersion'] !== API_VERSION)
    throw bad(`apiVersion must be "${API_VERSION}" (got ${JSON.stringify(doc['apiVersion'])})`);
  const id = str(doc, 'containerId', { max: 255 });
  if (!CONTAINER_ID.test(id)) throw bad('field "containerId" is not a valid container ID');
  str(doc, 'ifname', { max: 15 });
  return doc;
}

function netnsPath(doc: Record<string, unknown>, optional: boolean): string {
  const p = str(doc, 'netns', { optional, max: 4096 });
  if (p !== '' && (!p.startsWith('/') || p.includes('\0')))
    throw bad('field "netns" must be an absolute path');
  return p;
}

export function parseAddRequest(body: unknown): AddRequest {
  const doc = common(body);
  const pod = record(doc['pod'], 'field "pod"');
  const namespace = str(pod, 'namespace', { max: 63 });
  const name = str(pod, 'name', { max: 253 });
  if (!DNS_LABEL.test(namespace)) throw bad('field "pod.namespace" is not a valid namespace name');
  if (!DNS_SUBDOMAIN.test(name)) throw bad('field "pod.name" is not a valid pod name');
  const rawAddresses = doc['addresses'] ?? [];
  if (!Array.isArray(rawAddresses) || rawAddresses.length > 16)
    throw bad('field "addresses" must be a list of at most 16 addresses');
  const addresses = rawAddresses.map((a: unknown, i) => {
    const r = record(a, `addresses[${i}]`);
    const ip = str(r, 'ip', { max: 64 });
    const family = r['family'];
    if (family !== 4 && family !== 6) throw bad(`addresses[${i}].family must be 4 or 6`);
    if (isIP(ip) !== family) throw bad(`addresses[${i}].ip "${ip}" is not an IPv${family} address`);
    return { family, ip } as Address;
  });
  return {
    apiVersion: API_VERSION,
    containerId: doc['containerId'] as string,
    netns: netnsPath(doc, false),
    ifname: doc['ifname'] as string,
    network: str(doc, 'network', { max: 253 }),
    pod: {
      namespace,
      name,
      uid: str(pod, 'uid', { optional: true, max: 64 }) || undefined,
      infraContainerId: str(pod, 'infraContainerId', { optional: true, max: 255 }) || undefined,
    },
    addresses,
  };
}

export function parseCheckRequest(body: unknown): CheckRequest {
  const doc = common(body);
  return {
    apiVersion: API_VERSION,
    containerId: doc['containerId'] as string,
    ifname: doc['ifname'] as string,
    netns: netnsPath(doc, false),
  };
}

export function parseDelRequest(body: unknown): DelRequest {
  const doc = common(body);
  const netns = netnsPath(doc, true);
  return {
    apiVersion: API_VERSION,
    containerId: doc['containerId'] as string,
    ifname: doc['ifname'] as string,
    netns: netns === '' ? undefined : netns,
  };
}

export function parseGcRequest(body: unknown): GcRequest {
  const doc = record(body, 'request body');
  if (doc['apiVersion'] !== API_VERSION) throw bad(`apiVersion must be "${API_VERSION}"`);
  const list = doc['validAttachments'];
  if (!Array.isArray(list) || list.length > 100_000)
    throw bad('field "validAttachments" must be a list');
  return {
    apiVersion: API_VERSION,
    network: str(doc, 'network', { max: 253 }),
    validAttachments: list.map((a: unknown, i) => {
      const r = record(a, `validAttachments[${i}]`);
      return {
        containerId: str(r, 'containerId', { max: 255 }),
        ifname: str(r, 'ifname', { max: 15 }),
      };
    }),
  };
}
