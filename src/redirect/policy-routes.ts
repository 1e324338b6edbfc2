/**
 * Reply routing for sockets the proxy binds to a foreign source address
 * (IP_TRANSPARENT): packets of connections carrying our connmark are routed
 * locally (docs/reference/ports-and-marks.md). Pure: decides which `ip` commands bring the
 * netns to the wanted state from what `ip rule`/`ip route` print now.
 */
import { CONNMARK, POLICY_ROUTE, hex, type IpFamily } from './constants.js';

const fwmark = `${hex(CONNMARK.value)}/${hex(CONNMARK.mask)}`;

/** Arguments of `ip rule list` / `ip route show` used to inspect the state. */
export function inspectCommands(family: IpFamily): { rules: string[]; routes: string[] } {
  return {
    rules: [`-${family}`, 'rule', 'list', 'pref', String(POLICY_ROUTE.priority)],
    routes: [`-${family}`, 'route', 'show', 'table', String(POLICY_ROUTE.table)],
  };
}

// Whole words: `lookup 1000` or `fwmark 0x111/0xfff0` is not ours.
const ourRule = new RegExp(`\\sfwmark ${fwmark}\\s.*\\blookup ${POLICY_ROUTE.table}(?:\\s|$)`);

function ruleCount(ruleList: string): number {
  return ruleList.split('\n').filter((l) => ourRule.test(l)).length;
}

function hasLocalRoute(routeList: string): boolean {
  return routeList
    .split('\n')
    .some((l) => /^local (default|0\.0\.0\.0\/0|::\/0) dev lo\b/.test(l.trim()));
}

const ruleArgs = (family: IpFamily): string[] => [
  `-${family}`,
  'rule',
  'ZZ',
  'fwmark',
  fwmark,
  'pref',
  String(POLICY_ROUTE.priority),
  'lookup',
  String(POLICY_ROUTE.table),
];

const routeArgs = (family: IpFamily, verb: string): string[] => [
  `-${family}`,
  'route',
  verb,
  'local',
  family === 4 ? '0.0.0.0/0' : '::/0',
  'dev',
  'lo',
  'table',
  String(POLICY_ROUTE.table),
];

/** `ip` argument lists that install the rule and route (none when present). */
export function installCommands(family: IpFamily, ruleList: string, routeList: string): string[][] {
  const out: string[][] = [];
  const n = ruleCount(ruleList);
  if (n === 0) out.push(ruleArgs(family).map((a) => (a === 'ZZ' ? 'add' : a)));
  for (let i = 1; i < n; i++) out.push(ruleArgs(family).map((a) => (a === 'ZZ' ? 'del' : a)));
  if (!hasLocalRoute(routeList)) out.push(routeArgs(family, 'replace'));
  return out;
}

/**
 * One `ip -N -batch -` input that lists both the policy rule and the table
 * 100 routes: one exec instead of two. The output holds both listings; the
 * parsers here each ignore the other's lines (a rule line never starts with
 * `local`, a route line never says `fwmark`), so it is passed as both.
 */
export function inspectBatch(family: IpFamily): string {
  const { rules, routes } = inspectCommands(family);
  return [rules.slice(1).join(' '), routes.slice(1).join(' ')].join('\n') + '\n';
}

/** `ip -N -batch -` input running the given argument lists (their `-N` dropped). */
export function batchOf(commands: readonly (readonly string[])[]): string {
  return commands.map((args) => args.slice(1).join(' ') + '\n').join('');
}

/** `ip` argument lists that remove the rule and route (none when absent). */
export function removeCommands(family: IpFamily, ruleList: string, routeList: string): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ruleCount(ruleList); i++)
    out.push(ruleArgs(family).map((a) => (a === 'ZZ' ? 'del' : a)));
  if (hasLocalRoute(routeList)) out.push(routeArgs(family, 'del'));
  return out;
}

/** Problems with the live state ([] when in place). */
export function verifyPolicyRoutes(
  family: IpFamily,
  ruleList: string,
  routeList: string,
): string[] {
  const problems: string[] = [];
  if (ruleCount(ruleList) !== 1)
    problems.push(`IPv${family} fwmark ${fwmark} rule missing or doubled`);
  if (!hasLocalRoute(routeList))
    problems.push(`IPv${family} local route in table ${POLICY_ROUTE.table} missing`);
  return problems;
}

/**
 * One `ip -force -batch -` input that installs the rule and route without
 * inspecting first: the kernel refuses a second identical rule (EEXIST) and
 * `route replace` is idempotent. Accept the run with
 * {@link onlyAlreadyExists} when it exits non-zero.
 */
export function installBatch(family: IpFamily): string {
  const rule = ruleArgs(family).map((a) => (a === 'ZZ' ? 'add' : a));
  const route = routeArgs(family, 'replace');
  // Batch lines take the command without the program name; `-4`/`-6` is a global option.
  return [rule.slice(1).join(' '), route.slice(1).join(' ')].join('\n') + '\n';
}

/** True when every failure reported by `ip -batch` is "File exists" (the rule is there). */
export function onlyAlreadyExists(stderr: string): boolean {
  const lines = stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('Command failed'));
  return lines.length > 0 && lines.every((l) => /File exists/.test(l));
}
