// The etcd service on one member: the MVCC store (EtcdStateMachine) hosted by a Replica on
// its own Raft group, and what every member does around it, as the ZooKeeper service does
// (zk/service.ts):
//
//  * writes (Put, DeleteRange, Txn, Compact) become commands in the log. A member that is
//    not the leader forwards the command to the leader (`forward`, over the peer
//    transport); every member applies every command, so the member that took the request
//    learns its outcome from its OWN apply, by the command's `origin`;
//  * a Range is linearizable by default: ReadIndex (a follower asks the leader for the
//    commit index and waits to apply it), then the local store; `serializable` reads the
//    local store at once;
//  * leases (etcd's lessor, lease/lessor.go): grants and revokes are commands; WHEN a lease
//    expires is the leader's decision alone. The leader keeps every lease's deadline in
//    memory (each gets a fresh full TTL when a member becomes leader, etcd's Promote), renews
//    it on keep-alive, checks every leaseCheckIntervalMs and proposes a revoke for each lease
//    past its deadline. Followers never expire anything: a keep-alive or time-to-live that
//    reaches one is asked of the leader over the same peer channel as forwarded commands
//    (leaseAsk / leaseAnswer below), as etcd's followers forward LeaseRenew to the leader.
//
// What a request can end in besides its outcome: EtcdRequestError 'timeout' (no apply within
// requestTimeoutMs; it may still apply), 'no-leader', 'too-many-requests' and 'stopped'.

import type { Timer } from '../io/clock.js';
import type { DistributiveOmit, NodeId } from '../stdx/types.js';
import { ReadError } from '../runtime/node.js';
import { Replica, ReplicaError, type ReplicaOptions } from '../runtime/replica.js';
import { Packr } from 'msgpackr';
import { encodeCommand, type EtcdCommand, leaseTtlMax } from './codec.js';
import type { Bytes, RangeRequest, RangeResult, WatchEvent } from './mvcc.js';
import { type EtcdOutcome, EtcdStateMachine } from './state-machine.js';

export interface EtcdServiceOptions extends Omit<ReplicaOptions, 'service'> {
  /** How long a command may take to apply, or a read to be confirmed, before 'timeout'. */
  readonly requestTimeoutMs: number;
  /** Fresh random bytes (this incarnation's nonce, which keeps origins unique across restarts). */
  readonly randomBytes: (n: number) => Uint8Array;
  /**
   * Sends bytes to another member's etcd service (its receiveForwarded): a command for the
   * leader to propose, or a lease question to the leader and its answer back.
   */
  readonly forward: (member: NodeId, command: Uint8Array) => void;
}

/** How often the leader looks for expired leases (etcd's lessor checks every 500 ms). */
export const leaseCheckIntervalMs = 500;
/** Revokes the leader proposes per check at most (etcd: leaseRevokeRate, 1000 a second). */
export const leaseRevokesPerCheckMax = 500;
/** Lease questions a follower may have outstanding at the leader at once. */
export const leaseAsksMax = 10_000;
/** Leases the table may hold; a grant beyond it is refused (etcd has no bound; STYLE.md 7). */
export const leasesMax = 1_000_000;
/** Leases are granted with ids below this (the store keeps lease ids as numbers): 2^53. */
export const leaseIdLimit = 2 ** 53;

/**
 * etcd's minimum lease TTL in seconds: ceil(1.5 election timeouts), so that a lease outlives
 * a leader change (etcdserver/server.go: minTTL = (3 * electionTicks / 2) * heartbeat). With
 * Flotilla's defaults (10 ticks of 100 ms) it is 2 s, as etcd's defaults give.
 */
export function leaseTtlMinSeconds(electionTicks: number, tickMs: number): number {
  return Math.ceil((3 * electionTicks * tickMs) / 2 / 1000);
}

export class EtcdRequestError extends Error {
  override name = 'EtcdRequestError';
  constructor(
    readonly code: 'timeout' | 'stopped' | 'no-leader' | 'too-many-requests',
    message: string,
  ) {
    super(message);
  }
}

interface Waiter {
  resolve(outcome: EtcdOutcome): void;
  reject(error: EtcdRequestError): void;
  timer: Timer;
}

interface AskWaiter {
  resolve(value: number): void;
  reject(error: EtcdRequestError): void;
  timer: Timer;
}

/** A watch's view of the keyspace: every change to a key in [key, rangeEnd) (rangeEnd as in a Range). */
export interface WatchTarget {
  readonly key: Bytes;
  readonly rangeEnd: Bytes;
}

/** Receives a watch's events, one call per revision (all of one transaction together). */
export type WatchSink = (events: readonly WatchEvent[], revision: number) => void;

interface Watcher {
  readonly target: WatchTarget;
  readonly sink: WatchSink;
}

/** Unsigned byte order, as etcd compares keys. */
function compareBytes(a: Bytes, b: Bytes): number {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Whether `key` is in the watch's range (rangeEnd empty: the key itself; "\0": every key from key on). */
export function inWatchRange(target: WatchTarget, key: Bytes): boolean {
  if (target.rangeEnd.length === 0) return compareBytes(key, target.key) === 0;
  if (compareBytes(key, target.key) < 0) return false;
  if (target.rangeEnd.length === 1 && target.rangeEnd[0] === 0) return true;
  return compareBytes(key, target.rangeEnd) < 0;
}

export class EtcdService {
  private readonly waiters = new Map<string, Waiter>();
  private readonly watchers = new Set<Watcher>();
  private nextOrigin = 1;
  private stopped = false;
  private readonly incarnation: string;
  /** The minimum TTL a grant gets (seconds). */
  readonly leaseTtlMin: number;
  /**
   * The leader's lease deadlines (clock ms), for the term in `promotedTerm` only.
   * Invariant: empty unless this member led in promotedTerm; every lease in the table has one
   * once promoted (grants applied later get theirs as they apply).
   */
  private readonly deadlines = new Map<number, number>();
  private promotedTerm: number | undefined = undefined;
  /** Leases whose revoke this leader proposed, and when (a lost proposal is retried after requestTimeoutMs). */
  private readonly revoking = new Map<number, number>();
  private leaseTimer: Timer | undefined = undefined;
  /** Lease questions asked of the leader, by ask number. Invariant: size <= leaseAsksMax. */
  private readonly asks = new Map<number, AskWaiter>();
  private nextAsk = 1;

  private constructor(
    readonly replica: Replica,
    readonly machine: EtcdStateMachine,
    private readonly options: EtcdServiceOptions,
  ) {
    this.incarnation = Buffer.from(options.randomBytes(6)).toString('hex');
    this.leaseTtlMin = leaseTtlMinSeconds(options.config.electionTicks, options.tickMs);
    machine.listener = {
      applied: (command, outcome, events) => {
        if (events.length > 0) this.notify(events, outcome.revision);
        if (command !== undefined && outcome.ok) this.leaseApplied(command);
        this.applied(command, outcome);
      },
    };
    this.scheduleLeaseCheck();
  }

  static async open(options: EtcdServiceOptions): Promise<EtcdService> {
    const machine = new EtcdStateMachine();
    // The listener is set once the recovered log has replayed: those entries have no waiters.
    const replica = await Replica.open({ ...options, service: machine });
    return new EtcdService(replica, machine, options);
  }

  get memberId(): NodeId {
    return this.options.config.id;
  }

  /** The leader this member knows (0: none). */
  leader(): NodeId {
    return this.replica.raft.isStopped() ? (0 as NodeId) : this.replica.raft.status().leader;
  }

  /** Proposes a write (through the leader) and resolves with its outcome as this member applies it. */
  submit(command: DistributiveOmit<EtcdCommand, 'origin'>): Promise<EtcdOutcome> {
    if (this.stopped) return Promise.reject(new EtcdRequestError('stopped', 'the member is stopping'));
    const leader = this.leader();
    if (leader === 0) return Promise.reject(new EtcdRequestError('no-leader', 'etcdserver: no leader'));
    const origin = `${this.memberId}.${this.incarnation}.${this.nextOrigin++}`;
    const bytes = encodeCommand({ ...command, origin } as EtcdCommand);
    return new Promise<EtcdOutcome>((resolve, reject) => {
      const timer = this.options.clock.setTimer(this.options.requestTimeoutMs, () => {
        this.waiters.delete(origin);
        reject(new EtcdRequestError('timeout', 'etcdserver: request timed out'));
      });
      this.waiters.set(origin, { resolve, reject, timer });
      if (leader === this.memberId) this.propose(bytes);
      else this.options.forward(leader, bytes);
    });
  }

  /**
   * Bytes another member's service sent (options.forward): a lease question for the leader
   * or its answer, else a command to propose if this member leads (else it is dropped; the
   * follower times out).
   */
  proposeForwarded(command: Uint8Array): void {
    if (this.stopped) return;
    if (command[0] === leaseAskTag || command[0] === leaseAnswerTag) {
      this.receiveLeaseMessage(command);
      return;
    }
    if (this.leader() !== this.memberId) return;
    this.propose(command);
  }

  // ---- Leases ------------------------------------------------------------------------------

  /**
   * Grants a lease (etcdserver LeaseGrant): `id` 0 lets this member pick one; the TTL is
   * raised to leaseTtlMin. Resolves with the outcome ('lease-exists' for an id in use).
   */
  grantLease(id: number, ttlSeconds: number): Promise<EtcdOutcome> {
    if (ttlSeconds > leaseTtlMax) return Promise.reject(new EtcdLeaseError('ttl-too-large', 'etcdserver: too large lease TTL'));
    if (id < 0 || id >= leaseIdLimit) return Promise.reject(new EtcdLeaseError('bad-id', `etcdserver: lease id ${id} is out of range: Flotilla keeps lease ids in [1, 2^53)`));
    if (this.machine.leases.size >= leasesMax) return Promise.reject(new EtcdRequestError('too-many-requests', `etcdserver: too many leases (at most ${leasesMax})`));
    const ttl = Math.max(ttlSeconds, this.leaseTtlMin);
    return this.submit({ kind: 'leaseGrant', id: id === 0 ? this.newLeaseId() : id, ttl });
  }

  revokeLease(id: number): Promise<EtcdOutcome> {
    return this.submit({ kind: 'leaseRevoke', id });
  }

  /** A keep-alive: the lease's granted TTL, renewed at the leader; 0 if there is no such lease (or it has just expired). */
  renewLease(id: number): Promise<number> {
    return this.askLeader('renew', id);
  }

  /** Whole seconds the lease has left by the leader's deadline; -1 if there is no such lease. */
  leaseRemaining(id: number): Promise<number> {
    return this.askLeader('remaining', id);
  }

  /** A lease id nobody holds: the member id's low 12 bits above 40 random bits (below 2^53, never 0). */
  private newLeaseId(): number {
    for (let attempt = 0; attempt < 64; attempt++) {
      const random = Buffer.from(this.options.randomBytes(5)).readUIntBE(0, 5);
      const id = (this.memberId % 4096) * 2 ** 40 + random;
      if (id !== 0 && !this.machine.leases.has(id)) return id;
    }
    // Only a broken random source gets here; the state machine still refuses a duplicate.
    throw new Error('no free lease id in 64 random draws');
  }

  private askLeader(question: LeaseQuestion, id: number): Promise<number> {
    if (this.stopped) return Promise.reject(new EtcdRequestError('stopped', 'the member is stopping'));
    const leader = this.leader();
    if (leader === 0) return Promise.reject(new EtcdRequestError('no-leader', 'etcdserver: no leader'));
    if (leader === this.memberId) return Promise.resolve(this.answerLease(question, id));
    if (this.asks.size >= leaseAsksMax) return Promise.reject(new EtcdRequestError('too-many-requests', 'etcdserver: too many requests'));
    const ask = this.nextAsk++;
    return new Promise<number>((resolve, reject) => {
      const timer = this.options.clock.setTimer(this.options.requestTimeoutMs, () => {
        this.asks.delete(ask);
        reject(new EtcdRequestError('timeout', 'etcdserver: request timed out'));
      });
      this.asks.set(ask, { resolve, reject, timer });
      this.options.forward(leader, encodeLeaseAsk({ from: this.memberId, ask, question, id }));
    });
  }

  /** The leader's answer to a lease question (this member leads). */
  private answerLease(question: LeaseQuestion, id: number): number {
    this.maybePromote();
    const ttl = this.machine.leases.ttl(id);
    const deadline = this.deadlines.get(id);
    const now = this.options.clock.nowMs();
    if (question === 'remaining') return ttl === undefined ? -1 : Math.max(0, Math.trunc(((deadline ?? now) - now) / 1000));
    // An expired lease waits for its revoke: etcd's Renew answers not-found then (TTL 0).
    if (ttl === undefined || deadline === undefined || deadline <= now) return 0;
    this.deadlines.set(id, now + ttl * 1000);
    return ttl;
  }

  private receiveLeaseMessage(bytes: Uint8Array): void {
    const message = decodeLeaseMessage(bytes);
    if (message === undefined) return; // malformed: a peer's bug; the asker times out
    if (message.kind === 'ask') {
      const leads = this.leader() === this.memberId;
      const value = leads ? this.answerLease(message.question, message.id) : 0;
      this.options.forward(message.from, encodeLeaseAnswer({ ask: message.ask, leads, value }));
      return;
    }
    const waiter = this.asks.get(message.ask);
    if (waiter === undefined) return;
    this.asks.delete(message.ask);
    waiter.timer.cancel();
    if (message.leads) waiter.resolve(message.value);
    else waiter.reject(new EtcdRequestError('no-leader', 'etcdserver: not leader'));
  }

  /** On the leader: a new term's leadership gives every lease a fresh full TTL (etcd's Promote); elsewhere, no deadlines. */
  private maybePromote(): void {
    const raft = this.replica.raft;
    const status = raft.isStopped() ? undefined : raft.status();
    if (status === undefined || status.leader !== this.memberId) {
      this.deadlines.clear();
      this.revoking.clear();
      this.promotedTerm = undefined;
      return;
    }
    if (this.promotedTerm === status.term) return;
    this.promotedTerm = status.term;
    this.deadlines.clear();
    this.revoking.clear();
    const now = this.options.clock.nowMs();
    for (const lease of this.machine.leases.list()) this.deadlines.set(lease.id, now + lease.ttl * 1000);
  }

  private leaseApplied(command: EtcdCommand): void {
    if (command.kind === 'leaseRevoke') {
      this.deadlines.delete(command.id);
      this.revoking.delete(command.id);
    } else if (command.kind === 'leaseGrant' && this.promotedTerm !== undefined) {
      this.deadlines.set(command.id, this.options.clock.nowMs() + command.ttl * 1000);
    }
  }

  private scheduleLeaseCheck(): void {
    this.leaseTimer = this.options.clock.setTimer(leaseCheckIntervalMs, () => {
      if (this.stopped) return;
      this.checkLeases();
      this.scheduleLeaseCheck();
    });
  }

  /** The leader proposes a revoke for each lease past its deadline (by id; at most leaseRevokesPerCheckMax). */
  checkLeases(): void {
    this.maybePromote();
    if (this.promotedTerm === undefined) return;
    const now = this.options.clock.nowMs();
    const expired = [...this.deadlines].filter(([id, deadline]) => deadline <= now && !this.revokePending(id, now)).map(([id]) => id);
    for (const id of expired.sort((a, b) => a - b).slice(0, leaseRevokesPerCheckMax)) {
      this.revoking.set(id, now);
      this.propose(encodeCommand({ kind: 'leaseRevoke', origin: `${this.memberId}.${this.incarnation}.${this.nextOrigin++}`, id }));
    }
  }

  private revokePending(id: number, now: number): boolean {
    const since = this.revoking.get(id);
    return since !== undefined && now - since < this.options.requestTimeoutMs;
  }

  /** A Range: linearizable (ReadIndex first) unless `serializable`. Throws MvccError for a compacted or future revision. */
  async range(request: RangeRequest, serializable: boolean): Promise<{ result: RangeResult; revision: number }> {
    if (this.stopped) throw new EtcdRequestError('stopped', 'the member is stopping');
    if (!serializable) await this.readBarrier();
    return { result: this.machine.store.range(request), revision: this.machine.store.revision };
  }

  /** Resolves once this member has applied every write committed before the call. */
  async readBarrier(): Promise<void> {
    if (this.leader() === 0) throw new EtcdRequestError('no-leader', 'etcdserver: no leader');
    try {
      await this.replica.read('linearizable', this.options.requestTimeoutMs);
    } catch (error) {
      if (error instanceof ReadError) throw new EtcdRequestError('timeout', 'etcdserver: request timed out');
      throw error;
    }
  }

  /**
   * Starts a watch on this member's store. With `startRevision` (> 0) the events since then
   * come first, from the kept history; 'compacted' if part of it is gone. Returns the
   * revision the watch is current at, and a function that ends it. Every later change in the
   * target reaches `sink` as this member applies it: in revision order, none skipped, none
   * twice (catch-up and subscription happen in one turn, so nothing falls between them).
   */
  watch(target: WatchTarget, startRevision: number, sink: WatchSink): { revision: number; cancel: () => void } | { compacted: number } {
    const store = this.machine.store;
    if (startRevision > 0 && startRevision <= store.revision) {
      const past = store.eventsSince(startRevision - 1, target.key, target.rangeEnd);
      if (past === 'compacted') return { compacted: store.compactRevision };
      for (const [revision, events] of byRevision(past)) sink(events, revision);
    }
    const watcher: Watcher = { target, sink };
    this.watchers.add(watcher);
    return { revision: store.revision, cancel: () => this.watchers.delete(watcher) };
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.watchers.clear();
    this.leaseTimer?.cancel();
    this.deadlines.clear();
    for (const [ask, waiter] of this.asks) {
      waiter.timer.cancel();
      waiter.reject(new EtcdRequestError('stopped', 'the member is stopping'));
      this.asks.delete(ask);
    }
    for (const [origin, waiter] of this.waiters) {
      waiter.timer.cancel();
      waiter.reject(new EtcdRequestError('stopped', 'the member is stopping'));
      this.waiters.delete(origin);
    }
    this.replica.stop();
  }

  private propose(command: Uint8Array): void {
    this.replica.submit(command).catch((error: unknown) => {
      // The waiter (if this member's) times out; a refusal here is only worth failing fast.
      if (!(error instanceof ReplicaError)) throw error;
    });
  }

  private notify(events: readonly WatchEvent[], revision: number): void {
    for (const watcher of [...this.watchers]) {
      const mine = events.filter((event) => inWatchRange(watcher.target, event.kv.key));
      if (mine.length > 0) watcher.sink(mine, revision);
    }
  }

  private applied(command: EtcdCommand | undefined, outcome: EtcdOutcome): void {
    if (command === undefined) return;
    const waiter = this.waiters.get(command.origin);
    if (waiter === undefined) return;
    this.waiters.delete(command.origin);
    waiter.timer.cancel();
    waiter.resolve(outcome);
  }
}

/** An etcd lease error the proposer detects before proposing (the gRPC layer maps it). */
export class EtcdLeaseError extends Error {
  override name = 'EtcdLeaseError';
  constructor(
    readonly code: 'ttl-too-large' | 'bad-id',
    message: string,
  ) {
    super(message);
  }
}

// ---- Lease questions between members ----------------------------------------------------
//
// Sent with options.forward like commands; a tag byte no command starts with (a command is a
// MessagePack array, 0x90-0x9f or 0xdc/0xdd), then MessagePack:
//   ask     0xe1 [from, ask, question (0 renew, 1 remaining), leaseId]
//   answer  0xe2 [ask, leads, value]

type LeaseQuestion = 'renew' | 'remaining';
const leaseAskTag = 0xe1;
const leaseAnswerTag = 0xe2;
const leaseQuestions: readonly LeaseQuestion[] = ['renew', 'remaining'];
const leasePackr = new Packr({ useRecords: false });

type LeaseMessage =
  | { readonly kind: 'ask'; readonly from: NodeId; readonly ask: number; readonly question: LeaseQuestion; readonly id: number }
  | { readonly kind: 'answer'; readonly ask: number; readonly leads: boolean; readonly value: number };

function tagged(tag: number, fields: unknown[]): Uint8Array {
  const body = leasePackr.pack(fields);
  const out = new Uint8Array(body.length + 1);
  out[0] = tag;
  out.set(body, 1);
  return out;
}

export function encodeLeaseAsk(m: { from: NodeId; ask: number; question: LeaseQuestion; id: number }): Uint8Array {
  return tagged(leaseAskTag, [m.from, m.ask, leaseQuestions.indexOf(m.question), m.id]);
}

export function encodeLeaseAnswer(m: { ask: number; leads: boolean; value: number }): Uint8Array {
  return tagged(leaseAnswerTag, [m.ask, m.leads, m.value]);
}

/** A validated lease message, or undefined if the bytes are not one (STYLE.md 6). */
export function decodeLeaseMessage(bytes: Uint8Array): LeaseMessage | undefined {
  let raw: unknown;
  try {
    raw = leasePackr.unpack(bytes.subarray(1));
  } catch {
    return undefined;
  }
  const int = (value: unknown, min: number): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= min;
  if (!Array.isArray(raw)) return undefined;
  if (bytes[0] === leaseAskTag) {
    const [from, ask, question, id] = raw as unknown[];
    if (raw.length !== 4 || !int(from, 1) || from > 0xffff_ffff || !int(ask, 1) || !int(id, 0)) return undefined;
    const named = typeof question === 'number' ? leaseQuestions[question] : undefined;
    if (named === undefined) return undefined;
    return { kind: 'ask', from: from as NodeId, ask, question: named, id };
  }
  if (bytes[0] !== leaseAnswerTag) return undefined;
  const [ask, leads, value] = raw as unknown[];
  if (raw.length !== 3 || !int(ask, 1) || typeof leads !== 'boolean' || !int(value, -1)) return undefined;
  return { kind: 'answer', ask, leads, value };
}

/** Events grouped by their revision (mod revision), in order. */
function byRevision(events: readonly WatchEvent[]): Array<[number, WatchEvent[]]> {
  const groups: Array<[number, WatchEvent[]]> = [];
  for (const event of events) {
    const last = groups.at(-1);
    if (last !== undefined && last[0] === event.kv.modRevision) last[1].push(event);
    else groups.push([event.kv.modRevision, [event]]);
  }
  return groups;
}
