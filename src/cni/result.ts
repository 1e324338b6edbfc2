/**
 * CNI results: what a chained plugin passes on. meshless never changes the
 * network result; it only re-expresses prevResult in the config's version
 * (the IP entries' "version" field exists up to 0.4.0 and is gone in 1.0.0).
 */
import { isIP } from 'node:net';
import { CNI_CODES, CniError } from './cni-error.js';
import { compareVersions, isSupportedVersion, type CniVersion } from './versions.js';

/** An address a pod got from the primary plugin. */
export interface PodAddress {
  readonly family: 4 | 6;
  /** The address without prefix length. */
  readonly ip: string;
  /** CIDR as in the result, e.g. 10.22.0.5/16. */
  readonly cidr: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** prevResult expressed in `target`; the same object when nothing changes. */
export function convertResult(
  prev: Record<string, unknown>,
  target: CniVersion,
): Record<string, unknown> {
  const from = prev['cniVersion'];
  if (from === target) return { ...prev, cniVersion: target };
  // Without a cniVersion the ips' shape is unknown: normalize it to `target`.
  if (from !== undefined && !isSupportedVersion(from))
    throw new CniError(
      CNI_CODES.incompatibleVersion,
      `prevResult has cniVersion "${String(from)}", which meshless-cni cannot convert to ${target}`,
    );
  const out: Record<string, unknown> = { ...prev, cniVersion: target };
  const ips = prev['ips'];
  if (Array.isArray(ips)) {
    const legacy = compareVersions(target, '1.0.0') < 0;
    out['ips'] = ips.map((entry: unknown) => {
      if (!isRecord(entry)) return entry;
      const { version: _version, ...rest } = entry;
      if (!legacy) return rest;
      const address = typeof entry['address'] === 'string' ? entry['address'] : '';
      return { version: address.includes(':') ? '6' : '4', ...rest };
    });
  }
  return out;
}

/**
 * The pod's own addresses: the result's IPs on interfaces inside the
 * container (those with a `sandbox`), or every IP when interfaces are not
 * described.
 */
export function podAddresses(prev: Record<string, unknown> | undefined): PodAddress[] {
  if (prev === undefined) return [];
  const interfaces = Array.isArray(prev['interfaces']) ? prev['interfaces'] : [];
  const ips = Array.isArray(prev['ips']) ? prev['ips'] : [];
  const out: PodAddress[] = [];
  for (const entry of ips) {
    if (!isRecord(entry) || typeof entry['address'] !== 'string') continue;
    const idx = entry['interface'];
    if (typeof idx === 'number') {
      const itf: unknown = interfaces[idx];
      if (isRecord(itf) && (typeof itf['sandbox'] !== 'string' || itf['sandbox'] === '')) continue;
    }
    const cidr = entry['address'];
    const ip = cidr.split('/')[0] ?? '';
    // Only real addresses: the daemon refuses a registration holding anything else.
    const family = isIP(ip);
    if (family !== 4 && family !== 6) continue;
    out.push({ family, ip, cidr });
  }
  return out;
}
