// The logging channel's vocabulary (VMware FT, Scales et al. 2010, §2.1), for a process-
// level state machine instead of a VM: every non-deterministic value the primary's
// machine sees is one log entry with an event sequence number, and every message on the
// channel carries the sender's epoch so that a deposed primary (or a stale backup) is
// refused wherever it is heard.
//
//   seq 41  input  {clientId 7, requestSeq 3, op put}  reads 2   an event starts
//   seq 42  clock  1733590000123                                   a clock read inside it
//   seq 43  random 2891336453                                      a random draw inside it
//   seq 44  timer  id 5, reads 1                                   the next event: a timer fired
//   seq 45  clock  1733590000130
//
// An event's entries are shipped together, after the event ran, so the backup executes an
// event only when it holds all `1 + reads` of its entries: it never runs ahead of the log.

/** A value the machine read (inside an event). */
export type ReadEvent = { readonly kind: 'clock'; readonly ms: number } | { readonly kind: 'random'; readonly value: number };

/** What starts an event: a client's input, or one of the machine's own timers firing. */
export type StartEvent<I> = { readonly kind: 'input'; readonly input: I; readonly reads: number } | { readonly kind: 'timer'; readonly timerId: number; readonly reads: number };

export type LogEvent<I> = StartEvent<I> | ReadEvent;

export interface LogEntry<I> {
  /** Invariant: the entries of one epoch's log have consecutive seqs from the snapshot's seq + 1. */
  readonly seq: number;
  readonly epoch: number;
  readonly event: LogEvent<I>;
}

/** A timer the machine set: it fires at `dueMs` of the machine's (logged) clock. */
export interface PendingTimer {
  readonly id: number;
  readonly tag: string;
  readonly dueMs: number;
}

/** Everything a backup needs to start replaying at `seq` + 1. */
export interface ReplicaSnapshot {
  /** The last log entry the state reflects. */
  readonly seq: number;
  readonly state: unknown;
  readonly timers: readonly PendingTimer[];
  readonly nextTimerId: number;
  /** The machine's state hash, checked by the backup after restoring. */
  readonly hash: string;
}

/** Primary → backup. */
export type ToBackup<I> =
  | { readonly type: 'snapshot'; readonly epoch: number; readonly snapshot: ReplicaSnapshot }
  | { readonly type: 'entries'; readonly epoch: number; readonly entries: readonly LogEntry<I>[] };

/** Backup → primary: the highest seq received (not necessarily executed; FT's Output Rule needs only receipt). */
export interface Ack {
  readonly type: 'ack';
  readonly epoch: number;
  readonly seq: number;
}

/** What the replicated machine may ask of the world; the only door to non-determinism. */
export interface ReplayEnv {
  /** The clock (logged on the primary, replayed on the backup). Never decreases. */
  nowMs(): number;
  /** A uniformly random unsigned 32-bit integer (logged, replayed). */
  random(): number;
  /** Fires `machine.fire(tag)` `delayMs` after now (by the logged clock); returns the timer id. */
  setTimer(delayMs: number, tag: string): number;
}

/**
 * A deterministic state machine: given the same inputs and the same answers from the env,
 * it reaches the same state. It must not touch anything but its own state and the env.
 */
export interface Machine<I, O> {
  apply(input: I, env: ReplayEnv): O;
  fire(tag: string, env: ReplayEnv): void;
  /** A digest of the whole state, equal on every replica at the same seq. */
  hash(): string;
  /** A JSON-able copy of the state. */
  snapshot(): unknown;
}

/** Builds a machine from a snapshot's state (undefined: the empty machine). */
export type MachineFactory<I, O> = (state: unknown) => Machine<I, O>;

/** Refusals of the logging channel: an operating error, with a message that says what was wrong. */
export type LogRefusalCode = 'stale-epoch' | 'newer-epoch' | 'duplicate' | 'gap' | 'malformed' | 'no-snapshot' | 'divergence';

export class LogRefusal extends Error {
  override name = 'LogRefusal';
  constructor(
    readonly code: LogRefusalCode,
    message: string,
  ) {
    super(message);
  }
}

/** One line of the primary's trace, from which the Output Rule is checked. */
export type TraceEvent =
  | { readonly type: 'shipped'; readonly seq: number }
  | { readonly type: 'acked'; readonly seq: number }
  | { readonly type: 'reply'; readonly requestId: number; readonly seq: number }
  | { readonly type: 'alone'; readonly seq: number }
  | { readonly type: 'protected'; readonly seq: number };
