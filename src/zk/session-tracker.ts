// Session liveness on the leader (docs/zookeeper.md §2.1). Which sessions
// exist, and their timeouts, are replicated state; when each was last heard from is the
// leader's soft state, as in ZooKeeper: a member that becomes leader starts every session's
// deadline afresh from "now", so a failover never expires a healthy session as long as it
// completes within the session's timeout. Followers report the sessions they heard from.
//
// Deadlines are rounded up to the tick (ZooKeeper's ExpiryQueue buckets), so one check per
// tick expires whole buckets. A session handed to expire() is not handed out again until
// it is forgotten (its close applied) or `retryMs` passed (the close may have been lost).

export class SessionTracker {
  /** sessionId → deadline (ms on the injected clock). */
  private readonly deadlines = new Map<number, number>();
  private readonly timeouts = new Map<number, number>();
  /** sessionId → when its expiry was last proposed. */
  private readonly expiring = new Map<number, number>();

  constructor(
    private readonly tickMs: number,
    private readonly retryMs: number,
  ) {}

  /** Starts tracking every session afresh (this member just became leader). */
  reset(sessions: Iterable<{ sessionId: number; timeoutMs: number }>, nowMs: number): void {
    this.deadlines.clear();
    this.timeouts.clear();
    this.expiring.clear();
    for (const { sessionId, timeoutMs } of sessions) this.track(sessionId, timeoutMs, nowMs);
  }

  clear(): void {
    this.deadlines.clear();
    this.timeouts.clear();
    this.expiring.clear();
  }

  track(sessionId: number, timeoutMs: number, nowMs: number): void {
    this.timeouts.set(sessionId, timeoutMs);
    this.touch(sessionId, nowMs);
  }

  forget(sessionId: number): void {
    this.deadlines.delete(sessionId);
    this.timeouts.delete(sessionId);
    this.expiring.delete(sessionId);
  }

  /** The session was heard from: its deadline moves to now + timeout (rounded up to the tick). */
  touch(sessionId: number, nowMs: number): void {
    const timeout = this.timeouts.get(sessionId);
    if (timeout === undefined) return;
    this.deadlines.set(sessionId, Math.ceil((nowMs + timeout) / this.tickMs) * this.tickMs);
  }

  /** Sessions past their deadline that should be expired now. */
  expired(nowMs: number): number[] {
    const out: number[] = [];
    for (const [sessionId, deadline] of this.deadlines) {
      if (deadline > nowMs) continue;
      const proposed = this.expiring.get(sessionId);
      if (proposed !== undefined && nowMs - proposed < this.retryMs) continue;
      this.expiring.set(sessionId, nowMs);
      out.push(sessionId);
    }
    return out;
  }

  get size(): number {
    return this.deadlines.size;
  }
}
