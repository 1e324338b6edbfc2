/**
 * `meshless certs`: the identities this node's daemon holds, from its admin
 * endpoint's `GET /certs`. A table by default; `--json` prints the raw
 * document (certificate chains in PEM included).
 */
import type { CommandModule } from 'yargs';
import { MeshlessError, errorMessage } from '../../src/errors.js';
import { parseCertsReport, type CertsReport } from '../../src/identity/certs-report.js';
import { DEFAULT_ADMIN, getAdminJson } from '../admin-client.js';

interface CertsArgs {
  readonly admin: string;
  readonly json: boolean;
}

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

function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The human-readable view of a /certs report. Pure. */
export function renderCertsTable(report: CertsReport, now: number): string {
  const out: string[] = [];
  out.push(`Trust domain ${report.trustDomain} on node ${report.nodeName}`);
  out.push('');
  out.push(
    table([
      ['CERTIFICATE', 'SERIAL', 'NOT AFTER', 'NEXT ROTATION', 'SUBJECT'],
      ...report.trustBundle.map((r) => [
        'root',
        r.serialNumber,
        shortTime(r.notAfter),
        '-',
        r.subject,
      ]),
      [
        'node CA',
        report.nodeCa.serialNumber,
        shortTime(report.nodeCa.notAfter),
        `${shortTime(report.nodeCa.nextRotation)} (${relativeTime(report.nodeCa.nextRotation, now)})`,
        report.nodeCa.subject,
      ],
    ]),
  );
  out.push('');
  if (report.identities.length === 0) {
    out.push('No workload identities: no enrolled pod is registered on this node.');
  } else {
    out.push(
      table([
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

/** Runs the command; returns the exit code. */
export async function runCerts(args: CertsArgs, now = Date.now()): Promise<number> {
  try {
    const raw = await getAdminJson(args.admin, '/certs');
    if (args.json) {
      process.stdout.write(JSON.stringify(raw, null, 2) + '\n');
    } else {
      process.stdout.write(renderCertsTable(parseCertsReport(raw), now));
    }
    return 0;
  } catch (err) {
    const code = err instanceof MeshlessError ? ` (${err.code})` : '';
    process.stderr.write(`meshless certs: ${errorMessage(err)}${code}\n`);
    return 1;
  }
}

/** yargs registration of `meshless certs`. */
export const certsCommand: CommandModule<object, CertsArgs> = {
  command: 'certs',
  describe: "show this node's workload identities and certificates",
  builder: (y) =>
    y
      .option('admin', {
        type: 'string',
        default: DEFAULT_ADMIN,
        describe: "the daemon's admin address (host:port)",
      })
      .option('json', {
        type: 'boolean',
        default: false,
        describe: 'print the raw JSON, chains in PEM included',
      }),
  handler: async (args) => {
    process.exitCode = await runCerts(args);
  },
};
