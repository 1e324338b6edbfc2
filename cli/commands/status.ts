/**
 * `meshless status`: this node's daemon at a glance, from its admin
 * endpoint's `GET /status`: version, readiness (and why not), discovery,
 * workloads, identities, the HBONE pool and active connections. `--json`
 * prints the raw answer.
 */
import { adminCommand, type AdminView } from '../admin-command.js';
import { parseStatusReport, type StatusReport } from '../admin-reports.js';
import { age, painted, type ViewOptions } from '../format.js';
import { renderTable, type Cell } from '../table.js';

/** The CLI's own version (set by the build; absent when run from source). */
const CLI_VERSION = process.env['MESHLESS_BUILD_VERSION'];

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The human-readable view of a /status answer. Pure. */
export function renderStatus(
  s: StatusReport,
  view: ViewOptions,
  cliVersion: string | undefined = CLI_VERSION,
): string {
  const version =
    cliVersion !== undefined && cliVersion !== s.version
      ? `meshless ${s.version} (this CLI: ${cliVersion})`
      : `meshless ${s.version}`;
  const d = s.discovery;
  const rows: Cell[][] = [
    ['Node', `${s.nodeName}, ${version}, up ${age(s.startedAt, view.now)}`],
    ['Trust domain', s.trustDomain],
    ['Ready', s.ready ? painted('yes', 'green', view.color) : painted('no', 'red', view.color)],
    ...s.notReady.map((why) => ['', `- ${why}`]),
    ...s.warnings.map((w) => ['', painted(`! ${w}`, 'yellow', view.color)]),
    [
      'Discovery',
      painted(
        `${d.source}, ${d.synced ? 'synced' : 'not synced yet'}: ` +
          `${plural(d.namespaces, 'namespace')}, ${plural(d.pods, 'pod')}, ` +
          plural(d.addresses, 'address', 'addresses'),
        d.synced ? undefined : 'yellow',
        view.color,
      ),
    ],
    [
      'Workloads',
      `${s.workloads.registered} registered, ${s.workloads.enrolled} enrolled, ` +
        `${s.workloads.proxied} proxied`,
    ],
    ['Identities', plural(s.identities, 'SVID')],
    [
      'HBONE pool',
      `${plural(s.hbonePool.connections, 'connection')}, ${plural(s.hbonePool.streams, 'stream')}` +
        (s.hbonePool.connecting > 0 ? `, ${s.hbonePool.connecting} connecting` : ''),
    ],
    ['Connections', `${s.connections} active`],
    ...(s.dataPlaneWorkers.length === 0
      ? []
      : [
          [
            'Data plane',
            `${plural(s.dataPlaneWorkers.length, 'worker')}: ` +
              s.dataPlaneWorkers
                .map(
                  (w) =>
                    `#${w.worker} ${w.connections} conn, ${w.pods} pods` +
                    (w.restarts > 0 ? `, ${plural(w.restarts, 'restart')}` : ''),
                )
                .join('; '),
          ],
        ]),
  ];
  return renderTable(rows, { maxWidth: view.width, shrink: [{ column: 1, min: 20 }] }) + '\n';
}

/** `meshless status` as an {@link AdminView}. */
export const statusView: AdminView = {
  verb: 'status',
  route: '/status',
  async render(fetch, view) {
    return renderStatus(parseStatusReport(await fetch('/status')), view);
  },
};

/** yargs registration of `meshless status`. */
export const statusCommand = adminCommand(
  statusView,
  "show this node's daemon: readiness, discovery, workloads, pool",
);
