// The sharded key/value Clerk (shardkv/client.go, lab 5B) on the simulator: for the key's
// shard it looks up the group in its cached configuration and tries that group's servers
// (from the one that answered last); OK returns, ErrWrongGroup stops trying that group, any
// other failure moves to the next server; after a round it sleeps 100 ms and fetches the
// latest configuration from the controller (Query(-1)), as the lab's clerk does. Put and
// Append are exactly-once through a session: a random client id and a sequence number per
// write; a clerk has one request outstanding.

import { assert } from '../stdx/assert.js';
import type { Prng } from '../stdx/prng.js';
import type { Scheduler } from '../sim/scheduler.js';
import { type Gid, initialConfig, type ShardConfig } from '../shardctrler/index.js';
import { key2shard, type ShardKvReply, type ShardKvRequest } from '../shardkv/index.js';
import type { ClerkNetwork } from './kv-rpc.js';
import type { ShardClerk } from './shardctrler-clerk.js';

/** The lab's clerk sleeps this long after a round that found no group serving the key. */
export const shardKvClerkBackoffMs = 100;
/** Client ids are random in [1, 2^53). */
const clientIdBound = Number.MAX_SAFE_INTEGER - 1;

export class ShardKvClerk {
  private config: ShardConfig = initialConfig();
  private readonly clientId: number;
  private seq = 0;
  /** Per group, the server index (into its list) that answered last. */
  private readonly leaders = new Map<Gid, number>();
  rpcCount = 0;

  constructor(
    /** This clerk's number on the key/value clerk network. */
    readonly id: number,
    /** The controller clerk it queries configurations with. */
    private readonly ctrler: ShardClerk,
    private readonly network: ClerkNetwork<ShardKvRequest, ShardKvReply>,
    /** A server name (from a configuration) → its number on the network; undefined if unknown. */
    private readonly resolve: (server: string) => number | undefined,
    private readonly scheduler: Scheduler,
    prng: Prng,
  ) {
    this.clientId = 1 + prng.int(clientIdBound);
  }

  get(key: string): Promise<string> {
    return this.call({ op: 'get', key, value: '', client: 0, seq: 0 });
  }

  async put(key: string, value: string): Promise<void> {
    this.seq++;
    await this.call({ op: 'put', key, value, client: this.clientId, seq: this.seq });
  }

  async append(key: string, value: string): Promise<void> {
    this.seq++;
    await this.call({ op: 'append', key, value, client: this.clientId, seq: this.seq });
  }

  private async call(args: ShardKvRequest): Promise<string> {
    const shard = key2shard(args.key);
    for (;;) {
      const gid = this.config.shards[shard]!;
      const servers = this.config.groups.get(gid);
      if (servers !== undefined && servers.length > 0) {
        const first = this.leaders.get(gid) ?? 0;
        for (let k = 0; k < servers.length; k++) {
          const si = (first + k) % servers.length;
          const server = this.resolve(servers[si]!);
          assert(server !== undefined, `the configuration names an unknown server ${servers[si]}`);
          this.rpcCount++;
          const reply = await this.scheduler.waitOn(this.network.call(this.id, server, args));
          if (reply === undefined) continue;
          if (reply.err === 'OK') {
            this.leaders.set(gid, si);
            return reply.value;
          }
          if (reply.err === 'ErrFatal') throw new Error(`clerk ${this.id}: the server refused ${args.op}(${args.key}): ${reply.value}`);
          if (reply.err === 'ErrWrongGroup') break;
        }
      }
      await this.scheduler.sleep(shardKvClerkBackoffMs);
      this.config = await this.ctrler.query(-1);
    }
  }
}
