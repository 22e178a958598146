// A replicated service on one Raft group: the Promise API services use (DESIGN.md §5).
//
// submit(command) proposes the command, remembers the proposal by (index, term) and
// resolves with the service's result when that entry is applied. Every way a proposal can
// end is a typed ReplicaError the caller must handle (STYLE.md 9):
//
//   what happened                                          | code             | was it applied?
//   -------------------------------------------------------+------------------+----------------
//   this member is not the leader                          | not-leader       | no (never appended)
//   the leader refuses more uncommitted bytes, or too many | overloaded       | no
//     proposals are pending here (pendingProposalsMax)     |                  |
//   another entry was applied at the proposal's index      | dropped          | no (Log Matching:
//                                                          |                  |   an index holds one entry)
//   leadership was lost (term or role changed) first       | outcome-unknown  | maybe: a later leader
//                                                          |                  |   may still commit it
//   the replica stopped first                              | stopped          | maybe
//   the command is empty or larger than commandBytesMax    | invalid          | no (never proposed)
//
// The service is deterministic and free of I/O: apply() sees every committed command once
// per incarnation, in log order, on every member, so every member computes the same state.
// Empty entries (the leader's no-op of a new term) and configuration entries never reach it.
//
// Snapshots: a service that implements snapshot() and restore() is snapshotted after a
// Ready once the persisted Raft state reaches raftStateBytesMax (the lab's maxraftstate),
// and restored from the node's snapshot when it opens or installs one from the leader.
// A service that also offers beginSnapshot() is encoded snapshotStepUnits at a time, one
// step per turn of the host's event loop (yieldToHost), while entries keep applying; the
// node takes the snapshot at the index where it began. One snapshot runs at a time.
// Reads: read() confirms through ReadIndex (thesis §6.4) that reading the local state is
// linearizable; a 'serializable' read skips that (it may be stale, it never waits).

import { assert, unreachable } from '../stdx/assert.js';
import type { Index, NodeId, Term } from '../stdx/types.js';
import type { Clock, Timer } from '../io/clock.js';
import type { Ready } from '../raft/core.js';
import type { Entry, Snapshot } from '../raft/types.js';
import { RaftNode, type RaftNodeOptions } from './node.js';
import type { RaftStorage } from './storage.js';

/**
 * A snapshot encoded a step at a time while the service keeps applying entries: it holds
 * the state as of the moment it began.
 */
export interface IncrementalSnapshot {
  /** Encodes up to `budget` more units (keys, sessions, ...); true once all are encoded. */
  step(budget: number): boolean;
  /** The snapshot's bytes (what restore() takes), once step() returned true. */
  finish(): Uint8Array;
  /** Gives up; the service stops tracking the state for it. */
  abort(): void;
}

/**
 * A deterministic state machine. Without snapshot() and restore() the whole log is replayed
 * on restart (the WAL keeps it all).
 */
export interface ReplicatedService {
  /** Applies one committed command and returns its result. Must not throw on any input. */
  apply(command: Uint8Array, index: Index): Uint8Array;
  /** The whole state, as of the last applied command. */
  snapshot?(): Uint8Array;
  /** Replaces the whole state with a snapshot taken at `index`. */
  restore?(data: Uint8Array, index: Index): void;
  /**
   * Optional, beside snapshot(): the state as of the last applied command, encoded
   * incrementally so that a large state does not block the event loop. One at a time.
   */
  beginSnapshot?(): IncrementalSnapshot;
}

/** Runs `fn` on a later turn of the host's event loop (a zero-delay timer of the injected clock by default). */
export type YieldToHost = (fn: () => void) => Timer;

export type ReadConsistency = 'linearizable' | 'serializable';

export type ReplicaErrorCode = 'not-leader' | 'overloaded' | 'invalid' | 'dropped' | 'outcome-unknown' | 'stopped';

export class ReplicaError extends Error {
  override name = 'ReplicaError';
  constructor(
    readonly code: ReplicaErrorCode,
    /** The leader this member knows of (0: none); a hint for redirecting clients. */
    readonly leader: NodeId,
    message: string,
  ) {
    super(message);
  }
}

export interface ReplicaLimits {
  /** Proposals waiting for their entry to apply. At the limit, submit() is refused (overloaded). */
  readonly pendingProposalsMax: number;
  /** The largest command accepted, in bytes. */
  readonly commandBytesMax: number;
}

export const replicaDefaults: ReplicaLimits = {
  pendingProposalsMax: 4096,
  commandBytesMax: 1 << 20,
};

export interface ReplicaOptions extends Omit<RaftNodeOptions, 'apply'> {
  readonly service: ReplicatedService;
  readonly limits?: Partial<ReplicaLimits>;
  /**
   * Snapshot the service once storage.sizeBytes() reaches this many bytes (the lab's
   * maxraftstate). Undefined or negative: never (the service must implement snapshot()
   * and restore() otherwise).
   */
  readonly raftStateBytesMax?: number;
  /**
   * Units (keys, sessions) an incremental snapshot encodes per event-loop turn; default
   * snapshotStepUnitsDefault.
   */
  readonly snapshotStepUnits?: number;
  /** How an incremental snapshot waits for the next turn; default: clock.setTimer(0, fn). */
  readonly yieldToHost?: YieldToHost;
}

/** About 2 ms of msgpack encoding for small values (~0.4 µs a key), well inside a 100 ms tick. */
export const snapshotStepUnitsDefault = 4096;

/** An incremental snapshot in progress. */
interface SnapshotRun {
  readonly snapshot: IncrementalSnapshot;
  /** The node's applied index when it began: the state it holds. */
  readonly index: Index;
  /** The wait for the next step, if one is scheduled. */
  timer: Timer | undefined;
}

export interface SubmitResult {
  readonly result: Uint8Array;
  readonly index: Index;
  readonly term: Term;
}

interface Pending {
  readonly index: Index;
  readonly term: Term;
  readonly resolve: (result: SubmitResult) => void;
  readonly reject: (error: ReplicaError) => void;
}

export class Replica {
  readonly limits: ReplicaLimits;
  private node: RaftNode | undefined = undefined;
  /** Invariant: every key is > the node's applied index, and its entry was proposed in pending.term. */
  private readonly pending = new Map<Index, Pending>();
  private leadershipTimer: Timer | undefined = undefined;
  private stopped = false;
  private appliedCount = 0;
  /** The index of the last snapshot taken or restored here. */
  private snapshotIndex = 0;
  /** Snapshots this incarnation took. */
  private snapshotCount = 0;
  /** Invariant: at most one incremental snapshot runs; undefined once it ended. */
  private snapshotRun: SnapshotRun | undefined = undefined;
  private readonly snapshotStepUnits: number;
  private readonly yieldToHost: YieldToHost;

  private constructor(
    private readonly service: ReplicatedService,
    private readonly clock: Clock,
    private readonly tickMs: number,
    limits: Partial<ReplicaLimits> | undefined,
    private readonly storage: RaftStorage,
    private readonly raftStateBytesMax: number,
    snapshotStepUnits: number | undefined,
    yieldToHost: YieldToHost | undefined,
  ) {
    this.limits = { ...replicaDefaults, ...limits };
    this.snapshotStepUnits = snapshotStepUnits ?? snapshotStepUnitsDefault;
    assert(Number.isInteger(this.snapshotStepUnits) && this.snapshotStepUnits >= 1, 'snapshotStepUnits >= 1');
    this.yieldToHost = yieldToHost ?? ((fn) => clock.setTimer(0, fn));
    assert(this.limits.pendingProposalsMax >= 1, 'pendingProposalsMax >= 1');
    const snapshots = raftStateBytesMax >= 0;
    assert(!snapshots || (service.snapshot !== undefined && service.restore !== undefined), 'a snapshotted service implements snapshot() and restore()');
  }

  /** Opens the Raft node (loading its storage) with this replica applying its entries. */
  static async open(options: ReplicaOptions): Promise<Replica> {
    const replica = new Replica(options.service, options.clock, options.tickMs, options.limits, options.storage, options.raftStateBytesMax ?? -1, options.snapshotStepUnits, options.yieldToHost);
    const observer = options.observer;
    const restore = options.restore;
    replica.node = await RaftNode.open({
      ...options,
      apply: (entry) => replica.applyEntry(entry),
      restore: (snapshot: Snapshot) => {
        replica.restoreSnapshot(snapshot);
        restore?.(snapshot);
      },
      observer: (node: RaftNode, ready: Ready) => {
        replica.maybeFailPending();
        replica.maybeSnapshot(node);
        observer?.(node, ready);
      },
    });
    replica.scheduleLeadershipCheck();
    return replica;
  }

  get raft(): RaftNode {
    assert(this.node !== undefined, 'opened');
    return this.node;
  }

  /** Commands applied by this incarnation (after a restart, the replayed log counts again). */
  get appliedCommandCount(): number {
    return this.appliedCount;
  }

  pendingCount(): number {
    return this.pending.size;
  }

  /** Whether an incremental snapshot is being encoded. */
  get snapshotInProgress(): boolean {
    return this.snapshotRun !== undefined;
  }

  /** Snapshots taken by this incarnation. */
  get snapshotsTaken(): number {
    return this.snapshotCount;
  }

  /**
   * Resolves once reading the service's local state is as consistent as asked:
   * 'linearizable' confirms through ReadIndex that this member's state includes every
   * command committed before the call (rejects with the node's ReadError after
   * `timeoutMs`: no leader, lost leadership, a partition); 'serializable' resolves at once
   * (the state may be stale, but it is a state the log passed through).
   */
  read(consistency: ReadConsistency, timeoutMs: number): Promise<Index> {
    switch (consistency) {
      case 'linearizable':
        return this.raft.read(timeoutMs);
      case 'serializable':
        return Promise.resolve(this.raft.status().applied);
      default:
        return unreachable(consistency, 'read consistency');
    }
  }

  /**
   * The service's whole state for a backup: confirmed through ReadIndex first, so it holds
   * every command committed before the call, then encoded in one go at the applied index
   * (a large state blocks this member's event loop while it is encoded). Rejects as read()
   * does when no leader confirms in `timeoutMs`.
   */
  async backup(timeoutMs: number): Promise<{ index: Index; term: Term; data: Uint8Array }> {
    assert(this.service.snapshot !== undefined, 'a service that is backed up implements snapshot()');
    await this.read('linearizable', timeoutMs);
    const index = this.raft.status().applied;
    const term = this.raft.core.log.term(index);
    assert(term !== undefined, 'the applied index has a term (in the log or at the snapshot)');
    return { index, term, data: this.service.snapshot() };
  }

  /** Proposes `command`; resolves with the service's result once it is applied here. */
  submit(command: Uint8Array): Promise<SubmitResult> {
    const node = this.raft;
    const leader = node.status().leader;
    if (this.stopped) return Promise.reject(new ReplicaError('stopped', leader, 'the replica has stopped'));
    if (command.length === 0) return Promise.reject(new ReplicaError('invalid', leader, 'an empty command is reserved for the leader no-op'));
    if (command.length > this.limits.commandBytesMax) {
      return Promise.reject(new ReplicaError('invalid', leader, `the command has ${command.length} bytes; the limit (commandBytesMax) is ${this.limits.commandBytesMax}`));
    }
    if (this.pending.size >= this.limits.pendingProposalsMax) {
      return Promise.reject(new ReplicaError('overloaded', leader, `${this.pending.size} proposals are pending (pendingProposalsMax); retry later`));
    }
    const proposed = node.propose(command);
    if (!proposed.ok) {
      const code = proposed.reason === 'not-leader' ? 'not-leader' : 'overloaded';
      return Promise.reject(new ReplicaError(code, proposed.leader, proposed.reason === 'not-leader' ? 'this member is not the leader' : 'the leader holds too many uncommitted bytes; retry later'));
    }
    assert(!this.pending.has(proposed.index), 'one pending proposal per index');
    return new Promise<SubmitResult>((resolve, reject) => {
      this.pending.set(proposed.index, { index: proposed.index, term: proposed.term, resolve, reject });
    });
  }

  /** Stops the node; every pending proposal is rejected (stopped: it may or may not commit). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.leadershipTimer?.cancel();
    this.abortSnapshotRun();
    this.node?.stop();
    this.failAll('stopped', 'the replica stopped before the command was applied; it may or may not have been committed');
  }

  private applyEntry(entry: Entry): void {
    const pending = this.pending.get(entry.index);
    if (entry.type !== 'normal' || entry.data.length === 0) {
      if (pending !== undefined) this.settleDropped(pending);
      return;
    }
    const result = this.service.apply(entry.data, entry.index);
    this.appliedCount++;
    if (pending === undefined) return;
    this.pending.delete(entry.index);
    if (pending.term === entry.term) pending.resolve({ result, index: entry.index, term: entry.term });
    else this.rejectDropped(pending);
  }

  /**
   * Takes a snapshot at the applied index now, whatever the size of the persisted state (an
   * operator's compaction: etcd's Defragment). The log below it goes once the node has
   * persisted the snapshot. False if there is nothing new to snapshot, one is already being
   * taken, or the service takes no snapshots.
   */
  compactNow(): boolean {
    const node = this.node;
    if (node === undefined || this.stopped || this.snapshotRun !== undefined || this.raftStateBytesMax < 0) return false;
    const applied = node.status().applied;
    if (applied <= this.snapshotIndex) return false;
    if (this.service.beginSnapshot === undefined) {
      this.completeSnapshot(node, applied, this.service.snapshot!());
      return true;
    }
    this.snapshotRun = { snapshot: this.service.beginSnapshot(), index: applied, timer: undefined };
    this.stepSnapshot(node, this.snapshotRun);
    return true;
  }

  /**
   * Takes a snapshot once the persisted Raft state reached raftStateBytesMax. Runs after a
   * Ready (not per entry): the size only drops once the next Ready persisted the snapshot,
   * and the applied-index check keeps it from snapshotting twice at one index meanwhile.
   */
  private maybeSnapshot(node: RaftNode): void {
    if (this.raftStateBytesMax < 0 || this.storage.sizeBytes() < this.raftStateBytesMax) return;
    if (this.snapshotRun !== undefined || this.stopped) return;
    const applied = node.status().applied;
    if (applied <= this.snapshotIndex) return;
    if (this.service.beginSnapshot === undefined) {
      this.completeSnapshot(node, applied, this.service.snapshot!());
      return;
    }
    // The first step runs now, so a small state is snapshotted in this turn as before.
    this.snapshotRun = { snapshot: this.service.beginSnapshot(), index: applied, timer: undefined };
    this.stepSnapshot(node, this.snapshotRun);
  }

  /**
   * Encodes one step of the incremental snapshot, then yields to the host until the next
   * one, so no turn encodes more than snapshotStepUnits keys. The node accepts the snapshot
   * at its index later: entries applied meanwhile stay in the log above it.
   */
  private stepSnapshot(node: RaftNode, run: SnapshotRun): void {
    assert(this.snapshotRun === run, 'one incremental snapshot at a time');
    run.timer = undefined;
    if (!run.snapshot.step(this.snapshotStepUnits)) {
      run.timer = this.yieldToHost(() => this.stepSnapshot(node, run));
      return;
    }
    this.snapshotRun = undefined;
    this.completeSnapshot(node, run.index, run.snapshot.finish());
  }

  private completeSnapshot(node: RaftNode, index: Index, data: Uint8Array): void {
    if (index <= this.snapshotIndex) return;
    if (node.snapshot(index, data)) {
      this.snapshotIndex = index;
      this.snapshotCount++;
    }
  }

  private abortSnapshotRun(): void {
    const run = this.snapshotRun;
    if (run === undefined) return;
    this.snapshotRun = undefined;
    run.timer?.cancel();
    run.snapshot.abort();
  }

  /** The node restored a snapshot: the service takes its state; proposals it covers end. */
  private restoreSnapshot(snapshot: Snapshot): void {
    const at = snapshot.meta.index;
    assert(this.service.restore !== undefined, 'a node with a snapshot needs a service that restores');
    // The state being encoded is replaced (and the newer snapshot covers it anyway).
    this.abortSnapshotRun();
    this.service.restore(snapshot.data, at);
    this.snapshotIndex = Math.max(this.snapshotIndex, at);
    for (const pending of [...this.pending.values()]) {
      if (pending.index > at) continue;
      // Applied elsewhere, inside the snapshot, or replaced there: this member cannot tell.
      this.pending.delete(pending.index);
      pending.reject(
        new ReplicaError(
          'outcome-unknown',
          this.node?.status().leader ?? (0 as NodeId),
          `a snapshot through index ${at} replaced the log before index ${pending.index} applied here; the command may or may not be applied`,
        ),
      );
    }
  }

  private settleDropped(pending: Pending): void {
    this.pending.delete(pending.index);
    this.rejectDropped(pending);
  }

  private rejectDropped(pending: Pending): void {
    const message = `another entry was committed at index ${pending.index}: the command was not applied and may be retried`;
    pending.reject(new ReplicaError('dropped', this.raft.status().leader, message));
  }

  /**
   * Leadership can end without a Ready (check-quorum steps down in the same term), so this
   * runs after every Ready and once per tick.
   */
  private maybeFailPending(): void {
    if (this.pending.size === 0 || this.node === undefined) return;
    const status = this.node.status();
    // Pending proposals are kept in proposal order, so their terms never decrease: if the
    // oldest is of the current leadership term, all are.
    const oldest = this.pending.values().next().value as Pending;
    if (status.role === 'leader' && status.term === oldest.term) return;
    for (const pending of [...this.pending.values()]) {
      if (status.role === 'leader' && status.term === pending.term) continue;
      this.pending.delete(pending.index);
      pending.reject(new ReplicaError('outcome-unknown', status.leader, `leadership was lost before index ${pending.index} committed; the command may or may not be applied`));
    }
  }

  private scheduleLeadershipCheck(): void {
    this.leadershipTimer = this.clock.setTimer(this.tickMs, () => {
      if (this.stopped) return;
      this.maybeFailPending();
      this.scheduleLeadershipCheck();
    });
  }

  private failAll(code: ReplicaErrorCode, message: string): void {
    const leader = this.node?.status().leader ?? (0 as NodeId);
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const pending of all) pending.reject(new ReplicaError(code, leader, message));
  }
}
