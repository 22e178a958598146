// The shard controller's replicated state machine: every configuration ever made, and the
// client sessions that make Join, Leave and Move exactly-once. Deterministic, free of I/O
// and total — apply() answers every input, a malformed one included, with a result and
// never an exception, so every member computes the same configurations from the same log.
//
// Semantics are the 6.824 shard controller's (shardctrler/server.go, lab 4A/5A):
//   - configuration 0 has no groups and every shard on gid 0;
//   - each successful Join, Leave or Move makes configuration latest + 1; old ones are kept;
//   - Join and Leave rebalance with the fewest moves (config.ts), Move places one shard and
//     a later Join or Leave may move it again;
//   - Query(num) returns configuration num, or the latest for -1 or a num beyond it.
//
// Sessions (as kv/sessions.ts, simplified because a shard controller clerk has one request
// outstanding at a time, so each session keeps only its last reply):
//
//   request seq vs the session         | what happens
//   -----------------------------------+--------------------------------------------------
//   unknown session, ack > 0           | session-expired (its earlier requests may have run)
//   seq < the session's last seq       | session-stale: a late duplicate, not applied
//   seq = the session's last seq       | the kept reply; the command does not run again
//   seq > the session's last seq       | run, keep the reply
//
// Beyond sessionsMax the least recently used session is evicted.

import { assert, unreachable } from '../stdx/assert.js';
import type { Index } from '../stdx/types.js';
import type { ReplicatedService } from '../runtime/replica.js';
import {
  ShardDecodeError,
  configFromArray,
  configToArray,
  count,
  decodeCommand,
  encodeResult,
  pack,
  unpackArray,
  type ShardErrorCode,
  type ShardOp,
  type ShardResult,
  type ShardSessionStamp,
} from './codec.js';
import { freezeConfig, type Gid, initialConfig, rebalance, rebalanceFromScratch, type ShardConfig, shardCount, sortedGids } from './config.js';
import { shardCtrlerDefaults, type ShardCtrlerLimits } from './limits.js';

/** The first field of a snapshot: bumped when the layout changes. */
const snapshotFormat = 1;

/**
 * Deliberately broken variants, for proving that the lab's checks catch them (STYLE.md 18;
 * test/shardctrler/planted.test.ts). Never set outside tests.
 */
export interface ShardCtrlerUnsafe {
  /**
   * Rebalance over the groups in the Map's insertion order instead of gid order. Members
   * that built the same configuration differently (one replayed the log, one restored a
   * snapshot, which lists groups by gid) then break ties differently and diverge.
   */
  readonly unsortedRebalance?: boolean;
  /** Rebalance from scratch (shard s to the (s mod g)-th group): balanced, but moves far more than needed. */
  readonly moveEverything?: boolean;
  /** Ignore the sessions: every command runs, so a retried Join runs again (and is refused as group-exists). */
  readonly noDuplicateDetection?: boolean;
}

interface Session {
  readonly client: number;
  /** The last request run (or refused) for this client. */
  seq: number;
  /** Its reply, returned again to a retry of the same seq. */
  reply: Uint8Array;
  /** Log time of the session's last command. */
  lastMs: number;
}

export class ShardCtrlerStateMachine implements ReplicatedService {
  readonly limits: ShardCtrlerLimits;
  /** Invariant: configs[i].num === i; configs[0] is the initial configuration; never empty. */
  private configs: ShardConfig[] = [initialConfig()];
  /** Least recently used first: Map keeps insertion order, and each use re-inserts. */
  private readonly sessions = new Map<number, Session>();
  /** Invariant: the index of the last command applied (or of the snapshot restored). */
  private applied = 0;
  /** The largest leader time stamp seen. Never decreases. */
  private clockMs = 0;

  constructor(
    limits: Partial<ShardCtrlerLimits> = {},
    private readonly unsafe: ShardCtrlerUnsafe = {},
  ) {
    this.limits = { ...shardCtrlerDefaults, ...limits };
    assert(this.limits.configsMax >= 1, 'configsMax >= 1');
    assert(this.limits.sessionsMax >= 1, 'sessionsMax >= 1');
    assert(this.limits.groupsMax >= 1, 'groupsMax >= 1');
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  get latest(): ShardConfig {
    return this.configs[this.configs.length - 1]!;
  }

  /** Configuration `num`; the latest for -1 or a num beyond it (the lab's Query). */
  query(num: number): ShardConfig {
    assert(Number.isSafeInteger(num) && num >= -1, 'query num is -1 or a configuration number');
    return num === -1 || num >= this.configs.length ? this.latest : this.configs[num]!;
  }

  apply(command: Uint8Array, index: Index): Uint8Array {
    assert(index > this.applied, `entries apply in log order: ${index} after ${this.applied}`);
    this.applied = index;
    let decoded: ReturnType<typeof decodeCommand>;
    try {
      decoded = decodeCommand(command);
    } catch (error) {
      if (!(error instanceof ShardDecodeError)) throw error;
      return encodeResult(failure('malformed', error.message));
    }
    this.clockMs = Math.max(this.clockMs, decoded.timeMs);
    const stamp = decoded.session;
    if (stamp === undefined || this.unsafe.noDuplicateDetection === true) return encodeResult(this.execute(decoded.op));
    const session = this.session(stamp);
    if (session instanceof Uint8Array) return session;
    const reply = encodeResult(this.execute(decoded.op));
    session.seq = stamp.seq;
    session.reply = reply;
    return reply;
  }

  /** The session a request runs in, or the reply it gets without running (a retry, or refused). */
  private session(stamp: ShardSessionStamp): Session | Uint8Array {
    let session = this.sessions.get(stamp.client);
    if (session === undefined) {
      if (stamp.ack > 0) return encodeResult(failure('session-expired', `session ${stamp.client} is unknown (evicted); start a new session`));
      while (this.sessions.size >= this.limits.sessionsMax) this.sessions.delete(this.sessions.keys().next().value as number);
      session = { client: stamp.client, seq: 0, reply: new Uint8Array(), lastMs: this.clockMs };
    }
    // Re-insert: most recently used last.
    this.sessions.delete(stamp.client);
    this.sessions.set(stamp.client, session);
    session.lastMs = this.clockMs;
    if (stamp.seq < session.seq) return encodeResult(failure('session-stale', `request ${stamp.seq} of session ${stamp.client} is older than its last, ${session.seq}`));
    if (stamp.seq === session.seq) return session.reply;
    return session;
  }

  private execute(op: ShardOp): ShardResult {
    if (this.configs.length >= this.limits.configsMax) {
      return failure('configs-full', `${this.configs.length} configurations exist (configsMax); every one is kept, so no more can be made`);
    }
    switch (op.kind) {
      case 'join':
        return this.join(op.groups);
      case 'leave':
        return this.leave(op.gids);
      case 'move':
        return this.move(op.shard, op.gid);
      default:
        return unreachable(op, 'shard op');
    }
  }

  private join(joining: ReadonlyArray<readonly [Gid, readonly string[]]>): ShardResult {
    const last = this.latest;
    if (joining.length === 0) return failure('gid-invalid', 'a Join names at least one group');
    for (const [gid, servers] of joining) {
      if (gid === 0) return failure('gid-invalid', 'gid 0 is reserved (the shards of no group); groups are numbered from 1');
      if (last.groups.has(gid)) return failure('group-exists', `group ${gid} has already joined; Leave it first to change its servers`);
      const refusal = this.checkServers(gid, servers);
      if (refusal !== undefined) return refusal;
    }
    if (last.groups.size + joining.length > this.limits.groupsMax) {
      return failure('groups-full', `${last.groups.size} + ${joining.length} groups would pass groupsMax (${this.limits.groupsMax})`);
    }
    const groups = new Map(last.groups);
    for (const [gid, servers] of joining) groups.set(gid, [...servers]);
    return this.append(this.rebalanced(last.shards, groups), groups);
  }

  private leave(gids: readonly Gid[]): ShardResult {
    const last = this.latest;
    if (gids.length === 0) return failure('gid-invalid', 'a Leave names at least one group');
    for (const gid of gids) {
      if (!last.groups.has(gid)) return failure('group-unknown', `group ${gid} is not in configuration ${last.num}`);
    }
    const groups = new Map(last.groups);
    for (const gid of gids) groups.delete(gid);
    return this.append(this.rebalanced(last.shards, groups), groups);
  }

  private move(shard: number, gid: Gid): ShardResult {
    const last = this.latest;
    if (shard < 0 || shard >= shardCount) return failure('shard-invalid', `shard ${shard} does not exist; shards are 0 to ${shardCount - 1}`);
    if (!last.groups.has(gid)) return failure('group-unknown', `group ${gid} is not in configuration ${last.num}; Join it before moving a shard to it`);
    const shards = [...last.shards];
    shards[shard] = gid;
    return this.append(shards, new Map(last.groups));
  }

  private rebalanced(shards: readonly Gid[], groups: ReadonlyMap<Gid, unknown>): Gid[] {
    // The planted bug: the Map's insertion order, which depends on how this member built it.
    const gids = this.unsafe.unsortedRebalance === true ? [...groups.keys()] : sortedGids(groups);
    return this.unsafe.moveEverything === true ? rebalanceFromScratch(gids) : rebalance(shards, gids);
  }

  private append(shards: Gid[], groups: Map<Gid, readonly string[]>): ShardResult {
    const num = this.configs.length;
    this.configs.push(freezeConfig({ num, shards, groups }));
    return { kind: 'done', num };
  }

  private checkServers(gid: Gid, servers: readonly string[]): ShardResult | undefined {
    if (servers.length === 0) return failure('servers-invalid', `group ${gid} lists no servers`);
    if (servers.length > this.limits.serversPerGroupMax) {
      return failure('servers-invalid', `group ${gid} lists ${servers.length} servers; the limit (serversPerGroupMax) is ${this.limits.serversPerGroupMax}`);
    }
    for (const server of servers) {
      const length = Buffer.byteLength(server, 'utf8');
      if (length === 0 || length > this.limits.serverNameBytesMax) {
        return failure('servers-invalid', `group ${gid} has a server name of ${length} bytes; names have 1 to ${this.limits.serverNameBytesMax} (serverNameBytesMax)`);
      }
    }
    return undefined;
  }

  // ---- Snapshots ----------------------------------------------------------------------------
  //
  //   [format, applied, clockMs, [config, ...], [client, seq, lastMs, reply, ...]]
  //
  // Configurations in order (each with its groups by gid); sessions least recently used
  // first, so that eviction after a restore picks the same session as on a member that never
  // restored.

  snapshot(): Uint8Array {
    const sessions: unknown[] = [];
    for (const session of this.sessions.values()) sessions.push(session.client, session.seq, session.lastMs, session.reply);
    return pack([snapshotFormat, this.applied, this.clockMs, this.configs.map(configToArray), sessions]);
  }

  /** Replaces the whole state with a snapshot taken at `index`. Throws on a corrupt snapshot. */
  restore(data: Uint8Array, index: Index): void {
    const raw = unpackArray(data, 'snapshot');
    assert(raw[0] === snapshotFormat, `snapshot format ${String(raw[0])} is not ${snapshotFormat}`);
    const applied = count(raw[1], 'applied');
    // As in kv: no-ops and configuration entries never reach the service, so the snapshot's
    // own index may trail the log's, never pass it.
    assert(applied <= index, `the snapshot holds index ${applied}, beyond the log's ${index}`);
    const configs = raw[3];
    const sessions = raw[4];
    assert(Array.isArray(configs) && configs.length >= 1, 'a snapshot holds at least configuration 0');
    assert(Array.isArray(sessions) && sessions.length % 4 === 0, 'snapshot sessions are quadruples');
    const restored = configs.map(configFromArray);
    for (const [i, config] of restored.entries()) assert(config.num === i, `configuration ${i} is numbered ${config.num}`);
    this.configs = restored;
    this.sessions.clear();
    for (let i = 0; i < sessions.length; i += 4) {
      const reply = sessions[i + 3];
      assert(reply instanceof Uint8Array, 'a session reply is bytes');
      const client = count(sessions[i], 'client');
      this.sessions.set(client, { client, seq: count(sessions[i + 1], 'seq'), lastMs: count(sessions[i + 2], 'lastMs'), reply: Uint8Array.from(reply) });
    }
    this.applied = index;
    this.clockMs = count(raw[2], 'clock');
  }
}

function failure(code: ShardErrorCode, message: string): ShardResult {
  return { kind: 'error', code, message };
}
