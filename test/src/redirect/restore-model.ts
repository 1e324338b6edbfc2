/**
 * A small model of `iptables-restore --noflush` over iptables-save text, for
 * run-twice tests of the renderers: declaring a chain creates or empties it,
 * -A appends, -D deletes the first identical rule, -F empties, -X deletes.
 * It fails loudly where the real tool would (deleting what is not there).
 */
type Tables = Map<string, Map<string, string[]>>;

const BUILTINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
};

/** The table `name`, created with its builtin chains (policy ACCEPT) on first use. */
function tableOf(
  tables: Tables,
  policies: Map<string, string>,
  name: string,
): Map<string, string[]> {
  let table = tables.get(name);
  if (table === undefined) {
    table = new Map();
    for (const chain of BUILTINS[name] ?? []) {
      table.set(chain, []);
      policies.set(`${name}/${chain}`, 'ACCEPT');
    }
    tables.set(name, table);
  }
  return table;
}

function parse(save: string): { tables: Tables; policies: Map<string, string> } {
  const tables: Tables = new Map();
  const policies = new Map<string, string>();
  let table: Map<string, string[]> | undefined;
  let tableName = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      tableName = line.slice(1);
      table = tableOf(tables, policies, tableName);
    } else if (line.startsWith(':') && table) {
      const [name = '', policy = '-'] = line.slice(1).split(' ');
      if (!table.has(name)) table.set(name, []);
      policies.set(`${tableName}/${name}`, policy);
    } else if (line.startsWith('-A ') && table) {
      const [, chain = '', ...rest] = line.split(' ');
      table.get(chain)?.push(rest.join(' '));
    }
  }
  return { tables, policies };
}

/** Applies restore `input` (with --noflush) to the state `save`; returns the new save text. */
export function applyRestore(save: string, input: string): string {
  const { tables, policies } = parse(save);
  let table: Map<string, string[]> | undefined;
  let tableName = '';
  for (const line of input.split('\n')) {
    if (line === '' || line === 'COMMIT' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      tableName = line.slice(1);
      table = tableOf(tables, policies, tableName);
      continue;
    }
    if (!table) throw new Error(`restore: "${line}" outside a table`);
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0] ?? '';
      table.set(name, []);
      if (!policies.has(`${tableName}/${name}`)) policies.set(`${tableName}/${name}`, '-');
      continue;
    }
    const [op = '', chain = '', ...rest] = line.split(' ');
    const rules = table.get(chain);
    if (rules === undefined) throw new Error(`restore: "${line}": no chain ${chain}`);
    const rule = rest.join(' ');
    if (op === '-A') rules.push(rule);
    else if (op === '-D') {
      const i = rules.indexOf(rule);
      if (i < 0) throw new Error(`restore: "${line}": no such rule`);
      rules.splice(i, 1);
    } else if (op === '-F') rules.length = 0;
    else if (op === '-X') {
      for (const [other, list] of table)
        if (other !== chain && list.some((r) => r.endsWith(`-j ${chain}`)))
          throw new Error(`restore: "${line}": ${chain} is still referenced`);
      table.delete(chain);
    } else throw new Error(`restore: unsupported "${line}"`);
  }
  const out: string[] = [];
  for (const [name, chains] of tables) {
    out.push(`*${name}`);
    for (const chain of chains.keys())
      out.push(`:${chain} ${policies.get(`${name}/${chain}`) ?? '-'} [0:0]`);
    for (const [chain, rules] of chains) for (const r of rules) out.push(`-A ${chain} ${r}`);
    out.push('COMMIT');
  }
  return out.join('\n') + '\n';
}
