/**
 * Renders the in-pod rules as `iptables-restore --noflush` input.
 * Pure: the caller passes what the netns holds now (parsed from
 * iptables-save) and gets the exact text that brings it to the wanted state,
 * so applying twice leaves one copy and removal leaves nothing of ours.
 *
 * Each address family of a pod gets one of two rule sets (its "mode"):
 * - `redirect`, for a family the pod has an address of: the capture of
 *   docs/reference/redirect-rules.md (mangle and nat);
 * - `refuse`, for a family it has none of (an IPv4-only pod still has IPv6
 *   link-local addresses, and TCP over fe80:: would reach a pod of the same
 *   node unproxied): every new TCP connection over it that is not on
 *   loopback is refused with a reset, both ways (filter INPUT and OUTPUT;
 *   the proxy's own marked sockets excepted on the way out). Refusing, not
 *   redirecting: the proxy has no address of that family to speak for the
 *   pod, and a redirected link-local connection would be passed through in
 *   plaintext (ARCHITECTURE.md "Redirect rules").
 *
 * Rules are written in the canonical form iptables-save prints, so a CHECK
 * can compare the live chains line by line with what we render.
 */
import {
  CHAINS,
  CONNMARK,
  PROBE_SNAT,
  PROXY_MARK,
  PROXY_PORTS,
  REFUSE_CHAINS,
  hex,
  type IpFamily,
} from './constants.js';
import { EMPTY_RULESET, parseIptablesSave, type RulesetState } from './iptables-state.js';

/** What a family's rules do: capture into the proxy, or refuse TCP. */
export type FamilyMode = 'redirect' | 'refuse';

/** The rules one family of a pod gets. */
export interface FamilyRules {
  readonly family: IpFamily;
  readonly mode: FamilyMode;
}

/**
 * The rules of every family: `redirect` for the families the pod has
 * addresses of (IPv4 when it has none), `refuse` for the others the kernel
 * has (without IPv6 in the kernel there is nothing to refuse).
 */
export function familyPlan(
  addressFamilies: readonly IpFamily[],
  kernelHasIpv6 = true,
): FamilyRules[] {
  const redirected = new Set<IpFamily>(addressFamilies.length > 0 ? addressFamilies : [4]);
  const plan: FamilyRules[] = [];
  for (const family of [4, 6] as const) {
    if (redirected.has(family)) plan.push({ family, mode: 'redirect' });
    else if (family === 4 || kernelHasIpv6) plan.push({ family, mode: 'refuse' });
  }
  return plan;
}

export type Table = 'mangle' | 'nat' | 'filter';

/** Where each of our chains hangs from: table, builtin chain, our chain. */
interface Hook {
  readonly table: Table;
  readonly builtin: string;
  readonly chain: string;
}

const HOOKS_OF: Record<FamilyMode, readonly Hook[]> = {
  redirect: [
    { table: 'mangle', builtin: 'PREROUTING', chain: CHAINS.prerouting },
    { table: 'mangle', builtin: 'OUTPUT', chain: CHAINS.output },
    { table: 'nat', builtin: 'PREROUTING', chain: CHAINS.prerouting },
    { table: 'nat', builtin: 'OUTPUT', chain: CHAINS.output },
  ],
  refuse: [
    { table: 'filter', builtin: 'INPUT', chain: REFUSE_CHAINS.input },
    { table: 'filter', builtin: 'OUTPUT', chain: REFUSE_CHAINS.output },
  ],
};
const ALL_HOOKS: readonly Hook[] = [...HOOKS_OF.redirect, ...HOOKS_OF.refuse];

const tablesOf = (hooks: readonly Hook[]): Table[] => [...new Set(hooks.map((h) => h.table))];

const mark = `${hex(PROXY_MARK.value)}/${hex(PROXY_MARK.mask)}`;
const connmark = `${hex(CONNMARK.value)}/${hex(CONNMARK.mask)}`;

/** The rules inside our chains, per table, in iptables-save form (without "-A CHAIN"). */
export function chainRules(
  family: IpFamily,
): Record<'mangle' | 'nat', { chain: string; rule: string }[]> {
  const loopback = family === 4 ? '127.0.0.1/32' : '::1/128';
  const probe = family === 4 ? `${PROBE_SNAT[4]}/32` : `${PROBE_SNAT[6]}/128`;
  const { prerouting: P, output: O } = CHAINS;
  return {
    mangle: [
      { chain: P, rule: `-m mark --mark ${mark} -j CONNMARK --set-xmark ${connmark}` },
      {
        chain: O,
        rule: `-m connmark --mark ${connmark} -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff`,
      },
    ],
    nat: [
      { chain: P, rule: `-s ${probe} -p tcp -j ACCEPT` },
      {
        chain: P,
        rule: `! -d ${loopback} -p tcp -m tcp ! --dport ${PROXY_PORTS.inboundHbone} -m mark ! --mark ${mark} -j REDIRECT --to-ports ${PROXY_PORTS.inboundPlaintext}`,
      },
      { chain: O, rule: `-d ${probe} -p tcp -j ACCEPT` },
      { chain: O, rule: `-p tcp -m mark --mark ${connmark} -j ACCEPT` },
      { chain: O, rule: `! -d ${loopback} -o lo -j ACCEPT` },
      {
        chain: O,
        rule: `! -d ${loopback} -p tcp -m mark ! --mark ${mark} -j REDIRECT --to-ports ${PROXY_PORTS.outbound}`,
      },
    ],
  };
}

/** The refuse mode's rules, per chain, in iptables-save form (without "-A CHAIN"). */
export function refuseRules(): { chain: string; rule: string }[] {
  const syn = '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN';
  const reject = '-j REJECT --reject-with tcp-reset';
  return [
    { chain: REFUSE_CHAINS.input, rule: '-i lo -j ACCEPT' },
    { chain: REFUSE_CHAINS.input, rule: `${syn} ${reject}` },
    { chain: REFUSE_CHAINS.output, rule: '-o lo -j ACCEPT' },
    { chain: REFUSE_CHAINS.output, rule: `${syn} -m mark ! --mark ${mark} ${reject}` },
  ];
}

/** The rules of a mode, per table. */
function rulesOf(
  family: IpFamily,
  mode: FamilyMode,
): Partial<Record<Table, { chain: string; rule: string }[]>> {
  return mode === 'redirect' ? chainRules(family) : { filter: refuseRules() };
}

/**
 * Restore text that installs our chains (declaring a chain with --noflush
 * empties it, so the rules are never doubled) and adds each jump that is
 * not already there.
 */
export function renderInstall(
  family: IpFamily,
  current: RulesetState,
  mode: FamilyMode = 'redirect',
): string {
  const rules = rulesOf(family, mode);
  const hooks = HOOKS_OF[mode];
  const lines: string[] = [];
  for (const table of tablesOf(hooks)) {
    const here = hooks.filter((h) => h.table === table);
    lines.push(`*${table}`);
    for (const { chain } of here) lines.push(`:${chain} - [0:0]`);
    for (const { builtin, chain } of here) {
      // A duplicate jump left by someone else's restore is trimmed to one.
      const present = current.jumpCount(table, builtin, chain);
      if (present === 0) lines.push(`-A ${builtin} -j ${chain}`);
      for (let i = 1; i < present; i++) lines.push(`-D ${builtin} -j ${chain}`);
    }
    for (const { chain, rule } of rules[table] ?? []) lines.push(`-A ${chain} ${rule}`);
    lines.push('COMMIT');
  }
  return lines.join('\n') + '\n';
}

/**
 * Restore text that removes every jump to our chains and the chains
 * themselves, of either mode; undefined when nothing of ours is present.
 */
export function renderRemoval(current: RulesetState): string | undefined {
  const lines: string[] = [];
  for (const table of tablesOf(ALL_HOOKS)) {
    const here = ALL_HOOKS.filter((h) => h.table === table);
    const body: string[] = [];
    for (const { builtin, chain } of here) {
      for (let i = 0; i < current.jumpCount(table, builtin, chain); i++)
        body.push(`-D ${builtin} -j ${chain}`);
    }
    for (const { chain } of here) {
      if (current.hasChain(table, chain)) body.push(`-F ${chain}`, `-X ${chain}`);
    }
    if (body.length > 0) lines.push(`*${table}`, ...body, 'COMMIT');
  }
  return lines.length === 0 ? undefined : lines.join('\n') + '\n';
}

/**
 * Restore text that removes exactly one install of ours in `mode` (one jump
 * per hook and every chain of that mode) and fails, changing nothing, on
 * any other state: iptables-restore commits all or nothing. DEL tries it
 * before knowing what the netns holds, and falls back to reading it.
 */
export function renderRemovalOfInstall(mode: FamilyMode = 'redirect'): string {
  const installed = parseIptablesSave(renderInstall(4, EMPTY_RULESET, mode));
  return renderRemoval(installed) ?? '';
}

/** What differs between the live ruleset and the wanted one ([] when in place). */
export function verifyInstalled(
  family: IpFamily,
  current: RulesetState,
  mode: FamilyMode = 'redirect',
): string[] {
  const problems: string[] = [];
  const rules = rulesOf(family, mode);
  for (const { table, builtin, chain } of HOOKS_OF[mode]) {
    const n = current.jumpCount(table, builtin, chain);
    if (n !== 1) problems.push(`${table} ${builtin}: ${n} jumps to ${chain}, want 1`);
    const want = (rules[table] ?? []).filter((r) => r.chain === chain).map((r) => r.rule);
    const have = current.rulesOf(table, chain);
    if (have === undefined) problems.push(`${table} ${chain}: chain missing`);
    else if (have.join('\n') !== want.join('\n'))
      problems.push(`${table} ${chain}: rules differ from what meshless installs`);
  }
  return problems;
}
