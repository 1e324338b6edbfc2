/**
 * The cluster's address space: the ranges pod IPs and Service ClusterIPs
 * are allocated from (config `podCidrs` / `serviceCidrs`, else the Nodes'
 * pod CIDRs and the ServiceCIDR objects from discovery). An enrolled pod's
 * connection to an address inside it that discovery does not know yet is a
 * pod or Service discovery lags behind, not an outside host, so it is never
 * passed through in plaintext (see {@link decideOutbound}).
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

/** Where a part of the cluster address space came from. */
export type AddressRangeOrigin = 'config' | 'cluster' | 'none';

/** The cluster's address space and where its parts came from. */
export interface ClusterAddressSpace {
  /** Pod ranges and Service ranges together (what an unknown address waits in). */
  readonly space: PodAddressSpace;
  /** Pod ranges: config `podCidrs`, else the Nodes' `spec.podCIDRs`. */
  readonly pods: AddressRangeOrigin;
  /** Service ranges: config `serviceCidrs`, else the ServiceCIDR objects. */
  readonly services: AddressRangeOrigin;
  /** Ranges from the cluster that do not parse (left out), `owner: text`. */
  readonly invalid: readonly string[];
}

/**
 * The addresses the cluster allocates: pod ranges (config `podCidrs` when
 * set, else the union of the Node objects' `spec.podCIDRs`) and Service
 * ranges (config `serviceCidrs` when set, else the union of the ServiceCIDR
 * objects). An enrolled pod's connection to an address in them that
 * discovery does not know waits for discovery, then is reset; 'none' for a
 * part means such addresses pass through: the daemon warns about it.
 */
export function clusterAddressSpace(
  configured: { readonly podCidrs: readonly string[]; readonly serviceCidrs: readonly string[] },
  cluster: {
    readonly nodes: Iterable<{ readonly name: string; readonly podCidrs: readonly string[] }>;
    readonly serviceCidrs: Iterable<{ readonly name: string; readonly cidrs: readonly string[] }>;
  },
): ClusterAddressSpace {
  const invalid: string[] = [];
  const part = (
    fromConfig: readonly string[],
    owners: Iterable<{ readonly name: string; readonly cidrs: readonly string[] }>,
  ): { cidrs: string[]; origin: AddressRangeOrigin } => {
    if (fromConfig.length > 0) return { cidrs: [...fromConfig], origin: 'config' };
    const found = new Set<string>();
    for (const owner of owners)
      for (const c of owner.cidrs)
        if (parseCidr(c)) found.add(c);
        else invalid.push(`${owner.name}: ${c}`);
    return { cidrs: [...found].sort(), origin: found.size > 0 ? 'cluster' : 'none' };
  };
  const nodes = [...cluster.nodes].map((n) => ({ name: n.name, cidrs: n.podCidrs }));
  const pods = part(configured.podCidrs, nodes);
  const services = part(configured.serviceCidrs, cluster.serviceCidrs);
  return {
    space: podAddressSpace([...pods.cidrs, ...services.cidrs]),
    pods: pods.origin,
    services: services.origin,
    invalid,
  };
}

/** No pod address space: every unknown destination is outside the cluster. */
export const NO_POD_ADDRESS_SPACE: PodAddressSpace = podAddressSpace([]);
