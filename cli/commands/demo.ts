/**
 * `meshless demo`: a two-node cluster in network namespaces on this machine
 * (see README "The demo"). `up` builds it and proves, on a capture of the
 * node link, the behaviour matrix of docs/reference/behaviour.md; the cluster then keeps running
 * (its daemons and pod servers are detached processes) until `down`.
 * `status`, `exec`, `label`, `traffic` and `down` find it through the
 * state file in `--state-dir` (default /var/run/meshless-demo).
 */
import { spawnSync } from 'node:child_process';
import { basename, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import {
  DEFAULT_DEMO_DIR,
  demoDir,
  demoPrefix,
  requireDemoState,
  type DemoState,
} from '../../src/demo/demo-state.js';
import { demoStatus, setEnrolment } from '../../src/demo/inspect.js';
import { bringUp, SERVE_READY_LINE, tearDown } from '../../src/demo/lifecycle.js';
import { startPodServer } from '../../src/demo/pod-server.js';
import { DEMO_TRAFFIC } from '../../src/demo/topology.js';
import { runTraffic, type TrafficRow } from '../../src/demo/traffic.js';
import { MeshlessError, errorMessage } from '../../src/errors.js';
import { ENROLMENT_LABEL } from '../../src/sim/sim-cluster.js';
import { renderPokeHints, renderStatus, renderTrafficTable } from './demo-report.js';

interface CommonArgs {
  readonly 'state-dir': string | undefined;
}

const colour = (): boolean => process.stdout.isTTY === true && !process.env['NO_COLOR'];

function stateDirOf(args: CommonArgs): string {
  return resolve(demoDir(args['state-dir']));
}

/** Runs `fn`, turning a failure into a message on stderr and exit code 1. */
async function guarded(verb: string, fn: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await fn();
  } catch (err) {
    const code = err instanceof MeshlessError ? ` (${err.code})` : '';
    process.stderr.write(`meshless demo ${verb}: ${errorMessage(err)}${code}\n`);
    process.exitCode = 1;
  }
}

/** Progress on stderr: `• step … 1.2s`. */
function progressPrinter(): (p: { phase: 'start' | 'done'; step: string }) => void {
  let started = 0;
  return (p) => {
    if (p.phase === 'start') {
      started = Date.now();
      process.stderr.write(`• ${p.step} … `);
    } else process.stderr.write(`${((Date.now() - started) / 1000).toFixed(1)}s\n`);
  };
}

/** How to run this CLI's demo verbs again, for the hints. */
function demoCli(dir: string): string {
  const script = process.argv[1] ?? 'meshless';
  const base = basename(script) === 'meshless' ? 'meshless' : `node ${script}`;
  return `${base} demo${dir === DEFAULT_DEMO_DIR ? '' : ` --state-dir ${dir}`}`;
}

async function traffic(state: DemoState): Promise<TrafficRow[]> {
  const progress = progressPrinter();
  const step = (i: number): string =>
    `traffic ${i + 1}/${DEMO_TRAFFIC.length}: ${DEMO_TRAFFIC[i]?.source ?? '?'} -> ${DEMO_TRAFFIC[i]?.service ? `Service ${DEMO_TRAFFIC[i]?.service ?? ''} -> ` : ''}${DEMO_TRAFFIC[i]?.destination ?? '?'} (capturing the node link)`;
  let current = -1;
  const rows = await runTraffic(state, DEMO_TRAFFIC, {
    onRow: (i) => {
      if (current >= 0) progress({ phase: 'done', step: step(current) });
      current = i;
      progress({ phase: 'start', step: step(i) });
    },
  });
  if (current >= 0) progress({ phase: 'done', step: step(current) });
  return rows;
}

function printRows(rows: readonly TrafficRow[]): void {
  process.stdout.write(
    `\nThe behaviour matrix (docs/reference/behaviour.md), checked on a capture of the node1-node2 link:\n\n`,
  );
  process.stdout.write(renderTrafficTable(rows, colour()));
  const failed = rows.filter((r) => !r.ok).length;
  process.stdout.write(
    failed === 0
      ? `\nAll ${rows.length} rows behave as required.\n`
      : `\n${failed} of ${rows.length} rows do not behave as required.\n`,
  );
}

interface UpArgs extends CommonArgs {
  readonly prefix: string | undefined;
  readonly json: boolean;
}

async function up(args: UpArgs): Promise<number> {
  const dir = stateDirOf(args);
  const started = Date.now();
  const state = await bringUp({
    dir,
    prefix: demoPrefix(args.prefix),
    progress: progressPrinter(),
  });
  const rows = await traffic(state);
  const ok = rows.every((r) => r.ok);
  if (args.json) {
    process.stdout.write(
      JSON.stringify({ stateDir: dir, ...(await demoStatus(state)), traffic: rows }, null, 2) +
        '\n',
    );
  } else {
    process.stderr.write(`Demo up in ${((Date.now() - started) / 1000).toFixed(1)}s.\n`);
    printRows(rows);
    process.stdout.write(`\n${renderPokeHints(state, demoCli(dir))}`);
  }
  return ok ? 0 : 1;
}

interface JsonArgs extends CommonArgs {
  readonly json: boolean;
}

async function status(args: JsonArgs): Promise<number> {
  const state = requireDemoState(stateDirOf(args));
  const s = await demoStatus(state);
  process.stdout.write(args.json ? JSON.stringify(s, null, 2) + '\n' : renderStatus(s, colour()));
  return 0;
}

async function trafficVerb(args: JsonArgs): Promise<number> {
  const state = requireDemoState(stateDirOf(args));
  const rows = await traffic(state);
  if (args.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  else printRows(rows);
  return rows.every((r) => r.ok) ? 0 : 1;
}

interface ExecArgs extends CommonArgs {
  readonly pod: string;
  readonly command: readonly (string | number)[] | undefined;
}

async function exec(args: ExecArgs): Promise<number> {
  const state = requireDemoState(stateDirOf(args));
  const pod = state.pods.find((p) => p.name === args.pod);
  if (!pod)
    throw new MeshlessError(
      'MESHLESS_E_DEMO_NOT_FOUND',
      `no pod ${args.pod} in the demo (pods: ${state.pods.map((p) => p.name).join(', ')})`,
    );
  // yargs leaves what follows `--` out of the positional: take it from argv.
  const dashes = process.argv.indexOf('--');
  const argv = [
    ...(args.command ?? []).map(String),
    ...(dashes >= 0 ? process.argv.slice(dashes + 1) : []),
  ];
  if (argv.length === 0) argv.push(process.env['SHELL'] ?? '/bin/sh');
  const r = spawnSync('ip', ['netns', 'exec', pod.netns, ...argv], { stdio: 'inherit' });
  if (r.error)
    throw new MeshlessError('MESHLESS_E_EXEC', errorMessage(r.error), { cause: r.error });
  return r.status ?? 1;
}

interface LabelArgs extends CommonArgs {
  readonly namespace: string;
  readonly state: string;
  readonly timeout: number;
}

async function label(args: LabelArgs): Promise<number> {
  const state = requireDemoState(stateDirOf(args));
  const on = args.state === 'on';
  const label = `${ENROLMENT_LABEL.key}=${ENROLMENT_LABEL.value}`;
  process.stderr.write(
    `• ${on ? 'labelling' : 'unlabelling'} namespace ${args.namespace} (${label}), waiting for the daemons … `,
  );
  const t0 = Date.now();
  const outcome = await setEnrolment(state, args.namespace, on, args.timeout * 1000);
  process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  for (const p of outcome.pods)
    process.stdout.write(
      `${args.namespace}/${p.pod} (${p.node}): ${p.enrolled === undefined ? 'not reported' : p.enrolled ? 'enrolled' : 'not enrolled'}\n`,
    );
  if (outcome.converged) return 0;
  throw new MeshlessError(
    'MESHLESS_E_DEMO_LABEL_TIMEOUT',
    `the discovery file now has namespace ${args.namespace} ${on ? 'labelled' : 'unlabelled'}, but the ` +
      `daemons did not report its running pods ${on ? 'enrolled' : 'released'} within ${args.timeout}s ` +
      '(does this meshlessd re-evaluate running pods on label changes? see its log)',
  );
}

interface DownArgs extends CommonArgs {
  readonly prefix: string | undefined;
}

async function down(args: DownArgs): Promise<number> {
  const dir = stateDirOf(args);
  const progress = progressPrinter();
  progress({ phase: 'start', step: `removing the demo in ${dir}` });
  const r = await tearDown({ dir, ...(args.prefix ? { prefix: args.prefix } : {}) });
  progress({ phase: 'done', step: '' });
  if (r.processes === 0 && r.netns.length === 0 && !r.dirRemoved)
    process.stdout.write('Nothing to remove: no demo is running there.\n');
  else
    process.stdout.write(
      `Removed ${r.processes} processes, ${r.netns.length} network namespaces (with their links, bridges and rules)` +
        `${r.dirRemoved ? ` and ${dir}` : ''}.\n`,
    );
  return 0;
}

interface ServeArgs extends CommonArgs {
  readonly port: number;
  readonly pod: string;
  readonly namespace: string;
  readonly node: string;
}

async function serve(args: ServeArgs): Promise<number> {
  const server = await startPodServer(args.port, {
    pod: args.pod,
    namespace: args.namespace,
    node: args.node,
  });
  process.stdout.write(
    `${SERVE_READY_LINE} 0.0.0.0:${args.port} (pod ${args.namespace}/${args.pod} on ${args.node})\n`,
  );
  await new Promise<void>((res) => {
    const stop = (): void => {
      server.close(() => res());
      server.unref();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}

const stateDirOption = <T>(y: Argv<T>): Argv<T & CommonArgs> =>
  y.option('state-dir', {
    type: 'string',
    describe: `the demo's state dir (env MESHLESS_DEMO_DIR, default ${DEFAULT_DEMO_DIR})`,
  }) as Argv<T & CommonArgs>;

const jsonOption = { type: 'boolean', default: false, describe: 'print JSON' } as const;

/** yargs registration of `meshless demo`. */
export const demoCommand: CommandModule = {
  command: 'demo',
  describe: 'a two-node demo cluster in network namespaces on this machine (root)',
  builder: (y) =>
    stateDirOption(y)
      .command<UpArgs>(
        'up',
        'build the demo, prove the behaviour matrix on a capture, leave it running',
        (b) =>
          b
            .option('prefix', {
              type: 'string',
              describe:
                'prefix of every netns and link name (env MESHLESS_DEMO_PREFIX, default mldemo)',
            })
            .option('json', jsonOption),
        (a) => guarded('up', () => up(a)),
      )
      .command<JsonArgs>(
        'status',
        'nodes and pods of the running demo',
        (b) => b.option('json', jsonOption),
        (a) => guarded('status', () => status(a)),
      )
      .command<JsonArgs>(
        'traffic',
        'run the traffic table again on the running demo',
        (b) => b.option('json', jsonOption),
        (a) => guarded('traffic', () => trafficVerb(a)),
      )
      .command<ExecArgs>(
        'exec <pod> [command..]',
        "run a command in a pod's network namespace: demo exec web -- curl -s http://IP:8080/",
        (b) =>
          b
            .positional('pod', { type: 'string', demandOption: true })
            .positional('command', { type: 'string', array: true })
            // `demo exec web ip -br addr`: the command's options are not ours.
            .parserConfiguration({ 'unknown-options-as-args': true }),
        (a) => guarded('exec', () => exec(a)),
      )
      .command<LabelArgs>(
        'label <namespace> <state>',
        'set (on) or remove (off) the enrolment label of a namespace, live',
        (b) =>
          b
            .positional('namespace', { type: 'string', demandOption: true })
            .positional('state', { type: 'string', choices: ['on', 'off'], demandOption: true })
            .option('timeout', {
              type: 'number',
              default: 10,
              describe: 'seconds to wait for the daemons to report the change',
            }),
        (a) => guarded('label', () => label(a)),
      )
      .command<DownArgs>(
        'down',
        'remove every netns, link, rule, process and file of the demo (safe to run twice)',
        (b) =>
          b.option('prefix', {
            type: 'string',
            describe: 'also remove network namespaces of this prefix',
          }),
        (a) => guarded('down', () => down(a)),
      )
      .command<ServeArgs>(
        'serve',
        false,
        (b) =>
          b
            .option('port', { type: 'number', demandOption: true })
            .option('pod', { type: 'string', demandOption: true })
            .option('namespace', { type: 'string', demandOption: true })
            .option('node', { type: 'string', demandOption: true }),
        (a) => guarded('serve', () => serve(a)),
      )
      .demandCommand(1, 'name a demo verb: up, status, exec, label, traffic, down'),
  handler: () => undefined,
};
