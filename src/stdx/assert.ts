// Assertions that stay on in production (STYLE.md 8). A broken invariant is a programmer
// error: it throws AssertionFailure, which crashes the process (or the simulated node)
// loudly instead of letting it corrupt data.

export class AssertionFailure extends Error {
  override name = 'AssertionFailure';
}

export function assert(condition: boolean, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}

/** Exhaustiveness check for `switch` over a tagged union (STYLE.md 10). */
export function unreachable(value: never, what = 'value'): never {
  throw new AssertionFailure(`unreachable ${what}: ${JSON.stringify(value)}`);
}
