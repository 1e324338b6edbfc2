/**
 * `meshless config`: the effective config of this node's daemon (file and
 * MESHLESS_* overrides applied, secrets left out by the daemon), from
 * `GET /config`, as YAML; `--json` prints the raw answer.
 */
import type { CommandModule } from 'yargs';
import { stringify } from 'yaml';
import {
  runAdminView,
  withAdminOptions,
  type AdminArgs,
  type AdminView,
  type CommandIo,
} from '../admin-command.js';
import { parseConfigReport, type ConfigReport } from '../admin-reports.js';

/** The YAML view of a /config answer. Pure. */
export function renderConfig(config: ConfigReport): string {
  return stringify(config, { lineWidth: 0 });
}

/** `meshless config` as an {@link AdminView}. */
export const configView: AdminView = {
  verb: 'config',
  route: '/config',
  async render(fetch) {
    return renderConfig(parseConfigReport(await fetch('/config')));
  },
};

/** Runs the command; returns the exit code. */
export function runConfig(args: AdminArgs, io?: CommandIo, now?: number): Promise<number> {
  return runAdminView(configView, args, io, now);
}

/** yargs registration of `meshless config`. */
export const configCommand: CommandModule<object, AdminArgs> = {
  command: 'config',
  describe: "print the effective config of this node's daemon as YAML",
  builder: (y) => withAdminOptions(y),
  handler: async (args) => {
    process.exitCode = await runConfig(args);
  },
};
