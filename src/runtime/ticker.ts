// One clock timer that ticks every Raft group of a process together (issue 16: groups share
// the event loop's tick). Besides saving a timer per group, ticking together is what makes
// coalescing work: every group's heartbeats to a peer are sent in the same turn of the
// event loop, so the peer transport writes them as one frame (platform/peer-transport.ts).

import { assert } from '../stdx/assert.js';
import type { Clock, Timer } from '../io/clock.js';

export class GroupTicker {
  private readonly subscribers = new Set<() => void>();
  private timer: Timer | undefined = undefined;
  /** The clock time the last tick stands for; ticks fall on multiples of tickMs. */
  private lastTickMs: number;

  constructor(
    private readonly clock: Clock,
    readonly tickMs: number,
  ) {
    assert(Number.isInteger(tickMs) && tickMs >= 1, 'tickMs is a positive integer');
    this.lastTickMs = Math.floor(clock.nowMs() / tickMs) * tickMs;
  }

  /** Calls `onTick` at every tick until the returned function is called. */
  subscribe(onTick: () => void): () => void {
    this.subscribers.add(onTick);
    if (this.timer === undefined) this.schedule();
    return () => {
      this.subscribers.delete(onTick);
      if (this.subscribers.size === 0) this.stop();
    };
  }

  get size(): number {
    return this.subscribers.size;
  }

  private stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private schedule(): void {
    const due = this.lastTickMs + this.tickMs;
    this.timer = this.clock.setTimer(Math.max(0, due - this.clock.nowMs()), () => {
      this.timer = undefined;
      // After a pause, the next tick is the next multiple of tickMs (each node catches up
      // the ticks it missed itself, from the clock: RaftNode).
      this.lastTickMs = Math.max(due, Math.floor(this.clock.nowMs() / this.tickMs) * this.tickMs);
      // A subscriber may unsubscribe (a node stopping) or subscribe during the loop.
      for (const onTick of [...this.subscribers]) onTick();
      if (this.subscribers.size > 0 && this.timer === undefined) this.schedule();
    });
  }
}
