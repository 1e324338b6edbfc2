/**
 * `meshless workloads`: the pods the CNI plugin registered on this node,
 * from the daemon's `GET /workloads` (and `GET /status` for the trust
 * domain, so identities print as `ns/x/sa/y`): namespace, pod, enrolled or
 * why not, identity, addresses, netns, and how long ago it was registered.
 * `--json` prints the raw `/workloads` answer.
 */
import { adminCommand, type AdminView } from '../admin-command.js';
import {
  parseNodeInfo,
  parseWorkloadsReport,
  type NodeInfo,
  type WorkloadReport,
} from '../admin-reports.js';
import { age, painted, shortNetns, shortSpiffeId, type ViewOptions } from '../format.js';
import { renderTable, tableWidth, type Cell } from '../table.js';

/** `yes`, `no`, or `pending` (enrolled, but not proxied yet). */
function enrolment(w: WorkloadReport, color: boolean): Cell {
  if (!w.enrolled) return painted('no', 'dim', color);
  if (w.identity === null) return painted('pending', 'yellow', color);
  return painted('yes', 'green', color);
}

/** `n pods` for `reason`, most common first: why workloads are not enrolled. */
function reasonLines(workloads: readonly WorkloadReport[]): string[] {
  const counts = new Map<string, number>();
  for (const w of workloads) if (!w.enrolled) counts.set(w.reason, (counts.get(w.reason) ?? 0) + 1);
  return [...counts]
    .sort(([a, m], [b, n]) => n - m || a.localeCompare(b))
    .map(([reason, n]) => `  ${reason} (${n} ${n === 1 ? 'pod' : 'pods'})`);
}

/**
 * The human-readable view of a /workloads answer: one row per workload,
 * then why those not enrolled are not, grouped by reason. Pure.
 */
export function renderWorkloads(
  node: NodeInfo,
  workloads: readonly WorkloadReport[],
  view: ViewOptions,
): string {
  if (workloads.length === 0) return `No workloads registered on node ${node.nodeName}.\n`;
  const sorted = [...workloads].sort(
    (a, b) =>
      a.namespace.localeCompare(b.namespace) ||
      a.podName.localeCompare(b.podName) ||
      a.registeredAt.localeCompare(b.registeredAt),
  );
  // Every address when that fits, else the first and how many more.
  const table = (ips: (w: WorkloadReport) => string): Cell[][] => [
    ['POD', 'ENROLLED', 'IDENTITY', 'IPS', 'NETNS', 'REGISTERED'],
    ...sorted.map((w) => [
      `${w.namespace}/${w.podName}`,
      enrolment(w, view.color),
      w.identity === null ? '-' : shortSpiffeId(w.identity, node.trustDomain),
      ips(w),
      shortNetns(w.netns),
      `${age(w.registeredAt, view.now)} ago`,
    ]),
  ];
  let rows = table((w) => w.addresses.map((a) => a.ip).join(',') || '-');
  if (tableWidth(rows) > view.width)
    rows = table((w) =>
      w.addresses.length === 0
        ? '-'
        : (w.addresses[0]?.ip ?? '') +
          (w.addresses.length > 1 ? ` +${w.addresses.length - 1}` : ''),
    );
  const out = [
    renderTable(rows, {
      maxWidth: view.width,
      shrink: [
        { column: 4, min: 13 },
        { column: 3, min: 15 },
        { column: 0, min: 20, keep: 'ends' },
        { column: 4, min: 8 },
        { column: 0, min: 16, keep: 'ends' },
        { column: 2, min: 12, keep: 'ends' },
        { column: 0, min: 12, keep: 'ends' },
      ],
    }),
  ];
  const reasons = reasonLines(sorted);
  if (reasons.length > 0) out.push('', 'Not enrolled:', ...reasons);
  if (sorted.some((w) => w.enrolled && w.identity === null))
    out.push('', 'pending: enrolled, but its listeners or identity are not ready yet');
  return out.join('\n') + '\n';
}

/** `meshless workloads` as an {@link AdminView}. */
export const workloadsView: AdminView = {
  verb: 'workloads',
  route: '/workloads',
  async render(fetch, view) {
    const [workloads, status] = await Promise.all([fetch('/workloads'), fetch('/status')]);
    return renderWorkloads(parseNodeInfo(status), parseWorkloadsReport(workloads), view);
  },
};

/** yargs registration of `meshless workloads`. */
export const workloadsCommand = adminCommand(
  workloadsView,
  'list the pods registered on this node, enrolled or not, with their identities',
);
