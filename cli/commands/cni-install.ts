/**
 * `meshless cni install|uninstall`: puts the CNI plugin and our conflist
 * entry on this node, or takes them off. install.sh is a thin wrapper
 * around this command.
 */
import { realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { MeshlessError, errorMessage } from '../../src/errors.js';
import { DEFAULT_SOCKET_PATH, parseNamespaceList } from '../../src/installer/entry.js';
import { installCni, uninstallCni, type InstallResult } from '../../src/installer/install.js';

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
      .option('kubeconfig', { type: 'string', describe: 'kubeconfig for the plugin' })
      .option('log-file', { type: 'string', describe: "the plugin's log file" })
      .option('log-level', { type: 'string', describe: "the plugin's log level" })
      .option('exclude-namespaces', {
        type: 'string',
        describe: 'comma-separated namespaces never enrolled (replaces the default kube-system)',
      }),
  handler: (argv) =>
    run('install', () =>
      installCni({
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
      }),
    ),
};

const uninstall: CommandModule = {
  command: 'uninstall',
  describe: 'remove our conflist entry (restoring the original file) and the plugin binary',
  builder: (y) => dirOptions(y),
  handler: (argv) =>
    run('uninstall', () =>
      uninstallCni({
        binDir: String(argv['cni-bin-dir']),
        confDir: String(argv['cni-conf-dir']),
        confFile: optionalString(argv['conf-file']),
      }),
    ),
};

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
