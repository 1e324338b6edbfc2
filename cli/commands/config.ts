/**
 * `meshless config`: the effective config of this node's daemon (file and
 * MESHLESS_* overrides applied, secrets left out by the daemon), from
 * `GET /config`, as YAML; `--json` prints the raw answer.
 */
import { stringify } from 'yaml';
import { adminCommand, type AdminView } from '../admin-command.js';
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

/** yargs registration of `meshless config`. */
export const configCommand = adminCommand(
  configView,
  "print the effective config of this node's daemon as YAML",
);
