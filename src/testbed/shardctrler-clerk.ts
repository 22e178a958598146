// The shard controller's Clerk (shardctrler/client.go, lab 4A/5A) on the simulator: Join,
// Leave, Move and Query that retry until a server answers, across the servers, from the
// one that answered last (the leader, usually), sleeping 100 ms after each round that
// found none, as the lab's clerk does. Join, Leave and Move are exactly-once through a
// session: a random client id, a sequence number per command, and an ack of every reply.

import { assert } from '../stdx/assert.js';
import type { Prng } from '../stdx/prng.js';
import type { Scheduler } from '../sim/scheduler.js';
import { configFromArray, type Gid, type ShardConfig } from '../shardctrler/index.js';
import type { ClerkNetwork } from './kv-rpc.js';

/** What a clerk sends: one of the four calls, and the session stamp for the three writes. */
export interface ShardClerkArgs {
  readonly op: 'join' | 'leave' | 'move' | 'query';
  /** join: [gid, [server, ...], ...]. */
  readonly groups: unknown[];
  /** leave. */
  readonly gids: number[];
  /** move. */
  readonly shard: number;
  readonly gid: number;
  /** query. */
  readonly num: number;
  readonly client: number;
  readonly seq: number;
  readonly ack: number;
}

/** 'OK' (with the configuration for a query, or the new configuration's number); otherwise why to try elsewhere. */
export interface ShardClerkReply {
  readonly err: 'OK' | 'ErrWrongLeader' | 'ErrRetry' | 'ErrFatal';
  /** query: the configuration as configToArray makes it. */
  readonly config: unknown[] | null;
  /** join, leave, move: the configuration the command made. */
  readonly num: number;
  readonly message: string;
}

/** The lab's clerk sleeps this long after trying every server without success. */
export const shardClerkRoundBackoffMs = 100;
/** Client ids are random in [1, 2^53): collisions are negligible among a test's clerks. */
const clientIdBound = Number.MAX_SAFE_INTEGER - 1;

/** A command the controller refused (ErrFatal): a bad input, never retried. */
export class ShardClerkRefused extends Error {
  override name = 'ShardClerkRefused';
}

export class ShardClerk {
  /** The server (an index into `servers`) that answered last. */
  private leader = 0;
  private readonly clientId: number;
  /** The last command's sequence number. Invariant: every earlier command's reply was received. */
  private seq = 0;
  rpcCount = 0;

  constructor(
    readonly id: number,
    /** The servers in this clerk's own (shuffled) order. */
    private readonly servers: readonly number[],
    private readonly network: ClerkNetwork<ShardClerkArgs, ShardClerkReply>,
    private readonly scheduler: Scheduler,
    prng: Prng,
  ) {
    assert(servers.length > 0, 'a clerk needs servers');
    this.clientId = 1 + prng.int(clientIdBound);
  }

  async query(num: number): Promise<ShardConfig> {
    const reply = await this.call({ ...blank, op: 'query', num });
    return configFromArray(reply.config);
  }

  /** Join(servers): the groups in `groups`' iteration order (the controller's result does not depend on it). */
  async join(groups: ReadonlyMap<Gid, readonly string[]>): Promise<number> {
    const flat: unknown[] = [];
    for (const [gid, servers] of groups) flat.push(gid, [...servers]);
    return (await this.write({ ...blank, op: 'join', groups: flat })).num;
  }

  async leave(gids: readonly Gid[]): Promise<number> {
    return (await this.write({ ...blank, op: 'leave', gids: [...gids] })).num;
  }

  async move(shard: number, gid: Gid): Promise<number> {
    return (await this.write({ ...blank, op: 'move', shard, gid })).num;
  }

  private write(args: ShardClerkArgs): Promise<ShardClerkReply> {
    this.seq++;
    return this.call({ ...args, client: this.clientId, seq: this.seq, ack: this.seq - 1 });
  }

  /** Tries the servers in turn, from the last one that answered, until one says OK. */
  private async call(args: ShardClerkArgs): Promise<ShardClerkReply> {
    for (let attempt = 1; ; attempt++) {
      const server = this.servers[this.leader]!;
      this.rpcCount++;
      const reply = await this.scheduler.waitOn(this.network.call(this.id, server, args));
      if (reply !== undefined && reply.err === 'OK') return reply;
      if (reply !== undefined && reply.err === 'ErrFatal') throw new ShardClerkRefused(`clerk ${this.id}: the controller refused ${args.op}: ${reply.message}`);
      this.leader = (this.leader + 1) % this.servers.length;
      if (attempt % this.servers.length === 0) await this.scheduler.sleep(shardClerkRoundBackoffMs);
    }
  }
}

const blank: ShardClerkArgs = { op: 'query', groups: [], gids: [], shard: 0, gid: 0, num: -1, client: 0, seq: 0, ack: 0 };
