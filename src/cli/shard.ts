// `flotilla shard join|leave|move|query`: the shard controller of a sharded cluster (members
// started with --shards; server/shard-host.ts) from the command line, through any member
// (a member that does not lead the controller group forwards to the one that does).
//
//   flotilla shard join 100 101 102      # the groups' servers come from the members' layout
//   flotilla shard move 3 101            # shard 3 to group 101
//   flotilla shard leave 102
//   flotilla shard query [num]           # -1 or none: the latest configuration
//
// Exit codes as `flotilla kv`: 0 done, 1 failed or refused (not applied), 2 bad usage,
// 4 the outcome is unknown (it may have applied).

import { type Command, InvalidArgumentError } from 'commander';
import { exit, writeErr, writeOut } from '../platform/process.js';
import { describeConfig, type ShardConfig, type ShardOp } from '../shardctrler/index.js';
import { ShardCtrlError, ShardedClient } from '../server/sharded-client.js';
import { describeFailure, endpoints, kvExitCodes, nonNegative } from './kv.js';
import { localCluster } from './local-cluster.js';
import { addTlsOptions, clientTls, type TlsFlags } from './tls-options.js';

interface ShardFlags extends TlsFlags {
  endpoints: string;
  json?: boolean;
  timeoutMs: string;
}

export function registerShard(program: Command): void {
  const shard = program
    .command('shard')
    .description("drive a sharded cluster's shard controller (members started with --shards)")
    .exitOverride((error) => exit(error.exitCode === 0 ? kvExitCodes.ok : kvExitCodes.usage));
  const common = (command: Command) =>
    addTlsOptions(command)
      .option('--endpoints <list>', 'client addresses of the members, host:port,...', localCluster.clientAddresses().join(','))
      .option('--json', 'print the result as JSON')
      .option('--timeout-ms <ms>', 'give up after this long (a change may then have applied)', '10000');

  common(shard.command('join').argument('<gid...>', "groups of the members' layout (--shards) to join").description('add replica groups; the shards are rebalanced')).action(
    (gids: string[], flags: ShardFlags) => change(flags, () => ({ kind: 'join', groups: gids.map((gid) => [positive(gid, 'gid'), []] as const) })),
  );
  common(shard.command('leave').argument('<gid...>', 'groups to remove').description('remove replica groups; their shards move to the others')).action((gids: string[], flags: ShardFlags) =>
    change(flags, () => ({ kind: 'leave', gids: gids.map((gid) => positive(gid, 'gid')) })),
  );
  common(shard.command('move').argument('<shard>', 'a shard, 0-9').argument('<gid>', 'a joined group').description('put one shard on one group')).action(
    (shardText: string, gid: string, flags: ShardFlags) => change(flags, () => ({ kind: 'move', shard: nonNegative(shardText, 'shard'), gid: positive(gid, 'gid') })),
  );
  common(shard.command('query').argument('[num]', 'a configuration number; -1 (default): the latest').description('print a configuration')).action((num: string | undefined, flags: ShardFlags) =>
    run(flags, async (client) => {
      const config = await client.query(num === undefined || num === '-1' ? -1 : nonNegative(num, 'num'));
      return { json: configJson(config), human: describeConfig(config) };
    }),
  );
}

function change(flags: ShardFlags, op: () => ShardOp): Promise<void> {
  return run(flags, async (client) => {
    const num = await client.change(op());
    const config = await client.query(num);
    return { json: configJson(config), human: `configuration ${num}: ${describeConfig(config)}` };
  });
}

async function run(flags: ShardFlags, body: (client: ShardedClient) => Promise<{ json: object; human: string }>): Promise<void> {
  let client: ShardedClient | undefined;
  let code: number = kvExitCodes.ok;
  try {
    client = new ShardedClient({ endpoints: endpoints(flags.endpoints), callDeadlineMs: nonNegative(flags.timeoutMs, '--timeout-ms'), tls: clientTls(flags) });
    const out = await body(client);
    writeOut(flags.json === true ? `${JSON.stringify(out.json)}\n` : `${out.human}\n`);
  } catch (error) {
    const failure = error instanceof ShardCtrlError ? { code: kvExitCodes.failed, name: error.code, message: error.message } : describeFailure(error);
    code = failure.code;
    if (flags.json === true) writeOut(`${JSON.stringify({ error: failure.name, message: failure.message })}\n`);
    else writeErr(`flotilla shard: ${failure.name}: ${failure.message}\n`);
  } finally {
    client?.close();
  }
  exit(code);
}

function configJson(config: ShardConfig): object {
  return { num: config.num, shards: config.shards, groups: Object.fromEntries([...config.groups].sort(([a], [b]) => a - b)) };
}

function positive(raw: string, what: string): number {
  const value = nonNegative(raw, what);
  if (value === 0) throw new InvalidArgumentError(`${what}: 0 is not a group`);
  return value;
}
