// The `flotilla` command. Each subcommand lives in its own file and registers itself on the
// program; this file loads only the one the command line names, so `flotilla kv get` does
// not pay for the server, the simulator or MapReduce (about a third of a second of module
// loading when every subcommand was imported up front). `flotilla --help` lists the
// commands from the table below without loading any of them.

import { Command } from 'commander';
import { argv, makeOutputBlocking } from '../platform/process.js';
import { checkout } from './checkout.js';

type Register = (program: Command) => void;

/** Each top-level command: its summary for `flotilla --help`, and how to load it. */
const commands: Record<string, { readonly summary: string; readonly load: () => Promise<Register> }> = {
  start: { summary: 'run a local three-member cluster (data under ./data; Ctrl-C stops it; a killed member is restarted)', load: async () => (await import('./start.js')).registerStart },
  server: { summary: 'run one member of a Flotilla cluster', load: async () => (await import('./server.js')).registerServer },
  kv: { summary: 'read and write the key/value service of a running cluster', load: async () => (await import('./kv.js')).registerKv },
  shard: { summary: "drive a sharded cluster's shard controller (join, leave, move, query)", load: async () => (await import('./shard.js')).registerShard },
  zk: { summary: 'read, write and watch znodes on a ZooKeeper-compatible server', load: async () => (await import('./zk.js')).registerZk },
  craq: { summary: 'CRAQ chain nodes (chain replication with apportioned queries, membership in ZooKeeper) and a client', load: async () => (await import('./craq.js')).registerCraq },
  pb: { summary: 'primary/backup replication with a logged, replayed state machine (VMware FT), the primary chosen in ZooKeeper', load: async () => (await import('./pb.js')).registerPb },
  debug: { summary: "ask a running cluster about itself (its members' admin ports)", load: async () => (await import('./debug.js')).registerDebug },
  member: { summary: "list and change a running cluster's members (every Raft group)", load: async () => (await import('./member.js')).registerMember },
  snapshot: { summary: 'back up a running member, and seed a new cluster from a backup', load: async () => (await import('./snapshot.js')).registerSnapshot },
  cert: { summary: "make a cluster's CA and its members' and clients' TLS certificates", load: async () => (await import('./cert.js')).registerCert },
  mr: { summary: 'MapReduce: a coordinator and workers as separate processes', load: async () => (await import('./mr.js')).registerMapReduce },
  lincheck: {
    summary: 'check a history of operations for linearizability (exit 0 ok, 1 not linearizable, 2 unknown, 3 bad input)',
    load: async () => (await import('./lincheck.js')).registerLincheck,
  },
  sim: { summary: 'run the randomized Raft simulation', load: async () => (await import('./sim.js')).registerSim },
  'sim-shards': { summary: 'run the randomized simulation of the sharded key/value service', load: async () => (await import('./sim-shards.js')).registerSimShards },
};

// Before anything is written: every command's output then reaches a pipe in full before the
// process exits (`flotilla kv get big | wc -c` printed 65536 for a 130 KB value).
makeOutputBlocking();

const program = new Command('flotilla')
  .description('Fault-tolerant distributed services on Raft')
  .version(`flotilla ${checkout()?.version ?? '(unknown version)'}`, '-V, --version', 'print the version')
  .showHelpAfterError();

const args = argv();
// `flotilla help kv` is `flotilla kv --help`.
const named = args[2] === 'help' ? args[3] : args[2];
const chosen = named === undefined ? undefined : commands[named];
if (chosen !== undefined) {
  (await chosen.load())(program);
} else {
  // No command or an unknown one: help and errors need only the names and summaries.
  for (const [name, { summary }] of Object.entries(commands)) program.command(name).description(summary);
}
await program.parseAsync(args);
