// The replay layer: the primary runs the machine with an environment that records every
// clock read, random draw and timer firing (and every client input) as a numbered log
// entry; the backup runs the same machine from those entries. Pure: the host supplies the
// real clock and PRNG (io.Clock and stdx.Prng, the project's own seams) and moves the
// entries; nothing here does I/O (STYLE.md 1, 2).
//
// The Output Rule (Scales et al. §2.2): an output leaves the primary only once the backup
// acknowledged the log entry that produced it, i.e. the event's last entry. Outputs wait in
// `held` until stepAck() passes their seq; takeOutputs() hands over only released ones and
// traces each release, so the rule can be checked from the trace (trace.ts). With no backup
// attached (after a failover, before re-protection) the primary runs alone and releases at
// once, which the trace records as 'alone'.

import { assert } from '../stdx/assert.js';
import type { Clock } from '../io/clock.js';
import type { Prng } from '../stdx/prng.js';
import { pbLimits } from './limits.js';
import { LogRefusal, type LogEntry, type Machine, type MachineFactory, type PendingTimer, type ReadEvent, type ReplayEnv, type ReplicaSnapshot, type StartEvent, type TraceEvent } from './types.js';

/** Timers and the id counter, shared by both roles (they are part of the replicated state). */
class TimerTable {
  readonly pending = new Map<number, PendingTimer>();
  constructor(
    public nextId: number,
    timers: readonly PendingTimer[],
  ) {
    for (const timer of timers) this.pending.set(timer.id, timer);
  }
  add(tag: string, dueMs: number): number {
    assert(this.pending.size < pbLimits.timersMax, `the machine set more than ${pbLimits.timersMax} timers`);
    const id = this.nextId++;
    this.pending.set(id, { id, tag, dueMs });
    return id;
  }
  /** Due timers, in id order (deterministic). */
  due(nowMs: number): PendingTimer[] {
    return [...this.pending.values()].filter((timer) => timer.dueMs <= nowMs).sort((a, b) => a.id - b.id);
  }
  list(): PendingTimer[] {
    return [...this.pending.values()].sort((a, b) => a.id - b.id);
  }
}

export interface Released<O> {
  readonly requestId: number;
  readonly output: O;
  readonly seq: number;
}

export interface PrimaryOptions {
  readonly epoch: number;
  readonly clock: Clock;
  readonly prng: Prng;
  /**
   * A planted bug for the checkers' own test (STYLE.md 18): release each output as soon as
   * it is produced, before the backup's ack. Never set outside tests.
   */
  readonly plantedBugReplyBeforeAck?: boolean;
}

export class PrimaryOverloaded extends Error {
  override name = 'PrimaryOverloaded';
}

export class PbPrimary<I, O> {
  readonly epoch: number;
  /** Invariant: ackedSeq <= lastSeq; every entry with seq in (shippedSeq, lastSeq] is in `unshipped`. */
  private lastSeq: number;
  private ackedSeq: number;
  private alone = true;
  private readonly timers: TimerTable;
  private unshipped: LogEntry<I>[] = [];
  private readonly held: Released<O>[] = [];
  private readonly trace: TraceEvent[] = [];
  private eventCount = 0;

  constructor(
    private readonly machine: Machine<I, O>,
    start: { seq: number; timers: readonly PendingTimer[]; nextTimerId: number },
    private readonly options: PrimaryOptions,
  ) {
    this.epoch = options.epoch;
    this.lastSeq = start.seq;
    this.ackedSeq = start.seq;
    this.timers = new TimerTable(start.nextTimerId, start.timers);
  }

  /** The last seq logged. */
  seq(): number {
    return this.lastSeq;
  }

  acked(): number {
    return this.ackedSeq;
  }

  isAlone(): boolean {
    return this.alone;
  }

  /** Entries logged but not yet acknowledged (the flow-control measure). */
  unackedCount(): number {
    return this.lastSeq - this.ackedSeq;
  }

  /** Runs one client input; its output is held until the backup acks it (or released at once when alone). */
  submit(requestId: number, input: I): void {
    if (!this.alone && this.unackedCount() >= pbLimits.unackedEntriesMax) throw new PrimaryOverloaded(`${this.unackedCount()} log entries wait for the backup's ack`);
    if (this.held.length >= pbLimits.heldOutputsMax) throw new PrimaryOverloaded(`${this.held.length} outputs are held for the backup's ack`);
    const output = this.runEvent(
      (reads) => ({ kind: 'input', input, reads }),
      (env) => this.machine.apply(input, env),
    );
    this.held.push({ requestId, output, seq: this.lastSeq });
  }

  /** Fires every timer due by the real clock now; each firing is an event of its own. */
  tick(): void {
    const nowMs = this.options.clock.nowMs();
    for (const timer of this.timers.due(nowMs)) {
      this.timers.pending.delete(timer.id);
      this.runEvent(
        (reads) => ({ kind: 'timer', timerId: timer.id, reads }),
        (env) => this.machine.fire(timer.tag, env),
      );
    }
  }

  /** When the next timer is due (clock ms), if any. */
  nextTimerDueMs(): number | undefined {
    let due: number | undefined;
    for (const timer of this.timers.pending.values()) due = due === undefined ? timer.dueMs : Math.min(due, timer.dueMs);
    return due;
  }

  /** The entries to send to the backup, oldest first (each event's entries together). */
  takeEntries(): LogEntry<I>[] {
    const entries = this.unshipped;
    this.unshipped = [];
    if (this.alone) return [];
    for (const entry of entries) this.record({ type: 'shipped', seq: entry.seq });
    return entries;
  }

  /** The backup acknowledged receipt of every entry through `seq`. */
  stepAck(epoch: number, seq: number): void {
    if (epoch !== this.epoch) throw new LogRefusal(epoch < this.epoch ? 'stale-epoch' : 'newer-epoch', `an ack of epoch ${epoch} reached the primary of epoch ${this.epoch}`);
    if (seq > this.lastSeq) throw new LogRefusal('malformed', `the backup acked seq ${seq}, but the log ends at ${this.lastSeq}`);
    if (seq <= this.ackedSeq) return; // A late or repeated ack: nothing new.
    this.ackedSeq = seq;
    this.record({ type: 'acked', seq });
  }

  /** Outputs the Output Rule lets go now, in the order they were produced. */
  takeOutputs(): Released<O>[] {
    let count = 0;
    const releasable = this.alone || this.options.plantedBugReplyBeforeAck === true;
    while (count < this.held.length && (releasable || this.held[count]!.seq <= this.ackedSeq)) count++;
    const released = this.held.splice(0, count);
    for (const item of released) this.record({ type: 'reply', requestId: item.requestId, seq: item.seq });
    return released;
  }

  /**
   * A backup is attached from this snapshot on: later entries are shipped to it and outputs
   * wait for its acks. Outputs produced before (while alone) are already out.
   */
  attachBackup(): ReplicaSnapshot {
    assert(
      this.held.every((item) => item.seq <= this.lastSeq),
      'held outputs are logged',
    );
    this.takeOutputs();
    this.alone = false;
    this.unshipped = [];
    this.ackedSeq = this.lastSeq;
    this.record({ type: 'protected', seq: this.lastSeq });
    return { seq: this.lastSeq, state: this.machine.snapshot(), timers: this.timers.list(), nextTimerId: this.timers.nextId, hash: this.machine.hash() };
  }

  /**
   * The backup is gone (and, in a real deployment, fenced off from going live first): run
   * alone, releasing what was held.
   */
  detachBackup(): void {
    if (this.alone) return;
    this.alone = true;
    this.unshipped = [];
    this.record({ type: 'alone', seq: this.lastSeq });
  }

  traceEvents(): readonly TraceEvent[] {
    return this.trace;
  }

  hash(): string {
    return this.machine.hash();
  }

  events(): number {
    return this.eventCount;
  }

  private runEvent<R>(start: (reads: number) => StartEvent<I>, body: (env: ReplayEnv) => R): R {
    const startSeq = ++this.lastSeq;
    const reads: ReadEvent[] = [];
    const env: ReplayEnv = {
      nowMs: () => {
        const ms = this.options.clock.nowMs();
        reads.push({ kind: 'clock', ms });
        return ms;
      },
      random: () => {
        const value = this.options.prng.nextUint32();
        reads.push({ kind: 'random', value });
        return value;
      },
      setTimer: (delayMs, tag) => {
        assert(delayMs >= 0, 'a timer delay must not be negative');
        return this.timers.add(tag, env.nowMs() + delayMs);
      },
    };
    const result = body(env);
    assert(reads.length <= pbLimits.readsPerEventMax, `an event made ${reads.length} reads`);
    this.unshipped.push({ seq: startSeq, epoch: this.epoch, event: start(reads.length) });
    for (const read of reads) this.unshipped.push({ seq: ++this.lastSeq, epoch: this.epoch, event: read });
    this.eventCount++;
    return result;
  }

  private record(event: TraceEvent): void {
    if (this.trace.length >= pbLimits.traceLinesMax) this.trace.splice(0, this.trace.length / 2);
    this.trace.push(event);
  }
}

export interface Checkpoint {
  readonly seq: number;
  readonly hash: string;
}

/**
 * The backup: refuses any entry that is not exactly the next one of its epoch, acks what
 * it received, and executes an event once all of its entries are in (never ahead of the log).
 */
export class PbBackup<I, O> {
  private epoch: number;
  private machine: Machine<I, O> | undefined;
  private timers = new TimerTable(1, []);
  /** Invariant: appliedSeq <= receivedSeq; `buffer` holds the entries (appliedSeq, receivedSeq]. */
  private receivedSeq = 0;
  private appliedSeq = 0;
  private buffer: LogEntry<I>[] = [];
  /** The latest clock reading replayed: a new primary's clock must not run behind it. */
  private lastClockMs = 0;

  constructor(
    private readonly factory: MachineFactory<I, O>,
    epoch: number,
    private readonly onCheckpoint?: (checkpoint: Checkpoint) => void,
  ) {
    this.epoch = epoch;
  }

  received(): number {
    return this.receivedSeq;
  }

  applied(): number {
    return this.appliedSeq;
  }

  currentEpoch(): number {
    return this.epoch;
  }

  hash(): string {
    if (this.machine === undefined) throw new LogRefusal('no-snapshot', 'the backup has no state yet');
    return this.machine.hash();
  }

  /** Starts (or restarts) from the primary's snapshot. A newer epoch is adopted: the sender won the test-and-set. */
  stepSnapshot(epoch: number, snapshot: ReplicaSnapshot): void {
    this.checkEpoch(epoch, true);
    this.epoch = epoch;
    const machine = this.factory(snapshot.state);
    if (machine.hash() !== snapshot.hash) throw new LogRefusal('divergence', `the snapshot at seq ${snapshot.seq} restores to hash ${machine.hash()}, but the primary's is ${snapshot.hash}`);
    this.machine = machine;
    this.timers = new TimerTable(snapshot.nextTimerId, snapshot.timers);
    this.receivedSeq = snapshot.seq;
    this.appliedSeq = snapshot.seq;
    this.buffer = [];
    this.lastClockMs = 0;
  }

  /** Accepts the next entries; throws LogRefusal (with what was wrong) at the first bad one, keeping those before it. */
  stepEntries(epoch: number, entries: readonly LogEntry<I>[]): void {
    this.checkEpoch(epoch, false);
    if (this.machine === undefined) throw new LogRefusal('no-snapshot', 'log entries arrived before the snapshot they follow');
    for (const entry of entries) {
      if (entry.epoch !== epoch) throw new LogRefusal('malformed', `entry ${entry.seq} is of epoch ${entry.epoch} inside a message of epoch ${epoch}`);
      if (entry.seq <= this.receivedSeq) throw new LogRefusal('duplicate', `entry ${entry.seq} was already received (the log is at ${this.receivedSeq})`);
      if (entry.seq > this.receivedSeq + 1)
        throw new LogRefusal('gap', `entry ${entry.seq} arrived, but the next is ${this.receivedSeq + 1}: entries ${this.receivedSeq + 1}..${entry.seq - 1} are missing`);
      this.buffer.push(entry);
      this.receivedSeq = entry.seq;
    }
  }

  /** Executes every event whose entries are all in. Returns how many ran. */
  replay(): number {
    let ran = 0;
    for (;;) {
      const first = this.buffer[0];
      if (first === undefined) return ran;
      const start = first.event;
      if (start.kind !== 'input' && start.kind !== 'timer') throw new LogRefusal('divergence', `entry ${first.seq} is a ${start.kind} read outside any event`);
      if (this.buffer.length < 1 + start.reads) return ran; // The rest of this event has not arrived: wait for it.
      this.runEvent(start, this.buffer.slice(1, 1 + start.reads));
      this.buffer.splice(0, 1 + start.reads);
      this.appliedSeq = first.seq + start.reads;
      ran++;
      this.onCheckpoint?.({ seq: this.appliedSeq, hash: this.machine!.hash() });
    }
  }

  /**
   * Going live: replay everything received (a trailing event whose entries are not all in
   * produced no acknowledged output and is dropped), then hand over the state to run as
   * primary at `newEpoch`.
   */
  goLive(newEpoch: number): { machine: Machine<I, O>; seq: number; timers: PendingTimer[]; nextTimerId: number; clockMs: number } {
    if (this.machine === undefined) throw new LogRefusal('no-snapshot', 'a backup with no state cannot go live');
    assert(newEpoch > this.epoch, 'a new primary has a higher epoch');
    this.replay();
    this.buffer = [];
    this.receivedSeq = this.appliedSeq;
    this.epoch = newEpoch;
    return { machine: this.machine, seq: this.appliedSeq, timers: this.timers.list(), nextTimerId: this.timers.nextId, clockMs: this.lastClockMs };
  }

  private checkEpoch(epoch: number, adoptNewer: boolean): void {
    if (epoch < this.epoch) throw new LogRefusal('stale-epoch', `a message of epoch ${epoch} reached a backup of epoch ${this.epoch}: its sender was deposed`);
    if (epoch > this.epoch && !adoptNewer) throw new LogRefusal('newer-epoch', `log entries of epoch ${epoch} reached a backup of epoch ${this.epoch} without a snapshot of that epoch`);
  }

  private runEvent(start: StartEvent<I>, reads: readonly LogEntry<I>[]): void {
    const machine = this.machine!;
    let next = 0;
    const take = <K extends ReadEvent['kind']>(kind: K): Extract<ReadEvent, { kind: K }> => {
      const entry = reads[next];
      if (entry === undefined) throw new LogRefusal('divergence', `the machine made more reads than the primary logged for the event at ${reads[0]?.seq ?? '?'}`);
      if (entry.event.kind !== kind) throw new LogRefusal('divergence', `the machine read ${kind} where the primary logged ${entry.event.kind} (entry ${entry.seq})`);
      next++;
      return entry.event as Extract<ReadEvent, { kind: K }>;
    };
    const env: ReplayEnv = {
      nowMs: () => {
        const { ms } = take('clock');
        this.lastClockMs = Math.max(this.lastClockMs, ms);
        return ms;
      },
      random: () => take('random').value,
      setTimer: (delayMs, tag) => this.timers.add(tag, env.nowMs() + delayMs),
    };
    if (start.kind === 'input') machine.apply(start.input, env);
    else {
      const timer = this.timers.pending.get(start.timerId);
      if (timer === undefined) throw new LogRefusal('divergence', `the log fires timer ${start.timerId}, which the machine never set (or already fired)`);
      this.timers.pending.delete(start.timerId);
      machine.fire(timer.tag, env);
    }
    if (next !== reads.length) throw new LogRefusal('divergence', `the machine made ${next} reads where the primary logged ${reads.length}`);
  }
}

/** The first state of a primary that starts with an empty machine (the very first epoch). */
export function emptyStart<I, O>(factory: MachineFactory<I, O>): { machine: Machine<I, O>; seq: number; timers: PendingTimer[]; nextTimerId: number; clockMs: number } {
  return { machine: factory(undefined), seq: 0, timers: [], nextTimerId: 1, clockMs: 0 };
}
