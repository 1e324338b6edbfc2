/**
 * `meshless cni install|uninstall`: puts the CNI plugin and our conflist
 * entry on this node, or takes them off. install.sh is a thin wrapper
 * around this command.
 *
 * Node mode (`--node`, what the DaemonSet runs) also writes the plugin's
 * kubeconfig from the pod's service account; `--watch` then keeps running
 * and repairs our entry whenever the primary CNI rewrites its config, until
 * SIGTERM/SIGINT; `--uninstall-on-exit` uninstalls then, and with
 * `--owner-daemonset` only when that DaemonSet is being removed
 * (src/installer/exit-policy.ts).
 */
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import type { Argv, ArgumentsCamelCase, CommandModule } from 'yargs';
import { MeshlessError, errorMessage } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { DEFAULT_SOCKET_PATH, parseNamespaceList } from '../../src/installer/entry.js';
import {
  decideExit,
  lookUpDaemonSet,
  parseDaemonSetRef,
  type DaemonSetRef,
  type DaemonSetState,
  type ExitDecision,
} from '../../src/installer/exit-policy.js';
import {
  installCni,
  uninstallCni,
  type InstallOptions,
  type InstallResult,
} from '../../src/installer/install.js';
import { SERVICE_ACCOUNT_DIR, readServiceAccount } from '../../src/installer/kubeconfig.js';
import {
  defaultKubeconfigPath,
  installNode,
  uninstallNode,
  waitForPrimaryConfig,
  type NodeInstallOptions,
} from '../../src/installer/node-install.js';
import { RepairWatcher } from '../../src/installer/repair-watcher.js';
import { execaRunner } from '../../src/exec/command-runner.js';
import { NodeProbeSnat } from '../../src/redirect/node-probe-snat.js';
import { PROBE_SNAT_CHAIN } from '../../src/redirect/probe-snat.js';

/**
 * meshless-cni beside the running program: dist/meshless-cni when run as
 * dist/meshless.js, whatever the bundle format (CommonJS has no import.meta).
 */
function defaultPlugin(): string {
  const script = process.argv[1] ?? '.';
  let real = script;
  try {
    real = realpathSync(script);
  } catch {
    // Keep the path as given.
  }
  return join(dirname(real), 'meshless-cni');
}

function dirOptions<T>(y: Argv<T>) {
  return y
    .option('cni-bin-dir', {
      type: 'string',
      default: process.env.CNI_BIN_DIR ?? '/opt/cni/bin',
      describe: 'CNI plugin binary dir (env CNI_BIN_DIR)',
    })
    .option('cni-conf-dir', {
      type: 'string',
      default: process.env.CNI_CONF_DIR ?? '/etc/cni/net.d',
      describe: 'CNI network config dir (env CNI_CONF_DIR)',
    })
    .option('conf-file', {
      type: 'string',
      describe: 'config file in the conf dir to edit (default: the lexically first)',
    });
}

type Verb = 'install' | 'uninstall';

function report(verb: Verb, result: InstallResult): void {
  for (const { path, action } of result.actions) console.log(`  ${action.padEnd(9)} ${path}`);
  for (const w of result.warnings) console.error(`meshless: warning: ${w}`);
  const touched = result.actions.some((a) => a.action === 'written' || a.action === 'removed');
  const done = `${verb}ed`;
  console.log(touched ? `meshless-cni ${done}.` : `meshless-cni already ${done}; nothing to do.`);
}

async function run(verb: Verb, action: () => Promise<InstallResult>): Promise<void> {
  try {
    report(verb, await action());
  } catch (err) {
    const code = err instanceof MeshlessError ? ` (${err.code})` : '';
    console.error(`meshless: cni ${verb} failed${code}: ${errorMessage(err)}`);
    process.exitCode = 1;
  }
}

const install: CommandModule = {
  command: 'install',
  describe: 'copy meshless-cni into the CNI bin dir and append it to the primary conflist',
  builder: (y) =>
    dirOptions(y)
      .option('plugin', {
        type: 'string',
        default: defaultPlugin(),
        describe: 'plugin binary to install',
      })
      .option('socket-path', {
        type: 'string',
        default: DEFAULT_SOCKET_PATH,
        describe: "the daemon's CNI socket",
      })
      .option('kubeconfig', {
        type: 'string',
        describe: 'kubeconfig for the plugin (with --node: where to write it)',
      })
      .option('log-file', { type: 'string', describe: "the plugin's log file" })
      .option('log-level', { type: 'string', describe: "the plugin's log level" })
      .option('exclude-namespaces', {
        type: 'string',
        describe: 'comma-separated namespaces never enrolled (replaces the default kube-system)',
      })
      .option('node', {
        type: 'boolean',
        default: false,
        describe:
          "node mode (DaemonSet): write the plugin's kubeconfig from this pod's service account " +
          '(default <cni-conf-dir>/meshless-kubeconfig) and wait for the primary config to appear',
      })
      .option('service-account-dir', {
        type: 'string',
        default: SERVICE_ACCOUNT_DIR,
        describe: 'where the service-account token and ca.crt are (node mode)',
      })
      .option('watch', {
        type: 'boolean',
        default: false,
        describe: 'keep running: re-insert our entry whenever the conf dir changes, until SIGTERM',
      })
      .option('recheck-interval', {
        type: 'number',
        default: 10,
        describe: 'seconds between unconditional re-checks (--watch)',
      })
      .option('debounce-ms', {
        type: 'number',
        default: 100,
        hidden: true,
        describe: 'quiet time after a change before repairing (--watch)',
      })
      .option('uninstall-on-exit', {
        type: 'boolean',
        default: false,
        describe: 'uninstall on SIGTERM/SIGINT (--watch); see --owner-daemonset',
      })
      .option('owner-daemonset', {
        type: 'string',
        describe:
          'namespace/name of our DaemonSet: uninstall on exit only when it is gone or being deleted',
      }),
  handler: (argv) => runInstall(argv),
};

/** Reads the install flags into options; every check happens before anything runs. */
function installOptions(argv: ArgumentsCamelCase): InstallOptions {
  return {
    binDir: String(argv['cni-bin-dir']),
    confDir: String(argv['cni-conf-dir']),
    confFile: optionalString(argv['conf-file']),
    pluginSource: String(argv.plugin),
    entryOptions: {
      socketPath: optionalString(argv['socket-path']),
      kubeconfig: optionalString(argv.kubeconfig),
      logFile: optionalString(argv['log-file']),
      logLevel: optionalString(argv['log-level']),
      excludeNamespaces:
        typeof argv['exclude-namespaces'] === 'string'
          ? parseNamespaceList(argv['exclude-namespaces'])
          : undefined,
    },
  };
}

function nodeOptions(argv: ArgumentsCamelCase, base: InstallOptions): NodeInstallOptions {
  const kubeconfigPath = base.entryOptions?.kubeconfig ?? defaultKubeconfigPath(base.confDir);
  if (!isAbsolute(kubeconfigPath))
    throw new MeshlessError(
      'MESHLESS_E_INSTALL',
      `--kubeconfig "${kubeconfigPath}" must be absolute`,
    );
  return {
    ...base,
    node: {
      kubeconfigPath,
      serviceAccountDir: String(argv['service-account-dir']),
      env: process.env,
    },
  };
}

async function runInstall(argv: ArgumentsCamelCase): Promise<void> {
  const watching = argv.watch === true;
  if (!watching && (argv['uninstall-on-exit'] === true || argv['owner-daemonset'] !== undefined)) {
    console.error('meshless: --uninstall-on-exit and --owner-daemonset need --watch');
    process.exitCode = 2;
    return;
  }
  // (install.sh --demo is not handled here: it runs `meshless demo up`,
  // cli/commands/demo.ts.)
  if (argv.node !== true && !watching)
    return run('install', () => installCni(installOptions(argv)));

  // SIGTERM/SIGINT end waiting and watching; handlers go in first so that a
  // signal at any point is seen.
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => stop.abort(signal);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const base = installOptions(argv);
    const node = argv.node === true ? nodeOptions(argv, base) : undefined;
    const owner =
      typeof argv['owner-daemonset'] === 'string'
        ? parseDaemonSetRef(argv['owner-daemonset'])
        : undefined;
    const pass = (): Promise<InstallResult> =>
      node !== undefined ? installNode(node) : installCni(base);
    if (node !== undefined) {
      const found = await waitForPrimaryConfig(base.confDir, {
        signal: stop.signal,
        onWait: () =>
          console.log(`meshless: waiting for a network config in ${base.confDir} (primary CNI)`),
      });
      if (!found) {
        console.error('meshless: stopped before any network config appeared; nothing installed');
        process.exitCode = 1;
        return;
      }
    }
    if (!watching) return await run('install', pass);
    await watchUntilStopped({
      confDir: base.confDir,
      pass,
      stop: stop.signal,
      recheckMs: Number(argv['recheck-interval']) * 1000,
      debounceMs: Number(argv['debounce-ms']),
      uninstallOnExit: argv['uninstall-on-exit'] === true,
      owner,
      serviceAccountDir: String(argv['service-account-dir']),
      uninstall: async () =>
        withProbeSnatRemoved(
          await uninstallNode(
            { binDir: base.binDir, confDir: base.confDir, confFile: base.confFile },
            node?.node.kubeconfigPath,
          ),
        ),
    });
  } catch (err) {
    const code = err instanceof MeshlessError ? ` (${err.code})` : '';
    console.error(`meshless: cni install failed${code}: ${errorMessage(err)}`);
    process.exitCode = 1;
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
  }
}

/** Human-readable lines for the container log: info to stdout, the rest to stderr. */
const cliLogger: Logger = {
  debug: () => undefined,
  info: (fields, msg) => console.log(`meshless: ${msg}${formatFields(fields)}`),
  warn: (fields, msg) => console.error(`meshless: warning: ${msg}${formatFields(fields)}`),
  error: (fields, msg) => console.error(`meshless: error: ${msg}${formatFields(fields)}`),
  child: () => cliLogger,
};

function formatFields(fields: Record<string, unknown>): string {
  const parts = Object.entries(fields).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return parts.length === 0 ? '' : ` ${parts.join(' ')}`;
}

async function daemonSetState(
  serviceAccountDir: string,
  owner: DaemonSetRef,
): Promise<DaemonSetState> {
  try {
    return await lookUpDaemonSet(await readServiceAccount(serviceAccountDir), owner);
  } catch {
    return 'unknown';
  }
}

/** Watches until `stop` aborts, then applies the exit policy. */
async function watchUntilStopped(o: {
  confDir: string;
  pass: () => Promise<InstallResult>;
  stop: AbortSignal;
  recheckMs: number;
  debounceMs: number;
  uninstallOnExit: boolean;
  owner: DaemonSetRef | undefined;
  serviceAccountDir: string;
  uninstall: () => Promise<InstallResult>;
}): Promise<void> {
  const atStart =
    o.uninstallOnExit && o.owner !== undefined
      ? await daemonSetState(o.serviceAccountDir, o.owner)
      : undefined;
  if (atStart !== undefined)
    cliLogger.info(
      { daemonset: `${o.owner?.namespace}/${o.owner?.name}`, state: atStart },
      'owner DaemonSet looked up (decides uninstall on exit)',
    );
  const watcher = new RepairWatcher({
    confDir: o.confDir,
    repair: o.pass,
    log: cliLogger,
    recheckMs: o.recheckMs,
    debounceMs: o.debounceMs,
  });
  if (!o.stop.aborted) {
    await watcher.start();
    cliLogger.info({ dir: o.confDir }, 'watching the CNI conf dir');
    await new Promise<void>((resolve) => {
      if (o.stop.aborted) resolve();
      else o.stop.addEventListener('abort', () => resolve(), { once: true });
    });
  }
  await watcher.stop();
  const stats = watcher.stats;
  cliLogger.info({ signal: String(o.stop.reason), ...stats }, 'stopped watching');
  if (!o.uninstallOnExit) return;
  const decision: ExitDecision =
    o.owner === undefined
      ? { uninstall: true, reason: '--uninstall-on-exit without --owner-daemonset' }
      : decideExit(atStart ?? 'unknown', await daemonSetState(o.serviceAccountDir, o.owner));
  cliLogger.info({ uninstall: decision.uninstall }, decision.reason);
  if (decision.uninstall) await run('uninstall', o.uninstall);
}

const uninstall: CommandModule = {
  command: 'uninstall',
  describe:
    "remove our conflist entry (restoring the original file), the plugin binary and the node's probe SNAT rule",
  builder: (y) =>
    dirOptions(y)
      .option('node', {
        type: 'boolean',
        default: false,
        describe: "node mode: also remove the plugin's kubeconfig",
      })
      .option('kubeconfig', {
        type: 'string',
        describe:
          'with --node: the kubeconfig to remove (default <cni-conf-dir>/meshless-kubeconfig)',
      }),
  handler: (argv) =>
    run('uninstall', async () => {
      const dirs = {
        binDir: String(argv['cni-bin-dir']),
        confDir: String(argv['cni-conf-dir']),
        confFile: optionalString(argv['conf-file']),
      };
      return withProbeSnatRemoved(
        await (argv.node === true
          ? uninstallNode(
              dirs,
              optionalString(argv.kubeconfig) ?? defaultKubeconfigPath(dirs.confDir),
            )
          : uninstallCni(dirs)),
      );
    }),
};

/**
 * Uninstalling also removes the node's probe SNAT rule, which the daemon
 * keeps (and leaves in place when it stops, so probes survive restarts).
 * Only root can read the node's rules; without iptables there is nothing of
 * ours. A failure is a warning: the plugin entry is what matters most.
 */
async function withProbeSnatRemoved(result: InstallResult): Promise<InstallResult> {
  if (process.getuid?.() !== 0) return result;
  const snat = new NodeProbeSnat(execaRunner());
  const what = `iptables nat chain ${PROBE_SNAT_CHAIN} (probe SNAT)`;
  try {
    if (!(await snat.present())) return result;
    await snat.remove();
    return { ...result, actions: [...result.actions, { path: what, action: 'removed' }] };
  } catch (err) {
    if (err instanceof MeshlessError && err.code === 'MESHLESS_E_EXEC') return result;
    return {
      ...result,
      warnings: [...result.warnings, `could not remove the ${what}: ${errorMessage(err)}`],
    };
  }
}

function optionalString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** `meshless cni <install|uninstall>`. */
export const cniCommand: CommandModule = {
  command: 'cni',
  describe: 'install or uninstall the CNI plugin on this node',
  builder: (y) =>
    y.command(install).command(uninstall).demandCommand(1, 'name install or uninstall'),
  handler: () => undefined,
};
