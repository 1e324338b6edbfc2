/**
 * `meshless connections`: the connections this node's daemon is proxying
 * now, from `GET /connections` (and `GET /status` for the trust domain, so
 * identities print as `ns/x/sa/y`): pod, direction, source and destination
 * (address and identity, when known), age. `--json` prints the raw
 * `/connections` answer.
 */
import { adminCommand, type AdminView } from '../admin-command.js';
import {
  parseConnectionsReport,
  parseNodeInfo,
  type ConnectionReport,
  type EndpointReport,
  type NodeInfo,
} from '../admin-reports.js';
import { age, shortSpiffeId, type ViewOptions } from '../format.js';
import { renderTable, tableWidth } from '../table.js';

/** `10.0.0.5:8080 ns/shop/sa/web`, `[fd00::5]:8080`. */
function endpointText(e: EndpointReport, trustDomain: string): string {
  const address = e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
  return e.identity === undefined
    ? address
    : `${address} ${shortSpiffeId(e.identity, trustDomain)}`;
}

/**
 * The human-readable view of a /connections answer: one row per connection
 * when that fits the width, else two (the source, then the destination
 * under it). Pure.
 */
export function renderConnections(
  node: NodeInfo,
  connections: readonly ConnectionReport[],
  view: ViewOptions,
): string {
  if (connections.length === 0) return `No active connections on node ${node.nodeName}.\n`;
  const sorted = [...connections].sort(
    (a, b) => a.pod.localeCompare(b.pod) || a.startedAt.localeCompare(b.startedAt),
  );
  const td = node.trustDomain;
  const flat = [
    ['POD', 'DIRECTION', 'SOURCE', 'DESTINATION', 'AGE'],
    ...sorted.map((c) => [
      c.pod,
      c.direction,
      endpointText(c.source, td),
      endpointText(c.destination, td),
      age(c.startedAt, view.now),
    ]),
  ];
  if (tableWidth(flat) <= view.width) return renderTable(flat) + '\n';
  const stacked = [
    ['POD', 'DIRECTION', 'AGE', 'SOURCE -> DESTINATION'],
    ...sorted.flatMap((c) => [
      [c.pod, c.direction, age(c.startedAt, view.now), endpointText(c.source, td)],
      ['', '', '', `-> ${endpointText(c.destination, td)}`],
    ]),
  ];
  return (
    renderTable(stacked, {
      maxWidth: view.width,
      shrink: [
        { column: 0, min: 20, keep: 'ends' },
        { column: 0, min: 16, keep: 'ends' },
        { column: 3, min: 30, keep: 'ends' },
        { column: 0, min: 12, keep: 'ends' },
        { column: 3, min: 16, keep: 'ends' },
      ],
    }) + '\n'
  );
}

/** `meshless connections` as an {@link AdminView}. */
export const connectionsView: AdminView = {
  verb: 'connections',
  route: '/connections',
  async render(fetch, view) {
    const [connections, status] = await Promise.all([fetch('/connections'), fetch('/status')]);
    return renderConnections(parseNodeInfo(status), parseConnectionsReport(connections), view);
  },
};

/** yargs registration of `meshless connections`. */
export const connectionsCommand = adminCommand(
  connectionsView,
  'list the connections proxied on this node now',
);
