// The host event loop, for the simulator: one macrotask turn lets every pending microtask
// run. With no real I/O pending, the order of these turns is deterministic.

export function yieldToHost(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
