// The `flotilla` command. Each subcommand lives in its own file and registers itself here.

import { Command } from 'commander';
import { argv, makeOutputBlocking } from '../platform/process.js';
import { registerMapReduce } from './mr.js';
import { registerLincheck } from './lincheck.js';
import { registerSim } from './sim.js';
import { registerServer } from './server.js';
import { registerStart } from './start.js';
import { registerKv } from './kv.js';
import { registerZk } from './zk.js';
import { checkout } from './checkout.js';

// Before anything is written: every command's output then reaches a pipe in full before the
// process exits (`flotilla kv get big | wc -c` printed 65536 for a 130 KB value).
makeOutputBlocking();

const program = new Command('flotilla')
  .description('Fault-tolerant distributed services on Raft')
  .version(`flotilla ${checkout()?.version ?? '(unknown version)'}`, '-V, --version', 'print the version')
  .showHelpAfterError();

registerMapReduce(program);
registerLincheck(program);
registerSim(program);
registerServer(program);
registerStart(program);
registerKv(program);
registerZk(program);

await program.parseAsync(argv());
