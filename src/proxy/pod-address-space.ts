/**
 * The cluster's pod address space (config `podCidrs`, else the nodes' pod
 * CIDRs from discovery): the ranges pod IPs are allocated from. An enrolled pod's connection to an address inside it
 * that discovery does not know yet is a pod discovery lags behind, not an
 * outside host, so it is never passed through in plaintext
 * (see {@link decideOutbound}).
 */
import { BlockList, isIP } from 'node:net';

/** A CIDR, parsed. */
export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 4 | 6;
}

/** Parses `a.b.c.d/n` or `v6/n`; undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const family = isIP(address);
  if ((family !== 4 && family !== 6) || !/^[0-9]{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) return undefined;
  return { address, prefix, family };
}

/** Which addresses belong to pods of the cluster. */
export interface PodAddressSpace {
  contains(ip: string): boolean;
  /** The configured ranges, for logs. */
  readonly cidrs: readonly string[];
}

/** The address space of `cidrs` (throws on a malformed one; config validates first). */
export function podAddressSpace(cidrs: readonly string[]): PodAddressSpace {
  const list = new BlockList();
  for (const text of cidrs) {
    const cidr = parseCidr(text);
    if (!cidr) throw new TypeError(`"${text}" is not a CIDR`);
    list.addSubnet(cidr.address, cidr.prefix, cidr.family === 4 ? 'ipv4' : 'ipv6');
  }
  return {
    cidrs: [...cidrs],
    contains: (ip) => {
      const family = isIP(ip);
      if (family === 0 || cidrs.length === 0) return false;
      return list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/** Where the pod address space came from. */
export type PodSpaceOrigin = 'config' | 'nodes' | 'none';

/**
 * The cluster's pod address space: config `podCidrs` when set, else the
 * union of the Node objects' `spec.podCIDRs` (what the node IPAM hands
 * out). `invalid` lists node CIDRs that do not parse (left out); `origin`
 * 'none' means neither gives one, so unknown destinations pass through:
 * the daemon warns about it.
 */
export function clusterPodSpace(
  configured: readonly string[],
  nodes: Iterable<{ readonly name: string; readonly podCidrs: readonly string[] }>,
): { space: PodAddressSpace; origin: PodSpaceOrigin; invalid: string[] } {
  if (configured.length > 0)
    return { space: podAddressSpace(configured), origin: 'config', invalid: [] };
  const cidrs = new Set<string>();
  const invalid: string[] = [];
  for (const node of nodes)
    for (const c of node.podCidrs)
      if (parseCidr(c)) cidrs.add(c);
      else invalid.push(`${node.name}: ${c}`);
  const list = [...cidrs].sort();
  return {
    space: podAddressSpace(list),
    origin: list.length > 0 ? 'nodes' : 'none',
    invalid,
  };
}

/** No pod address space: every unknown destination is outside the cluster. */
export const NO_POD_ADDRESS_SPACE: PodAddressSpace = podAddressSpace([]);
