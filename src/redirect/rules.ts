/**
 * Renders the in-pod redirect rules as `iptables-restore --noflush` input.
 * Pure: the caller passes what the netns holds now (parsed from
 * iptables-save) and gets the exact text that brings it to the wanted state,
 * so applying twice leaves one copy and removal leaves nothing of ours.
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
  hex,
  type IpFamily,
} from './constants.js';
import { EMPTY_RULESET, parseIptablesSave, type RulesetState } from './iptables-state.js';

export type Table = 'mangle' | 'nat';
export const TABLES: readonly Table[] = ['mangle', 'nat'];

/** The builtin chain each of our chains hangs from. */
export const HOOKS = [
  { builtin: 'PREROUTING', chain: CHAINS.prerouting },
  { builtin: 'OUTPUT', chain: CHAINS.output },
] as const;

const mark = `${hex(PROXY_MARK.value)}/${hex(PROXY_MARK.mask)}`;
const connmark = `${hex(CONNMARK.value)}/${hex(CONNMARK.mask)}`;

/** The rules inside our chains, per table, in iptables-save form (without "-A CHAIN"). */
export function chainRules(family: IpFamily): Record<Table, { chain: string; rule: string }[]> {
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

/**
 * Restore text that installs our chains (declaring a chain with --noflush
 * empties it, so the rules are never doubled) and adds each jump that is
 * not already there.
 */
export function renderInstall(family: IpFamily, current: RulesetState): string {
  const rules = chainRules(family);
  const lines: string[] = [];
  for (const table of TABLES) {
    lines.push(`*${table}`);
    for (const { chain } of HOOKS) lines.push(`:${chain} - [0:0]`);
    for (const { builtin, chain } of HOOKS) {
      // A duplicate jump left by someone else's restore is trimmed to one.
      const present = current.jumpCount(table, builtin, chain);
      if (present === 0) lines.push(`-A ${builtin} -j ${chain}`);
      for (let i = 1; i < present; i++) lines.push(`-D ${builtin} -j ${chain}`);
    }
    for (const { chain, rule } of rules[table]) lines.push(`-A ${chain} ${rule}`);
    lines.push('COMMIT');
  }
  return lines.join('\n') + '\n';
}

/**
 * Restore text that removes every jump to our chains and the chains
 * themselves; undefined when nothing of ours is present.
 */
export function renderRemoval(current: RulesetState): string | undefined {
  const lines: string[] = [];
  for (const table of TABLES) {
    const body: string[] = [];
    for (const { builtin, chain } of HOOKS) {
      for (let i = 0; i < current.jumpCount(table, builtin, chain); i++)
        body.push(`-D ${builtin} -j ${chain}`);
    }
    for (const { chain } of HOOKS) {
      if (current.hasChain(table, chain)) body.push(`-F ${chain}`, `-X ${chain}`);
    }
    if (body.length > 0) lines.push(`*${table}`, ...body, 'COMMIT');
  }
  return lines.length === 0 ? undefined : lines.join('\n') + '\n';
}

/**
 * Restore text that removes exactly one install of ours (one jump per hook
 * and both chains, in both tables) and fails, changing nothing, on any
 * other state: iptables-restore commits all or nothing. DEL tries it
 * before knowing what the netns holds, and falls back to reading it.
 */
export function renderRemovalOfInstall(): string {
  const installed = parseIptablesSave(renderInstall(4, EMPTY_RULESET));
  return renderRemoval(installed) ?? '';
}

/** What differs between the live ruleset and the wanted one ([] when in place). */
export function verifyInstalled(family: IpFamily, current: RulesetState): string[] {
  const problems: string[] = [];
  const rules = chainRules(family);
  for (const table of TABLES) {
    for (const { builtin, chain } of HOOKS) {
      const n = current.jumpCount(table, builtin, chain);
      if (n !== 1) problems.push(`${table} ${builtin}: ${n} jumps to ${chain}, want 1`);
      const want = rules[table].filter((r) => r.chain === chain).map((r) => r.rule);
      const have = current.rulesOf(table, chain);
      if (have === undefined) problems.push(`${table} ${chain}: chain missing`);
      else if (have.join('\n') !== want.join('\n'))
        problems.push(`${table} ${chain}: rules differ from what meshless installs`);
    }
  }
  return problems;
}
