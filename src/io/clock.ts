// Time, injected. Only platform/ reads the real clock; sim/ supplies virtual time.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since an arbitrary, fixed epoch. Never decreases. */
  nowMs(): number;
  /** Calls `fn` once, `delayMs` from now (0 allowed). */
  setTimer(delayMs: number, fn: () => void): Timer;
}
