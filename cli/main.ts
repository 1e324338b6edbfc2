/**
 * `meshless`: the operator's command line. Each verb lives in its own file
 * under cli/commands and is registered here.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { caCommand } from './commands/ca.js';
import { certsCommand } from './commands/certs.js';
import { cniCommand } from './commands/cni-install.js';
import { configCommand } from './commands/config.js';
import { connectionsCommand } from './commands/connections.js';
import { demoCommand } from './commands/demo.js';
import { policyCommand } from './commands/policy.js';
import { statusCommand } from './commands/status.js';
import { workloadsCommand } from './commands/workloads.js';

void yargs(hideBin(process.argv))
  .scriptName('meshless')
  .command(cniCommand)
  .command(statusCommand)
  .command(workloadsCommand)
  .command(certsCommand)
  .command(connectionsCommand)
  .command(configCommand)
  .command(policyCommand)
  .command(caCommand)
  .command(demoCommand)
  .strict()
  .demandCommand(1, 'name a command; see --help')
  .recommendCommands()
  .help()
  .parseAsync();
