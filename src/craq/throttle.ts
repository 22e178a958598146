// A node's emulated capacity: at most `ratePerSecond` client requests start per second,
// the rest wait their turn (a single-server queue). On one machine every node shares the
// same cores, so a per-node limit is what makes a chain's capacity the sum of its nodes'
// (the seed's "throttle each node's CPU or NIC"), for `npm run bench -- craq --processes`.
// Off unless `flotilla craq node --serve-rate-max N` asks for it.

import { assert } from '../stdx/assert.js';
import type { Clock } from '../io/clock.js';

/** A request that would wait longer than this is refused instead (bounded queue). */
export const throttleWaitMsMax = 2_000;

export class Throttle {
  private nextStartMs = 0;
  private readonly intervalMs: number;

  constructor(
    private readonly clock: Clock,
    ratePerSecond: number,
  ) {
    assert(ratePerSecond > 0, 'a throttle has a positive rate');
    this.intervalMs = 1000 / ratePerSecond;
  }

  /** Resolves true when the request may start; false if the queue is too long. */
  admit(): Promise<boolean> {
    const now = this.clock.nowMs();
    const start = Math.max(now, this.nextStartMs);
    if (start - now > throttleWaitMsMax) return Promise.resolve(false);
    this.nextStartMs = start + this.intervalMs;
    if (start <= now) return Promise.resolve(true);
    return new Promise((resolve) => this.clock.setTimer(start - now, () => resolve(true)));
  }
}
