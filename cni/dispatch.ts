/**
 * The one place that turns an invocation into stdout and an exit status
 * (after containernetworking/plugins' skel): parse the environment and the
 * config, run the verb's handler, and map every failure, expected or not,
 * to the spec's error JSON. Nothing else writes to stdout.
 */
import { CNI_CODES, CniError } from '../src/cni/cni-error.js';
import { parseEnvironment, type CniCommand } from '../src/cni/environment.js';
import { decodeStdin, parsePluginConfig } from '../src/cni/plugin-config.js';
import { LATEST_VERSION, SUPPORTED_VERSIONS, isSupportedVersion } from '../src/cni/versions.js';
import { errorMessage } from '../src/errors.js';
import { cmdAdd } from './commands/add.js';
import { cmdCheck } from './commands/check.js';
import { cmdDel } from './commands/del.js';
import { cmdGc } from './commands/gc.js';
import { cmdStatus } from './commands/status.js';
import type { HandlerResult, Invocation, PluginDeps } from './plugin-context.js';
import { pluginLog, silentLog, type PluginLog } from './plugin-log.js';

export interface PluginOutput {
  readonly stdout: string;
  readonly exitCode: number;
}

const HANDLERS: Record<
  Exclude<CniCommand, 'VERSION'>,
  (i: Invocation) => Promise<HandlerResult>
> = {
  ADD: cmdAdd,
  DEL: cmdDel,
  CHECK: cmdCheck,
  STATUS: cmdStatus,
  GC: cmdGc,
};

/** The cniVersion to answer errors in, from whatever stdin says. */
function versionOf(stdin: string): string {
  try {
    const v: unknown = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    if (typeof v === 'string' && isSupportedVersion(v)) return v;
  } catch {
    // fall through
  }
  return LATEST_VERSION;
}

export async function runPlugin(
  rawEnv: NodeJS.ProcessEnv,
  stdin: string,
  deps: PluginDeps,
): Promise<PluginOutput> {
  let log: PluginLog = silentLog;
  // process.hrtime, not performance.now(): the global `performance` loads
  // perf_hooks on first use (~1 ms of the plugin's start-up).
  let started: bigint | undefined;
  const elapsedMs = (): number | undefined =>
    started === undefined ? undefined : Math.round(Number(process.hrtime.bigint() - started) / 1e6);
  try {
    const env = parseEnvironment(rawEnv);
    if (env.command === 'VERSION') {
      return {
        stdout: JSON.stringify({
          cniVersion: versionOf(stdin),
          supportedVersions: SUPPORTED_VERSIONS,
        }),
        exitCode: 0,
      };
    }
    const config = parsePluginConfig(decodeStdin(stdin));
    log = pluginLog(config.logFile, config.logLevel);
    log.bind({ command: env.command, containerId: env.containerId || undefined });
    started = process.hrtime.bigint();
    const result = await HANDLERS[env.command]({ env, config, deps, log });
    log.debug('done', { ms: elapsedMs() });
    return { stdout: result === undefined ? '' : JSON.stringify(result), exitCode: 0 };
  } catch (err) {
    const cniErr =
      err instanceof CniError
        ? err
        : new CniError(CNI_CODES.internal, `meshless-cni internal error: ${errorMessage(err)}`, {
            details:
              err instanceof Error ? err.stack?.split('\n').slice(0, 4).join(' | ') : undefined,
          });
    log.error(cniErr.message, {
      code: cniErr.cniCode,
      ms: elapsedMs(),
    });
    return { stdout: JSON.stringify(cniErr.toJSON(versionOf(stdin))), exitCode: 1 };
  }
}
