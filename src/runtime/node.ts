// The async shell around one Raft core (DESIGN.md §1, "runtime"): it ticks the core on a
// clock, feeds it messages and proposals, and handles each Ready in the order the core's
// contract demands — persist, then send, then apply, then advance — one Ready at a time.

import { assert } from '../stdx/assert.js';
import type { Prng } from '../stdx/prng.js';
import { type Index, type NodeId, type Term, nodeId } from '../stdx/types.js';
import type { Clock, Timer } from '../io/clock.js';
import type { Transport } from '../io/transport.js';
import { RaftCore, type ProposeResult, type Ready, type Role } from '../raft/core.js';
import type { RaftConfig } from '../raft/config.js';
import type { ConfChange } from '../raft/membership.js';
import type { Message } from '../raft/messages.js';
import type { Entry, Snapshot } from '../raft/types.js';
import type { RaftStorage } from './storage.js';
import type { GroupTicker } from './ticker.js';

export interface RaftNodeOptions {
  readonly config: RaftConfig;
  readonly prng: Prng;
  readonly clock: Clock;
  /** Real milliseconds per core tick. */
  readonly tickMs: number;
  /** Ticks shared with the process's other groups (same tickMs); default: a timer of the node's own. */
  readonly ticker?: GroupTicker;
  readonly transport: Transport<Message>;
  readonly storage: RaftStorage;
  /** Called with each committed entry, in log order, exactly once per incarnation. */
  readonly apply: (entry: Entry) => void;
  /**
   * Replaces the service's state with a snapshot: the persisted one when the node opens,
   * and any the leader sends later. Entries after it follow through `apply`.
   */
  readonly restore?: (snapshot: Snapshot) => void;
  /** Sees every Ready after it was handled (the simulator's checkers). */
  readonly observer?: (node: RaftNode, ready: Ready) => void;
  /** Called if storage fails; the node has stopped by then. */
  readonly onFatal?: (error: unknown) => void;
}

export interface NodeStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: Term;
  readonly leader: NodeId;
  readonly commit: Index;
  readonly applied: Index;
  readonly lastIndex: Index;
}

export class ReadError extends Error {
  override name = 'ReadError';
}

interface PendingRead {
  readonly resolve: (index: Index) => void;
  readonly reject: (error: Error) => void;
  readonly timer: Timer;
  /** Set once the core confirmed the read: serve when applied reaches it. */
  index: Index | undefined;
}

export class RaftNode {
  readonly core: RaftCore;
  private readonly options: RaftNodeOptions;
  private timer: Timer | undefined;
  private unsubscribe: (() => void) | undefined = undefined;
  /** The clock time the last tick stands for. */
  private lastTickMs: number;
  private processing = false;
  private stopped = false;
  private readContext = 0;
  /** True while handing committed entries to the service. */
  private applying = false;
  /** A snapshot the service took while applying; the core takes it after advance(). */
  private deferredSnapshot: { at: Index; data: Uint8Array } | undefined;
  private readonly reads = new Map<number, PendingRead>();

  private constructor(options: RaftNodeOptions, core: RaftCore) {
    this.options = options;
    this.core = core;
    // Ticks fall on multiples of tickMs of the clock. Nodes that share a clock (the
    // simulator's) then tick together and time out in the same instant when their
    // randomized timeouts agree: split votes, the hard case, stay common in simulation.
    this.lastTickMs = Math.floor(options.clock.nowMs() / options.tickMs) * options.tickMs;
  }

  /** Loads the persisted state and starts ticking. */
  static async open(options: RaftNodeOptions): Promise<RaftNode> {
    const persisted = await options.storage.load();
    const core = new RaftCore(options.config, options.prng, persisted);
    if (persisted.snapshot !== undefined) options.restore?.(persisted.snapshot);
    const node = new RaftNode(options, core);
    if (options.ticker === undefined) {
      node.scheduleTick();
    } else {
      assert(options.ticker.tickMs === options.tickMs, "a shared ticker ticks at the node's tickMs");
      node.unsubscribe = options.ticker.subscribe(() => node.tickFromClock());
    }
    node.process();
    return node;
  }

  get id(): NodeId {
    return this.core.id;
  }

  /** The transport lost its connection to `id` (see RaftCore.peerUnreachable). */
  peerUnreachable(id: NodeId): void {
    if (this.stopped) return;
    this.core.peerUnreachable(id);
  }

  /** Proposes a command; returns at once (the entry may or may not commit later). */
  propose(data: Uint8Array): ProposeResult {
    if (this.stopped) return { ok: false, reason: 'not-leader', leader: 0 as NodeId };
    const result = this.core.propose(data);
    this.process();
    return result;
  }

  /** Proposes a single-server membership change. */
  proposeConfChange(change: ConfChange): ProposeResult {
    if (this.stopped) return { ok: false, reason: 'not-leader', leader: 0 as NodeId };
    const result = this.core.proposeConfChange(change);
    this.process();
    return result;
  }

  /**
   * A linearizable read (ReadIndex, thesis §6.4): resolves with an index once this node
   * has applied it, after which reading the local state is linearizable. Rejects with a
   * ReadError after `timeoutMs` (no leader, lost leadership, partition).
   */
  read(timeoutMs: number): Promise<Index> {
    if (this.stopped) return Promise.reject(new ReadError('node stopped'));
    const context = ++this.readContext;
    return new Promise((resolve, reject) => {
      const timer = this.options.clock.setTimer(timeoutMs, () => {
        this.reads.delete(context);
        reject(new ReadError(`read not confirmed within ${timeoutMs} ms`));
      });
      this.reads.set(context, { resolve, reject, timer, index: undefined });
      this.core.readIndex(context);
      this.process();
    });
  }

  /** The service's snapshot at applied index `at`; the log before it may be discarded. */
  snapshot(at: Index, data: Uint8Array): boolean {
    if (this.stopped) return false;
    if (this.applying) {
      // The core counts the entry as applied only at advance(); take it then.
      this.deferredSnapshot = { at, data };
      return true;
    }
    const accepted = this.core.compact(at, data);
    this.process();
    return accepted;
  }

  transferLeadership(to: NodeId): boolean {
    if (this.stopped) return false;
    const accepted = this.core.transferLeadership(to);
    this.process();
    return accepted;
  }

  /** Delivers a message from a peer. */
  receive(message: Message): void {
    if (this.stopped) return;
    this.core.step(message);
    this.process();
  }

  status(): NodeStatus {
    const core = this.core;
    return {
      id: core.id,
      role: core.role,
      term: core.term,
      leader: core.leader,
      commit: core.log.committed,
      applied: core.log.applied,
      lastIndex: core.log.lastIndex(),
    };
  }

  isStopped(): boolean {
    return this.stopped;
  }

  /** Stops ticking and handling; nothing more is persisted, sent or applied. */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const read of this.reads.values()) {
      read.timer.cancel();
      read.reject(new ReadError('node stopped'));
    }
    this.reads.clear();
  }

  private confirmRead(context: number, readIndex: Index): void {
    const read = this.reads.get(context);
    if (read !== undefined) read.index = readIndex;
  }

  /** Resolves every confirmed read whose index this node has applied. */
  private serveReads(): void {
    const applied = this.core.log.applied;
    for (const [context, read] of this.reads) {
      if (read.index === undefined || read.index > applied) continue;
      this.reads.delete(context);
      read.timer.cancel();
      read.resolve(read.index);
    }
  }

  /**
   * With lease reads, ticks the core once per tickMs of the clock, not once per timer
   * callback: after a pause (SIGSTOP, a long GC, a stalled event loop) the timer fires
   * once, late, and the ticks the pause swallowed are caught up at once, so a leader that
   * slept through an election timeout sees its lease run out before it serves a read.
   * With ReadIndex (the default) a late timer is one tick, as before: catching up would
   * run check-quorum before the heartbeat answers queued in the sockets are read, and a
   * leader merely starved of CPU would step down (measured: spurious elections under the
   * test suite's load). ReadIndex needs no clock to be safe.
   */
  private scheduleTick(): void {
    const { clock, tickMs } = this.options;
    const due = this.lastTickMs + tickMs;
    this.timer = clock.setTimer(Math.max(0, due - clock.nowMs()), () => {
      if (this.stopped) return;
      this.tickFromClock();
      this.scheduleTick();
    });
  }

  /** One timer callback's ticks (more than one only when catching up, above). */
  private tickFromClock(): void {
    if (this.stopped) return;
    const { clock, tickMs, config } = this.options;
    // noTickCatchUp: a planted bug (tests only), lease reads without the catch-up.
    const catchUp = config.readMode === 'lease' && config.unsafe?.noTickCatchUp !== true;
    const late = catchUp ? Math.floor((clock.nowMs() - this.lastTickMs) / tickMs) : 1;
    // Past a few election timeouts more ticks change nothing (the bound keeps a resumed
    // laptop from spinning here, and a leader from sending a heartbeat per missed tick).
    const catchUpMax = 3 * config.electionTicks;
    const ticks = Math.min(Math.max(1, late), catchUpMax);
    this.lastTickMs = catchUp && late <= catchUpMax ? this.lastTickMs + ticks * tickMs : clock.nowMs();
    for (let i = 0; i < ticks; i++) this.core.tick();
    this.process();
  }

  /** Starts the Ready loop unless it is already running (it re-checks before it ends). */
  private process(): void {
    if (this.processing || this.stopped) return;
    this.processing = true;
    this.runReadyLoop().then(
      () => {
        this.processing = false;
        // The loop may have found nothing and returned while more work arrived before this
        // callback ran: a proposal in the same turn (one socket read can carry a Raft message
        // and then a forwarded write) saw `processing` and left it to a loop that had ended.
        // Without this re-check it waited for the next tick (measured: 1 in 25 writes through
        // a ZooKeeper follower took a whole 100 ms tick).
        if (!this.stopped && this.core.hasReady()) this.process();
      },
      (error: unknown) => {
        this.processing = false;
        this.stop();
        if (this.options.onFatal === undefined) throw error;
        this.options.onFatal(error);
      },
    );
  }

  private async runReadyLoop(): Promise<void> {
    while (!this.stopped && this.core.hasReady()) {
      const ready = this.core.ready();
      let messages = ready.messages;
      if (ready.entries.length > 0 || ready.hardState !== undefined || ready.snapshot !== undefined) {
        // A leader's appends and heartbeats go out BEFORE its own write (Raft thesis §10.2.1),
        // so the followers' fsyncs overlap the leader's: a write waits for the slower of the
        // two, not their sum. Safe because they depend on nothing this Ready persists (the
        // leader's term and vote were made durable before it could win; the commit index they
        // carry needs a durable quorum) and because the core counts the leader's own entries
        // toward that quorum only once advance() says they are durable. Everything else — a
        // vote, an append response — still waits for the disk.
        const early = messages.filter((message) => message.type === 'App' || message.type === 'Heartbeat');
        if (early.length > 0) {
          for (const message of early) this.options.transport.send(message.to, message);
          messages = messages.filter((message) => message.type !== 'App' && message.type !== 'Heartbeat');
        }
        // Planted bug (tests only): the vote never reaches the disk.
        const hardState = ready.hardState !== undefined && this.options.config.unsafe?.forgetVote === true ? { ...ready.hardState, vote: nodeId(0) } : ready.hardState;
        await this.options.storage.save({ entries: ready.entries, hardState, snapshot: ready.snapshot });
        if (this.stopped) return;
      }
      for (const message of messages) this.options.transport.send(message.to, message);
      this.applying = true;
      try {
        if (ready.snapshot !== undefined && ready.applySnapshot) this.options.restore?.(ready.snapshot);
        for (const entry of ready.committedEntries) this.options.apply(entry);
        // Planted bug (tests only): hand the batch's first entry to the service again.
        const first = ready.committedEntries[0];
        if (first !== undefined && this.options.config.unsafe?.applyTwice === true) this.options.apply(first);
      } finally {
        this.applying = false;
      }
      this.core.advance(ready);
      if (this.deferredSnapshot !== undefined) {
        this.core.compact(this.deferredSnapshot.at, this.deferredSnapshot.data);
        this.deferredSnapshot = undefined;
      }
      for (const state of ready.readStates) this.confirmRead(state.context, state.index);
      this.serveReads();
      this.options.observer?.(this, ready);
      assert(this.core.log.applied <= this.core.log.committed, 'applied <= committed');
    }
  }
}
