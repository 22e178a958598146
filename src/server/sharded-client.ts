// ShardedClient (`flotilla/client`): the client of the sharded key/value service
// (shardkv/) in real processes, as the lab's clerk (testbed/shardkv-clerk.ts) is on the
// simulator. A key's shard is key2shard(key); the cached configuration names the group
// that serves it and that group's servers ("host:port/gid", shard-layout.ts); the client
// tries them (from the one that answered last), and on ErrWrongGroup — or when no server
// of the group answers — fetches the latest configuration through any member and tries
// again, until callDeadlineMs.
//
// Put and Append carry a session (a random client id and a sequence number), which
// travels with a shard when it moves, so a write retried at the new owner after its first
// attempt ran at the old one does not run twice. The service keeps one sequence number
// per client (a lab clerk has one request outstanding), so this client sends one write at
// a time: writes queue behind each other. Gets go through the group's log (linearizable)
// and need no session.
//
//   outcome                                     | then
//   --------------------------------------------+---------------------------------------
//   OK                                          | done
//   ErrWrongGroup                               | refresh the configuration, retry
//   ErrWrongLeader, no answer, ErrRetry         | the group's next server (a write may have applied)
//   ErrFatal (the group refused the request)    | ClientError('invalid')
//   the deadline passed                         | OutcomeUnknownError if a write attempt may
//                                               |   have applied, else ClientError('unavailable')

import { assert } from '../stdx/assert.js';
import type { Clock } from '../io/clock.js';
import { realClock } from '../platform/clock.js';
import { randomClientId } from '../platform/server-random.js';
import type { ClientTls } from '../platform/tls.js';
import { type Gid, initialConfig, type ShardConfig, type ShardOp } from '../shardctrler/index.js';
import { key2shard, type ShardKvRequest } from '../shardkv/index.js';
import { ClientError, OutcomeUnknownError } from './client.js';
import type { Address } from './config.js';
import { parseShardServerName } from './shard-layout.js';
import { type CtrlOp, type CtrlReply, decodeCtrlReply, decodeKvReply, encodeShardRequest, ShardDecodeError } from './shard-protocol.js';
import { ShardRpc } from './shard-rpc.js';

export interface ShardedClientOptions {
  /** Client addresses of (some of) the members: where configurations are fetched. */
  readonly endpoints: readonly Address[];
  readonly clock?: Clock;
  readonly clientId?: number;
  /** How long one call may take in all, across retries; default 15 s. */
  readonly callDeadlineMs?: number;
  /** How long one attempt waits for its reply; default 3 s. */
  readonly requestTimeoutMs?: number;
  readonly tls?: ClientTls | undefined;
}

export const shardedClientDefaults = {
  callDeadlineMs: 15_000,
  requestTimeoutMs: 3_000,
  connectTimeoutMs: 1_000,
  /** The pause before refreshing the configuration after a round that found no server (the lab's 100 ms). */
  retryDelayMs: 100,
} as const;

/** The controller refused a join, leave or move (a gid that already joined, ...): nothing changed. */
export class ShardCtrlError extends Error {
  override name = 'ShardCtrlError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class ShardedClient {
  readonly clientId: number;
  private readonly clock: Clock;
  private readonly rpc: ShardRpc;
  private readonly callDeadlineMs: number;
  private config: ShardConfig = initialConfig();
  /** Per group, the index (into its server list) of the server that answered last. */
  private readonly leaders = new Map<Gid, number>();
  private seq = 0;
  private ctrlSeq = 0;
  /** The write in flight (writes go one at a time: see the header). */
  private writes: Promise<unknown> = Promise.resolve();
  private rotation = 0;

  constructor(private readonly options: ShardedClientOptions) {
    assert(options.endpoints.length > 0, 'at least one endpoint');
    this.clock = options.clock ?? realClock;
    this.clientId = options.clientId ?? randomClientId();
    this.callDeadlineMs = options.callDeadlineMs ?? shardedClientDefaults.callDeadlineMs;
    this.rpc = new ShardRpc({
      clock: this.clock,
      requestTimeoutMs: options.requestTimeoutMs ?? shardedClientDefaults.requestTimeoutMs,
      connectTimeoutMs: shardedClientDefaults.connectTimeoutMs,
      tls: options.tls,
    });
  }

  /** The configuration this client routes by (configuration 0 until the first fetch). */
  get configuration(): ShardConfig {
    return this.config;
  }

  /** The key's value; '' if it was never written (the lab's Get). */
  get(key: string): Promise<string> {
    return this.call({ op: 'get', key, value: '', client: 0, seq: 0 });
  }

  put(key: string, value: string): Promise<void> {
    return this.write('put', key, value);
  }

  append(key: string, value: string): Promise<void> {
    return this.write('append', key, value);
  }

  /** Configuration `num` (-1: the latest), from the controller through any member. */
  async query(num = -1): Promise<ShardConfig> {
    return this.queryBy(num, this.clock.nowMs() + this.callDeadlineMs);
  }

  private async queryBy(num: number, deadline: number): Promise<ShardConfig> {
    const reply = await this.ctrl({ kind: 'query', num }, { client: 0, seq: 0, ack: 0 }, deadline);
    assert(reply.kind === 'config', 'a query answers with a configuration');
    if (num === -1 && reply.config.num > this.config.num) this.config = reply.config;
    return reply.config;
  }

  /**
   * A join, leave or move, exactly once (the controller's sessions); the number of the
   * configuration it made. A join whose server list is empty takes the group's servers from
   * the members' layout (--shards). Throws ShardCtrlError when the controller refuses it.
   */
  async change(op: ShardOp): Promise<number> {
    this.ctrlSeq++;
    const reply = await this.ctrl(op, { client: this.clientId, seq: this.ctrlSeq, ack: this.ctrlSeq - 1 }, this.clock.nowMs() + this.callDeadlineMs);
    if (reply.kind === 'refused') throw new ShardCtrlError(reply.code, `the controller refused the ${op.kind}: ${reply.message} (${reply.code})`);
    assert(reply.kind === 'done', 'a command answers done or refused');
    return reply.num;
  }

  close(): void {
    this.rpc.close();
  }

  private write(op: 'put' | 'append', key: string, value: string): Promise<void> {
    const run = this.writes.then(async () => {
      this.seq++;
      await this.call({ op, key, value, client: this.clientId, seq: this.seq });
    });
    this.writes = run.catch(() => {});
    return run;
  }

  private async call(request: ShardKvRequest): Promise<string> {
    const shard = key2shard(request.key);
    const deadline = this.clock.nowMs() + this.callDeadlineMs;
    let maybeApplied = false;
    if (this.config.num === 0) await this.refresh(deadline);
    for (;;) {
      const gid = this.config.shards[shard]!;
      const servers = this.config.groups.get(gid) ?? [];
      const first = this.leaders.get(gid) ?? 0;
      for (let k = 0; k < servers.length && this.clock.nowMs() < deadline; k++) {
        const si = (first + k) % servers.length;
        const name = parseShardServerName(servers[si]!);
        if (name === undefined) throw new ClientError('invalid', `the configuration names a server "${servers[si]}" that is not host:port/gid`);
        const bytes = this.refused(await this.rpc.callOrRefusal({ host: name.host, port: name.port }, encodeShardRequest({ kind: 'kv', gid: name.gid, request })));
        const reply = bytes === undefined ? undefined : decodeOrUndefined(() => decodeKvReply(bytes));
        if (reply === undefined || reply.err === 'ErrRetry') {
          maybeApplied ||= request.op !== 'get';
          continue;
        }
        if (reply.err === 'OK') {
          this.leaders.set(gid, si);
          return reply.value;
        }
        if (reply.err === 'ErrFatal') throw new ClientError('invalid', `group ${gid} refused the ${request.op}: ${reply.value}`);
        if (reply.err === 'ErrWrongGroup') break;
      }
      if (this.clock.nowMs() >= deadline) {
        const what = `${request.op} ${JSON.stringify(request.key)} (shard ${shard})`;
        if (maybeApplied) throw new OutcomeUnknownError(`${what}: no answer within ${this.callDeadlineMs} ms; it may have applied`);
        throw new ClientError('unavailable', `${what}: no group served it within ${this.callDeadlineMs} ms`);
      }
      await this.sleep(shardedClientDefaults.retryDelayMs);
      await this.refresh(deadline);
    }
  }

  /** Fetches the latest configuration; keeps the cached one if no member answers. */
  private async refresh(deadline: number): Promise<void> {
    try {
      await this.queryBy(-1, deadline);
    } catch (error) {
      if (!(error instanceof ClientError) || error.code === 'invalid' || this.clock.nowMs() >= deadline) throw error;
    }
  }

  /** A controller request through the endpoints in turn, until an answer other than 'failed' or the deadline. */
  private async ctrl(op: CtrlOp, session: { client: number; seq: number; ack: number }, deadline: number): Promise<CtrlReply> {
    const endpoints = this.options.endpoints;
    let last = 'no member answered';
    for (;;) {
      for (let k = 0; k < endpoints.length; k++) {
        const endpoint = endpoints[this.rotation % endpoints.length]!;
        const bytes = this.refused(await this.rpc.callOrRefusal(endpoint, encodeShardRequest({ kind: 'ctrl', op, session, forwarded: false })));
        const reply = bytes === undefined ? undefined : decodeOrUndefined(() => decodeCtrlReply(bytes));
        if (reply !== undefined && reply.kind !== 'failed') return reply;
        if (reply !== undefined) last = `${reply.code}: ${reply.message}`;
        this.rotation++;
      }
      if (this.clock.nowMs() >= deadline) {
        const error = `the shard controller did not answer in time (${last})`;
        throw op.kind === 'query' ? new ClientError('unavailable', error) : new OutcomeUnknownError(`${error}; the ${op.kind} may have applied`);
      }
      await this.sleep(shardedClientDefaults.retryDelayMs);
    }
  }

  /** A member refused the request as invalid (it hosts no sharded service, say): not applied, and retrying will not help. */
  private refused(outcome: Uint8Array | { invalid: string } | undefined): Uint8Array | undefined {
    if (outcome === undefined || outcome instanceof Uint8Array) return outcome;
    throw new ClientError('invalid', outcome.invalid);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.setTimer(ms, resolve));
  }
}

/** A reply that does not decode counts as no reply (the member is not a Flotilla member of this version). */
function decodeOrUndefined<T>(decode: () => T): T | undefined {
  try {
    return decode();
  } catch (error) {
    if (error instanceof ShardDecodeError) return undefined;
    throw error;
  }
}
