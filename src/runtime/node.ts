// The async shell around one Raft core (DESIGN.md §1, "runtime"): it ticks the core on a
// clock, feeds it messages and proposals, and handles each Ready in the order the core's
// contract demands — persist, then send, then apply, then advance — one Ready at a time.

import { assert } from '../stdx/assert.js';
import type { Prng } from '../stdx/prng.js';
import type { Index, NodeId, Term } from '../stdx/types.js';
import type { Clock, Timer } from '../io/clock.js';
import type { Transport } from '../io/transport.js';
import { RaftCore, type ProposeResult, type Ready, type Role } from '../raft/core.js';
import type { RaftConfig } from '../raft/config.js';
import type { Message } from '../raft/messages.js';
import type { Entry } from '../raft/types.js';
import type { RaftStorage } from './storage.js';

export interface RaftNodeOptions {
  readonly config: RaftConfig;
  readonly prng: Prng;
  readonly clock: Clock;
  /** Real milliseconds per core tick. */
  readonly tickMs: number;
  readonly transport: Transport<Message>;
  readonly storage: RaftStorage;
  /** Called with each committed entry, in log order, exactly once per incarnation. */
  readonly apply: (entry: Entry) => void;
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

export class RaftNode {
  readonly core: RaftCore;
  private readonly options: RaftNodeOptions;
  private timer: Timer | undefined;
  private processing = false;
  private stopped = false;

  private constructor(options: RaftNodeOptions, core: RaftCore) {
    this.options = options;
    this.core = core;
  }

  /** Loads the persisted state and starts ticking. */
  static async open(options: RaftNodeOptions): Promise<RaftNode> {
    const persisted = await options.storage.load();
    const snapshot = persisted.snapshot;
    const core = new RaftCore(options.config, options.prng, {
      hardState: persisted.hardState,
      entries: persisted.entries,
      snapshotIndex: snapshot?.meta.index ?? (0 as Index),
      snapshotTerm: snapshot?.meta.term ?? (0 as Term),
    });
    const node = new RaftNode(options, core);
    node.scheduleTick();
    node.process();
    return node;
  }

  get id(): NodeId {
    return this.core.id;
  }

  /** Proposes a command; returns at once (the entry may or may not commit later). */
  propose(data: Uint8Array): ProposeResult {
    if (this.stopped) return { ok: false, reason: 'not-leader', leader: 0 as NodeId };
    const result = this.core.propose(data);
    this.process();
    return result;
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
  }

  private scheduleTick(): void {
    this.timer = this.options.clock.setTimer(this.options.tickMs, () => {
      if (this.stopped) return;
      this.core.tick();
      this.process();
      this.scheduleTick();
    });
  }

  /** Starts the Ready loop unless it is already running (it re-checks before it ends). */
  private process(): void {
    if (this.processing || this.stopped) return;
    this.processing = true;
    this.runReadyLoop().then(
      () => {
        this.processing = false;
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
      if (ready.entries.length > 0 || ready.hardState !== undefined) {
        await this.options.storage.save({ entries: ready.entries, hardState: ready.hardState, snapshot: undefined });
        if (this.stopped) return;
      }
      for (const message of ready.messages) this.options.transport.send(message.to, message);
      for (const entry of ready.committedEntries) this.options.apply(entry);
      this.core.advance(ready);
      this.options.observer?.(this, ready);
      assert(this.core.log.applied <= this.core.log.committed, 'applied <= committed');
    }
  }
}
