// The coordination service (src/zk/) on the simulator, as kv-cluster.ts runs the KV
// service: n members, each a ZkService on virtual time with Persister-like in-memory
// storage; Raft messages, forwarded commands (follower → leader) and session-touch reports
// all travel on one SimNetwork, so partitions, loss, delay and duplication hit all three.
// Clients are simulated in-process: each owns a session on the member it is attached to,
// numbers its writes per connection, pings, and moves to another member (attach, new owner,
// seq from 1) when a request fails or its member has lost the leader — what a ZooKeeper
// client does when the front-end closes its connection.
//
// runZkSimulation(seed) draws the settings, runs a fault phase (clients work while a nemesis
// crashes, restarts and kills members, partitions them and the network loses, delays and
// duplicates messages), then a healed phase that must make progress and converge. Checkers:
//
//   replica agreement  every member that applies a zxid gets the same command and result;
//                      members at the same Raft index report the same lastZxid; at the
//                      end every member holds the same tree (Stat included), sessions
//                      and lastZxid
//   linearizability    one znode as a versioned register — setData(v, -1), setData(v,
//                      expected) as compare-and-set, sync + getData — checked by lincheck
//   sequential nodes   acknowledged PERSISTENT_SEQUENTIAL names are unique; the children end
//                      as exactly 0..n-1, each acknowledged one holding its creator's data,
//                      and no create made two nodes (exactly once)
//   sessions           a live client's session is never expired; abandoned sessions and
//                      their ephemerals are gone once healed; a close removes every
//                      ephemeral node of its session at its zxid
//   FIFO               the writes of a session apply in the order its client issued them,
//                      each at most once
//   client order       reads without sync never go back in time for one client (§2.5)
// plus Raft's own safety checker on every Ready. A run is a function of its seed.

import { Prng } from '../stdx/prng.js';
import { type NodeId, nodeId } from '../stdx/types.js';
import { Scheduler, type YieldToHost } from '../sim/scheduler.js';
import { SimNetwork } from '../sim/network.js';
import { defaultTiming } from '../raft/config.js';
import { decodeMessage, encodeMessage } from '../raft/codec.js';
import { isRequest, type Message } from '../raft/messages.js';
import { MemoryStorage } from '../runtime/memory-storage.js';
import { ZkRequestError, ZkService } from '../zk/service.js';
import { OUT_OF_ORDER, decodeZkCommand, decodeZkResult, type ZkCommand, type ZkResult, type ZkStateMachine } from '../zk/state-machine.js';
import { CreateMode, Err } from '../zk/constants.js';
import { openAclUnsafe, statOf, type ZNode } from '../zk/tree.js';
import type { WriteOp, WriteResult } from '../zk/types.js';
import { check, describeResult, type CheckResult, type Model, type Operation } from '../lincheck/index.js';
import { SafetyChecker } from './safety.js';
import { highestTermLeader, TestFailure } from './raft-cluster.js';

/** The Raft tick; elections take 1–2 s (ARCHITECTURE.md, Timing). */
export const raftTickMs = 100;
/** ZooKeeper's tickTime: session timeouts are clamped to [800, 8000] ms. */
export const zkTickTimeMs = 400;
export const zkRequestTimeoutMs = 2000;
/** The session timeout of clients that stay (the largest the tick allows). */
export const liveSessionTimeoutMs = 20 * zkTickTimeMs;
/** A client moves once its member has known no leader this long (the server's closeAll). */
export const leaderlessMoveMs = 500;
/** How often a live client checks its connection and pings. */
export const pingIntervalMs = 250;
/** Attempts of one connect (open or attach) before the operation gives up for now. */
const connectAttemptsMax = 4;
/** ctime/mtime come from this epoch plus virtual time. */
const wallClockEpochMs = 1_700_000_000_000;
/** Bounds on waits in the healed phase (virtual time). */
const leaderWaitMsMax = 10_000;
const probeWaitMsMax = 15_000;
const convergeWaitMsMax = 3 * liveSessionTimeoutMs;
/** Online violations kept (the first one is the report). */
const violationsMax = 20;

export const registerPath = '/reg';
export const sequencePath = '/seq';
const ephemeralParent = '/eph';
const keeperParent = '/keep';

// ---- Peer messages --------------------------------------------------------------------

type PeerMessage = { kind: 'raft'; message: Message } | { kind: 'forward'; command: Uint8Array } | { kind: 'touch'; sessionIds: readonly number[] };

const peerTag = { raft: 0, forward: 1, touch: 2 } as const;

function encodePeer(message: PeerMessage): Uint8Array {
  switch (message.kind) {
    case 'raft':
      return prefixed(peerTag.raft, encodeMessage(message.message));
    case 'forward':
      return prefixed(peerTag.forward, message.command);
    case 'touch': {
      const out = new Uint8Array(1 + 8 * message.sessionIds.length);
      out[0] = peerTag.touch;
      const view = new DataView(out.buffer);
      message.sessionIds.forEach((id, k) => {
        view.setFloat64(1 + 8 * k, id);
      });
      return out;
    }
    default:
      return message satisfies never;
  }
}

function decodePeer(bytes: Uint8Array): PeerMessage {
  const body = bytes.slice(1);
  switch (bytes[0]) {
    case peerTag.raft:
      return { kind: 'raft', message: decodeMessage(body) };
    case peerTag.forward:
      return { kind: 'forward', command: body };
    case peerTag.touch: {
      const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
      return { kind: 'touch', sessionIds: Array.from({ length: body.length / 8 }, (_, k) => view.getFloat64(8 * k)) };
    }
    default:
      throw new TestFailure(`unknown peer message tag ${String(bytes[0])}`);
  }
}

function prefixed(tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + body.length);
  out[0] = tag;
  out.set(body, 1);
  return out;
}

// ---- The cluster ----------------------------------------------------------------------

/** One command as the first member to apply its zxid saw it (the global apply stream). */
export interface AppliedEvent {
  readonly member: number;
  readonly machine: ZkStateMachine;
  readonly zxid: number;
  readonly command: ZkCommand | undefined;
  readonly result: ZkResult;
}

export interface ZkClusterOptions {
  readonly seed: number;
  readonly yieldToHost: YieldToHost;
  readonly members: number;
  /** Snapshot at this many bytes of Raft state (the incremental beginSnapshot path); -1: never. */
  readonly raftStateBytesMax?: number;
}

export class ZkCluster {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork<PeerMessage>;
  readonly checker = new SafetyChecker();
  readonly n: number;
  readonly services: (ZkService | undefined)[];
  /** Each member's Persister; a crash replaces it with a copy (the stopped instance keeps the old). */
  private readonly storages: MemoryStorage[];
  private readonly ids: NodeId[];
  private readonly memberPrng: Prng;
  private readonly raftStateBytesMax: number;
  /** Online checker reports; the first is the run's failure. */
  readonly violations: string[] = [];
  /** zxid → hash of (command, result) as first applied by any member. */
  private readonly appliedHashes = new Map<number, number>();
  /** Invariant: the highest zxid any member applied; the stream below is in zxid order. */
  appliedFrontier = 0;
  /** A running hash of the global apply stream: equal for equal runs. */
  applyTraceHash = 0x811c9dc5;
  private readonly applyListeners: ((event: AppliedEvent) => void)[] = [];
  private nextConnection = 1;
  private snapshotsOfStopped = 0;
  private fatal: string | undefined;

  constructor(options: ZkClusterOptions) {
    this.n = options.members;
    this.raftStateBytesMax = options.raftStateBytesMax ?? -1;
    const root = new Prng(options.seed);
    this.memberPrng = root.fork();
    this.scheduler = new Scheduler(options.yieldToHost);
    this.network = new SimNetwork(this.scheduler, root.fork(), { encode: encodePeer, decode: decodePeer, isRequest: (m) => m.kind !== 'raft' || isRequest(m.message) });
    this.ids = Array.from({ length: this.n }, (_, i) => nodeId(i + 1));
    this.services = new Array<ZkService | undefined>(this.n).fill(undefined);
    this.storages = Array.from({ length: this.n }, () => new MemoryStorage());
  }

  all(): number[] {
    return Array.from({ length: this.n }, (_, i) => i);
  }

  nowMs(): number {
    return this.scheduler.nowMs;
  }

  /** A strictly increasing time stamp for histories (Scheduler.stampMs). */
  stampMs(): number {
    return this.scheduler.stampMs();
  }

  sleep(ms: number): Promise<void> {
    return this.scheduler.sleep(ms);
  }

  /** Awaits a promise that simulated events settle, driving the simulation meanwhile. */
  wait<T>(promise: Promise<T>): Promise<T> {
    return this.scheduler.waitOn(promise);
  }

  onApply(listener: (event: AppliedEvent) => void): void {
    this.applyListeners.push(listener);
  }

  violation(message: string): void {
    if (this.violations.length < violationsMax) this.violations.push(`t=${this.nowMs()}ms: ${message}`);
  }

  /** A connection id, unique in the cluster (the front-end's port id). */
  nextConnectionId(): number {
    return this.nextConnection++;
  }

  async startAll(): Promise<void> {
    for (let i = 0; i < this.n; i++) await this.restart(i);
  }

  // ---- Members: crash, restart ----------------------------------------------------------

  /** Stops member i; what it persisted survives for restart(), what was in flight is lost. */
  crash(i: number): void {
    const service = this.services[i];
    if (service === undefined) return;
    this.network.detach(this.ids[i]!);
    this.storages[i] = this.storages[i]!.copy();
    this.snapshotsOfStopped += service.replica.snapshotsTaken;
    service.stop();
    this.services[i] = undefined;
  }

  /** (Re)opens member i from its persisted state and attaches it to the network. */
  async restart(i: number): Promise<void> {
    this.crash(i);
    const id = this.ids[i]!;
    const bytesPrng = this.memberPrng.fork();
    const service = await ZkService.open({
      config: { ...defaultTiming, noopOnElection: true, id, voters: this.ids },
      prng: this.memberPrng.fork(),
      clock: this.scheduler.clock(),
      tickMs: raftTickMs,
      transport: { send: (to, message) => this.network.send(id, to, { kind: 'raft', message }) },
      storage: this.storages[i]!,
      raftStateBytesMax: this.raftStateBytesMax,
      observer: (node, ready) => this.checker.observe(node, ready),
      onFatal: (error) => {
        this.fatal ??= `member ${i} failed: ${String(error)}`;
      },
      tickTimeMs: zkTickTimeMs,
      requestTimeoutMs: zkRequestTimeoutMs,
      wallClockMs: () => wallClockEpochMs + this.scheduler.nowMs,
      randomBytes: (count) => Uint8Array.from({ length: count }, () => bytesPrng.int(256)),
      forward: (leader, command) => this.network.send(id, leader, { kind: 'forward', command }),
      reportTouches: (leader, sessionIds) => this.network.send(id, leader, { kind: 'touch', sessionIds: [...sessionIds] }),
    });
    this.observeApplies(i, service.machine);
    this.services[i] = service;
    this.network.attach(id, (message) => this.receive(service, message));
    this.network.connect(id);
  }

  private receive(service: ZkService, message: PeerMessage): void {
    switch (message.kind) {
      case 'raft':
        return service.replica.raft.receive(message.message);
      case 'forward':
        return service.proposeForwarded(message.command);
      case 'touch':
        return service.touchedElsewhere(message.sessionIds);
      default:
        return message satisfies never;
    }
  }

  /**
   * Sees every apply of member i from now on. ZkService builds its state machine itself,
   * so the only seam is the instance's apply(); entries re-applied while the member opens
   * (before this runs) are not seen, and the final comparison covers them.
   */
  private observeApplies(i: number, machine: ZkStateMachine): void {
    const apply = machine.apply.bind(machine);
    machine.apply = (command, index) => {
      const reply = apply(command, index);
      this.applied(i, machine, index, command, reply);
      return reply;
    };
  }

  private applied(member: number, machine: ZkStateMachine, zxid: number, command: Uint8Array, reply: Uint8Array): void {
    const hash = hashBytes(reply, hashBytes(command, 0x811c9dc5));
    const known = this.appliedHashes.get(zxid);
    if (known !== undefined) {
      if (known !== hash) this.violation(`replica agreement: member ${member} applied zxid ${zxid} with a different command or result than an earlier member`);
      return;
    }
    this.appliedHashes.set(zxid, hash);
    if (zxid <= this.appliedFrontier) return;
    this.appliedFrontier = zxid;
    this.applyTraceHash = Math.imul(this.applyTraceHash ^ hash, 0x01000193) >>> 0;
    let decoded: ZkCommand | undefined;
    try {
      decoded = decodeZkCommand(command);
    } catch {
      decoded = undefined;
    }
    const event: AppliedEvent = { member, machine, zxid, command: decoded, result: decodeZkResult(reply) };
    for (const listener of this.applyListeners) listener(event);
  }

  // ---- Links -----------------------------------------------------------------------------

  /** Blocks every link between members on different sides (both ways). */
  partition(side: readonly boolean[]): void {
    this.network.clearBlocks();
    for (let a = 0; a < this.n; a++) {
      for (let b = 0; b < this.n; b++) {
        if (side[a] !== side[b]) this.network.setBlocked(this.ids[a]!, this.ids[b]!, true);
      }
    }
  }

  isolate(i: number): void {
    this.partition(this.all().map((j) => j === i));
  }

  heal(): void {
    this.network.clearBlocks();
  }

  // ---- Observations ------------------------------------------------------------------------

  /** The member that leads the highest term among those that think they lead; -1 if none. */
  leader(): number {
    return highestTermLeader(this.services.map((service) => service?.replica.raft.status()));
  }

  async waitForLeader(maxMs = leaderWaitMsMax): Promise<number> {
    const found = await this.scheduler.waitFor(() => this.leader() >= 0, maxMs);
    if (!found) throw new TestFailure(`no leader within ${maxMs} ms\n${this.describe()}`);
    return this.leader();
  }

  snapshotsTaken(): number {
    return this.services.reduce((sum, service) => sum + (service?.replica.snapshotsTaken ?? 0), this.snapshotsOfStopped);
  }

  /** Fails on a member's fatal error or a Raft safety violation. */
  checkErrors(): void {
    if (this.fatal !== undefined) throw new TestFailure(this.fatal);
    const violation = this.checker.firstViolation();
    if (violation !== undefined) throw new TestFailure(`raft safety violation: ${violation}`);
  }

  stopAll(): void {
    for (let i = 0; i < this.n; i++) this.crash(i);
  }

  describe(): string {
    const lines = [`t=${this.nowMs()}ms`];
    for (let i = 0; i < this.n; i++) {
      const service = this.services[i];
      if (service === undefined) {
        lines.push(`  ${i}: down`);
        continue;
      }
      const s = service.replica.raft.status();
      lines.push(`  ${i}: ${s.role} term=${s.term} leader=${s.leader} commit=${s.commit} applied=${s.applied} lastZxid=${service.machine.lastZxid} sessions=${[...service.machine.sessions()].length}`);
    }
    return lines.join('\n');
  }
}

function hashBytes(bytes: Uint8Array, seed: number): number {
  let h = seed;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

// ---- Clients -------------------------------------------------------------------------

/**
 * What a write came to, as the client can tell: applied with a result; certainly not
 * applied (refused, or never proposed); or unknown — a timeout, a crash, or a refusal the
 * front-end reports as a closed connection (OUT_OF_ORDER: a copy of the same command may
 * still apply later, so the client cannot know).
 */
export type WriteOutcome = { readonly kind: 'ok'; readonly results: readonly WriteResult[] } | { readonly kind: 'failed' } | { readonly kind: 'unknown' };

export interface ReadOutcome {
  readonly node: ZNode | undefined;
  readonly zxid: number;
}

export interface ZkClientOptions {
  readonly timeoutMs: number;
  /** Only ever use this member (a scripted scenario's client that must not move). */
  readonly pinned?: number;
  /** Planted bug (STYLE.md 18): number and send pipelined writes in reverse. */
  readonly reorderPipeline?: boolean;
}

/** Sees every write a client issues, before it is submitted (the FIFO checker). */
export type IssueListener = (client: ZkClient, owner: string, seq: number, opNo: number) => void;

export class ZkClient {
  /** The session (0: none yet, or it was lost). */
  sessionId = 0;
  /** Pinging; a client that stops is abandoned and its session must expire. */
  alive = true;
  /** Sessions this client opened, oldest first. */
  readonly sessions: number[] = [];
  /** The highest zxid this client has seen (the handshake refuses members behind it, §1.3). */
  lastZxidSeen = 0;
  /** Connections made (opens and attaches). */
  connections = 0;
  /** Writes refused OUT_OF_ORDER (a pipelined write overtook an earlier one). */
  outOfOrder = 0;
  /** Writes whose outcome stayed unknown. */
  unknownWrites = 0;
  private passwd: Uint8Array = new Uint8Array(0);
  private owner = '';
  /** Invariant: the seq of the last write issued on the current connection. */
  private seq = 0;
  /** Writes issued over all connections: the client's own order of its writes. */
  private issued = 0;
  private member = -1;
  /** The member's service when connected; a restarted member is a new object. */
  private service: ZkService | undefined;
  private connecting: Promise<boolean> | undefined;

  constructor(
    readonly cluster: ZkCluster,
    readonly id: number,
    private readonly prng: Prng,
    private readonly options: ZkClientOptions,
    private readonly onIssue: IssueListener,
    private readonly onSession: (client: ZkClient, sessionId: number) => void,
  ) {}

  get timeoutMs(): number {
    return this.options.timeoutMs;
  }

  get memberIndex(): number {
    return this.member;
  }

  connected(): boolean {
    return this.service !== undefined && this.cluster.services[this.member] === this.service;
  }

  /** Stops pinging and issuing: the session is left to expire. */
  abandon(): void {
    this.alive = false;
  }

  ensureConnected(): Promise<boolean> {
    if (this.connected()) return Promise.resolve(true);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Opens a session, or attaches the one it has, through some member (a few attempts). */
  private async connect(): Promise<boolean> {
    for (let attempt = 0; attempt < connectAttemptsMax && this.alive; attempt++) {
      const member = this.chooseMember();
      const service = member === undefined ? undefined : this.cluster.services[member];
      if (member === undefined || service === undefined) {
        await this.cluster.sleep(100 + this.prng.int(200));
        continue;
      }
      const owner = service.ownerName(this.cluster.nextConnectionId());
      const result = await this.submit(
        service,
        this.sessionId === 0
          ? { t: 'open', timeoutMs: service.negotiateTimeout(this.options.timeoutMs), passwd: service.newPassword(), owner }
          : { t: 'attach', sessionId: this.sessionId, passwd: this.passwd, owner },
      );
      if (result === undefined) continue;
      if (result.t === 'session') {
        if (this.sessionId !== result.sessionId) this.startSession(result.sessionId, result.passwd);
        this.owner = owner;
        this.seq = 0;
        this.member = member;
        this.service = service;
        this.connections++;
        this.noteZxid(service);
        return this.cluster.services[member] === service;
      }
      // The session is gone (expired or closed): the next attempt opens a new one.
      if (result.t === 'error' && result.err === Err.sessionExpired) this.sessionId = 0;
      else this.cluster.violation(`client ${this.id}: unexpected answer to open/attach: ${JSON.stringify(result)}`);
    }
    return false;
  }

  private startSession(sessionId: number, passwd: Uint8Array): void {
    this.sessionId = sessionId;
    this.passwd = passwd;
    this.sessions.push(sessionId);
    this.onSession(this, sessionId);
  }

  /** A member that is up, knows a leader and is not behind what this client saw; another one if it can. */
  private chooseMember(): number | undefined {
    if (this.options.pinned !== undefined) return this.cluster.services[this.options.pinned] === undefined ? undefined : this.options.pinned;
    const candidates = this.cluster.all().filter((i) => {
      const service = this.cluster.services[i];
      return service !== undefined && service.leader() !== 0 && service.machine.lastZxid >= this.lastZxidSeen;
    });
    const others = candidates.filter((i) => i !== this.member);
    const pool = others.length > 0 ? others : candidates;
    return pool.length === 0 ? undefined : pool[this.prng.int(pool.length)];
  }

  /** A submit whose rejection (timeout, no leader, stopped) becomes undefined. */
  private async submit(service: ZkService, command: Parameters<ZkService['submit']>[0]): Promise<ZkResult | undefined> {
    try {
      return await this.cluster.wait(service.submit(command));
    } catch (error) {
      if (!(error instanceof ZkRequestError)) throw error;
      return undefined;
    }
  }

  private noteZxid(service: ZkService): void {
    this.lastZxidSeen = Math.max(this.lastZxidSeen, service.machine.lastZxid);
  }

  /** Forces a new connection (new owner, seq from 1) if `owner` is still the current one. */
  private disconnect(owner: string): void {
    if (this.owner === owner) this.service = undefined;
  }

  /** One write on this session, numbered after every write issued before it. */
  async write(ops: WriteOp[]): Promise<WriteOutcome> {
    const [outcome] = await this.writePipelined([ops]);
    return outcome!;
  }

  /**
   * Several writes sent at once on one connection, numbered (seq) in the order given, as
   * the front-end numbers a pipeline. The planted bug `reorderPipeline` sends (and numbers)
   * them in reverse: each still applies once, but out of the order the client issued them.
   */
  async writePipelined(batch: readonly WriteOp[][]): Promise<WriteOutcome[]> {
    if (!(await this.ensureConnected())) return batch.map(() => ({ kind: 'failed' }));
    const service = this.service!;
    const owner = this.owner;
    const sessionId = this.sessionId;
    const opNos = batch.map(() => ++this.issued);
    const order = batch.map((_, k) => k);
    if (this.options.reorderPipeline === true) order.reverse();
    service.touch(sessionId);
    const outcomes: Promise<WriteOutcome>[] = [];
    for (const k of order) {
      const seq = ++this.seq;
      this.onIssue(this, owner, seq, opNos[k]!);
      outcomes[k] = this.submitWrite(service, { sessionId, owner, seq, ops: batch[k]! });
    }
    return Promise.all(outcomes);
  }

  private async submitWrite(service: ZkService, write: { sessionId: number; owner: string; seq: number; ops: WriteOp[] }): Promise<WriteOutcome> {
    let result: ZkResult;
    try {
      result = await this.cluster.wait(service.submit({ t: 'write', ...write, timeMs: service.wallClockMs(), auth: [], multi: false }));
    } catch (error) {
      if (!(error instanceof ZkRequestError)) throw error;
      this.disconnect(write.owner);
      this.unknownWrites++;
      // 'no-leader' is refused before anything is proposed.
      return error.code === 'no-leader' ? { kind: 'failed' } : { kind: 'unknown' };
    }
    this.noteZxid(service);
    return this.writeOutcome(result, write.owner, write.sessionId);
  }

  private writeOutcome(result: ZkResult, owner: string, sessionId: number): WriteOutcome {
    if (result.t === 'write') return { kind: 'ok', results: result.results };
    if (result.t === 'error' && result.err === Err.sessionExpired) {
      if (this.sessionId === sessionId) this.sessionId = 0;
      this.disconnect(owner);
      return { kind: 'failed' };
    }
    this.disconnect(owner);
    if (result.t === 'error' && result.err === Err.sessionMoved) return { kind: 'failed' };
    if (result.t === 'error' && result.err === OUT_OF_ORDER) {
      this.outOfOrder++;
      this.unknownWrites++;
      return { kind: 'unknown' };
    }
    this.cluster.violation(`client ${this.id}: unexpected answer to a write: ${JSON.stringify(result)}`);
    return { kind: 'unknown' };
  }

  /** Closes the session (the client's closeSession). True once the close applied. */
  async close(): Promise<boolean> {
    if (!(await this.ensureConnected())) return false;
    const result = await this.submit(this.service!, { t: 'close', sessionId: this.sessionId, reason: 'client' });
    if (result?.t !== 'closed') return false;
    this.alive = false;
    return true;
  }

  /**
   * Reads a node from the member's applied tree: after a sync barrier (linearizable), or
   * straight away (sequentially consistent). undefined: no answer (the read had no effect).
   */
  async read(path: string, sync: boolean): Promise<ReadOutcome | undefined> {
    if (!(await this.ensureConnected())) return undefined;
    const service = this.service!;
    const owner = this.owner;
    service.touch(this.sessionId);
    if (sync) {
      try {
        await this.cluster.wait(service.sync());
      } catch (error) {
        if (!(error instanceof ZkRequestError)) throw error;
        this.disconnect(owner);
        return undefined;
      }
    }
    if (this.cluster.services[this.member] !== service) return undefined;
    this.noteZxid(service);
    return { node: service.machine.tree.node(path), zxid: service.machine.lastZxid };
  }

  /** Pings every pingIntervalMs while alive; moves when the member is down or has lost the leader. */
  async keepAlive(running: () => boolean): Promise<void> {
    while (this.alive && running()) {
      await this.cluster.sleep(pingIntervalMs);
      if (!this.alive) return;
      if (this.connected() && this.service!.leaderlessFor(leaderlessMoveMs)) this.service = undefined;
      if (!this.connected()) {
        await this.ensureConnected();
        continue;
      }
      this.service!.touch(this.sessionId);
    }
  }
}

// ---- The register model ------------------------------------------------------------------

/** One znode's data (a number) and version. */
export interface ZnodeRegister {
  readonly value: number;
  readonly version: number;
}

export type ZnodeRegisterInput =
  | { readonly kind: 'read' }
  /** setData(path, value, -1) */
  | { readonly kind: 'write'; readonly value: number }
  /** setData(path, value, expected) */
  | { readonly kind: 'cas'; readonly expected: number; readonly value: number };

/** read: the value and version; write and cas: ok with the new version, or BADVERSION. */
export type ZnodeRegisterOutput = { readonly ok: true; readonly value: number; readonly version: number } | { readonly ok: false };

/** A znode used as a versioned register: every write bumps the version; cas checks it. */
export function znodeRegisterModel(initial: ZnodeRegister = { value: 0, version: 0 }): Model<ZnodeRegister, ZnodeRegisterInput, ZnodeRegisterOutput> {
  return {
    name: 'znode-register',
    init: () => initial,
    step(state, input, output) {
      switch (input.kind) {
        case 'read':
          return output === undefined || (output.ok && output.value === state.value && output.version === state.version) ? state : undefined;
        case 'write':
          return stepWrite(state, input.value, output);
        case 'cas': {
          const matches = state.version === input.expected;
          if (output === undefined) return matches ? { value: input.value, version: state.version + 1 } : state;
          if (!output.ok) return matches ? undefined : state;
          return matches ? stepWrite(state, input.value, output) : undefined;
        }
        default:
          return input satisfies never;
      }
    },
    hash: (state) => (Math.imul(state.value | 0, 0x9e3779b1) ^ Math.imul(state.version | 0, 0x85ebca6b)) | 0,
    equal: (a, b) => a.value === b.value && a.version === b.version,
    inputKey: (input) => JSON.stringify(input),
    describeOperation(input, output) {
      const answer = output === undefined ? '?' : output.ok ? `${output.value}@v${output.version}` : 'BADVERSION';
      switch (input.kind) {
        case 'read':
          return `read() -> ${answer}`;
        case 'write':
          return `write(${input.value}) -> ${answer}`;
        case 'cas':
          return `cas(v${input.expected}, ${input.value}) -> ${answer}`;
        default:
          return input satisfies never;
      }
    },
    describeState: (state) => `${state.value}@v${state.version}`,
  };
}

function stepWrite(state: ZnodeRegister, value: number, output: ZnodeRegisterOutput | undefined): ZnodeRegister | undefined {
  const next = { value, version: state.version + 1 };
  if (output === undefined) return next;
  return output.ok && output.version === next.version && output.value === value ? next : undefined;
}

export type RegisterOperation = Operation<ZnodeRegisterInput, ZnodeRegisterOutput>;

// ---- The randomized simulation -------------------------------------------------------------

export interface ZkSimSettings {
  /** 3 or 5. */
  members: number;
  unreliable: boolean;
  longReordering: boolean;
  duplicateProbability: number;
  /** Mean milliseconds between nemesis actions. */
  nemesisIntervalMs: number;
  crashes: boolean;
  /** -1: no snapshots. */
  raftStateBytesMax: number;
  registerClients: number;
  sequenceClients: number;
  /** Clients at a time that open a short session, create ephemerals and abandon it. */
  ephemeralClients: number;
  /** Clients that keep their session and one ephemeral node for the whole run. */
  keepers: number;
}

function drawSettings(prng: Prng): ZkSimSettings {
  return {
    members: prng.pick([3, 5]),
    unreliable: prng.chance(0.5),
    longReordering: prng.chance(0.15),
    duplicateProbability: prng.chance(0.3) ? 0.05 + prng.nextFloat() * 0.15 : 0,
    nemesisIntervalMs: prng.pick([700, 1500, 3000]),
    crashes: prng.chance(0.7),
    raftStateBytesMax: prng.chance(0.5) ? prng.pick([4096, 16384]) : -1,
    registerClients: prng.range(2, 3),
    sequenceClients: 2,
    ephemeralClients: prng.range(1, 2),
    keepers: 2,
  };
}

function describeSettings(s: ZkSimSettings): string {
  const parts = [`members=${s.members}`, s.unreliable ? 'unreliable' : 'reliable'];
  if (s.longReordering) parts.push('long-reordering');
  if (s.duplicateProbability > 0) parts.push(`duplicates=${s.duplicateProbability.toFixed(2)}`);
  parts.push(`nemesis=${s.nemesisIntervalMs}ms`);
  if (s.crashes) parts.push('crashes');
  if (s.raftStateBytesMax >= 0) parts.push(`snapshots@${s.raftStateBytesMax}B`);
  parts.push(`clients=${s.registerClients}r+${s.sequenceClients}s+${s.ephemeralClients}e+${s.keepers}k`);
  return parts.join(' ');
}

/** Deliberately broken variants (STYLE.md 18): each must make a checker fail. */
export interface ZkSimUnsafe {
  /** Register reads skip sync and go to the linearizability check anyway. */
  readonly readsWithoutSync?: boolean;
  /** Before the final comparison, change one member's tree behind Raft's back. */
  readonly divergentMember?: boolean;
  /** The first keeper stops pinging but still counts as live. */
  readonly silentKeeper?: boolean;
  /** Clients send pipelined writes in reverse order (the FIFO checker must see it). */
  readonly reorderPipeline?: boolean;
}

export interface ZkSimOptions {
  readonly seed: number;
  readonly yieldToHost: YieldToHost;
  readonly faultPhaseMs?: number;
  readonly settings?: Partial<ZkSimSettings>;
  readonly unsafe?: ZkSimUnsafe;
  /** A real monotonic clock for lincheck's time budget (the test bed reads no real time). */
  readonly nowMs?: () => number;
  readonly linearizabilityBudgetMs?: number;
}

export interface ZkSimStats {
  readonly virtualMs: number;
  /** The highest zxid applied. */
  readonly zxid: number;
  readonly registerOps: number;
  /** Register operations whose outcome stayed unknown. */
  readonly unknownOps: number;
  readonly sequentialNodes: number;
  readonly sessionsOpened: number;
  readonly expiries: number;
  readonly moves: number;
  /** Writes refused OUT_OF_ORDER, and writes whose outcome stayed unknown. */
  readonly outOfOrder: number;
  readonly unknownWrites: number;
  readonly snapshots: number;
  readonly linearizability: string;
}

export interface ZkSimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failure: string | undefined;
  /** Equal for equal runs: network deliveries, event count and the apply stream. */
  readonly traceHash: string;
  readonly settings: string;
  readonly stats: ZkSimStats;
}

export const faultPhaseMsDefault = 8000;

export async function runZkSimulation(options: ZkSimOptions): Promise<ZkSimResult> {
  const prng = new Prng(options.seed);
  const settings = { ...drawSettings(prng.fork()), ...options.settings };
  const sim = new ZkSimulation(options, settings, prng);
  let failure: string | undefined;
  try {
    await sim.run();
  } catch (error) {
    if (!(error instanceof TestFailure) && !(error instanceof Error && error.name === 'AssertionFailure')) throw error;
    failure = error.message;
  } finally {
    await sim.stop();
  }
  // An online violation came first; what failed later may be its consequence.
  failure = sim.cluster.violations[0] ?? failure ?? sim.cluster.checker.firstViolation();
  const cluster = sim.cluster;
  const hash = (cluster.network.traceHash ^ Math.imul(cluster.scheduler.eventCount, 0x9e3779b1) ^ cluster.applyTraceHash) >>> 0;
  return { seed: options.seed, ok: failure === undefined, failure, traceHash: hash.toString(16).padStart(8, '0'), settings: describeSettings(settings), stats: sim.stats() };
}

interface SequentialAck {
  readonly data: string;
  readonly client: number;
}

class ZkSimulation {
  readonly cluster: ZkCluster;
  readonly history: RegisterOperation[] = [];
  private readonly prng: Prng;
  private readonly clients: ZkClient[] = [];
  private readonly keepers: ZkClient[] = [];
  /** Workload clients whose sessions the healed phase closes. */
  private readonly closers: ZkClient[] = [];
  /** sessionId → the client that opened it. */
  private readonly sessionClients = new Map<number, ZkClient>();
  /** `${owner}#${seq}` → the client's issue number of that write (FIFO). */
  private readonly issued = new Map<string, number>();
  /** sessionId → the issue number of its last applied write. */
  private readonly lastApplied = new Map<number, number>();
  /** Acknowledged sequential names → what their creator wrote. */
  private readonly sequentialAcks = new Map<string, SequentialAck>();
  /** client id → the highest register version it has seen or written. */
  private readonly versionSeen = new Map<number, number>();
  /** Background tasks' failures (a task must never reject unobserved). */
  private readonly taskFailures: unknown[] = [];
  private readonly tasks: Promise<void>[] = [];
  private nextValue = 1;
  private nextClientId = 0;
  private expiries = 0;
  private faultsOn = true;
  private keepersOn = true;
  private verdict = 'not checked';

  constructor(
    private readonly options: ZkSimOptions,
    private readonly settings: ZkSimSettings,
    prng: Prng,
  ) {
    this.prng = prng.fork();
    this.cluster = new ZkCluster({ seed: prng.nextUint32(), yieldToHost: options.yieldToHost, members: settings.members, raftStateBytesMax: settings.raftStateBytesMax });
    this.cluster.onApply((event) => this.observe(event));
  }

  async run(): Promise<void> {
    await this.cluster.startAll();
    await this.cluster.waitForLeader();
    await this.setUp();
    this.cluster.network.reliable = !this.settings.unreliable;
    this.cluster.network.longReordering = this.settings.longReordering;
    this.cluster.network.duplicateProbability = this.settings.duplicateProbability;
    await this.faultPhase(this.options.faultPhaseMs ?? faultPhaseMsDefault);
    await this.healedPhase();
    this.checkFinal();
  }

  /** Stops every client and member, and waits for the background tasks to end. */
  async stop(): Promise<void> {
    this.faultsOn = false;
    this.keepersOn = false;
    for (const client of this.clients) client.abandon();
    this.cluster.stopAll();
    try {
      await this.cluster.wait(Promise.all(this.tasks));
    } catch {
      // The scheduler failed (an event threw): the run's failure says so already.
    }
  }

  stats(): ZkSimStats {
    return {
      virtualMs: this.cluster.nowMs(),
      zxid: this.cluster.appliedFrontier,
      registerOps: this.history.length,
      unknownOps: this.history.filter((op) => op.output === undefined).length,
      sequentialNodes: this.sequentialAcks.size,
      sessionsOpened: this.sessionClients.size,
      expiries: this.expiries,
      moves: this.clients.reduce((sum, client) => sum + Math.max(0, client.connections - client.sessions.length), 0),
      outOfOrder: this.clients.reduce((sum, client) => sum + client.outOfOrder, 0),
      unknownWrites: this.clients.reduce((sum, client) => sum + client.unknownWrites, 0),
      snapshots: this.cluster.snapshotsTaken(),
      linearizability: this.verdict,
    };
  }

  private newClient(timeoutMs: number): ZkClient {
    const client = new ZkClient(
      this.cluster,
      this.nextClientId++,
      this.prng.fork(),
      { timeoutMs, reorderPipeline: this.options.unsafe?.reorderPipeline === true },
      (_client, owner, seq, opNo) => this.issued.set(`${owner}#${seq}`, opNo),
      (opener, sessionId) => this.sessionClients.set(sessionId, opener),
    );
    this.clients.push(client);
    return client;
  }

  /** Runs a background task; a failure is kept for the end instead of rejecting unobserved. */
  private spawn(task: Promise<void>): void {
    this.tasks.push(task.catch((error: unknown) => void this.taskFailures.push(error)));
  }

  /** The znodes every workload uses, created on a healthy cluster before any fault. */
  private async setUp(): Promise<void> {
    const client = this.newClient(liveSessionTimeoutMs);
    for (const path of [registerPath, sequencePath, ephemeralParent, keeperParent]) {
      const data = path === registerPath ? encodeNumber(0) : null;
      let created = false;
      for (let attempt = 0; attempt < 10 && !created; attempt++) {
        const outcome = await client.write([{ op: 'create', path, data, acl: openAclUnsafe, flags: CreateMode.persistent, withStat: false }]);
        if (outcome.kind === 'ok') created = outcome.results[0]?.op === 'create' || (outcome.results[0]?.op === 'error' && outcome.results[0].err === Err.nodeExists);
      }
      if (!created) throw new TestFailure(`could not create ${path} on a healthy cluster\n${this.cluster.describe()}`);
    }
    client.abandon();
  }

  // ---- The fault phase ------------------------------------------------------------------------

  private async faultPhase(durationMs: number): Promise<void> {
    const end = this.cluster.nowMs() + durationMs;
    const running = () => this.faultsOn && this.cluster.nowMs() < end;
    const keeping = () => this.keepersOn;
    for (let k = 0; k < this.settings.keepers; k++) this.startKeeper(keeping, k === 0 && this.options.unsafe?.silentKeeper === true);
    const work: Promise<void>[] = [];
    for (let k = 0; k < this.settings.registerClients; k++) work.push(this.withClient(running, (client) => this.registerLoop(client, running)));
    for (let k = 0; k < this.settings.sequenceClients; k++) work.push(this.withClient(running, (client) => this.sequenceLoop(client, running)));
    for (let k = 0; k < this.settings.ephemeralClients; k++) work.push(this.ephemeralLoop(running));
    work.push(this.nemesisLoop(running, end, this.prng.fork()));
    this.spawn(this.zxidSampler(keeping));
    await Promise.all(work);
  }

  /** A live client running `body`; it keeps pinging until the healed phase closes its session. */
  private async withClient(_running: () => boolean, body: (client: ZkClient) => Promise<void>): Promise<void> {
    const client = this.newClient(liveSessionTimeoutMs);
    this.closers.push(client);
    this.spawn(client.keepAlive(() => this.keepersOn));
    await body(client);
  }

  /** Closes a workload client's session (a few attempts), else abandons it to expiry. */
  private async closeClient(client: ZkClient): Promise<void> {
    for (let attempt = 0; attempt < 3 && client.sessionId !== 0; attempt++) if (await client.close()) return;
    client.abandon();
  }

  private async registerLoop(client: ZkClient, running: () => boolean): Promise<void> {
    const prng = this.prng.fork();
    while (running()) {
      await this.cluster.sleep(10 + prng.int(90));
      if (!running()) return;
      const roll = prng.nextFloat();
      if (roll < 0.3) await this.registerWrite(client, { kind: 'write', value: this.nextValue++ });
      else if (roll < 0.55) await this.registerWrite(client, { kind: 'cas', expected: this.versionSeen.get(client.id) ?? 0, value: this.nextValue++ });
      else await this.registerRead(client, this.options.unsafe?.readsWithoutSync === true ? false : prng.chance(0.7));
    }
  }

  private async registerWrite(client: ZkClient, input: Extract<ZnodeRegisterInput, { kind: 'write' | 'cas' }>): Promise<void> {
    const callTime = this.cluster.stampMs();
    const version = input.kind === 'write' ? -1 : input.expected;
    const outcome = await client.write([{ op: 'setData', path: registerPath, data: encodeNumber(input.value), version }]);
    if (outcome.kind === 'failed') return;
    let output: ZnodeRegisterOutput | undefined;
    if (outcome.kind === 'ok') {
      const result = outcome.results[0];
      if (result?.op === 'setData') {
        output = { ok: true, value: input.value, version: result.stat.version };
        this.sawVersion(client, result.stat.version, 'its own write');
      } else if (result?.op === 'error' && result.err === Err.badVersion && input.kind === 'cas') {
        output = { ok: false };
      } else {
        this.cluster.violation(`client ${client.id}: unexpected result of setData ${registerPath}: ${JSON.stringify(result)}`);
        return;
      }
    }
    this.history.push({ clientId: client.id, input, output, callTime, returnTime: this.cluster.stampMs() });
  }

  private async registerRead(client: ZkClient, sync: boolean): Promise<void> {
    const callTime = this.cluster.stampMs();
    const read = await client.read(registerPath, sync);
    if (read === undefined) return;
    if (read.node === undefined || read.node.data === null) {
      this.cluster.violation(`client ${client.id} found no data at ${registerPath} (zxid ${read.zxid})`);
      return;
    }
    const output: ZnodeRegisterOutput = { ok: true, value: decodeNumber(read.node.data), version: read.node.version };
    this.sawVersion(client, read.node.version, sync ? 'a synced read' : 'a read without sync');
    // Reads without sync are only sequentially consistent (§2.5): checked by sawVersion,
    // not by lincheck — unless the planted bug pretends they are linearizable.
    if (sync || this.options.unsafe?.readsWithoutSync === true) {
      this.history.push({ clientId: client.id, input: { kind: 'read' }, output, callTime, returnTime: this.cluster.stampMs() });
    }
  }

  /** Client order: a client never sees the register go back to an older version. */
  private sawVersion(client: ZkClient, version: number, what: string): void {
    const seen = this.versionSeen.get(client.id) ?? 0;
    if (version < seen) this.cluster.violation(`client order: client ${client.id} saw ${registerPath} at version ${version} in ${what} after version ${seen}`);
    this.versionSeen.set(client.id, Math.max(seen, version));
  }

  /** Pipelines 1–3 sequential creates at a time, so FIFO and OUT_OF_ORDER matter. */
  private async sequenceLoop(client: ZkClient, running: () => boolean): Promise<void> {
    const prng = this.prng.fork();
    let tag = 0;
    while (running()) {
      await this.cluster.sleep(20 + prng.int(130));
      if (!running()) return;
      const data = Array.from({ length: 1 + prng.int(3) }, () => `c${client.id}.${++tag}`);
      const batch = data.map((text): WriteOp[] => [{ op: 'create', path: `${sequencePath}/n-`, data: encodeText(text), acl: openAclUnsafe, flags: CreateMode.persistentSequential, withStat: false }]);
      const outcomes = await client.writePipelined(batch);
      outcomes.forEach((outcome, k) => {
        this.sequenceAck(client, data[k]!, outcome);
      });
    }
  }

  private sequenceAck(client: ZkClient, data: string, outcome: WriteOutcome): void {
    if (outcome.kind !== 'ok') return;
    const result = outcome.results[0];
    if (result?.op !== 'create') {
      this.cluster.violation(`client ${client.id}: a sequential create failed: ${JSON.stringify(result)}`);
      return;
    }
    const earlier = this.sequentialAcks.get(result.path);
    if (earlier !== undefined) this.cluster.violation(`sequential nodes: ${result.path} acknowledged to ${earlier.data} and to ${data}`);
    this.sequentialAcks.set(result.path, { data, client: client.id });
  }

  /** Clients that open a short session, create ephemerals, ping a while, then vanish. */
  private async ephemeralLoop(running: () => boolean): Promise<void> {
    const prng = this.prng.fork();
    while (running()) {
      const client = this.newClient(prng.pick([1200, 1600, 2400]));
      const lifetimeEnd = this.cluster.nowMs() + 500 + prng.int(3000);
      const alive = () => running() && this.cluster.nowMs() < lifetimeEnd;
      const pings = client.keepAlive(alive);
      const count = 1 + prng.int(3);
      for (let k = 0; k < count && alive(); k++) {
        await client.write([{ op: 'create', path: `${ephemeralParent}/c${client.id}-${k}`, data: null, acl: openAclUnsafe, flags: CreateMode.ephemeral, withStat: true }]);
      }
      while (alive()) await this.cluster.sleep(100);
      client.abandon();
      await pings;
    }
  }

  /** A client that keeps its session and its ephemeral node /keep/k<id> until the end. */
  private startKeeper(running: () => boolean, silent: boolean): void {
    const client = this.newClient(liveSessionTimeoutMs);
    this.keepers.push(client);
    const prng = this.prng.fork();
    if (!silent) this.spawn(client.keepAlive(running));
    this.spawn(
      (async () => {
        while (running() && (client.alive || silent)) {
          await this.maybeCreateKeeperNode(client);
          await this.cluster.sleep(400 + prng.int(800));
          if (silent) return;
        }
      })(),
    );
  }

  private async maybeCreateKeeperNode(client: ZkClient): Promise<void> {
    const path = keeperPath(client);
    const read = await client.read(path, false);
    if (read === undefined || read.node?.ephemeralOwner === client.sessionId) return;
    await client.write([{ op: 'create', path, data: null, acl: openAclUnsafe, flags: CreateMode.ephemeral, withStat: false }]);
  }

  // ---- The nemesis -----------------------------------------------------------------------

  /** Every 50 ms: members at the same Raft applied index must report the same lastZxid. */
  private async zxidSampler(running: () => boolean): Promise<void> {
    while (running()) {
      await this.cluster.sleep(50);
      const byApplied = new Map<number, [number, number]>();
      this.cluster.services.forEach((service, i) => {
        if (service === undefined) return;
        const applied = service.replica.raft.status().applied;
        const seen = byApplied.get(applied);
        if (seen === undefined) byApplied.set(applied, [i, service.machine.lastZxid]);
        else if (seen[1] !== service.machine.lastZxid)
          this.cluster.violation(`replica agreement: members ${seen[0]} and ${i} have applied Raft index ${applied} but report lastZxid ${seen[1]} and ${service.machine.lastZxid}`);
      });
    }
  }

  private async nemesisLoop(running: () => boolean, endMs: number, prng: Prng): Promise<void> {
    while (running()) {
      await this.cluster.sleep(Math.min(prng.int(2 * this.settings.nemesisIntervalMs), endMs - this.cluster.nowMs()));
      if (!running()) return;
      await this.nemesisStep(prng);
      this.cluster.checkErrors();
    }
  }

  private async nemesisStep(prng: Prng): Promise<void> {
    const cluster = this.cluster;
    const i = prng.int(cluster.n);
    switch (prng.int(7)) {
      case 0:
        if (this.settings.crashes) cluster.crash(i);
        return;
      case 1: {
        // Leader kills: the leader's proposals, pending syncs and session deadlines go with it.
        const leader = cluster.leader();
        if (this.settings.crashes && leader >= 0) cluster.crash(leader);
        return;
      }
      case 2:
      case 3: {
        const down = cluster.all().filter((j) => cluster.services[j] === undefined);
        if (down.length > 0) await cluster.restart(prng.pick(down));
        return;
      }
      case 4:
        return cluster.isolate(i);
      case 5:
        return cluster.partition(cluster.all().map(() => prng.chance(0.5)));
      default:
        return cluster.heal();
    }
  }

  // ---- The healed phase -------------------------------------------------------------------

  private async healedPhase(): Promise<void> {
    const cluster = this.cluster;
    this.faultsOn = false;
    cluster.heal();
    cluster.network.reliable = true;
    cluster.network.longReordering = false;
    cluster.network.duplicateProbability = 0;
    for (const i of cluster.all()) if (cluster.services[i] === undefined) await cluster.restart(i);
    await cluster.waitForLeader();
    await this.probe();
    // The workload ends: its clients close their sessions; only the keepers' stay.
    await cluster.wait(Promise.all(this.closers.map((client) => this.closeClient(client))));
    if (this.options.unsafe?.divergentMember === true) plantDivergence(cluster);
    const converged = await cluster.scheduler.waitFor(() => cluster.violations.length > 0 || this.converged(), convergeWaitMsMax, 100);
    if (cluster.violations.length > 0) return;
    if (!converged) throw new TestFailure(`the cluster did not converge within ${convergeWaitMsMax} ms of healing: ${this.describeConvergence()}\n${cluster.describe()}`);
    cluster.checkErrors();
  }

  /**
   * Liveness once healed: a new client opens a session, creates an ephemeral node and
   * closes the session, which must remove the node at once.
   */
  private async probe(): Promise<void> {
    const client = this.newClient(liveSessionTimeoutMs);
    const path = `${ephemeralParent}/probe`;
    const deadline = this.cluster.nowMs() + probeWaitMsMax;
    let done = false;
    while (!done && this.cluster.nowMs() < deadline) {
      const outcome = await client.write([{ op: 'create', path, data: null, acl: openAclUnsafe, flags: CreateMode.ephemeral, withStat: false }]);
      const result = outcome.kind === 'ok' ? outcome.results[0] : undefined;
      // NODEEXISTS: an earlier attempt whose answer was lost created it.
      if (result?.op === 'create' || (result?.op === 'error' && result.err === Err.nodeExists)) done = await client.close();
    }
    client.abandon();
    if (!done) throw new TestFailure(`no progress within ${probeWaitMsMax} ms of healing\n${this.cluster.describe()}`);
    const service = this.cluster.services[client.memberIndex];
    if (service?.machine.tree.node(path) !== undefined) this.cluster.violation(`sessions: ${path} outlived its session's close`);
  }

  /** Every member up, at the leader's commit index, holding exactly the keepers' sessions. */
  private converged(): boolean {
    const leader = this.cluster.leader();
    if (leader < 0) return false;
    const commit = this.cluster.services[leader]!.replica.raft.status().commit;
    const expected = this.keeperSessions();
    return this.cluster.services.every((service) => {
      if (service === undefined || service.replica.raft.status().applied !== commit) return false;
      const sessions = [...service.machine.sessions()].map((s) => s.sessionId).sort();
      return sessions.length === expected.length && sessions.every((id, k) => id === expected[k]);
    });
  }

  private keeperSessions(): number[] {
    return this.keepers
      .filter((k) => k.alive && k.sessionId !== 0)
      .map((k) => k.sessionId)
      .sort();
  }

  private describeConvergence(): string {
    const lines = [`keepers' sessions ${JSON.stringify(this.keeperSessions())}`];
    for (const [i, service] of this.cluster.services.entries()) {
      if (service === undefined) {
        lines.push(`member ${i} down`);
        continue;
      }
      const sessions = [...service.machine.sessions()].map((s) => `${s.sessionId}(client ${this.sessionClients.get(s.sessionId)?.id ?? '?'}, ${s.timeoutMs} ms)`);
      lines.push(`member ${i}: applied ${service.replica.raft.status().applied}, sessions ${sessions.join(' ')}`);
    }
    return lines.join('\n  ');
  }

  // ---- Online checkers (the global apply stream) ------------------------------------------

  private observe(event: AppliedEvent): void {
    const command = event.command;
    if (command === undefined) return;
    if (command.t === 'close') this.observeClose(event, command.sessionId, command.reason);
    else if (command.t === 'write' && event.result.t === 'write') this.observeWrite(command.sessionId, command.owner, command.seq);
  }

  /** A close removes every ephemeral node of its session at its zxid; a live client's session never expires. */
  private observeClose(event: AppliedEvent, sessionId: number, reason: 'client' | 'expire'): void {
    const left = event.machine.tree.ephemerals(sessionId);
    if (left.length > 0) this.cluster.violation(`sessions: ${left.join(', ')} outlived the close of session ${sessionId} at zxid ${event.zxid}`);
    if (reason !== 'expire') return;
    this.expiries++;
    const client = this.sessionClients.get(sessionId);
    // Short sessions (the abandoning clients') may expire under faults while their client
    // still pings: a leader change or a partition outlasts 1–2 s. Only live ones are held to it.
    if (client?.alive && client.sessionId === sessionId && client.timeoutMs >= liveSessionTimeoutMs) {
      this.cluster.violation(`sessions: the session ${sessionId} of live client ${client.id} (timeout ${client.timeoutMs} ms, member ${client.memberIndex}) expired at zxid ${event.zxid}`);
    }
  }

  /** FIFO: a session's writes apply in its client's issue order. */
  private observeWrite(sessionId: number, owner: string, seq: number): void {
    const opNo = this.issued.get(`${owner}#${seq}`);
    if (opNo === undefined) return this.cluster.violation(`FIFO: session ${sessionId} applied a write (${owner} #${seq}) no client issued`);
    this.issued.delete(`${owner}#${seq}`);
    const last = this.lastApplied.get(sessionId) ?? 0;
    if (opNo <= last) this.cluster.violation(`FIFO: session ${sessionId} applied its write #${opNo} after its write #${last}`);
    this.lastApplied.set(sessionId, opNo);
  }

  // ---- Final checkers -----------------------------------------------------------------------

  private checkFinal(): void {
    for (const failure of this.taskFailures) throw failure;
    this.cluster.checkErrors();
    checkAgreement(this.cluster);
    this.checkSequential();
    this.checkSessions();
    this.checkLinearizable();
  }

  /** The children of /seq are exactly n-0..n-(count-1), and every acknowledged one holds its creator's data. */
  private checkSequential(): void {
    const tree = this.cluster.services[0]!.machine.tree;
    const children = tree.children(sequencePath);
    const expected = Array.from({ length: children.length }, (_, k) => `n-${String(k).padStart(10, '0')}`);
    const missing = expected.filter((name) => !children.includes(name));
    if (missing.length > 0) throw new TestFailure(`sequential nodes: ${children.length} children, but ${missing.slice(0, 5).join(', ')} missing`);
    // Exactly once: each create a client issued made at most one node (its data is unique).
    const creators = new Map<string, string>();
    for (const name of children) {
      const node = tree.node(`${sequencePath}/${name}`)!;
      const data = node.data === null ? 'null' : decodeText(node.data);
      const earlier = creators.get(data);
      if (earlier !== undefined) throw new TestFailure(`sequential nodes: the create ${data} made both ${earlier} and ${name}`);
      creators.set(data, name);
    }
    for (const [path, ack] of this.sequentialAcks) {
      const node = tree.node(path);
      if (node === undefined) throw new TestFailure(`sequential nodes: acknowledged ${path} (${ack.data}) is missing`);
      const data = node.data === null ? 'null' : decodeText(node.data);
      if (data !== ack.data) throw new TestFailure(`sequential nodes: ${path} was acknowledged to ${ack.data} but holds ${data}`);
    }
  }

  /** Only the keepers' sessions remain, each with its ephemeral node; no other ephemeral node is left. */
  private checkSessions(): void {
    const tree = this.cluster.services[0]!.machine.tree;
    for (const keeper of this.keepers) {
      if (!keeper.alive) continue;
      const node = tree.node(keeperPath(keeper));
      if (node?.ephemeralOwner !== keeper.sessionId) throw new TestFailure(`sessions: ${keeperPath(keeper)} is not owned by keeper ${keeper.id}'s session ${keeper.sessionId}`);
    }
    const live = new Set(this.keeperSessions());
    const orphans = tree.ephemeralOwners().filter((owner) => !live.has(owner));
    if (orphans.length > 0) throw new TestFailure(`sessions: ephemeral nodes of ended sessions remain: ${orphans.flatMap((owner) => tree.ephemerals(owner)).join(', ')}`);
    if (tree.children(ephemeralParent).length > 0) throw new TestFailure(`sessions: ${ephemeralParent} still has ${tree.children(ephemeralParent).join(', ')}`);
  }

  private checkLinearizable(): void {
    const model = znodeRegisterModel();
    const nowMs = this.options.nowMs;
    const budget = nowMs === undefined ? {} : { nowMs, timeBudgetMs: this.options.linearizabilityBudgetMs ?? 5000 };
    const result: CheckResult<ZnodeRegister, ZnodeRegisterInput, ZnodeRegisterOutput> = check(model, this.history, budget);
    this.verdict = result.verdict;
    if (result.verdict === 'illegal') throw new TestFailure(`linearizability: the register history is not linearizable\n${describeResult(model, result)}`);
  }
}

/** Replica agreement at the end: trees node by node (Stat included), sessions, lastZxid. */
export function checkAgreement(cluster: ZkCluster): void {
  const reference = cluster.services[0];
  if (reference === undefined) throw new TestFailure('member 0 is down at the end');
  const expected = describeMachine(reference.machine);
  for (let i = 1; i < cluster.n; i++) {
    const service = cluster.services[i];
    if (service === undefined) throw new TestFailure(`member ${i} is down at the end`);
    const actual = describeMachine(service.machine);
    const k = firstDifference(expected, actual);
    if (k !== undefined) {
      throw new TestFailure(`replica agreement: members 0 and ${i} differ at the end:\n  0: ${expected[k] ?? '(nothing)'}\n  ${i}: ${actual[k] ?? '(nothing)'}`);
    }
  }
}

/** One line per fact of the replicated state, sorted, so equal states give equal lists. */
function describeMachine(machine: ZkStateMachine): string[] {
  const lines = [`lastZxid ${machine.lastZxid}`];
  const tree = machine.tree;
  const nodes: string[] = [];
  for (const [path] of tree.records()) {
    const node = tree.node(path)!;
    nodes.push(`node ${path} data=${node.data === null ? 'null' : hex(node.data)} acl=${JSON.stringify(node.acl)} stat=${JSON.stringify(statOf(node))} creations=${node.creations}`);
  }
  const sessions = [...machine.sessions()].map((s) => `session ${s.sessionId} timeout=${s.timeoutMs} owner=${s.owner} lastSeq=${s.lastSeq} passwd=${hex(s.passwd)}`);
  return [...lines, ...nodes.sort(), ...sessions.sort()];
}

function firstDifference(a: readonly string[], b: readonly string[]): number | undefined {
  for (let k = 0; k < Math.max(a.length, b.length); k++) if (a[k] !== b[k]) return k;
  return undefined;
}

/** The planted divergence: a setData applied on the last member only, outside the log. */
function plantDivergence(cluster: ZkCluster): void {
  const machine = cluster.services[cluster.n - 1]!.machine;
  machine.tree.transact([{ op: 'setData', path: registerPath, data: encodeNumber(-1), version: -1 }], { zxid: machine.lastZxid, timeMs: 0, sessionId: 0, ids: [] });
}

function keeperPath(client: ZkClient): string {
  return `${keeperParent}/k${client.id}`;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function encodeText(text: string): Uint8Array {
  return textEncoder.encode(text);
}

function decodeText(bytes: Uint8Array): string {
  return textDecoder.decode(bytes);
}

function encodeNumber(value: number): Uint8Array {
  return encodeText(String(value));
}

function decodeNumber(bytes: Uint8Array): number {
  return Number(decodeText(bytes));
}

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}

// ---- A scripted scenario: a read from a member cut off from the leader -------------------

export interface StaleReadResult {
  /** The value the cut-off member answered with. */
  readonly value: number | undefined;
  readonly verdict: string;
  readonly explanation: string;
}

/**
 * Five members; a reader attached to a follower F, a writer attached to the leader. The
 * writer sets 1; F is cut off; the writer sets 2 through the majority; then the reader
 * reads at F — after a sync (the real client: no answer until the heal, 500 ms later,
 * then 2) or without one (the broken client: F answers 1 at once, after 2 was
 * acknowledged). The history goes to the same linearizability check as the simulation's.
 */
export async function runStaleReadScenario(options: { seed: number; yieldToHost: YieldToHost; sync: boolean }): Promise<StaleReadResult> {
  const cluster = new ZkCluster({ seed: options.seed, yieldToHost: options.yieldToHost, members: 5 });
  const history: RegisterOperation[] = [];
  const prng = new Prng(options.seed);
  const noop = () => undefined;
  try {
    await cluster.startAll();
    const leader = await cluster.waitForLeader();
    const follower = (leader + 1) % cluster.n;
    const writer = new ZkClient(cluster, 0, prng.fork(), { timeoutMs: liveSessionTimeoutMs, pinned: leader }, noop, noop);
    const reader = new ZkClient(cluster, 1, prng.fork(), { timeoutMs: liveSessionTimeoutMs, pinned: follower }, noop, noop);
    const created = await writer.write([{ op: 'create', path: registerPath, data: encodeNumber(0), acl: openAclUnsafe, flags: CreateMode.persistent, withStat: false }]);
    if (created.kind !== 'ok') throw new TestFailure(`could not create ${registerPath}`);
    await scriptedWrite(cluster, writer, 1, history);
    if ((await reader.read(registerPath, true)) === undefined) throw new TestFailure('the reader could not connect');
    await cluster.sleep(1);
    cluster.isolate(follower);
    await scriptedWrite(cluster, writer, 2, history);
    // Strictly after: a call at the instant another returns counts as concurrent with it.
    await cluster.sleep(1);
    const callTime = cluster.stampMs();
    const heal = cluster.sleep(500).then(() => cluster.heal());
    // A sync that times out (its ReadIndex request was lost in the cut) is retried, as a
    // client retries after CONNECTIONLOSS; the read's call time stays the first attempt's.
    let read: ReadOutcome | undefined;
    for (let attempt = 0; attempt < 3 && read === undefined; attempt++) read = await reader.read(registerPath, options.sync);
    await heal;
    const node = read?.node;
    const value = node === undefined || node.data === null ? undefined : decodeNumber(node.data);
    if (node !== undefined && value !== undefined) {
      history.push({ clientId: 1, input: { kind: 'read' }, output: { ok: true, value, version: node.version }, callTime, returnTime: cluster.stampMs() });
    }
    cluster.checkErrors();
    const model = znodeRegisterModel();
    const result = check(model, history);
    return { value, verdict: result.verdict, explanation: describeResult(model, result) };
  } finally {
    cluster.stopAll();
  }
}

async function scriptedWrite(cluster: ZkCluster, client: ZkClient, value: number, history: RegisterOperation[]): Promise<void> {
  const callTime = cluster.stampMs();
  const outcome = await client.write([{ op: 'setData', path: registerPath, data: encodeNumber(value), version: -1 }]);
  const result = outcome.kind === 'ok' ? outcome.results[0] : undefined;
  if (result?.op !== 'setData') throw new TestFailure(`the scripted write of ${value} failed: ${JSON.stringify(outcome)}`);
  history.push({ clientId: 0, input: { kind: 'write', value }, output: { ok: true, value, version: result.stat.version }, callTime, returnTime: cluster.stampMs() });
}
