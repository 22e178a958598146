// Client sessions for exactly-once execution (Raft thesis §6.3), kept inside the
// replicated state so that every member deduplicates the same way and a snapshot carries
// them.
//
// A client numbers its requests 1, 2, 3, ... (seq) and tells, with each one, the highest
// seq up to which it has received every reply (ack). The session keeps the reply of every
// request above ack, so a retry of one gets the same reply without running it again:
//
//   request seq vs the session           | what happens
//   -------------------------------------+-----------------------------------------------
//   seq <= ack                           | session-stale: the client already has the reply
//   a reply for seq is kept              | that reply, the command is not run again
//   otherwise, fewer than the window     | run, keep the reply
//   otherwise                            | session-window-full, not run
//
// Sessions expire after sessionIdleMsMax of log time without a command (the leaders stamp
// commands; the state machine's clock is the largest stamp seen) and, beyond sessionsMax,
// the least recently used goes first. A command of an unknown session with ack > 0 is
// refused (session-expired): its earlier requests may have run, so running it could run
// something twice. The one gap, as in the thesis: a client whose *first* request is
// retried after its session expired runs it again; sessionIdleMsMax is set far above
// any client's retry deadline so that this cannot happen in practice.

import { assert } from '../stdx/assert.js';
import type { SessionStamp } from './codec.js';
import type { KvLimits } from './limits.js';

export interface Session {
  readonly client: number;
  /** Log time of the session's last command. */
  lastMs: number;
  /** Invariant: every kept reply has seq > ack. */
  ack: number;
  /** Replies of requests above ack, by seq. Invariant: size <= sessionRepliesMax. */
  readonly replies: Map<number, Uint8Array>;
}

export type SessionDecision =
  | { readonly kind: 'run'; readonly session: Session }
  | { readonly kind: 'reply'; readonly reply: Uint8Array }
  | { readonly kind: 'refuse'; readonly code: 'session-expired' | 'session-stale' | 'session-window-full'; readonly message: string };

export class SessionTable {
  /** Least recently used first: Map keeps insertion order, and touch() re-inserts. */
  private readonly sessions = new Map<number, Session>();

  constructor(private readonly limits: KvLimits) {}

  get size(): number {
    return this.sessions.size;
  }

  get(client: number): Session | undefined {
    return this.sessions.get(client);
  }

  /** Decides what to do with a request of `stamp` at log time `nowMs`. */
  decide(stamp: SessionStamp, nowMs: number): SessionDecision {
    let session = this.sessions.get(stamp.client);
    if (session === undefined) {
      if (stamp.ack > 0) {
        return { kind: 'refuse', code: 'session-expired', message: `session ${stamp.client} is unknown (expired or evicted); start a new session` };
      }
      session = this.create(stamp.client, nowMs);
    }
    this.touch(session, nowMs);
    this.acknowledge(session, stamp.ack);
    if (stamp.seq <= session.ack) {
      return { kind: 'refuse', code: 'session-stale', message: `request ${stamp.seq} of session ${stamp.client} was already acknowledged` };
    }
    const kept = session.replies.get(stamp.seq);
    if (kept !== undefined) return { kind: 'reply', reply: kept };
    if (session.replies.size >= this.limits.sessionRepliesMax) {
      return { kind: 'refuse', code: 'session-window-full', message: `session ${stamp.client} has ${session.replies.size} unacknowledged requests (sessionRepliesMax)` };
    }
    return { kind: 'run', session };
  }

  /** Keeps the reply of a request that ran. */
  record(session: Session, seq: number, reply: Uint8Array): void {
    assert(seq > session.ack, 'replies are kept only above ack');
    assert(!session.replies.has(seq), 'a request runs once');
    session.replies.set(seq, reply);
  }

  /** Drops sessions idle for longer than sessionIdleMsMax at log time `nowMs`. */
  expire(nowMs: number): void {
    // Least recently used first, so the loop stops at the first live session.
    for (const session of this.sessions.values()) {
      if (nowMs - session.lastMs <= this.limits.sessionIdleMsMax) break;
      this.sessions.delete(session.client);
    }
  }

  /** Sessions in least-recently-used order (a snapshot must keep the order: eviction depends on it). */
  all(): Session[] {
    return [...this.sessions.values()];
  }

  /** Adds a session from a snapshot, as the most recently used so far. */
  load(session: Session): void {
    assert(!this.sessions.has(session.client), 'one session per client');
    this.sessions.set(session.client, session);
  }

  clear(): void {
    this.sessions.clear();
  }

  private create(client: number, nowMs: number): Session {
    while (this.sessions.size >= this.limits.sessionsMax) {
      const oldest = this.sessions.keys().next().value as number;
      this.sessions.delete(oldest);
    }
    const session: Session = { client, lastMs: nowMs, ack: 0, replies: new Map() };
    this.sessions.set(client, session);
    return session;
  }

  private touch(session: Session, nowMs: number): void {
    session.lastMs = nowMs;
    this.sessions.delete(session.client);
    this.sessions.set(session.client, session);
  }

  private acknowledge(session: Session, ack: number): void {
    if (ack <= session.ack) return;
    session.ack = ack;
    for (const seq of [...session.replies.keys()]) if (seq <= ack) session.replies.delete(seq);
  }
}
