/**
 * The command line of a program entry (meshlessd, meshless-ca): `--config
 * FILE` (`-c`), else the environment variable named, and `--help` (`-h`).
 * Pure: the entry prints and exits.
 *
 * @throws TypeError for an unknown option or a missing value (the entry
 *   prints it with its usage and exits 2).
 */
import { parseArgs } from 'node:util';

export type ConfigFlag =
  { readonly kind: 'help' } | { readonly kind: 'config'; readonly file: string | undefined };

export function parseConfigFlag(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  envVar: string,
): ConfigFlag {
  const { values } = parseArgs({
    args: [...args],
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help === true) return { kind: 'help' };
  return { kind: 'config', file: values.config ?? env[envVar] };
}
