/**
 * Network namespaces for end-to-end tests: names carry a prefix unique to
 * the test process (so test files and parallel sessions never collide).
 * The netns itself is src/sim/netns.ts.
 */
import { Netns } from '../../src/sim/netns.js';
import { defaultPrefix } from '../../src/sim/sim-cluster.js';

export { Netns, canRunE2e, inNs, sh } from '../../src/sim/netns.js';

/** A prefix unique to this test process (as {@link defaultPrefix}). */
export const RUN_TAG = defaultPrefix();

/** Creates the netns `<RUN_TAG>-<suffix>`. */
export function testNetns(suffix: string): Netns {
  return Netns.create(`${RUN_TAG}-${suffix}`);
}

/**
 * A netns's state as a CNI DEL must restore it: iptables and ip6tables rules
 * (tables with only empty builtin chains count as absent: iptables-nft keeps
 * the table once created), policy rules and table 100.
 */
export function netnsSnapshot(ns: Netns): string {
  const out: string[] = [];
  for (const save of ['iptables-save', 'ip6tables-save']) {
    const text = ns.exec([save]).stdout;
    let table = '';
    for (const line of text.split('\n')) {
      if (line.startsWith('*')) table = line;
      else if (
        line.startsWith('-') ||
        (line.startsWith(':') &&
          !/^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT/.test(line))
      )
        out.push(`${save} ${table} ${line.replace(/\[\d+:\d+\]/, '')}`);
    }
  }
  out.push(ns.exec(['ip', '-4', 'rule']).stdout, ns.exec(['ip', '-6', 'rule']).stdout);
  for (const f of ['-4', '-6']) {
    const r = ns.exec(['ip', f, 'route', 'show', 'table', '100']);
    out.push(r.status === 0 ? r.stdout : '');
  }
  return out.join('\n');
}
