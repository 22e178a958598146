// A discrete-event scheduler on virtual time. Events run in (time, insertion order), so a
// run is a pure function of its seed. Code under simulation is asynchronous (promises), so
// after every event the scheduler yields to the host once, which lets every microtask that
// the event queued run to completion before the next event; the host yield comes from
// platform/ (setImmediate), injected, because sim/ must not touch real timers itself.

import { assert } from '../stdx/assert.js';
import type { Clock, Timer } from '../io/clock.js';

interface Event {
  timeMs: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

const stampsPerMsMax = 2 ** 20;

export type YieldToHost = () => Promise<void>;

export class Scheduler {
  /** Virtual milliseconds since the start of the run. */
  nowMs = 0;
  /** Events run so far. */
  eventCount = 0;
  /** Stamps handed out within the current millisecond (see stampMs). */
  private stampsThisMs = 0;
  private stampMsBase = -1;
  private readonly heap: Event[] = [];
  private seq = 0;
  private sleepers = new Set<{ reject: (error: unknown) => void }>();
  private driving = false;
  private failure: unknown = undefined;

  constructor(private readonly yieldToHost: YieldToHost) {}

  at(timeMs: number, fn: () => void): Timer {
    assert(timeMs >= this.nowMs, 'an event cannot be scheduled in the past');
    const event: Event = { timeMs, seq: this.seq++, fn, cancelled: false };
    this.push(event);
    return {
      cancel: () => {
        event.cancelled = true;
      },
    };
  }

  after(delayMs: number, fn: () => void): Timer {
    assert(delayMs >= 0, 'delay must not be negative');
    return this.at(this.nowMs + delayMs, fn);
  }

  /**
   * A time stamp for a history: the virtual time plus a fraction that grows with every
   * stamp taken inside the same millisecond, so stamps are strictly increasing in the
   * order the code took them. Two operations in one millisecond then keep their real-time
   * order: one that returns before another is called is never taken as concurrent with it.
   * (Fractions are multiples of 2^-20: exact in a double, and a million stamps per
   * virtual millisecond is far more than any test takes.)
   */
  stampMs(): number {
    if (this.stampMsBase !== this.nowMs) {
      this.stampMsBase = this.nowMs;
      this.stampsThisMs = 0;
    }
    this.stampsThisMs++;
    assert(this.stampsThisMs < stampsPerMsMax, 'too many history stamps in one virtual millisecond');
    return this.nowMs + this.stampsThisMs / stampsPerMsMax;
  }

  /**
   * Fails the run at virtual time `limitMs`: every sleeper is rejected with `error`, so a
   * test stuck in virtual time (waiting for something that never happens) ends instead of
   * running on, and a test that is merely slow fails as the lab's 120 s limit fails it.
   */
  failAt(limitMs: number, error: () => Error): Timer {
    return this.at(limitMs, () => {
      throw error();
    });
  }

  /** A Clock on this scheduler's virtual time. */
  clock(): Clock {
    return {
      nowMs: () => this.nowMs,
      setTimer: (delayMs, fn) => this.after(delayMs, fn),
    };
  }

  /**
   * Resolves after `ms` of virtual time. While any caller sleeps, the scheduler runs
   * events; several concurrent sleepers share one driver, so each wakes at its exact
   * virtual time. If an event throws, every sleeper is rejected with that error.
   */
  sleep(ms: number): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const sleeper = { reject };
      this.sleepers.add(sleeper);
      this.after(ms, () => {
        this.sleepers.delete(sleeper);
        resolve();
      });
      if (!this.driving) void this.drive();
    });
  }

  /**
   * Waits for `promise`, which simulated events will settle, running the simulation
   * meanwhile (a plain await would stall it once no one else sleeps).
   */
  async waitOn<T>(promise: Promise<T>): Promise<T> {
    if (this.failure !== undefined) throw this.failure;
    let waiter: { reject: (error: unknown) => void } | undefined;
    const failed = new Promise<never>((_, reject) => {
      waiter = { reject };
    });
    this.sleepers.add(waiter!);
    if (!this.driving) void this.drive();
    try {
      return await Promise.race([promise, failed]);
    } finally {
      this.sleepers.delete(waiter!);
    }
  }

  /** Sleeps in steps of `stepMs` until `predicate` holds or `maxMs` passed; returns it. */
  async waitFor(predicate: () => boolean, maxMs: number, stepMs = 10): Promise<boolean> {
    const deadline = this.nowMs + maxMs;
    while (!predicate()) {
      if (this.nowMs >= deadline) return false;
      await this.sleep(Math.min(stepMs, deadline - this.nowMs));
    }
    return true;
  }

  pendingEventCount(): number {
    return this.heap.length;
  }

  private async drive(): Promise<void> {
    this.driving = true;
    try {
      // Let the caller's other synchronous work (more sleepers) register first.
      await this.yieldToHost();
      while (this.sleepers.size > 0) {
        const event = this.pop();
        assert(event !== undefined, 'the simulation deadlocked: someone waits, but no event is pending');
        if (event.cancelled) continue;
        this.nowMs = event.timeMs;
        this.eventCount++;
        event.fn();
        await this.yieldToHost();
      }
    } catch (error) {
      this.failure = error;
      for (const sleeper of this.sleepers) sleeper.reject(error);
      this.sleepers.clear();
    } finally {
      this.driving = false;
    }
  }

  private push(event: Event): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): Event | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq);
}
