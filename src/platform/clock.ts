// The real Clock: monotonic milliseconds from performance.now() (never jumps with the
// wall clock, unlike Date.now()), and timers on setTimeout (1 ms granularity).

import type { Clock, Timer } from '../io/clock.js';
import { assert } from '../stdx/assert.js';

export interface RealClockOptions {
  /**
   * Whether pending timers keep the process alive. A server wants true (its tick timer is
   * what keeps it running); a library helper that must not hold the process open, false.
   */
  readonly keepAlive: boolean;
}

export class RealClock implements Clock {
  constructor(private readonly options: RealClockOptions = { keepAlive: true }) {}

  nowMs(): number {
    return performance.now();
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    assert(delayMs >= 0, 'delay must not be negative');
    const handle = setTimeout(fn, delayMs);
    if (!this.options.keepAlive) handle.unref();
    return {
      cancel: () => clearTimeout(handle),
    };
  }
}

/** The process-wide real clock (timers keep the process alive). */
export const realClock: Clock = new RealClock();
