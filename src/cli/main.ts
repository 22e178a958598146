// The `flotilla` command. Each subcommand lives in its own file and registers itself here.

import { Command } from 'commander';
import { argv } from '../platform/process.js';
import { registerMapReduce } from './mr.js';
import { registerLincheck } from './lincheck.js';
import { registerSim } from './sim.js';
import { registerServer } from './server.js';
import { registerStart } from './start.js';
import { registerKv } from './kv.js';
import { registerZk } from './zk.js';

const program = new Command('flotilla')
  .description('Fault-tolerant distributed services on Raft')
  .showHelpAfterError();

registerMapReduce(program);
registerLincheck(program);
registerSim(program);
registerServer(program);
registerStart(program);
registerKv(program);
registerZk(program);

await program.parseAsync(argv());
