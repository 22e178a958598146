// The flags scripts/run-tests.mjs gives node's test runner, in one place, because
// test/arch/no-hang.test.ts runs a planted failing, handle-leaking test file with the same
// flags and checks that the run ends with the failure instead of hanging (issue 23).
//
// --test-force-exit: once a file's last test has reported, its process exits even if a
//   failed test left something running (a timer, a socket, a simulation still looping).
//   Without it, a single test that fails with a handle open stalls the whole run until CI
//   kills it, and the run reports a timeout instead of the failing test's name.
// --test-timeout: in Node 20 the runner applies it to each test file (the file's process is
//   killed and the file fails with "test timed out"); the backstop for a test that never
//   finishes at all. It is far above the slowest file (the process tests: a few minutes);
//   the lab tests and the process tests also carry their own, tighter, per-test timeouts,
//   which name the stuck test.

/** Node's test runner got --test-force-exit in 20.14 (and 22.0). */
export const nodeVersionMin = [20, 14];

/** The most one test file may take before the runner kills it. */
export const testFileTimeoutMs = 15 * 60_000;

export const testRunnerFlags = ['--test', '--test-force-exit', `--test-timeout=${testFileTimeoutMs}`];

/** Why this Node cannot run the suite with these flags, or undefined if it can. */
export function unsupportedNode(version = process.versions.node) {
  const [major, minor] = version.split('.').map(Number);
  const [majorMin, minorMin] = nodeVersionMin;
  if (major > majorMin || (major === majorMin && minor >= minorMin)) return undefined;
  return `Node ${version} is too old to run the tests: they need ${majorMin}.${minorMin} or later (for --test-force-exit)`;
}
