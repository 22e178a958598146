// One CRAQ chain node as a deterministic state machine (STYLE.md 1): `setConfig`, `tick`,
// `step(message)`, `read` and `write` go in; `ready()` hands out what to persist, which
// messages to send and which client requests are answered. No clock, timer, socket or
// promise in here: the host (host.ts) supplies the time as a number and does the I/O.
//
// The protocol is chain replication (van Renesse & Schneider, OSDI 2004) with CRAQ's
// apportioned reads (Terrace & Freedman, ATC 2009):
//
//   client ──write──▶ head ──propagate──▶ middle ──propagate──▶ tail   (commits)
//                     head ◀────ack────── middle ◀────ack─────── tail
//   client ──read───▶ any node: clean → answer; dirty → query the tail's committed version
//
// Writes form one stream numbered by `seq`. Each node holds a contiguous prefix of that
// stream, and a node holds every write any node after it holds (writes only ever enter
// at the head and flow down), which is what every rule below leans on:
// - a node's newest version of a key is at least the tail's, so a clean newest version is
//   the committed one (the read fast path);
// - after a member leaves, its predecessor holds everything the new successor may have
//   missed and re-sends from the successor's acknowledged `receivedSeq`;
// - a new tail holds only writes every member holds, so it may commit them all at once.
//
// A node joining at the tail (or rejoining after a restart) is not `synced`: it serves no
// strong read and answers no version query, and forwards nothing, until its predecessor,
// itself synced, has told it its highest seq and the node has caught up to it (by a
// snapshot of the clean objects if it is behind the predecessor's log, else by the missing
// writes). Every message carries the epoch of the configuration it was sent in, and a node
// drops messages from any other epoch, so a removed node is never taken as anyone's
// successor or tail. Serving strong reads and writes also needs a lease from the
// coordinator (`setLease`): a node cut off from it stops before the coordinator can have
// removed it.

import { assert, unreachable } from '../stdx/assert.js';
import type { NodeId } from '../stdx/types.js';
import { craqLimits } from './limits.js';
import { ObjectStore } from './objects.js';
import type { ChainConfig, ChainSnapshot, ChainWrite, ClientErrorCode, ClientReply, PeerMessage, ReadMode } from './types.js';

export interface CraqNodeOptions {
  /** Ticks without progress from the successor before writes are sent to it again. */
  readonly resendTicks: number;
  /** A node acknowledges to its predecessor at least this often, in ticks. */
  readonly ackTicks: number;
  /**
   * Ticks before an unanswered version query is asked again (of the current tail). Long:
   * it recovers a lost query, and a tail slow under load must not get every query twice.
   */
  readonly queryRetryTicks: number;
  /**
   * Test the tests (STYLE.md 18): a dirty node answers a strong read with its newest
   * version instead of asking the tail. Never set outside tests.
   */
  readonly plantedDirtyReadBug?: boolean;
}

/** Writes sent to the successor beyond what it acknowledged. */
const propagateWindowWrites = 4 * craqLimits.propagateWritesMax;

export const craqNodeDefaults: CraqNodeOptions = { resendTicks: 3, ackTicks: 2, queryRetryTicks: 25 };

/** What a restarted node recovered from its disk (wal.ts): committed state only. */
export interface RecoveredState {
  readonly snapshot: ChainSnapshot | undefined;
  /** Committed writes after the snapshot, contiguous. */
  readonly writes: readonly ChainWrite[];
}

/** What to make durable, before any message of the same Ready is sent. */
export interface Persist {
  /** Replaces everything before it (a state transfer). */
  readonly snapshot: ChainSnapshot | undefined;
  /** New writes, contiguous, following the snapshot or the writes before. */
  readonly writes: readonly ChainWrite[];
  readonly committedSeq: number;
}

export interface Ready {
  readonly persist: Persist;
  readonly messages: readonly { readonly to: NodeId; readonly message: PeerMessage }[];
  readonly replies: readonly { readonly requestId: number; readonly reply: ClientReply }[];
}

interface PendingQuery {
  readonly requestId: number;
  readonly key: string;
  askedTick: number;
}

export class CraqNode {
  readonly id: NodeId;
  private readonly options: CraqNodeOptions;
  private readonly store = new ObjectStore();
  private config: ChainConfig = { epoch: 0, members: [] };
  /**
   * The writes this node holds that a successor may still need: seqs logStartSeq+1 ..
   * highestSeq, in order. Invariant: logStartSeq <= committedSeq <= highestSeq; at most
   * catchUpWritesMax committed writes are kept.
   */
  private log: ChainWrite[] = [];
  private logStartSeq = 0;
  private highestSeq = 0;
  private committedSeq = 0;
  /** Invariant: a synced node holds every committed write. */
  private synced = false;
  private leaseUntilMs = 0;
  private nowMs = 0;
  private tickCount = 0;

  // The successor, as this node knows it (reset when the successor changes).
  /** Highest seq the successor said it holds; -1 until it said. */
  private successorReceivedSeq = -1;
  /** Highest seq sent to the successor since its last sign of progress. */
  private successorSentSeq = 0;
  /** The highestSeq this node last told the successor; -1: not yet. */
  private successorToldSeq = -1;
  private successorSnapshotSent = false;
  private successorTickOfProgress = 0;
  private lastAckTick = 0;
  private ackOwed = false;

  /** Writes from the predecessor beyond a gap, by seq (see stepPropagate). */
  private readonly aheadOfGap = new Map<number, ChainWrite>();
  private readonly pendingWrites = new Map<number, { readonly requestId: number; readonly key: string; readonly version: number }>();
  private readonly pendingQueries = new Map<number, PendingQuery>();
  private nextQueryId = 1;

  private snapshotToPersist: ChainSnapshot | undefined;
  private writesToPersist: ChainWrite[] = [];
  private persistedCommittedSeq = 0;
  private messages: { to: NodeId; message: PeerMessage }[] = [];
  private replies: { requestId: number; reply: ClientReply }[] = [];

  constructor(id: NodeId, options: Partial<CraqNodeOptions> = {}, recovered?: RecoveredState) {
    this.id = id;
    this.options = { ...craqNodeDefaults, ...options };
    if (recovered !== undefined) this.restore(recovered);
  }

  private restore(recovered: RecoveredState): void {
    const base = recovered.snapshot?.seq ?? 0;
    this.store.restore(recovered.snapshot?.objects ?? []);
    this.logStartSeq = base;
    this.highestSeq = base;
    for (const write of recovered.writes) {
      assert(write.seq === this.highestSeq + 1, 'recovered writes are contiguous');
      this.store.addDirty(write);
      this.store.commit(write);
      this.log.push(write);
      this.highestSeq = write.seq;
    }
    this.committedSeq = this.highestSeq;
    this.persistedCommittedSeq = this.committedSeq;
    this.trimLog();
  }

  // ---- Inputs from the host --------------------------------------------------------

  /** A new configuration from the coordinator. Older or equal epochs are ignored. */
  setConfig(config: ChainConfig): void {
    if (config.epoch <= this.config.epoch) return;
    const oldPredecessor = this.predecessor();
    const oldSuccessor = this.successor();
    const wasHead = this.isHead();
    this.config = { epoch: config.epoch, members: [...config.members] };
    if (!this.isMember()) {
      this.leaveChain();
      return;
    }
    if (this.predecessor() === undefined) this.synced = true;
    if (this.successor() !== oldSuccessor) this.becomeSuccessorOf();
    if (wasHead && !this.isHead()) this.failPendingWrites('unknown', 'this node is no longer the head; the write may or may not commit');
    if (this.isTail()) this.commitUpTo(this.highestSeq);
    if (this.predecessor() !== oldPredecessor) this.aheadOfGap.clear();
    if (this.predecessor() !== undefined && this.predecessor() !== oldPredecessor) this.sendAck();
    this.maybeSendToSuccessor();
    this.retryQueries(true);
  }

  /** Strong reads and writes are served until `untilMs` (a lease from the coordinator). */
  setLease(untilMs: number): void {
    this.leaseUntilMs = Math.max(this.leaseUntilMs, untilMs);
  }

  tick(nowMs: number): void {
    assert(nowMs >= this.nowMs, 'time does not go backwards');
    this.nowMs = nowMs;
    this.tickCount++;
    if (!this.isMember()) return;
    if (this.successor() !== undefined && this.tickCount - this.successorTickOfProgress >= this.options.resendTicks) {
      // Nothing heard for a while: whatever was sent may be lost; send it again.
      this.successorTickOfProgress = this.tickCount;
      this.maybeSendToSuccessor(true);
    }
    if (this.tickCount - this.lastAckTick >= this.options.ackTicks) this.sendAck();
    if (!this.leased()) this.failPendingQueries('not-serving', 'this node lost its lease from the coordinator');
    this.retryQueries(false);
  }

  /** Handles one message from a peer (decoded and checked by codec.ts). */
  step(message: PeerMessage): void {
    if (message.epoch !== this.config.epoch || !this.isMember()) return;
    switch (message.type) {
      case 'propagate':
        return this.stepPropagate(message);
      case 'snapshot':
        return this.stepSnapshot(message);
      case 'ack':
        return this.stepAck(message);
      case 'query':
        return this.stepQuery(message);
      case 'query-reply':
        return this.stepQueryReply(message);
      default:
        unreachable(message, 'peer message');
    }
  }

  /** A client's write; answered in a later Ready once the tail committed it. */
  write(requestId: number, key: string, value: string): void {
    if (!this.isHead()) return this.reply(requestId, this.error('not-head', `node ${this.id} is not the head of the chain (epoch ${this.config.epoch})`));
    if (!this.leased()) return this.reply(requestId, this.error('not-serving', `node ${this.id} has no lease from the coordinator`));
    if (this.highestSeq - this.committedSeq >= craqLimits.uncommittedWritesMax) {
      return this.reply(requestId, this.error('overloaded', `${craqLimits.uncommittedWritesMax} writes are waiting to commit (uncommittedWritesMax)`));
    }
    if (!this.store.has(key) && this.store.keyCount() >= craqLimits.keysMax) {
      return this.reply(requestId, this.error('overloaded', `the chain holds ${craqLimits.keysMax} keys (keysMax)`));
    }
    const write: ChainWrite = { seq: this.highestSeq + 1, key, version: this.store.newestVersion(key) + 1, value };
    this.append(write);
    this.pendingWrites.set(write.seq, { requestId, key, version: write.version });
    if (this.isTail()) this.commitUpTo(write.seq);
    this.maybeSendToSuccessor();
  }

  /** A client's read; answered now or, for a dirty strong read, once the tail answers. */
  read(requestId: number, key: string, mode: ReadMode): void {
    switch (mode.kind) {
      case 'eventual':
        return this.answerVersion(requestId, key, this.store.newestVersion(key));
      case 'bounded': {
        const version = Math.min(this.store.newestVersion(key), this.store.cleanVersion(key) + mode.versionsMax);
        return this.answerVersion(requestId, key, version);
      }
      case 'strong':
        return this.readStrong(requestId, key);
      default:
        unreachable(mode, 'read mode');
    }
  }

  private readStrong(requestId: number, key: string): void {
    if (!this.serving()) {
      return this.reply(requestId, this.error('not-serving', `node ${this.id} cannot serve strong reads now (${this.describeServing()})`));
    }
    if (!this.store.isDirty(key) || this.options.plantedDirtyReadBug === true) return this.answerVersion(requestId, key, this.store.newestVersion(key));
    assert(!this.isTail(), 'the tail holds no dirty version');
    if (this.pendingQueries.size >= craqLimits.pendingQueriesMax) {
      return this.reply(requestId, this.error('overloaded', `${craqLimits.pendingQueriesMax} reads are waiting for the tail (pendingQueriesMax)`));
    }
    const queryId = this.nextQueryId++;
    this.pendingQueries.set(queryId, { requestId, key, askedTick: this.tickCount });
    this.sendQuery(queryId, key);
  }

  /** A snapshot of the node's view, for status requests and tests. */
  status(): Extract<ClientReply, { type: 'status' }> {
    return {
      type: 'status',
      id: this.id,
      epoch: this.config.epoch,
      members: this.config.members,
      serving: this.serving(),
      highestSeq: this.highestSeq,
      committedSeq: this.committedSeq,
    };
  }

  /** Tests: the newest and the clean version a node holds of `key`. */
  describeKey(key: string): { newest: number; clean: number } {
    return { newest: this.store.newestVersion(key), clean: this.store.cleanVersion(key) };
  }

  hasReady(): boolean {
    return (
      this.ackOwed || this.messages.length > 0 || this.replies.length > 0 || this.writesToPersist.length > 0 || this.snapshotToPersist !== undefined || this.persistedCommittedSeq !== this.committedSeq
    );
  }

  /** Takes everything to persist, send and answer. Persist first, then send (STYLE.md 3). */
  ready(): Ready {
    const predecessor = this.predecessor();
    if (this.ackOwed && predecessor !== undefined) {
      this.messages.push({ to: predecessor, message: { type: 'ack', epoch: this.config.epoch, from: this.id, receivedSeq: this.highestSeq, committedSeq: this.committedSeq } });
    }
    this.ackOwed = false;
    const ready: Ready = {
      persist: { snapshot: this.snapshotToPersist, writes: this.writesToPersist, committedSeq: this.committedSeq },
      messages: this.messages,
      replies: this.replies,
    };
    this.snapshotToPersist = undefined;
    this.writesToPersist = [];
    this.persistedCommittedSeq = this.committedSeq;
    this.messages = [];
    this.replies = [];
    return ready;
  }

  // ---- Roles -------------------------------------------------------------------------

  private position(): number {
    return this.config.members.indexOf(this.id);
  }

  private isMember(): boolean {
    return this.position() >= 0;
  }

  isHead(): boolean {
    return this.position() === 0;
  }

  isTail(): boolean {
    return this.isMember() && this.position() === this.config.members.length - 1;
  }

  private predecessor(): NodeId | undefined {
    const position = this.position();
    return position > 0 ? this.config.members[position - 1] : undefined;
  }

  private successor(): NodeId | undefined {
    const position = this.position();
    return position >= 0 ? this.config.members[position + 1] : undefined;
  }

  private tail(): NodeId | undefined {
    return this.config.members.at(-1);
  }

  private leased(): boolean {
    return this.nowMs < this.leaseUntilMs;
  }

  /** Whether strong reads may be answered here. */
  serving(): boolean {
    return this.isMember() && this.synced && this.leased();
  }

  private describeServing(): string {
    if (!this.isMember()) return `not in the chain of epoch ${this.config.epoch}`;
    if (!this.synced) return 'still copying state from its predecessor';
    return 'no lease from the coordinator';
  }

  /**
   * Out of the chain (removed while alive: a zombie). Keeps only what it knows is
   * committed, since the chain may have given its uncommitted seqs to other writes, and
   * must copy state again before it serves, if it is ever added back.
   */
  private leaveChain(): void {
    this.failPendingWrites('unknown', `node ${this.id} left the chain before the write committed; it may or may not commit`);
    this.failPendingQueries('not-serving', `node ${this.id} left the chain`);
    this.synced = false;
    this.aheadOfGap.clear();
    this.store.dropDirty();
    this.log.splice(this.committedSeq - this.logStartSeq);
    this.writesToPersist = this.writesToPersist.filter((write) => write.seq <= this.committedSeq);
    this.highestSeq = this.committedSeq;
    this.ackOwed = false;
    this.becomeSuccessorOf();
  }

  private becomeSuccessorOf(): void {
    this.successorReceivedSeq = -1;
    this.successorSentSeq = 0;
    this.successorToldSeq = -1;
    this.successorSnapshotSent = false;
    this.successorTickOfProgress = this.tickCount;
  }

  // ---- Propagation -------------------------------------------------------------------

  private append(write: ChainWrite): void {
    assert(write.seq === this.highestSeq + 1, 'writes are appended in seq order');
    this.store.addDirty(write);
    this.log.push(write);
    this.writesToPersist.push(write);
    this.highestSeq = write.seq;
  }

  /**
   * Writes arriving ahead of a gap wait in a reorder buffer (bounded by the propagation
   * window): messages on a link may overtake each other (the simulator's network does, and
   * re-sends after a loss do), and dropping them would cost a re-send round each time.
   */
  private stepPropagate(message: Extract<PeerMessage, { type: 'propagate' }>): void {
    if (message.from !== this.predecessor()) return;
    for (const write of message.writes) {
      if (write.seq <= this.highestSeq) continue; // A duplicate: held already.
      if (write.seq > this.highestSeq + propagateWindowWrites) break;
      this.aheadOfGap.set(write.seq, write);
    }
    for (;;) {
      const next = this.aheadOfGap.get(this.highestSeq + 1);
      if (next === undefined) break;
      this.aheadOfGap.delete(next.seq);
      if (next.version !== this.store.newestVersion(next.key) + 1) {
        // A version going backwards or skipping: refused, with everything after it.
        this.aheadOfGap.clear();
        break;
      }
      this.append(next);
    }
    this.afterReceiving(message.highestSeq);
  }

  private stepSnapshot(message: Extract<PeerMessage, { type: 'snapshot' }>): void {
    if (message.from !== this.predecessor()) return;
    const snapshot = message.snapshot;
    // A synced node never needs one; one this node is already past is a late duplicate.
    if (this.synced || snapshot.seq <= this.highestSeq) {
      this.afterReceiving(message.highestSeq);
      return;
    }
    this.store.restore(snapshot.objects);
    this.aheadOfGap.clear();
    this.log = [];
    this.logStartSeq = snapshot.seq;
    this.highestSeq = snapshot.seq;
    this.committedSeq = snapshot.seq;
    this.snapshotToPersist = snapshot;
    this.writesToPersist = [];
    assert(this.pendingQueries.size === 0, 'an unsynced node has no strong reads waiting');
    this.afterReceiving(message.highestSeq);
  }

  private afterReceiving(predecessorHighestSeq: number): void {
    if (!this.synced && this.highestSeq >= predecessorHighestSeq) this.synced = true;
    if (this.isTail()) this.commitUpTo(this.highestSeq);
    this.sendAck();
    this.maybeSendToSuccessor();
  }

  private stepAck(message: Extract<PeerMessage, { type: 'ack' }>): void {
    if (message.from !== this.successor()) return;
    if (message.receivedSeq > this.successorReceivedSeq) {
      this.successorReceivedSeq = message.receivedSeq;
      this.successorTickOfProgress = this.tickCount;
    }
    // A successor ahead of this node can only be one that rejoined with a stale log;
    // the snapshot it is about to get replaces what it holds.
    if (message.committedSeq > this.committedSeq && message.receivedSeq <= this.highestSeq) this.commitUpTo(message.committedSeq);
    this.maybeSendToSuccessor();
  }

  /**
   * Sends the successor what it lacks, up to propagateWindowWrites beyond what it
   * acknowledged; a snapshot if it is behind this node's log (or claims writes this node
   * never had). An unsynced node sends nothing: it might not yet hold what its successor
   * needs. `resend` (from tick) starts again from the successor's acknowledged seq.
   */
  private maybeSendToSuccessor(resend = false): void {
    const successor = this.successor();
    if (successor === undefined || !this.synced || this.successorReceivedSeq < 0) return;
    const received = this.successorReceivedSeq;
    if (received < this.logStartSeq || received > this.highestSeq) {
      if (this.successorSnapshotSent && !resend) return;
      this.successorSnapshotSent = true;
      const snapshot: ChainSnapshot = { seq: this.committedSeq, objects: this.store.cleanObjects() };
      this.messages.push({ to: successor, message: { type: 'snapshot', epoch: this.config.epoch, from: this.id, snapshot, highestSeq: this.highestSeq } });
      return;
    }
    if (resend) this.successorSentSeq = received;
    let from = Math.max(received, this.successorSentSeq);
    let batches = 0;
    while (from < this.highestSeq && from - received < propagateWindowWrites) {
      const start = from - this.logStartSeq;
      const writes = this.log.slice(start, start + craqLimits.propagateWritesMax);
      this.sendPropagate(successor, writes);
      from += writes.length;
      batches++;
    }
    this.successorSentSeq = from;
    // Nothing to send, but the successor has not heard how far this node goes: an
    // unsynced successor waits for that to know it caught up.
    if (batches === 0 && (resend || this.successorToldSeq < this.highestSeq)) this.sendPropagate(successor, []);
  }

  private sendPropagate(successor: NodeId, writes: readonly ChainWrite[]): void {
    this.successorToldSeq = this.highestSeq;
    this.messages.push({ to: successor, message: { type: 'propagate', epoch: this.config.epoch, from: this.id, writes, highestSeq: this.highestSeq } });
  }

  /** Owes the predecessor an ack; ready() sends one, with the state of that moment. */
  private sendAck(): void {
    this.lastAckTick = this.tickCount;
    this.ackOwed = this.predecessor() !== undefined;
  }

  // ---- Commit ------------------------------------------------------------------------

  /** Marks every write up to `seq` clean, answers the head's waiting clients, acks upstream. */
  private commitUpTo(seq: number): void {
    assert(seq <= this.highestSeq, 'a node commits only writes it holds');
    if (seq <= this.committedSeq) return;
    for (let next = this.committedSeq + 1; next <= seq; next++) {
      const write = this.log[next - this.logStartSeq - 1];
      assert(write !== undefined && write.seq === next, `write ${next} is in the log`);
      this.store.commit(write);
      const pending = this.pendingWrites.get(next);
      if (pending !== undefined) {
        this.pendingWrites.delete(next);
        this.reply(pending.requestId, { type: 'write', key: pending.key, version: pending.version, seq: next });
      }
    }
    this.committedSeq = seq;
    this.trimLog();
    this.sendAck();
  }

  private trimLog(): void {
    const committedHeld = this.committedSeq - this.logStartSeq;
    const excess = committedHeld - craqLimits.catchUpWritesMax;
    if (excess <= 0) return;
    this.log.splice(0, excess);
    this.logStartSeq += excess;
  }

  // ---- Version queries ---------------------------------------------------------------

  private sendQuery(queryId: number, key: string): void {
    const tail = this.tail();
    if (tail === undefined || tail === this.id) return;
    this.messages.push({ to: tail, message: { type: 'query', epoch: this.config.epoch, from: this.id, queryId, key } });
  }

  private retryQueries(all: boolean): void {
    for (const [queryId, query] of this.pendingQueries) {
      if (!all && this.tickCount - query.askedTick < this.options.queryRetryTicks) continue;
      query.askedTick = this.tickCount;
      // The key may have turned clean meanwhile (or this node became the tail).
      if (!this.store.isDirty(query.key)) {
        this.pendingQueries.delete(queryId);
        this.answerVersion(query.requestId, query.key, this.store.cleanVersion(query.key));
      } else {
        this.sendQuery(queryId, query.key);
      }
    }
  }

  private stepQuery(message: Extract<PeerMessage, { type: 'query' }>): void {
    if (!this.isTail() || !this.serving()) return;
    this.messages.push({
      to: message.from,
      message: { type: 'query-reply', epoch: this.config.epoch, from: this.id, queryId: message.queryId, key: message.key, version: this.store.cleanVersion(message.key) },
    });
  }

  private stepQueryReply(message: Extract<PeerMessage, { type: 'query-reply' }>): void {
    const query = this.pendingQueries.get(message.queryId);
    if (query === undefined || message.from !== this.tail() || query.key !== message.key) return;
    this.pendingQueries.delete(message.queryId);
    // The tail's committed version, or a newer one this node has seen committed since
    // (the older may be gone): the newer was committed after the tail answered, so
    // during the read.
    this.answerVersion(query.requestId, query.key, Math.max(message.version, this.store.cleanVersion(query.key)), true);
  }

  // ---- Replies -----------------------------------------------------------------------

  /** `askedTail`: the version came from a version query (a dirty read), not from this node alone. */
  private answerVersion(requestId: number, key: string, version: number, askedTail = false): void {
    const stored = this.store.find(key, version);
    assert(stored !== undefined, `node ${this.id} holds version ${version} of ${key}`);
    const clean = !askedTail && version <= this.store.cleanVersion(key);
    this.reply(requestId, { type: 'read', key, version, value: stored === null ? null : stored.value, clean });
  }

  private reply(requestId: number, reply: ClientReply): void {
    this.replies.push({ requestId, reply });
  }

  private error(code: ClientErrorCode, message: string): ClientReply {
    return { type: 'error', code, message };
  }

  private failPendingWrites(code: ClientErrorCode, message: string): void {
    for (const pending of this.pendingWrites.values()) this.reply(pending.requestId, this.error(code, message));
    this.pendingWrites.clear();
  }

  private failPendingQueries(code: ClientErrorCode, message: string): void {
    for (const query of this.pendingQueries.values()) this.reply(query.requestId, this.error(code, message));
    this.pendingQueries.clear();
  }
}
