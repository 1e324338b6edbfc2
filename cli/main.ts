/**
 * `meshless`: the operator's command line. Each verb lives in its own file
 * under cli/commands and is registered here.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { cniCommand } from './commands/cni-install.js';

void yargs(hideBin(process.argv))
  .scriptName('meshless')
  .command(cniCommand)
  .strict()
  .demandCommand(1, 'name a command; see --help')
  .recommendCommands()
  .help()
  .parseAsync();
