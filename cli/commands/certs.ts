/**
 * `meshless certs`: the identities this node's daemon holds, from its admin
 * endpoint's `GET /certs`. A table by default; `--json` prints the raw
 * document (certificate chains in PEM included).
 */
import { parseCertsReport, type CertsReport } from '../../src/identity/certs-report.js';
import { adminCommand, type AdminView } from '../admin-command.js';
import { renderTable } from '../table.js';

/** `2030-01-15 12:00:00Z`. */
function shortTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** `in 29m`, `in 3h05m`, `12m ago`. */
export function relativeTime(iso: string, now: number): string {
  const ms = Date.parse(iso) - now;
  const minutes = Math.round(Math.abs(ms) / 60_000);
  const text =
    minutes < 60
      ? `${minutes}m`
      : minutes < 48 * 60
        ? `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`
        : `${Math.floor(minutes / 1440)}d`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** The human-readable view of a /certs report. Pure. */
export function renderCertsTable(report: CertsReport, now: number): string {
  const out: string[] = [];
  out.push(`Trust domain ${report.trustDomain} on node ${report.nodeName}`);
  out.push('');
  out.push(
    renderTable([
      ['CERTIFICATE', 'SERIAL', 'NOT AFTER', 'NEXT ROTATION', 'SUBJECT'],
      ...report.trustBundle.map((r) => [
        'root',
        r.serialNumber,
        shortTime(r.notAfter),
        '-',
        r.subject,
      ]),
      ...(report.nodeCa
        ? [
            [
              'node CA',
              report.nodeCa.serialNumber,
              shortTime(report.nodeCa.notAfter),
              `${shortTime(report.nodeCa.nextRotation)} (${relativeTime(report.nodeCa.nextRotation, now)})`,
              report.nodeCa.subject,
            ],
          ]
        : []),
    ]),
  );
  if (report.signer)
    out.push(
      `Cluster signer ${report.signer.address}: ${report.signer.reachable ? 'reachable' : `UNREACHABLE (${report.signer.consecutiveFailures} failed calls: ${report.signer.lastError ?? ''})`}`,
    );
  out.push('');
  if (report.identities.length === 0) {
    out.push('No workload identities: no enrolled pod is registered on this node.');
  } else {
    out.push(
      renderTable([
        ['IDENTITY', 'WORKLOADS', 'SERIAL', 'NOT BEFORE', 'NOT AFTER', 'NEXT ROTATION'],
        ...report.identities.map((id) => [
          id.spiffeId,
          String(id.workloads),
          id.serialNumber,
          shortTime(id.notBefore),
          shortTime(id.notAfter),
          `${shortTime(id.nextRotation)} (${relativeTime(id.nextRotation, now)})` +
            (id.rotationFailures > 0 ? ` [${id.rotationFailures} failed]` : ''),
        ]),
      ]),
    );
  }
  return out.join('\n') + '\n';
}

/** `meshless certs` as an {@link AdminView}. */
export const certsView: AdminView = {
  verb: 'certs',
  route: '/certs',
  async render(fetch, view) {
    return renderCertsTable(parseCertsReport(await fetch('/certs')), view.now);
  },
};

/** yargs registration of `meshless certs`. */
export const certsCommand = adminCommand(
  certsView,
  "show this node's workload identities and certificates",
  'print the raw JSON, chains in PEM included',
);
