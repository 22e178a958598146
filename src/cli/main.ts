// The `flotilla` command. Each subcommand lives in its own file and registers itself here.

import { Command } from 'commander';
import { argv } from '../platform/process.js';

const program = new Command('flotilla')
  .description('Fault-tolerant distributed services on Raft')
  .showHelpAfterError();

await program.parseAsync(argv());
