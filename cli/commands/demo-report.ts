/**
 * What the demo verbs print: the traffic table, the status tables and the
 * "how to poke at it" text. Pure: colour only when asked (a TTY).
 */
import type { DemoStatus } from '../../src/demo/inspect.js';
import type { DemoState } from '../../src/demo/demo-state.js';
import { rowIdentities, type TrafficRow, type WireVerdict } from '../../src/demo/traffic.js';
import type { ConnectionDirection } from '../../src/hbone/connection-record.js';

/** A cell and, optionally, the colour to paint it once padded. */
type Cell = string | { readonly text: string; readonly colour: 'green' | 'red' | 'dim' };

const CODES = { green: '\x1b[32m', red: '\x1b[31m', dim: '\x1b[2m' } as const;

/** Columns left-aligned, two spaces apart, the last unpadded. */
export function renderTable(rows: readonly (readonly Cell[])[], colour = false): string {
  const text = (c: Cell): string => (typeof c === 'string' ? c : c.text);
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, text(c).length)));
  return rows
    .map((row) =>
      row
        .map((c, i) => {
          const padded = i === row.length - 1 ? text(c) : text(c).padEnd(widths[i] ?? 0);
          return colour && typeof c !== 'string' ? `${CODES[c.colour]}${padded}\x1b[0m` : padded;
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const WIRE: Record<WireVerdict, string> = {
  'mtls-1.3': 'TLS 1.3 on 15008, no plaintext',
  'tls-pooled': 'TLS on 15008 (pooled), no plaintext',
  plaintext: 'plaintext (marker visible)',
  'tls-not-1.3': 'TLS, not 1.3',
  nothing: 'nothing captured',
};

/** Which path meshless took, from the directions logged. Pure. */
export function describePath(directions: readonly ConnectionDirection[]): string {
  const has = (d: ConnectionDirection): boolean => directions.includes(d);
  if (has('outbound') && has('inbound')) return 'HBONE tunnel';
  if (has('outbound')) return 'HBONE (outbound only)';
  if (has('inbound')) return 'HBONE (inbound only)';
  if (has('passthrough')) return 'passthrough';
  if (has('inbound-plaintext')) return 'inbound plaintext :15006';
  return 'not involved';
}

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

/** The traffic table of `demo up` / `demo traffic`. Pure. */
export function renderTrafficTable(rows: readonly TrafficRow[], colour = false): string {
  const table: Cell[][] = [
    ['SOURCE POD', 'DESTINATION POD', 'ENROLLED', 'ON THE WIRE (node link)', 'MESHLESS', 'RESULT'],
  ];
  const notes: string[] = [];
  rows.forEach((r, i) => {
    const wire =
      r.seen.wire === 'tls-not-1.3' && r.seen.tlsVersions.length > 0
        ? `TLS ${r.seen.tlsVersions.join(',')}`
        : WIRE[r.seen.wire];
    table.push([
      `${r.source.namespace}/${r.source.pod} (${r.source.node})`,
      `${r.service ? `Service ${r.service.name.split('/')[1] ?? ''} (ClusterIP) -> ` : ''}${r.destination.namespace}/${r.destination.pod} (${r.destination.node})`,
      `${yesNo(r.source.enrolled)} -> ${yesNo(r.destination.enrolled)}`,
      wire,
      r.expected.deniedBy !== undefined
        ? 'denied by policy (401)'
        : describePath([...new Set(r.seen.path.map((s) => s.direction))]),
      r.ok ? { text: 'ok', colour: 'green' } : { text: 'FAIL', colour: 'red' },
    ]);
    const lines: string[] = [];
    const directions = new Set(r.seen.path.map((s) => s.direction));
    const ids = rowIdentities(r);
    const denial = r.seen.path.find((s) => s.direction === 'inbound' && s.outcome === 'denied');
    if (r.expected.deniedBy !== undefined && denial?.policy)
      lines.push(
        `denied at ${r.destination.pod}'s node by ${denial.policy} (HBONE 401); ${r.source.pod}'s connection was reset, nothing delivered`,
      );
    if (r.service)
      lines.push(
        `dialled Service ${r.service.name} at ${r.service.address}:${r.service.port}; meshless picked backend ${r.destination.pod} and tunnelled to it (kube-proxy's DNAT never saw it)`,
      );
    if (r.expected.deniedBy !== undefined) {
      // the denial line above says it
    } else if (directions.has('inbound') && ids.source && ids.destination)
      lines.push(`mutual TLS: ${ids.source} -> ${ids.destination}, both verified`);
    else if (directions.has('passthrough'))
      lines.push(
        `${r.source.pod}'s proxy passed it through untouched (no identity asked of ${r.destination.pod})`,
      );
    else if (directions.has('inbound-plaintext'))
      lines.push(`captured on ${r.destination.pod}'s inbound plaintext port and delivered`);
    else if (directions.size === 0) lines.push('no meshless listener on either side');
    if (r.seen.peerSeen)
      lines.push(`${r.destination.pod}'s application saw the peer ${r.seen.peerSeen}`);
    for (const p of r.problems) lines.push(`problem: ${p}`);
    if (lines.length > 0) notes.push(`  ${i + 1}. ${lines.join('\n     ')}`);
  });
  const numbered = renderTable(table, colour)
    .split('\n')
    .map((line, i) => (i === 0 ? `   ${line}` : `${i}. ${line}`))
    .join('\n');
  return `${numbered}\n\n${notes.join('\n')}\n`;
}

/** The tables of `demo status`. Pure. */
export function renderStatus(status: DemoStatus, colour = false): string {
  const running = (b: boolean): Cell =>
    b ? { text: 'running', colour: 'green' } : { text: 'stopped', colour: 'red' };
  const nodes = renderTable(
    [
      ['NODE', 'NETNS', 'DAEMON', 'LOG'],
      ...status.nodes.map((n) => [n.name, n.netns, running(n.daemonRunning), n.daemonLog]),
      ...(status.signer
        ? [
            [
              `signer (${status.signer.address})`,
              status.signer.netns,
              running(status.signer.running),
              status.signer.log,
            ],
          ]
        : []),
    ],
    colour,
  );
  const pods = renderTable(
    [
      ['POD', 'NAMESPACE', 'NODE', 'IP', 'ENROLLED', 'IDENTITY', 'NETNS', 'SERVER'],
      ...status.pods.map((p) => [
        p.name,
        p.namespace,
        p.node,
        p.ip ?? '-',
        p.enrolled ? { text: 'yes', colour: 'green' as const } : 'no',
        p.identity ?? '-',
        p.netns,
        running(p.serverRunning),
      ]),
    ],
    colour,
  );
  return `${nodes}\n\n${pods}\n`;
}

/** How to poke at a running demo. `cli` is how to run meshless here. Pure. */
export function renderPokeHints(state: DemoState, cli: string): string {
  const ip = (name: string): string => state.pods.find((p) => p.name === name)?.ip ?? '<ip>';
  const port = state.pods[0]?.port ?? 8080;
  const node1 = state.nodes[0];
  const hints: [string, string][] = [
    ['nodes, pods, IPs, identities', `${cli} status`],
    [
      "web -> api (both enrolled): over mTLS, api sees web's address",
      `${cli} exec web -- curl -s http://${ip('api')}:${port}/`,
    ],
    [
      'legacy -> api (plain -> enrolled)',
      `${cli} exec legacy -- curl -s http://${ip('api')}:${port}/`,
    ],
    ['enrol the plain namespace while its pods run', `${cli} label plain on`],
    ['run the traffic table again', `${cli} traffic`],
  ];
  if (node1)
    hints.push([
      'watch the node link',
      `ip netns exec ${node1.netns} tcpdump -ni ${node1.link} -A tcp`,
    ]);
  hints.push(
    [
      'daemon logs (JSON, one "connection" line per connection)',
      state.nodes.map((n) => n.daemonLog).join(' '),
    ],
    ['remove everything it made', `${cli} down`],
  );
  return (
    'The demo keeps running. Poke at it:\n\n' +
    hints.map(([what, how]) => `  # ${what}\n  ${how}\n`).join('')
  );
}
