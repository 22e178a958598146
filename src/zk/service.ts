// The coordination service on one member: the znode tree (ZkStateMachine) hosted by a
// Replica on its own Raft group, and what every member does around it —
//
//  * writes and session changes become commands in the log. A member that is not the
//    leader forwards the command to the leader (`forward`, over the peer transport); every
//    member applies every command, so the member that took the request learns its result
//    from its OWN apply, by the command's `origin`, and answers from its own state;
//  * watch triggers from each apply go to this member's WatchManager (watches are local);
//  * session liveness: the leader tracks deadlines (SessionTracker) and proposes the expiry
//    of a silent session as one entry; followers report the sessions they heard from once
//    a tick; pings are never logged.
//
// What a request can end in (besides its result): 'timeout' (no apply within
// requestTimeoutMs; it may still apply) and 'stopped'. The front-end closes the client's
// connection on either, as ZooKeeper does when a server loses its leader, and the client
// reconnects and learns what happened from the tree.

import type { Timer } from '../io/clock.js';
import type { DistributiveOmit, NodeId } from '../stdx/types.js';
import { ReadError } from '../runtime/node.js';
import { Replica, ReplicaError, type ReplicaOptions } from '../runtime/replica.js';
import { SessionTracker } from './session-tracker.js';
import { encodeZkCommand, ZkStateMachine, type ZkCommand, type ZkResult } from './state-machine.js';
import type { WatchTrigger } from './types.js';
import { WatchManager } from './watches.js';

export interface ZkServiceOptions extends Omit<ReplicaOptions, 'service'> {
  /** ZooKeeper's tickTime: session timeouts are clamped to [2, 20] ticks; expiry runs per tick. */
  readonly tickTimeMs: number;
  /** How long a command may take to apply before the request fails with 'timeout'. */
  readonly requestTimeoutMs: number;
  /** Wall-clock milliseconds since the epoch, for ctime/mtime (the proposer stamps them). */
  readonly wallClockMs: () => number;
  /** Fresh random bytes (session passwords, this incarnation's nonce). */
  readonly randomBytes: (n: number) => Uint8Array;
  /** Sends a command to the leader for it to propose (followers only). */
  readonly forward: (leader: NodeId, command: Uint8Array) => void;
  /** Sends the ids of sessions heard from to the leader (followers only). */
  readonly reportTouches: (leader: NodeId, sessionIds: readonly number[]) => void;
}

export class ZkRequestError extends Error {
  override name = 'ZkRequestError';
  constructor(
    readonly code: 'timeout' | 'stopped' | 'no-leader',
    message: string,
  ) {
    super(message);
  }
}

interface Waiter {
  resolve(result: ZkResult): void;
  reject(error: ZkRequestError): void;
  timer: Timer;
}

/** Listens to what the member applies: the front-end closes connections of moved or closed sessions. */
export interface SessionListener {
  sessionClosed(sessionId: number): void;
  sessionAttached(sessionId: number, owner: string): void;
}

export class ZkService {
  readonly watches = new WatchManager();
  private readonly waiters = new Map<string, Waiter>();
  private readonly tracker: SessionTracker;
  private readonly touched = new Set<number>();
  private readonly incarnation: string;
  private nextOrigin = 1;
  private wasLeader = false;
  private tickTimer: Timer | undefined;
  private stopped = false;
  private sessionListener: SessionListener | undefined;
  /** When this member last knew a leader (for closing connections when it has none). */
  private leaderSeenMs: number;

  private constructor(
    readonly replica: Replica,
    readonly machine: ZkStateMachine,
    private readonly options: ZkServiceOptions,
  ) {
    this.tracker = new SessionTracker(options.tickTimeMs, options.requestTimeoutMs);
    this.incarnation = hex(options.randomBytes(4));
    this.leaderSeenMs = options.clock.nowMs();
  }

  static async open(options: ZkServiceOptions): Promise<ZkService> {
    const late: { service?: ZkService } = {};
    const machine = new ZkStateMachine({
      onApply: (event) => late.service?.applied(event.command, event.result, event.triggers),
      onRestore: () => late.service?.restored(),
    });
    const replica = await Replica.open({ ...options, service: machine });
    const service = new ZkService(replica, machine, options);
    late.service = service;
    service.scheduleTick();
    return service;
  }

  get memberId(): NodeId {
    return this.options.config.id;
  }

  get tickTimeMs(): number {
    return this.options.tickTimeMs;
  }

  /** A name for a connection on this member, unique across members and restarts. */
  ownerName(connectionId: number): string {
    return `${this.memberId}.${this.incarnation}.${connectionId}`;
  }

  setSessionListener(listener: SessionListener): void {
    this.sessionListener = listener;
  }

  /** Clamps a requested session timeout to [2, 20] ticks (§1.3). */
  negotiateTimeout(requestedMs: number): number {
    const tick = this.options.tickTimeMs;
    return Math.min(20 * tick, Math.max(2 * tick, requestedMs));
  }

  newPassword(): Uint8Array {
    return this.options.randomBytes(16);
  }

  wallClockMs(): number {
    return Math.floor(this.options.wallClockMs());
  }

  /** The leader this member knows (0: none). */
  leader(): NodeId {
    return this.replica.raft.isStopped() ? (0 as NodeId) : this.replica.raft.status().leader;
  }

  /**
   * Proposes a command (through the leader) and resolves with its result as this member
   * applies it. The command's `origin` is filled in here.
   */
  submit(command: DistributiveOmit<ZkCommand, 'origin'>): Promise<ZkResult> {
    if (this.stopped) return Promise.reject(new ZkRequestError('stopped', 'the member is stopping'));
    const leader = this.leader();
    if (leader === 0) return Promise.reject(new ZkRequestError('no-leader', 'this member knows no leader'));
    const origin = `${this.memberId}.${this.incarnation}.${this.nextOrigin++}`;
    const bytes = encodeZkCommand({ ...command, origin } as ZkCommand);
    return new Promise<ZkResult>((resolve, reject) => {
      const timer = this.options.clock.setTimer(this.options.requestTimeoutMs, () => {
        this.waiters.delete(origin);
        reject(new ZkRequestError('timeout', `the command did not apply within ${this.options.requestTimeoutMs} ms; it may still apply`));
      });
      this.waiters.set(origin, { resolve, reject, timer });
      if (leader === this.memberId) this.propose(bytes);
      else this.options.forward(leader, bytes);
    });
  }

  /** A follower forwarded a command: propose it if this member leads (else it is dropped; the follower times out). */
  proposeForwarded(command: Uint8Array): void {
    if (this.stopped || this.leader() !== this.memberId) return;
    this.propose(command);
  }

  /**
   * A sync barrier (§2.5), done as a ReadIndex: resolves once this member has applied every
   * write committed before the call, so a read after it is linearizable.
   */
  async sync(): Promise<void> {
    if (this.stopped) throw new ZkRequestError('stopped', 'the member is stopping');
    try {
      await this.replica.read('linearizable', this.options.requestTimeoutMs);
    } catch (error) {
      if (error instanceof ReadError) throw new ZkRequestError('timeout', `sync was not confirmed: ${error.message}`);
      throw error;
    }
  }

  /** A client's packet arrived for this session (any request, ping included). */
  touch(sessionId: number): void {
    if (this.wasLeader) this.tracker.touch(sessionId, this.options.clock.nowMs());
    else this.touched.add(sessionId);
  }

  /** A follower reported sessions it heard from. */
  touchedElsewhere(sessionIds: readonly number[]): void {
    if (!this.wasLeader) return;
    const now = this.options.clock.nowMs();
    for (const id of sessionIds) this.tracker.touch(id, now);
  }

  /** Whether this member has known no leader for longer than `ms` (its clients should move). */
  leaderlessFor(ms: number): boolean {
    return this.leader() === 0 && this.options.clock.nowMs() - this.leaderSeenMs > ms;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.tickTimer?.cancel();
    for (const [origin, waiter] of this.waiters) {
      waiter.timer.cancel();
      waiter.reject(new ZkRequestError('stopped', 'the member is stopping'));
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

  private applied(command: ZkCommand | undefined, result: ZkResult, triggers: readonly WatchTrigger[]): void {
    // Watches first: a notification must precede any later reply on its connection.
    for (const trigger of triggers) this.watches.trigger(trigger);
    if (command === undefined) return;
    this.trackSession(command, result);
    const waiter = this.waiters.get(command.origin);
    if (waiter === undefined) return;
    this.waiters.delete(command.origin);
    waiter.timer.cancel();
    waiter.resolve(result);
  }

  private trackSession(command: ZkCommand, result: ZkResult): void {
    const now = this.options.clock.nowMs();
    if (command.t === 'open' && result.t === 'session') {
      if (this.wasLeader) this.tracker.track(result.sessionId, result.timeoutMs, now);
    } else if (command.t === 'attach' && result.t === 'session') {
      if (this.wasLeader) this.tracker.touch(result.sessionId, now);
      this.sessionListener?.sessionAttached(result.sessionId, command.owner);
    } else if (command.t === 'close') {
      this.tracker.forget(command.sessionId);
      this.sessionListener?.sessionClosed(command.sessionId);
    }
  }

  private restored(): void {
    if (this.wasLeader) this.tracker.reset(this.machine.sessions(), this.options.clock.nowMs());
    // Connections whose sessions vanished with the restore are closed by the front-end when used.
  }

  private scheduleTick(): void {
    if (this.stopped) return;
    this.tickTimer = this.options.clock.setTimer(Math.max(1, Math.floor(this.options.tickTimeMs / 2)), () => {
      this.tick();
      this.scheduleTick();
    });
  }

  /** Every half tick: follow leadership changes, expire silent sessions, report touches. */
  private tick(): void {
    if (this.replica.raft.isStopped()) return;
    const now = this.options.clock.nowMs();
    const leader = this.leader();
    if (leader !== 0) this.leaderSeenMs = now;
    const leading = leader === this.memberId;
    if (leading && !this.wasLeader) this.tracker.reset(this.machine.sessions(), now);
    if (!leading && this.wasLeader) this.tracker.clear();
    this.wasLeader = leading;
    if (leading) {
      for (const id of this.touched) this.tracker.touch(id, now);
      this.touched.clear();
      for (const sessionId of this.tracker.expired(now)) {
        this.propose(encodeZkCommand({ t: 'close', sessionId, reason: 'expire', origin: `${this.memberId}.${this.incarnation}.expire` }));
      }
    } else if (leader !== 0 && this.touched.size > 0) {
      this.options.reportTouches(leader, [...this.touched]);
      this.touched.clear();
    }
  }
}

/** Omit over each member of a union. */

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}
