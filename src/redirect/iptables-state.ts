/**
 * What a netns's iptables hold, parsed from `iptables-save` output: enough
 * to render an exact install or removal, and to check that ours are intact.
 */
export interface RulesetState {
  /** How many times `builtin` jumps to `chain` (`-A builtin -j chain`). */
  jumpCount(table: string, builtin: string, chain: string): number;
  hasChain(table: string, chain: string): boolean;
  /** The rules of a chain without their "-A CHAIN " prefix; undefined if absent. */
  rulesOf(table: string, chain: string): string[] | undefined;
}

/** Parses iptables-save / ip6tables-save output. */
export function parseIptablesSave(text: string): RulesetState {
  const chains = new Map<string, string[]>();
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      continue;
    }
    if (line === 'COMMIT') continue;
    if (line.startsWith(':')) {
      const name = line.slice(1).split(/\s+/)[0] ?? '';
      if (!chains.has(`${table}/${name}`)) chains.set(`${table}/${name}`, []);
      continue;
    }
    const m = /^-A (\S+)(?: (.*))?$/.exec(line);
    if (m) {
      const key = `${table}/${m[1] ?? ''}`;
      const list = chains.get(key) ?? [];
      list.push(m[2] ?? '');
      chains.set(key, list);
    }
  }
  return {
    jumpCount: (t, builtin, chain) =>
      (chains.get(`${t}/${builtin}`) ?? []).filter((r) => r === `-j ${chain}`).length,
    hasChain: (t, chain) => chains.has(`${t}/${chain}`),
    rulesOf: (t, chain) => chains.get(`${t}/${chain}`),
  };
}

/** The empty ruleset (a fresh network namespace). */
export const EMPTY_RULESET: RulesetState = parseIptablesSave('');
