/**
 * Network namespaces for end-to-end tests: names carry a prefix unique to
 * the test process (so test files and parallel sessions never collide).
 * The netns itself is src/sim/netns.ts.
 */
import { rmSync } from 'node:fs';
import { Capture } from '../../src/sim/capture.js';
import { Netns, canRunE2e } from '../../src/sim/netns.js';
import type { TcpSegment } from '../../src/sim/pcap.js';
import { defaultPrefix, type SimNode } from '../../src/sim/sim-cluster.js';

export { Netns, canRunE2e, inNs, sh } from '../../src/sim/netns.js';

/** `skip` of an e2e suite: false where it can run, else why not. */
export const E2E_SKIP: false | string = canRunE2e()
  ? false
  : 'needs root and /usr/lib/cni (the e2e tier)';

/**
 * Removes a suite's temp dir, unless MESHLESS_KEEP_TEST_DIR=1 keeps it (the
 * daemons' logs and captures, for a post-mortem): then says where it is.
 */
export function removeTestDir(dir: string | undefined): void {
  if (!dir) return;
  if (process.env['MESHLESS_KEEP_TEST_DIR'] !== '1') rmSync(dir, { recursive: true, force: true });
  else console.log(`kept ${dir}`);
}

/**
 * Runs `fn` while tcpdump captures `node`'s link into `file`; waits
 * `settleMs` for the last packets, then returns `fn`'s result and what the
 * link carried.
 */
export async function captureDuring<T>(
  node: SimNode,
  file: string,
  fn: () => Promise<T>,
  settleMs = 200,
): Promise<{ result: T; segments: TcpSegment[] }> {
  const cap = await Capture.start(node.netns.name, node.linkIf, file);
  try {
    const result = await fn();
    await new Promise((r) => setTimeout(r, settleMs));
    return { result, segments: await cap.stop() };
  } catch (err) {
    await cap.stop();
    throw err;
  }
}

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
