/**
 * The node-level rule that lets kubelet probes reach enrolled pods without
 * the daemon (docs/reference/redirect-rules.md, after istio-cni's host rules): in the
 * node's nat POSTROUTING, TCP from a socket of the node's own netns
 * (`-m owner --socket-exists`: the kubelet, hostNetwork pods; never a
 * forwarded packet from another pod or node) to an enrolled pod of this
 * node is SNATed to 169.254.7.127 (IPv6 fd16:9254:7127:1337:ffff:ffff:ffff:ffff),
 * a source the in-pod rules accept without redirecting.
 *
 * One rule per enrolled pod IP in a chain of our own (ipset is not a
 * dependency): `iptables-restore --noflush` with the chain declared empties
 * it, so every rendering replaces the whole set atomically and applying
 * twice leaves one copy. Pure: the caller passes the enrolled addresses and
 * what iptables-save prints now. Rules are in iptables-save's canonical form.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { PROBE_SNAT, type IpFamily } from './constants.js';
import type { RulesetState } from './iptables-state.js';

/** Our chain in the node's nat table, jumped to from POSTROUTING. */
export const PROBE_SNAT_CHAIN = 'MESHLESS_POSTRT';
const TABLE = 'nat';
const HOOK = 'POSTROUTING';

/** An address as iptables-save prints it (IPv6 compressed, lowercase); undefined if not of `family`. */
export function canonicalIp(family: IpFamily, ip: string): string | undefined {
  if (family === 4) return isIPv4(ip) ? ip : undefined;
  if (!isIPv6(ip)) return undefined;
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** The rules of our chain for these pod addresses (other families ignored), sorted, one per address. */
export function probeSnatRules(family: IpFamily, podIps: readonly string[]): string[] {
  const ips = new Set<string>();
  for (const ip of podIps) {
    const c = canonicalIp(family, ip);
    if (c !== undefined) ips.add(c);
  }
  const prefix = family === 4 ? 32 : 128;
  return [...ips]
    .sort()
    .map(
      (ip) =>
        `-d ${ip}/${prefix} -p tcp -m owner --socket-exists -j SNAT --to-source ${PROBE_SNAT[family]}`,
    );
}

/**
 * Restore text that makes our chain hold exactly the rules for `podIps`
 * (the chain declared, so emptied, then refilled) with one jump from
 * POSTROUTING (added when missing, doubled ones trimmed).
 */
export function renderProbeSnat(
  family: IpFamily,
  podIps: readonly string[],
  current: RulesetState,
): string {
  const lines = [`*${TABLE}`, `:${PROBE_SNAT_CHAIN} - [0:0]`];
  const jumps = current.jumpCount(TABLE, HOOK, PROBE_SNAT_CHAIN);
  if (jumps === 0) lines.push(`-A ${HOOK} -j ${PROBE_SNAT_CHAIN}`);
  for (let i = 1; i < jumps; i++) lines.push(`-D ${HOOK} -j ${PROBE_SNAT_CHAIN}`);
  for (const rule of probeSnatRules(family, podIps)) lines.push(`-A ${PROBE_SNAT_CHAIN} ${rule}`);
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

/** Restore text that removes every jump to our chain and the chain; undefined when absent. */
export function renderProbeSnatRemoval(current: RulesetState): string | undefined {
  const body: string[] = [];
  for (let i = 0; i < current.jumpCount(TABLE, HOOK, PROBE_SNAT_CHAIN); i++)
    body.push(`-D ${HOOK} -j ${PROBE_SNAT_CHAIN}`);
  if (current.hasChain(TABLE, PROBE_SNAT_CHAIN))
    body.push(`-F ${PROBE_SNAT_CHAIN}`, `-X ${PROBE_SNAT_CHAIN}`);
  return body.length === 0 ? undefined : [`*${TABLE}`, ...body, 'COMMIT'].join('\n') + '\n';
}

/** What differs from exactly the rules for `podIps` ([] when in place). */
export function verifyProbeSnat(
  family: IpFamily,
  podIps: readonly string[],
  current: RulesetState,
): string[] {
  const problems: string[] = [];
  const n = current.jumpCount(TABLE, HOOK, PROBE_SNAT_CHAIN);
  if (n !== 1) problems.push(`${TABLE} ${HOOK}: ${n} jumps to ${PROBE_SNAT_CHAIN}, want 1`);
  const have = current.rulesOf(TABLE, PROBE_SNAT_CHAIN);
  if (have === undefined) problems.push(`${TABLE} ${PROBE_SNAT_CHAIN}: chain missing`);
  else if (have.join('\n') !== probeSnatRules(family, podIps).join('\n'))
    problems.push(`${TABLE} ${PROBE_SNAT_CHAIN}: rules differ from the enrolled pods`);
  return problems;
}
