// The sharded service's groups on one member (`--shards`, shard-layout.ts): the shard
// controller's Raft group (shardctrler/) and the sharded key/value replica groups
// (shardkv/) that the layout puts on this member, each a Raft group of its own with its
// own write-ahead log (`<data>/group-<group id>`) and snapshots, recovered before any port
// opens, as the key/value and ZooKeeper groups are.
//
// How the groups are reached (docs/ARCHITECTURE.md, "how groups are hosted, addressed and
// moved"):
//   - Raft messages: the member's one peer transport, routed by group id (the controller
//     SHARD_CTRL_RAFT_GROUP_ID, a key/value group its gid).
//   - Everything else — clients, `flotilla shard`, a group's controller polls, shard pulls
//     and deletions between groups — is a shard request (shard-protocol.ts) on the members'
//     client ports, sent with ShardRpc. A server of a key/value group is named
//     "host:port/gid" (its member's client address and its gid) in the controller's
//     configurations, so the configuration alone says where every shard lives.
//   - A controller request that reaches a member which does not lead the controller group
//     is forwarded, once, to the leader's client port (or, on a member outside the
//     controller group, to the controller's members in turn).

import type { Logger } from 'pino';
import { assert } from '../stdx/assert.js';
import { Prng } from '../stdx/prng.js';
import type { NodeId } from '../stdx/types.js';
import type { Clock } from '../io/clock.js';
import { defaultTiming } from '../raft/config.js';
import type { Message } from '../raft/messages.js';
import type { RaftNode } from '../runtime/node.js';
import { GroupTicker } from '../runtime/ticker.js';
import { describeRecoveryEvent, REPAIR_ADVICE, StorageError } from '../storage/errors.js';
import { SharedWal } from '../storage/shared-wal.js';
import type { SegmentWriterStats } from '../storage/segment-writer.js';
import type { Disk } from '../io/disk.js';
import { FsDisk } from '../platform/fs-disk.js';
import type { PeerTransport } from '../platform/peer-transport.js';
import { randomSeed } from '../platform/server-random.js';
import type { ClientTls } from '../platform/tls.js';
import { type ShardConfig, ShardCtrlerService, shardCount } from '../shardctrler/index.js';
import { type PeerArgs, type PeerReply, type ShardKvReply, ShardKvService } from '../shardkv/index.js';
import { type Address, formatAddress, type ServerConfig } from './config.js';
import type { PeerMessage } from './peer-codec.js';
import { parseShardServerName, SHARD_CTRL_RAFT_GROUP_ID, type ShardLayout, shardServerName } from './shard-layout.js';
import {
  type CtrlOp,
  type CtrlReply,
  type CtrlSession,
  decodePeerReply,
  decodeCtrlReply,
  decodeShardRequest,
  encodeCtrlReply,
  encodeKvReply,
  encodePeerReply,
  encodeShardRequest,
} from './shard-protocol.js';
import { ShardRpc } from './shard-rpc.js';
import { ServerStorage } from './storage.js';

export const shardHostLimits = {
  /** How long a member waits for another member's answer (a forwarded controller request, a pull). */
  rpcTimeoutMs: 3000,
  rpcConnectTimeoutMs: 1000,
  /** How long the latest configuration fetched from the controller answers every group's poll. */
  latestReuseMs: 50,
  configsCachedMax: 1000,
} as const;

const noSession: CtrlSession = { client: 0, seq: 0, ack: 0 };

export interface ShardHostOptions {
  readonly config: ServerConfig;
  readonly layout: ShardLayout;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly transport: PeerTransport<PeerMessage>;
  /** A member's client address, once known (MemberInfo); this member's own included. */
  readonly clientAddressOf: (id: NodeId) => Address | undefined;
  readonly onFatal: (error: unknown) => void;
  readonly tls: ClientTls | undefined;
  /** Every hosted group's recovered storage on the shared log (ShardHost.recover). */
  readonly storages: ShardStorages;
}

interface HostedGroup {
  readonly node: () => RaftNode;
}

export class ShardHost {
  private readonly rpc: ShardRpc;
  /** Every hosted group ticks on this one timer (their heartbeats to a peer then share a frame). */
  private readonly ticker: GroupTicker;
  /** Configurations seen, by number: they never change once made, so any group may reuse them. */
  private readonly configs = new Map<number, ShardConfig>();
  /** The latest configuration as last asked of the controller, shared by every group's poll. */
  private latest: { config: ShardConfig; atMs: number } | undefined = undefined;
  private latestQuery: Promise<ShardConfig | undefined> | undefined = undefined;
  private ctrler: ShardCtrlerService | undefined = undefined;
  private readonly kvGroups = new Map<number, ShardKvService>();
  /** Raft group id → the group, for routing peer messages and shutting down. */
  private readonly hosted = new Map<number, HostedGroup>();

  private constructor(private readonly options: ShardHostOptions) {
    this.rpc = new ShardRpc({ clock: options.clock, requestTimeoutMs: shardHostLimits.rpcTimeoutMs, connectTimeoutMs: shardHostLimits.rpcConnectTimeoutMs, tls: options.tls });
    this.ticker = new GroupTicker(options.clock, options.config.tickMs);
  }

  /**
   * Recovers every group the layout puts on this member from the member's shared log
   * (`<data>/shards/wal`, one fsync per flush for all groups) and each group's snapshot
   * files (`<data>/shards/group-<id>/snap`), before any port opens (a damaged log stops the
   * member there: StorageError). On failure, closes what it opened.
   */
  static async recover(config: ServerConfig, layout: ShardLayout, clock: Clock, logger: Logger, onSaved: (durationMs: number) => void): Promise<ShardStorages> {
    const ids = [...(layout.ctrl.includes(config.id) ? [SHARD_CTRL_RAFT_GROUP_ID] : []), ...[...layout.groups].filter(([, members]) => members.includes(config.id)).map(([gid]) => gid)];
    const disk = new FsDisk(config.dataDir);
    await refuseOldLayout(disk, ids);
    const { wal, recovered } = await SharedWal.open(disk, `${SHARDS_DIR}/wal`);
    for (const event of recovered.events) logger.warn({ event: event.kind, file: event.file }, describeRecoveryEvent(event));
    const storages = new ShardStorages(wal);
    try {
      for (const id of ids) {
        const { storage, events } = await ServerStorage.recoverShared(disk, wal, id, recovered.groups.get(id), `${SHARDS_DIR}/group-${id}/snap`, clock, onSaved);
        for (const event of events) logger.warn({ event: event.kind, file: event.file, group: id }, describeRecoveryEvent(event));
        storages.groups.set(id, storage);
      }
    } catch (error) {
      await storages.close();
      throw error;
    }
    return storages;
  }

  /** Starts every hosted group on its recovered log. On failure, stops what it started, closes every log and throws. */
  static async open(options: ShardHostOptions): Promise<ShardHost> {
    const host = new ShardHost(options);
    try {
      await host.openGroups();
    } catch (error) {
      await host.close();
      throw error;
    }
    return host;
  }

  /** The Raft group ids hosted here (peer messages for them go to receive()). */
  hosts(raftGroupId: number): boolean {
    return this.hosted.has(raftGroupId);
  }

  receive(raftGroupId: number, message: Message): void {
    this.hosted.get(raftGroupId)?.node().receive(message);
  }

  /** The connection to `id` closed: each group's follower of `id` may campaign early (as server.ts does). */
  peerClosed(id: NodeId): void {
    for (const group of this.hosted.values()) {
      const node = group.node();
      if (node.isStopped()) continue;
      const status = node.status();
      if (status.role === 'follower' && status.leader === id) node.peerUnreachable(id);
    }
  }

  /** A shard request's reply (shard-protocol.ts). Throws ShardDecodeError for a malformed request. */
  async handle(body: Uint8Array): Promise<Uint8Array> {
    const request = decodeShardRequest(body);
    switch (request.kind) {
      case 'ctrl':
        return encodeCtrlReply(await this.ctrl(request.op, request.session, request.forwarded));
      case 'kv': {
        const group = this.kvGroups.get(request.gid);
        // Not hosted here (a stale configuration, or a wrong name): the clerk tries the group's next server.
        const reply: ShardKvReply = group === undefined ? { err: 'ErrWrongLeader', value: '' } : await group.handle(request.request);
        return encodeKvReply(reply);
      }
      case 'peer': {
        const group = this.kvGroups.get(request.gid);
        const reply: PeerReply = group === undefined ? { err: 'ErrWrongLeader', shards: [], sessions: [] } : await group.handlePeer(request.args);
        return encodePeerReply(reply);
      }
      default:
        return request satisfies never;
    }
  }

  /** A controller request: answered here, or forwarded once to the controller's leader. */
  async ctrl(op: CtrlOp, session: CtrlSession, forwarded: boolean): Promise<CtrlReply> {
    const expanded = op.kind === 'join' ? this.expandJoin(op.groups) : op;
    if ('refused' in expanded) return expanded.refused;
    const ctrler = this.ctrler;
    if (ctrler !== undefined) {
      const reply = await this.askCtrler(ctrler, expanded, session);
      if (forwarded || reply.kind !== 'failed' || reply.code !== 'not-leader' || reply.leader === 0 || reply.leader === this.options.config.id) return reply;
      return (await this.forward(reply.leader as NodeId, expanded, session)) ?? reply;
    }
    if (forwarded) return { kind: 'failed', code: 'not-leader', message: `member ${this.options.config.id} does not host the controller`, leader: 0 };
    let last: CtrlReply = { kind: 'failed', code: 'unavailable', message: 'no member of the controller group answered', leader: 0 };
    for (const id of this.options.layout.ctrl) {
      const reply = await this.forward(id, expanded, session);
      if (reply !== undefined && reply.kind !== 'failed') return reply;
      if (reply !== undefined) last = reply;
    }
    return last;
  }

  /** For GET /status: each hosted group's Raft role and leader, and what it holds. */
  describe(): object {
    const ctrler = this.ctrler;
    const role = (node: RaftNode) => (node.isStopped() ? { role: 'stopped' } : (({ role: r, leader, term }) => ({ role: r, leader, term }))(node.status()));
    return {
      ctrl: ctrler === undefined ? null : { ...role(ctrler.replica.raft), latest: ctrler.machine.latest.num },
      groups: [...this.kvGroups].map(([gid, group]) => {
        const shards: Record<string, number[]> = {};
        for (let shard = 0; shard < shardCount; shard++) {
          const state = group.machine.shardState(shard);
          if (state !== undefined) shards[state] = [...(shards[state] ?? []), shard];
        }
        return { gid, ...role(group.replica.raft), configNum: group.machine.config.num, shards, keys: group.machine.keyCount };
      }),
      rpc: this.rpc.stats(),
    };
  }

  /** Stops every group's node and loops (new requests are refused from here on). */
  stop(): void {
    this.ctrler?.stop();
    for (const group of this.kvGroups.values()) group.stop();
    this.rpc.close();
  }

  /** Waits for each group's fsync in flight, then closes the shared log. */
  async close(): Promise<void> {
    this.stop();
    await this.options.storages.close();
  }

  /** The shared log's totals (fsyncs = flushCount), for /metrics and the benchmark. */
  walStats(): SegmentWriterStats {
    return this.options.storages.wal.stats();
  }

  private async openGroups(): Promise<void> {
    const { config, layout } = this.options;
    if (config.shardUnsafe !== undefined) this.options.logger.warn({ shardUnsafe: config.shardUnsafe }, 'UNSAFE: the sharded key/value groups are deliberately broken (a test-only setting)');
    if (layout.ctrl.includes(config.id)) {
      const storage = this.storageOf(SHARD_CTRL_RAFT_GROUP_ID);
      this.hosted.set(SHARD_CTRL_RAFT_GROUP_ID, { node: () => this.ctrler!.replica.raft });
      this.ctrler = await ShardCtrlerService.open({ ...this.groupOptions(SHARD_CTRL_RAFT_GROUP_ID, layout.ctrl, storage), requestTimeoutMs: config.requestTimeoutMs });
      this.options.logger.info({ group: 'shardctrler', latest: this.ctrler.machine.latest.num }, 'shard controller recovered');
    }
    for (const [gid, members] of layout.groups) {
      if (!members.includes(config.id)) continue;
      const storage = this.storageOf(gid);
      this.hosted.set(gid, { node: () => this.kvGroups.get(gid)!.replica.raft });
      const group = await ShardKvService.open({
        ...this.groupOptions(gid, members, storage),
        gid,
        requestTimeoutMs: config.requestTimeoutMs,
        ...(config.shardUnsafe === 'serve-before-arrival' ? { unsafe: { serveBeforeArrival: true } } : {}),
        queryConfig: (num) => this.queryConfig(num),
        callPeer: (server, args) => this.callPeer(server, args),
      });
      this.kvGroups.set(gid, group);
      this.options.logger.info({ gid, configNum: group.machine.config.num, keys: group.machine.keyCount }, 'sharded key/value group recovered');
    }
  }

  private storageOf(raftGroupId: number): ServerStorage {
    const storage = this.options.storages.groups.get(raftGroupId);
    assert(storage !== undefined, `group ${raftGroupId}'s log was recovered (ShardHost.recover)`);
    return storage;
  }

  private groupOptions(raftGroupId: number, voters: readonly NodeId[], storage: ServerStorage) {
    const { config, clock, transport, onFatal } = this.options;
    return {
      config: { id: config.id, voters, ...defaultTiming, noopOnElection: true },
      prng: new Prng(randomSeed()),
      clock,
      tickMs: config.tickMs,
      ticker: this.ticker,
      transport: transport.group(raftGroupId),
      storage,
      onFatal,
      raftStateBytesMax: config.raftStateBytesMax,
    };
  }

  private async askCtrler(ctrler: ShardCtrlerService, op: CtrlOp, session: CtrlSession): Promise<CtrlReply> {
    const response = await ctrler.handle(op.kind === 'query' ? { kind: 'query', num: op.num } : { kind: 'command', op, ...(session.client === 0 ? {} : { session }) });
    if (!response.ok) return { kind: 'failed', code: response.code, message: response.message, leader: response.leader };
    if (response.kind === 'query') return { kind: 'config', config: response.config };
    const result = response.result;
    return result.kind === 'done' ? { kind: 'done', num: result.num } : { kind: 'refused', code: result.code, message: result.message };
  }

  /** The request at member `id`'s client port; undefined if it did not answer. */
  private async forward(id: NodeId, op: CtrlOp, session: CtrlSession): Promise<CtrlReply | undefined> {
    const address = this.options.clientAddressOf(id);
    if (address === undefined) return undefined;
    const reply = await this.rpc.call(address, encodeShardRequest({ kind: 'ctrl', op, session, forwarded: true }));
    if (reply === undefined) return undefined;
    try {
      return decodeCtrlReply(reply);
    } catch {
      return undefined;
    }
  }

  /** A join with an empty server list names the group's servers from the layout. */
  private expandJoin(groups: ReadonlyArray<readonly [number, readonly string[]]>): CtrlOp | { refused: CtrlReply } {
    const expanded: Array<[number, string[]]> = [];
    for (const [gid, servers] of groups) {
      if (servers.length > 0) {
        expanded.push([gid, [...servers]]);
        continue;
      }
      const members = this.options.layout.groups.get(gid);
      if (members === undefined) return { refused: { kind: 'refused', code: 'gid-unknown', message: `group ${gid} is not in the layout (--shards); name its servers (host:port/gid)` } };
      const names: string[] = [];
      for (const id of members) {
        const address = this.options.clientAddressOf(id);
        if (address === undefined) return { refused: { kind: 'refused', code: 'address-unknown', message: `member ${id}'s client address is not known yet; retry in a second` } };
        names.push(shardServerName(formatAddress(address), gid));
      }
      expanded.push([gid, names]);
    }
    return { kind: 'join', groups: expanded };
  }

  /**
   * A group's Query(num). Every group's leader polls for the configuration after its own
   * every pollMs; with a hundred groups on a member that would be a thousand controller
   * reads a second. Instead the member asks the controller for the latest configuration at
   * most once per latestReuseMs (one query in flight, shared), and answers from the
   * configurations it has seen, which never change once made. A poll learns of a new
   * configuration at most latestReuseMs later than it would have.
   */
  private async queryConfig(num: number): Promise<ShardConfig | undefined> {
    const known = this.configs.get(num);
    if (known !== undefined) return known;
    const latest = await this.latestConfig();
    if (latest === undefined) return undefined;
    if (num < 0 || num >= latest.num) return latest;
    const reply = await this.ctrl({ kind: 'query', num }, noSession, false);
    if (reply.kind !== 'config') return undefined;
    this.remember(reply.config);
    return reply.config;
  }

  private latestConfig(): Promise<ShardConfig | undefined> {
    const now = this.options.clock.nowMs();
    if (this.latest !== undefined && now - this.latest.atMs < shardHostLimits.latestReuseMs) return Promise.resolve(this.latest.config);
    this.latestQuery ??= this.ctrl({ kind: 'query', num: -1 }, noSession, false).then(
      (reply) => {
        this.latestQuery = undefined;
        if (reply.kind !== 'config') return undefined;
        this.remember(reply.config);
        if (this.latest === undefined || reply.config.num >= this.latest.config.num) this.latest = { config: reply.config, atMs: this.options.clock.nowMs() };
        return reply.config;
      },
      () => {
        this.latestQuery = undefined;
        return undefined;
      },
    );
    return this.latestQuery;
  }

  private remember(config: ShardConfig): void {
    this.configs.set(config.num, config);
    // Bounded: the oldest go first (a group asks for old ones only while catching up).
    if (this.configs.size > shardHostLimits.configsCachedMax) this.configs.delete(Math.min(...this.configs.keys()));
  }

  private async callPeer(server: string, args: PeerArgs): Promise<PeerReply | undefined> {
    const name = parseShardServerName(server);
    if (name === undefined) return undefined;
    const reply = await this.rpc.call({ host: name.host, port: name.port }, encodeShardRequest({ kind: 'peer', gid: name.gid, args }));
    if (reply === undefined) return undefined;
    try {
      return decodePeerReply(reply);
    } catch {
      return undefined;
    }
  }
}

/** Where the sharded service's shared log and the groups' snapshots live under the data directory. */
export const SHARDS_DIR = 'shards';

/** The shared log and every hosted group's storage on it; closed together. */
export class ShardStorages {
  readonly groups = new Map<number, ServerStorage>();

  constructor(readonly wal: SharedWal) {}

  /** Waits for each group's save in flight, then closes the shared log. */
  async close(): Promise<void> {
    for (const storage of this.groups.values()) await storage.close();
    await this.wal.close();
  }
}

/** Sharded groups once had a log each (`<data>/group-<id>`); starting without it would lose their data silently. */
async function refuseOldLayout(disk: Disk, ids: readonly number[]): Promise<void> {
  const names = new Set(await disk.list('').catch(() => [] as string[]));
  for (const id of ids) {
    // Hosted ids are the controller's (9) and gids from 100: never the key/value or ZooKeeper group's dir.
    if (!names.has(`group-${id}`)) continue;
    throw new StorageError(
      'missing-segment',
      `group-${id}`,
      undefined,
      `group-${id} holds sharded group ${id}'s log in the layout of an older version; this version keeps every sharded group in ${SHARDS_DIR}/. Move the member's data aside and let it catch up from its group. ${REPAIR_ADVICE}`,
    );
  }
}
