/**
 * The plugin's log: JSON lines appended to `logFile` from the network
 * config. Never stdout (it belongs to the CNI protocol), and nothing at all
 * when no file is configured: the runtime shows our stderr to nobody.
 */
import { appendFileSync } from 'node:fs';
import type { PluginLogLevel } from '../src/cni/plugin-config.js';

export interface PluginLog {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Context added to every later line (container ID, pod...). */
  bind(fields: Record<string, unknown>): void;
}

const RANK: Record<PluginLogLevel, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
  silent: 99,
};

export function pluginLog(file: string | undefined, level: PluginLogLevel): PluginLog {
  const context: Record<string, unknown> = {};
  const write = (
    lvl: Exclude<PluginLogLevel, 'silent'>,
    msg: string,
    fields?: Record<string, unknown>,
  ): void => {
    if (file === undefined || RANK[lvl] < RANK[level]) return;
    const line = JSON.stringify({
      time: new Date().toISOString(),
      level: lvl,
      pid: process.pid,
      msg,
      ...context,
      ...fields,
    });
    try {
      appendFileSync(file, line + '\n', { mode: 0o600 });
    } catch {
      // A broken log must never fail a pod's network set-up.
    }
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    bind: (f) => Object.assign(context, f),
  };
}

/** A log that drops everything (before the config is known). */
export const silentLog: PluginLog = pluginLog(undefined, 'silent');
