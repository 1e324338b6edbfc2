/**
 * Ports, marks and names of the in-pod redirection (docs/reference/ports-and-marks.md
 * and redirect-rules.md, after istio/ztunnel and cilium's in-pod mode).
 */

/** Listeners the daemon binds inside every enrolled pod's netns. */
export const PROXY_PORTS = {
  /** Outbound capture: the pod's own outgoing TCP is redirected here. */
  outbound: 15001,
  /** Inbound plaintext capture: TCP from non-enrolled peers. */
  inboundPlaintext: 15006,
  /** Inbound HBONE (mutual TLS + HTTP/2 CONNECT) from enrolled peers. */
  inboundHbone: 15008,
} as const;

/** SO_MARK of every socket the proxy opens inside a pod netns. */
export const PROXY_MARK = { value: 0x539, mask: 0xfff } as const;
/** Connmark for connections whose replies must reach a transparent socket. */
export const CONNMARK = { value: 0x111, mask: 0xfff } as const;
/** Policy routing for IP_TRANSPARENT replies. */
export const POLICY_ROUTE = { priority: 32764, table: 100 } as const;

/** Kubelet probes are SNATed to this source on the host and let through. */
export const PROBE_SNAT = {
  4: '169.254.7.127',
  6: 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff',
} as const;

/** Our chains, in both the mangle and the nat table. */
export const CHAINS = { prerouting: 'MESHLESS_PRERT', output: 'MESHLESS_OUTPUT' } as const;

/**
 * Our chains in the filter table, for an address family the pod has no
 * address of (its IPv6 link-local addresses in an IPv4-only pod): new TCP
 * connections over it are refused with a reset, both ways (rules.ts).
 */
export const REFUSE_CHAINS = { input: 'MESHLESS_INPUT', output: 'MESHLESS_OUTPUT' } as const;

export type IpFamily = 4 | 6;

export const hex = (n: number): string => `0x${n.toString(16)}`;
