/**
 * `meshless cni ...` from the TypeScript sources, without the rest of the
 * CLI: the watch tests spawn this to send it real signals.
 * Usage: node --import tsx test/src/installer/run-cni-cli.ts cni install --watch ...
 */
import yargs from 'yargs';
import { cniCommand } from '../../../cli/commands/cni-install.js';

void yargs(process.argv.slice(2))
  .scriptName('meshless')
  .command(cniCommand)
  .strict()
  .demandCommand(1)
  .parseAsync();
