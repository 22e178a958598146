// The kvraft Clerk (docs/6824-tests.md §5.1) on the simulator: Get, Put and Append
// that retry forever, across the servers, until one succeeds. It remembers the server that
// last answered (the leader, usually), and gets exactly-once writes from a session: a
// random client id, a sequence number per write, and an ack of every reply received.

import { assert } from '../stdx/assert.js';
import type { Prng } from '../stdx/prng.js';
import type { Scheduler } from '../sim/scheduler.js';
import type { ClerkNetwork } from './kv-rpc.js';

/** What a clerk sends: the lab's Get/PutAppend arguments plus the session stamp. */
export interface ClerkArgs {
  readonly op: 'get' | 'put' | 'append';
  readonly key: string;
  readonly value: string;
  readonly client: number;
  readonly seq: number;
  readonly ack: number;
}

/** 'OK' with the value for a get ('' for a missing key); otherwise why to try elsewhere. */
export interface ClerkReply {
  readonly err: 'OK' | 'ErrWrongLeader' | 'ErrTimeout' | 'ErrRetry' | 'ErrFatal';
  readonly value: string;
}

/** After trying every server without success, wait this long before the next round. */
export const clerkRoundBackoffMs = 20;
/** Client ids are random in [1, 2^53): collisions are negligible among a test's clerks. */
const clientIdBound = Number.MAX_SAFE_INTEGER - 1;

export class Clerk {
  /** The server (an index into `servers`) that answered last. */
  private leader = 0;
  private readonly clientId: number;
  /** The last write's sequence number. Invariant: every earlier write's reply was received. */
  private seq = 0;
  /** RPCs this clerk sent. */
  rpcCount = 0;

  constructor(
    /** The clerk's number on the clerk network. */
    readonly id: number,
    /** The servers in this clerk's own (shuffled) order. */
    private readonly servers: readonly number[],
    private readonly network: ClerkNetwork<ClerkArgs, ClerkReply>,
    private readonly scheduler: Scheduler,
    prng: Prng,
  ) {
    assert(servers.length > 0, 'a clerk needs servers');
    this.clientId = 1 + prng.int(clientIdBound);
  }

  get(key: string): Promise<string> {
    return this.call({ op: 'get', key, value: '', client: 0, seq: 0, ack: 0 });
  }

  async put(key: string, value: string): Promise<void> {
    await this.write('put', key, value);
  }

  async append(key: string, value: string): Promise<void> {
    await this.write('append', key, value);
  }

  private write(op: 'put' | 'append', key: string, value: string): Promise<string> {
    this.seq++;
    return this.call({ op, key, value, client: this.clientId, seq: this.seq, ack: this.seq - 1 });
  }

  /** Tries the servers in turn, from the last one that answered, until one says OK. */
  private async call(args: ClerkArgs): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const server = this.servers[this.leader]!;
      this.rpcCount++;
      const reply = await this.scheduler.waitOn(this.network.call(this.id, server, args));
      if (reply !== undefined && reply.err === 'OK') return reply.value;
      if (reply !== undefined && reply.err === 'ErrFatal') throw new Error(`clerk ${this.id}: the server refused ${args.op}(${args.key}): ${reply.value}`);
      this.leader = (this.leader + 1) % this.servers.length;
      // A round of instant refusals (an election in progress) must not spin at one instant.
      if (attempt % this.servers.length === 0) await this.scheduler.sleep(clerkRoundBackoffMs);
    }
  }
}
