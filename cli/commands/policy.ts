/**
 * `meshless policy check --from <pod|ns/sa/name|ip> --to <ns/pod>:<port>`:
 * why a connection would be allowed or denied, from the daemon's live view
 * (`GET /policy/check`, see src/policy/policy-check.ts): how it would
 * arrive, the mTLS mode, every AuthorizationPolicy that applies and whether
 * it matched, the deciding policy, and the NetworkPolicies that select the
 * destination. `--json` prints the daemon's answer. Exit status: 0
 * allowed, 2 denied, 1 when the daemon cannot answer.
 */
import type { CommandModule } from 'yargs';
import { MeshlessError, errorMessage } from '../../src/errors.js';
import type { PolicyCheckReport } from '../../src/policy/policy-check.js';
import { getAdminJson } from '../admin-client.js';
import {
  viewOptionsFor,
  withAdminOptions,
  type AdminArgs,
  type CommandIo,
} from '../admin-command.js';
import { painted, type ViewOptions } from '../format.js';
import { renderTable } from '../table.js';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the fields the view reads; MESHLESS_E_ADMIN_RESPONSE naming the field otherwise. */
export function parsePolicyCheckReport(body: unknown): PolicyCheckReport {
  const fail = (field: string): never => {
    throw new MeshlessError(
      'MESHLESS_E_ADMIN_RESPONSE',
      `GET /policy/check: the answer's ${field} is missing or of the wrong type; is the daemon of another version?`,
    );
  };
  if (!isRecord(body)) return fail('body');
  const need = (
    o: unknown,
    path: string,
    type: 'string' | 'boolean' | 'number' | 'array' | 'object' | 'string|null',
  ): void => {
    const v = path.split('.').reduce<unknown>((cur, k) => (isRecord(cur) ? cur[k] : undefined), o);
    const ok =
      type === 'array'
        ? Array.isArray(v)
        : type === 'object'
          ? isRecord(v)
          : type === 'string|null'
            ? v === null || typeof v === 'string'
            : typeof v === type;
    if (!ok) fail(path);
  };
  for (const [p, t] of [
    ['from.kind', 'string'],
    ['from.transport', 'string'],
    ['from.principal', 'string|null'],
    ['from.address', 'string|null'],
    ['to.pod', 'string'],
    ['to.port', 'number'],
    ['allowed', 'boolean'],
    ['authorization.allowed', 'boolean'],
    ['authorization.reason', 'string'],
    ['authorization.policy', 'string|null'],
    ['authorization.mtls.mode', 'string'],
    ['authorization.mtls.policy', 'string|null'],
    ['authorization.policies', 'array'],
    ['authorization.dryRun', 'array'],
    ['networkPolicy.skipped', 'string|null'],
    ['networkPolicy.allowed', 'boolean'],
    ['networkPolicy.policy', 'string|null'],
    ['networkPolicy.selecting', 'array'],
    ['problems', 'array'],
  ] as const)
    need(body, p, t);
  const auth = (body as { authorization: { policies: unknown[] } }).authorization;
  auth.policies.forEach((p, i) => {
    if (!isRecord(p)) fail(`authorization.policies[${i}]`);
    for (const [f, t] of [
      ['policy', 'string'],
      ['action', 'string'],
      ['scope', 'string'],
      ['dryRun', 'boolean'],
      ['matched', 'boolean'],
      ['unsupported', 'string|null'],
    ] as const)
      need(p, f, t);
  });
  return body as unknown as PolicyCheckReport;
}

const REASONS: Record<string, string> = {
  no_allow_policies: 'no ALLOW policy applies',
  allow_policy_matched: 'allowed by',
  deny_policy_matched: 'denied by',
  no_allow_policy_matched: 'ALLOW policies apply and none matched',
  strict_mtls: 'STRICT mTLS refuses plaintext, set by',
  not_isolated: 'no NetworkPolicy selects the pod for ingress',
  allowed_by_policy: 'allowed by',
  not_allowed: 'NetworkPolicies select the pod and none allows it',
};

/** The human-readable explanation. Pure. */
export function renderPolicyCheck(r: PolicyCheckReport, view: ViewOptions): string {
  const verdict = (ok: boolean): string => {
    const cell = painted(ok ? 'ALLOW' : 'DENY', ok ? 'green' : 'red', view.color);
    return typeof cell === 'string' ? cell : cell.paint(cell.text);
  };
  const lines: string[] = [];
  const who =
    r.from.kind === 'pod'
      ? `pod ${r.from.pod ?? ''}${r.from.address ? ` (${r.from.address})` : ''}`
      : r.from.kind === 'identity'
        ? 'an identity, address unknown'
        : `address ${r.from.address ?? ''}`;
  lines.push(`${verdict(r.allowed)}  ${who} -> ${r.to.pod}:${r.to.port}`);
  lines.push(
    r.from.transport === 'hbone'
      ? `  arrives over HBONE as ${(r.from.principal ?? '').replace(/^spiffe:\/\//, '')}`
      : '  arrives in plaintext (no identity)',
  );
  lines.push('');
  const a = r.authorization;
  lines.push(
    `Authorization: ${verdict(a.allowed)}, ${REASONS[a.reason] ?? a.reason}${a.policy ? ` ${a.policy}` : ''}`,
  );
  lines.push(
    `  mTLS mode for port ${r.to.port}: ${a.mtls.mode}${a.mtls.policy ? ` (PeerAuthentication ${a.mtls.policy})` : ' (default)'}`,
  );
  if (a.policies.length === 0) lines.push('  no AuthorizationPolicy applies');
  else {
    const rows = [
      ['  POLICY', 'ACTION', 'SCOPE', 'MATCHED', 'NOTE'],
      ...a.policies.map((p) => [
        `  ${p.policy}`,
        p.action,
        p.scope,
        p.matched ? 'yes' : 'no',
        [p.dryRun ? 'dry-run' : '', p.unsupported ? `unsupported ${p.unsupported}` : '']
          .filter((x) => x !== '')
          .join('; '),
      ]),
    ];
    lines.push(
      ...renderTable(rows)
        .split('\n')
        .map((l) => l.trimEnd()),
    );
  }
  for (const d of a.dryRun) lines.push(`  dry-run: ${d.action} ${d.policy} would match`);
  lines.push('');
  const n = r.networkPolicy;
  if (n.skipped !== null) lines.push(`NetworkPolicy: not evaluated: ${n.skipped}`);
  else {
    lines.push(
      `NetworkPolicy: ${verdict(n.allowed)}, ${REASONS[n.reason] ?? ''}${n.policy ? ` ${n.policy}` : ''}`,
    );
    if (n.selecting.length > 0) lines.push(`  selecting the pod: ${n.selecting.join(', ')}`);
  }
  if (r.problems.length > 0) {
    lines.push('');
    lines.push('Problems:');
    for (const p of r.problems) lines.push(`  ${p}`);
  }
  return lines.join('\n') + '\n';
}

export interface PolicyCheckArgs extends AdminArgs {
  readonly from: string;
  readonly to: string;
}

/** The route for a query. */
export const policyCheckRoute = (from: string, to: string): string =>
  `/policy/check?${new URLSearchParams({ from, to }).toString()}`;

/** Runs the check; 0 allowed, 2 denied, 1 when the daemon cannot answer. */
export async function runPolicyCheck(
  args: PolicyCheckArgs,
  io: CommandIo = process,
  now = Date.now(),
): Promise<number> {
  try {
    const body = await getAdminJson(args.admin, policyCheckRoute(args.from, args.to));
    const report = parsePolicyCheckReport(body);
    io.stdout.write(
      args.json
        ? JSON.stringify(body, null, 2) + '\n'
        : renderPolicyCheck(report, viewOptionsFor(io.stdout, now)),
    );
    return report.allowed ? 0 : 2;
  } catch (err) {
    const code = err instanceof MeshlessError ? ` (${err.code})` : '';
    io.stderr.write(`meshless policy check: ${errorMessage(err)}${code}\n`);
    return 1;
  }
}

const checkCommand: CommandModule<object, PolicyCheckArgs> = {
  command: 'check',
  describe: "explain whether a connection would be allowed, from the daemon's live view",
  builder: (y) =>
    withAdminOptions(y, "print the daemon's answer as JSON")
      .option('from', {
        type: 'string',
        demandOption: true,
        describe:
          'the source: a pod (namespace/name), an identity (namespace/sa/name) or an address',
      })
      .option('to', {
        type: 'string',
        demandOption: true,
        describe: 'the destination: namespace/pod:port (a number or a named port)',
      }),
  handler: async (args) => {
    process.exitCode = await runPolicyCheck(args);
  },
};

/** yargs registration of `meshless policy`. */
export const policyCommand: CommandModule = {
  command: 'policy <command>',
  describe: 'authorization and NetworkPolicy: explain decisions',
  builder: (y) => y.command(checkCommand).demandCommand(1),
  handler: () => undefined,
};
