// The 6.824 Raft tester (raft/config.go; docs/6824-tests.md §4.2) rebuilt on the
// simulator: n real runtimes with in-memory Persister-like storage on a simulated network,
// crash and restart, and the tester's helpers — checkOneLeader, checkTerms, nCommitted,
// one, wait — with the lab's numeric bounds. Everything runs on virtual time.

import { Packr } from 'msgpackr';
import { Prng } from '../stdx/prng.js';
import { type NodeId, nodeId } from '../stdx/types.js';
import { Scheduler, type YieldToHost } from '../sim/scheduler.js';
import { SimNetwork } from '../sim/network.js';
import { type RaftConfig, defaultTiming } from '../raft/config.js';
import { decodeMessage, encodeMessage } from '../raft/codec.js';
import { isRequest, type Message, type VoteRequest } from '../raft/messages.js';
import type { Entry } from '../raft/types.js';
import { RaftNode, type NodeStatus } from '../runtime/node.js';
import { MemoryStorage } from '../runtime/memory-storage.js';
import type { RaftStorage } from '../runtime/storage.js';
import type { Clock } from '../io/clock.js';
import { SafetyChecker } from './safety.js';
import type { SimRecorder } from './sim-recorder.js';

const packr = new Packr({ useRecords: false });

/** The tester's own sleeps assume elections finish within this (RaftElectionTimeout). */
export const electionTimeoutMs = 1000;
export const tickMs = 100;

export type Command = number | string;

export interface ClusterOptions {
  readonly seed: number;
  readonly unreliable?: boolean;
  readonly yieldToHost: YieldToHost;
  readonly unsafe?: RaftConfig['unsafe'];
  /** The 3D tester: every server snapshots after each SNAPSHOT_INTERVAL-th entry. */
  readonly snapshot?: boolean;
  /** Snapshot when (index + 1) is a multiple of this (default snapshotInterval). */
  readonly snapshotEvery?: number;
  /** How many of the servers form the initial configuration (default all); the rest start empty. */
  readonly bootstrapVoters?: number;
  /**
   * Each save takes 1..saveDelayMsMax virtual ms (0: saves are instant), so a crash can fall
   * between a leader's Appends going out and its own write becoming durable: the crashed
   * incarnation's unfinished save is lost, as an unsynced write is.
   */
  readonly saveDelayMsMax?: number;
  /** Records the run for a replay (sim-recorder.ts): states, messages, faults, the first violation. */
  readonly recorder?: SimRecorder;
  /** Overrides of the Raft configuration (chunk size, read mode, no-op on election). */
  readonly raft?: Partial<Pick<RaftConfig, 'snapshotChunkBytes' | 'readMode' | 'noopOnElection' | 'checkQuorum' | 'electionTicks'>>;
}

/**
 * What a paused server (SIGSTOP, a long GC) has not handled yet. On resume everything runs
 * in the same instant, as after SIGCONT: its timers first (the event loop's timer phase),
 * then client reads, then the peers' messages in the order they arrived.
 */
interface PausedWork {
  readonly timers: (() => void)[];
  readonly reads: (() => void)[];
  readonly messages: (() => void)[];
}

/** What a server's log holds at an index that is not a client command. */
export const noopEntry = '<noop>';
export const configEntry = '<config>';

/** The 3D tester snapshots when (index + 1) is a multiple of this. */
export const snapshotInterval = 10;
/** The 3D bound on each server's persisted Raft state. */
export const maxLogSizeBytes = 2000;

export class TestFailure extends Error {
  override name = 'TestFailure';
}

/**
 * The position of the member that leads the highest term among those that think they lead
 * (a deposed leader may not know yet); -1 if none. Stopped members are undefined.
 */
export function highestTermLeader(statuses: readonly (NodeStatus | undefined)[]): number {
  let best = -1;
  let bestTerm = -1;
  for (const [i, status] of statuses.entries()) {
    if (status === undefined || status.role !== 'leader' || status.term <= bestTerm) continue;
    best = i;
    bestTerm = status.term;
  }
  return best;
}

export class RaftCluster {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork<Message>;
  readonly checker = new SafetyChecker();
  readonly n: number;
  readonly nodes: (RaftNode | undefined)[];
  readonly storages: MemoryStorage[];
  /** Per server: the command applied at each index. */
  readonly logs: Map<number, Command>[];
  /** Per server: the register the commands write (the last numeric command applied). */
  readonly registers: number[];
  /**
   * Per server: the index of the last entry applied or snapshot restored, as the lab's
   * applierSnap keeps it. Invariant: the next entry applied is exactly lastApplied + 1.
   */
  readonly lastApplied: number[];
  /** When each command was first applied anywhere (a history stamp: virtual ms, exactly ordered). */
  readonly firstApplied = new Map<Command, number>();
  readonly prng: Prng;
  private readonly ids: NodeId[];
  private readonly connected: boolean[];
  private readonly nodePrng: Prng;
  private readonly options: ClusterOptions;
  /** Messages sent, by type (tests check that a path, say InstallSnapshot, was taken). */
  readonly sentByType = new Map<string, number>();
  /** Append answers that rejected the entries (each costs the leader a round trip). */
  rejectedAppends = 0;
  /** Sees every vote request before server i does; returning true takes it away (a nemesis). */
  interceptVoteRequest: ((i: number, message: VoteRequest) => boolean) | undefined;
  /** Pauses that ran to their end (tests check that the fault really happened). */
  pausesCompleted = 0;
  private readonly paused: (PausedWork | undefined)[];
  private applyError: string | undefined;
  private maxIndex = 0;

  constructor(n: number, options: ClusterOptions) {
    this.n = n;
    this.options = options;
    const root = new Prng(options.seed);
    this.prng = root.fork();
    this.nodePrng = root.fork();
    this.scheduler = new Scheduler(options.yieldToHost);
    this.network = new SimNetwork(this.scheduler, root.fork(), { encode: encodeMessage, decode: decodeMessage, isRequest });
    this.network.reliable = options.unreliable !== true;
    this.ids = Array.from({ length: n }, (_, i) => nodeId(i + 1));
    this.nodes = new Array<RaftNode | undefined>(n).fill(undefined);
    this.storages = Array.from({ length: n }, () => new MemoryStorage());
    this.logs = Array.from({ length: n }, () => new Map());
    this.registers = new Array<number>(n).fill(0);
    this.lastApplied = new Array<number>(n).fill(0);
    this.connected = new Array<boolean>(n).fill(false);
    this.paused = new Array<PausedWork | undefined>(n).fill(undefined);
  }

  /** Starts every server and connects them (make_config). */
  async startAll(): Promise<void> {
    for (let i = 0; i < this.n; i++) await this.start1(i);
    for (let i = 0; i < this.n; i++) this.connect(i);
  }

  // ---- Crash, restart, connect (crash1, start1, connect, disconnect) ----------------------

  crash1(i: number): void {
    if (this.nodes[i] !== undefined) this.options.recorder?.fault('down', i + 1);
    const work = this.paused[i];
    this.paused[i] = undefined;
    this.disconnect(i);
    this.network.detach(this.ids[i]!);
    this.nodes[i]?.stop();
    // Reads waiting on the paused process fail now (the stopped node rejects them).
    for (const run of work?.reads ?? []) run();
    this.nodes[i] = undefined;
    // The zombie keeps the old object; the next incarnation reads a copy.
    this.storages[i] = this.storages[i]!.copy();
  }

  async start1(i: number): Promise<void> {
    this.crash1(i);
    this.logs[i] = new Map();
    this.registers[i] = 0;
    this.lastApplied[i] = 0;
    const id = this.ids[i]!;
    const voters = this.ids.slice(0, this.options.bootstrapVoters ?? this.n);
    const config: RaftConfig = {
      ...defaultTiming,
      ...this.options.raft,
      id,
      voters: voters.includes(id) ? voters : [],
      ...(this.options.unsafe ? { unsafe: this.options.unsafe } : {}),
    };
    const node = await RaftNode.open({
      config,
      prng: this.nodePrng.fork(),
      clock: this.pausableClock(i),
      tickMs,
      transport: {
        send: (to, message) => {
          this.options.recorder?.send(id, to, message);
          this.sentByType.set(message.type, (this.sentByType.get(message.type) ?? 0) + 1);
          if (message.type === 'AppResp' && message.reject) this.rejectedAppends++;
          this.network.send(id, to, message);
        },
      },
      storage: this.slowed(i, this.storages[i]!),
      apply: (entry) => this.applied(i, entry),
      restore: (snapshot) => this.restored(i, snapshot.meta.index, snapshot.data),
      observer: (raftNode, ready) => {
        this.checker.observe(raftNode, ready);
        const recorder = this.options.recorder;
        if (recorder === undefined) return;
        recorder.observe(i + 1, raftNode);
        const violation = this.checker.firstViolation();
        if (violation !== undefined) recorder.violation(violation);
      },
      onFatal: (error) => {
        this.applyError ??= `server ${i} failed: ${String(error)}`;
      },
    });
    this.nodes[i] = node;
    this.options.recorder?.fault('up', i + 1);
    this.options.recorder?.observe(i + 1, node);
    this.network.attach(id, (message) =>
      this.whenAwake(i, 'messages', () => {
        this.options.recorder?.deliver(i + 1, message);
        if (message.type === 'Vote' && this.interceptVoteRequest?.(i, message) === true) return;
        node.receive(message);
      }),
    );
  }

  /**
   * Stops server i for `ms` as SIGSTOP would: nothing it has queued runs, and then
   * everything at once (PausedWork). Its clock keeps going, so its timers fire late.
   */
  pause(i: number, ms: number): void {
    if (this.nodes[i] === undefined || this.paused[i] !== undefined) return;
    this.options.recorder?.fault('pause', i + 1, `${ms} ms`);
    const work: PausedWork = { timers: [], reads: [], messages: [] };
    this.paused[i] = work;
    this.scheduler.after(ms, () => {
      if (this.paused[i] !== work) return; // crashed while paused
      this.paused[i] = undefined;
      this.pausesCompleted++;
      // One event each, so the node's promise continuations run between them, as they
      // do between two socket callbacks: a read can be answered before the next message.
      for (const run of [...work.timers, ...work.reads, ...work.messages]) this.scheduler.after(0, run);
    });
  }

  isPaused(i: number): boolean {
    return this.paused[i] !== undefined;
  }

  /** Runs `fn` now, or queues it until server i resumes. */
  private whenAwake(i: number, kind: keyof PausedWork, fn: () => void): void {
    const work = this.paused[i];
    if (work === undefined) fn();
    else work[kind].push(fn);
  }

  private pausableClock(i: number): Clock {
    const clock = this.scheduler.clock();
    return { nowMs: () => clock.nowMs(), setTimer: (delayMs, fn) => clock.setTimer(delayMs, () => this.whenAwake(i, 'timers', fn)) };
  }

  /**
   * What the others' transports report when server i's process dies: its connections
   * closed. (A crash alone is silent here, as a hung process would be.)
   */
  reportConnectionsClosed(i: number): void {
    for (let j = 0; j < this.n; j++) if (j !== i) this.nodes[j]?.peerUnreachable(this.ids[i]!);
  }

  /** The storage as a node sees it: each save finishes only after a drawn delay (saveDelayMsMax). */
  private slowed(i: number, storage: MemoryStorage): RaftStorage {
    const max = this.options.saveDelayMsMax ?? 0;
    if (max <= 0) return storage;
    const prng = this.nodePrng.fork();
    return {
      load: () => storage.load(),
      sizeBytes: () => storage.sizeBytes(),
      save: (update) =>
        new Promise<void>((resolve, reject) => {
          // The crashed incarnation keeps the old object: what it saves after the crash is lost.
          // A paused process learns that its write finished only when it resumes.
          this.scheduler.after(1 + prng.int(max), () =>
            storage.save(update).then(
              () => this.whenAwake(i, 'timers', resolve),
              (error: unknown) => this.whenAwake(i, 'timers', () => reject(error)),
            ),
          );
        }),
    };
  }

  connect(i: number): void {
    if (this.connected[i] !== true) this.options.recorder?.fault('heal', i + 1);
    this.connected[i] = true;
    this.network.connect(this.ids[i]!);
  }

  disconnect(i: number): void {
    if (this.connected[i] === true) this.options.recorder?.fault('cut', i + 1);
    this.connected[i] = false;
    this.network.disconnect(this.ids[i]!);
  }

  isConnected(i: number): boolean {
    return this.connected[i]!;
  }

  setReliable(reliable: boolean): void {
    this.network.reliable = reliable;
  }

  setLongReordering(on: boolean): void {
    this.network.longReordering = on;
  }

  sleep(ms: number): Promise<void> {
    return this.scheduler.sleep(ms);
  }

  // ---- The service side: Start, GetState, applied commands --------------------------------

  /** rf.Start(cmd): returns at once. */
  start(i: number, command: Command): { index: number; term: number; isLeader: boolean } {
    const node = this.nodes[i];
    // A paused server takes no request (its client gives up on it).
    if (node === undefined || this.isPaused(i)) return { index: -1, term: -1, isLeader: false };
    const result = node.propose(packr.pack(command));
    if (!result.ok) return { index: -1, term: node.status().term, isLeader: false };
    return { index: result.index, term: result.term, isLeader: true };
  }

  /**
   * A linearizable read of server i's register through ReadIndex: the register's value
   * once the read is confirmed and applied, or undefined if it timed out or i crashed.
   */
  async read(i: number, timeoutMs: number): Promise<number | undefined> {
    const node = this.nodes[i];
    if (node === undefined) return undefined;
    // A read sent to a paused server waits in its socket until it resumes; the client gives
    // up after timeoutMs either way (the server may still answer it, to no one).
    const confirmed = new Promise<unknown>((resolve, reject) => {
      this.scheduler.after(timeoutMs, () => reject(new Error('the client gave up')));
      this.whenAwake(i, 'reads', () => node.read(timeoutMs).then(resolve, reject));
    });
    try {
      await this.scheduler.waitOn(confirmed);
    } catch {
      return undefined;
    }
    return this.nodes[i] === node ? this.registers[i] : undefined;
  }

  /** The server that leads the highest term, among those that think they lead. */
  currentLeader(): number {
    let best = -1;
    for (let i = 0; i < this.n; i++) {
      const node = this.nodes[i];
      if (node === undefined || node.core.role !== 'leader') continue;
      if (best === -1 || node.core.term > this.nodes[best]!.core.term) best = i;
    }
    return best;
  }

  getState(i: number): { term: number; isLeader: boolean } {
    const node = this.nodes[i];
    if (node === undefined) return { term: -1, isLeader: false };
    const status = node.status();
    return { term: status.term, isLeader: status.role === 'leader' };
  }

  private applied(i: number, entry: Entry): void {
    const command = entryCommand(entry);
    for (let j = 0; j < this.n; j++) {
      const other = this.logs[j]!.get(entry.index);
      if (other !== undefined && other !== command) {
        this.applyError ??= `commit index=${entry.index} server=${i} ${String(command)} != server=${j} ${String(other)}`;
      }
    }
    const log = this.logs[i]!;
    // The lab's applierSnap rule, for every test: exactly the next index, never one at or
    // below a restored snapshot, never one twice, never a gap.
    if (entry.index !== this.lastApplied[i]! + 1) {
      this.applyError ??= `server ${i} apply out of order, expected index ${this.lastApplied[i]! + 1}, got ${entry.index}`;
    }
    this.lastApplied[i] = entry.index;
    log.set(entry.index, command);
    if (typeof command === 'number') this.registers[i] = command;
    if (!this.firstApplied.has(command)) this.firstApplied.set(command, this.scheduler.stampMs());
    this.maxIndex = Math.max(this.maxIndex, entry.index);
    if (this.options.snapshot === true && (entry.index + 1) % (this.options.snapshotEvery ?? snapshotInterval) === 0) {
      // The blob holds the index and every command through it, as the lab's does.
      const commands = Array.from({ length: entry.index }, (_, k) => log.get(k + 1) ?? null);
      this.nodes[i]?.snapshot(entry.index, packr.pack({ index: entry.index, commands }));
    }
  }

  /** The service side of a snapshot: the tester replaces that server's applied log. */
  private restored(i: number, index: number, data: Uint8Array): void {
    const blob = packr.unpack(data) as { index: number; commands: (Command | null)[] };
    if (blob.index !== index) this.applyError ??= `server ${i} snapshot index ${blob.index} != ${index}`;
    // Stricter than the lab, which takes any snapshot: one older than what the server has
    // already applied would roll its state machine back.
    if (index < this.lastApplied[i]!) this.applyError ??= `server ${i} restored a snapshot at ${index} after applying ${this.lastApplied[i]}`;
    this.lastApplied[i] = index;
    const log = new Map<number, Command>();
    let register = 0;
    blob.commands.forEach((command, k) => {
      if (command === null) return;
      log.set(k + 1, command);
      if (typeof command === 'number') register = command;
    });
    this.logs[i] = log;
    this.registers[i] = register;
  }

  /** Fails the test if any apply-order or agreement error or safety violation was seen. */
  checkErrors(): void {
    if (this.applyError !== undefined) throw new TestFailure(this.applyError);
    const violation = this.checker.firstViolation();
    if (violation !== undefined) throw new TestFailure(`safety violation: ${violation}`);
  }

  // ---- The tester's checks ----------------------------------------------------------------

  /** A leader within about 5 s (10 tries, 450–549 ms apart); never two in one term. */
  async checkOneLeader(): Promise<number> {
    for (let iteration = 0; iteration < 10; iteration++) {
      await this.sleep(450 + this.prng.int(100));
      const leaders = new Map<number, number[]>();
      for (let i = 0; i < this.n; i++) {
        if (!this.connected[i]) continue;
        const { term, isLeader } = this.getState(i);
        if (isLeader) leaders.set(term, [...(leaders.get(term) ?? []), i]);
      }
      let lastTermWithLeader = -1;
      for (const [term, servers] of leaders) {
        if (servers.length > 1) throw new TestFailure(`term ${term} has ${servers.length} (>1) leaders`);
        lastTermWithLeader = Math.max(lastTermWithLeader, term);
      }
      if (leaders.size > 0) return leaders.get(lastTermWithLeader)![0]!;
    }
    throw new TestFailure('expected one leader, got none');
  }

  /** All connected servers agree on the term. */
  checkTerms(): number {
    let term = -1;
    for (let i = 0; i < this.n; i++) {
      if (!this.connected[i]) continue;
      const t = this.getState(i).term;
      if (term === -1) term = t;
      else if (term !== t) throw new TestFailure('servers disagree on term');
    }
    return term;
  }

  checkNoLeader(): void {
    for (let i = 0; i < this.n; i++) {
      if (this.connected[i] && this.getState(i).isLeader) {
        throw new TestFailure(`expected no leader among connected servers, but ${i} claims to be leader`);
      }
    }
  }

  /** How many servers have applied `index`, and the command there. */
  nCommitted(index: number): { count: number; command: Command | undefined } {
    this.checkErrors();
    let count = 0;
    let command: Command | undefined;
    for (let i = 0; i < this.n; i++) {
      const value = this.logs[i]!.get(index);
      if (value === undefined) continue;
      if (count > 0 && value !== command) throw new TestFailure(`committed values do not match: index ${index}`);
      count++;
      command = value;
    }
    return { count, command };
  }

  /** Waits (about 24 s at most) for at least n servers to commit `index`; -1 if the term moved. */
  async wait(index: number, n: number, startTerm: number): Promise<Command | -1> {
    let sleepMs = 10;
    for (let iteration = 0; iteration < 30; iteration++) {
      if (this.nCommitted(index).count >= n) break;
      await this.sleep(sleepMs);
      if (sleepMs < 1000) sleepMs *= 2;
      if (startTerm > -1) {
        for (let i = 0; i < this.n; i++) {
          if (this.nodes[i] !== undefined && this.getState(i).term > startTerm) return -1;
        }
      }
    }
    const { count, command } = this.nCommitted(index);
    if (count < n) throw new TestFailure(`only ${count} decided for index ${index}; wanted ${n}`);
    return command!;
  }

  /**
   * The workhorse: submit `command` to a leader and wait until `expectedServers` agree on
   * it. 10 s in all; 2 s per attempt; without `retry`, one failed attempt fails the test.
   */
  async one(command: Command, expectedServers: number, retry: boolean): Promise<number> {
    const deadline = this.scheduler.nowMs + 10_000;
    let starts = 0;
    while (this.scheduler.nowMs < deadline) {
      let index = -1;
      for (let k = 0; k < this.n; k++) {
        starts = (starts + 1) % this.n;
        if (!this.connected[starts]) continue;
        const result = this.start(starts, command);
        if (result.isLeader) {
          index = result.index;
          break;
        }
      }
      if (index !== -1) {
        const attemptEnd = this.scheduler.nowMs + 2000;
        while (this.scheduler.nowMs < attemptEnd) {
          const { count, command: committed } = this.nCommitted(index);
          if (count > 0 && count >= expectedServers && committed === command) return index;
          await this.sleep(20);
        }
        if (!retry) throw new TestFailure(`one(${String(command).slice(0, 20)}) failed to reach agreement`);
      } else {
        await this.sleep(50);
      }
    }
    throw new TestFailure(`one(${String(command).slice(0, 20)}) failed to reach agreement\n${this.describe()}`);
  }

  /** Requests received by server i (labrpc's per-server count). */
  rpcCount(i: number): number {
    return this.network.rpcCount(this.ids[i]!);
  }

  rpcTotal(): number {
    let total = 0;
    for (let i = 0; i < this.n; i++) total += this.rpcCount(i);
    return total;
  }

  bytesTotal(): number {
    return this.network.bytesTotal;
  }

  /** The largest persisted Raft state over all servers (LogSize). */
  logSize(): number {
    return Math.max(...this.storages.map((storage) => storage.sizeBytes()));
  }

  randomCommand(): number {
    return this.prng.int(2 ** 31);
  }

  cleanup(): void {
    for (let i = 0; i < this.n; i++) this.crash1(i);
    this.checkErrors();
  }

  /** One line per server: role, term, log and commit positions, and a leader's view of peers. */
  describe(): string {
    const lines: string[] = [`t=${this.scheduler.nowMs}ms`];
    for (let i = 0; i < this.n; i++) {
      const node = this.nodes[i];
      if (node === undefined) {
        lines.push(`  ${i}: crashed`);
        continue;
      }
      const s = node.status();
      const progress = [...node.core.describeProgress()].map(([id, text]) => `${id}:${text}`).join(', ');
      lines.push(`  ${i}: ${s.role} term=${s.term} leader=${s.leader} last=${s.lastIndex} commit=${s.commit} applied=${s.applied} connected=${this.connected[i]} ${progress}`);
    }
    return lines.join('\n');
  }

  nodeId(i: number): NodeId {
    return this.ids[i]!;
  }

  highestApplied(): number {
    return this.maxIndex;
  }
}

/** The command an entry carries, or a marker for no-ops and configuration changes. */
function entryCommand(entry: Entry): Command {
  if (entry.type === 'config') return configEntry;
  if (entry.data.length === 0) return noopEntry;
  return packr.unpack(entry.data) as Command;
}
