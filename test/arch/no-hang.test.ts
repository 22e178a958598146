// A failing test never hangs the suite (issue 23 item 4). Each case runs node's test runner
// on a planted fixture file (test/fixtures/no-hang/, never run by the suite directly) in a
// process group of its own, and kills the group if it outlives its bound:
//
// - with the flags scripts/run-tests.mjs uses (test-runner-flags.mjs), a failing test that
//   leaves a real interval running ends the run at once, with the test's name and message;
// - without --test-force-exit, the same file reports every result and then does not exit:
//   the fixture really leaks, so the first case proves the flag and not a harmless fixture;
// - a key/value lab test whose planted bug (duplicate detection off) is found by a
//   background client fails as that test, with the client's message (not as an unhandled
//   rejection), and its file exits by itself, without --test-force-exit: the harness stops
//   the cluster and its simulation instead of leaving them running.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { repositoryRoot } from '../repo.js';

interface RunnerFlags {
  readonly testRunnerFlags: readonly string[];
  readonly testFileTimeoutMs: number;
}

/** How long a child may run: far below the per-file timeout in the flags, so only the force-exit can meet it. */
const exitBoundMs = 60_000;
/** How long the control run must stay alive after its last result to count as hanging. */
const hangGraceMs = 2_000;

async function runnerFlags(): Promise<RunnerFlags> {
  const path = join(repositoryRoot(), 'scripts', 'test-runner-flags.mjs');
  const module = (await import(pathToFileURL(path).href)) as RunnerFlags;
  assert.ok(Array.isArray(module.testRunnerFlags) && module.testRunnerFlags.includes('--test'), `${path} exports testRunnerFlags`);
  return module;
}

function fixture(name: string): string {
  const path = fileURLToPath(new URL(`../fixtures/no-hang/${name}`, import.meta.url));
  assert.ok(existsSync(path), `the fixture ${path} is missing: build the tests first (tsc)`);
  return path;
}

interface Run {
  /** null while the child still ran when it was killed. */
  readonly code: number | null;
  readonly output: string;
  readonly elapsedMs: number;
  /** The child was still running when its bound (or the hang check) ended the wait. */
  readonly stillRunning: boolean;
}

/**
 * Runs `node <args>` in its own process group and waits for it to exit, for at most
 * `boundMs`, or — with `hangAfter` — until its output matches `hangAfter` and then
 * `hangGraceMs` more. The whole group (the runner and the file processes it started) is
 * killed if still running at the end, also when this test fails.
 */
async function runNode(args: readonly string[], boundMs: number, hangAfter?: RegExp): Promise<Run> {
  const env = { ...process.env };
  // Set when this file itself runs under `node --test`: it would make the child report to us
  // in the runner's internal format instead of running as a runner of its own.
  delete env['NODE_TEST_CONTEXT'];
  const child = spawn(process.execPath, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const start = performance.now();
  let output = '';
  let code: number | null = null;
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.on('exit', (status) => {
      exited = true;
      code = status;
      resolve();
    });
  });
  let sawHangMarker: (() => void) | undefined;
  const marker = new Promise<void>((resolve) => {
    sawHangMarker = resolve;
  });
  const collect = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    if (hangAfter?.test(output)) sawHangMarker?.();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, boundMs);
  });
  try {
    const afterMarker = marker.then(() => new Promise<void>((resolve) => setTimeout(resolve, hangGraceMs)));
    await Promise.race([exit, bound, ...(hangAfter === undefined ? [] : [afterMarker])]);
    return { code, output, elapsedMs: performance.now() - start, stillRunning: !exited };
  } finally {
    clearTimeout(timer);
    if (!exited && child.pid !== undefined) {
      process.kill(-child.pid, 'SIGKILL');
      await exit;
    }
  }
}

test('with the suite flags, a failing test that leaves an interval running ends the run at once, named, with its message', { timeout: 2 * exitBoundMs }, async () => {
  const { testRunnerFlags, testFileTimeoutMs } = await runnerFlags();
  assert.ok(testRunnerFlags.includes('--test-force-exit'));
  assert.ok(exitBoundMs * 10 <= testFileTimeoutMs, 'the bound is well under the per-file timeout, so the timeout cannot be what ends the run');
  const run = await runNode([...testRunnerFlags, fixture('leaked-interval.js')], exitBoundMs);
  assert.equal(run.stillRunning, false, `the run did not end within ${exitBoundMs} ms:\n${run.output}`);
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /not ok \d+ - no-hang fixture: a failing test that leaves an interval running/);
  assert.match(run.output, /planted failure: the interval is still running/);
  assert.match(run.output, /ok \d+ - no-hang fixture: the last test/);
  assert.doesNotMatch(run.output, /timed out/);
});

test('control: without --test-force-exit, the same file reports every result and then does not exit', { timeout: 2 * exitBoundMs }, async () => {
  const { testRunnerFlags } = await runnerFlags();
  const flags = testRunnerFlags.filter((flag) => flag !== '--test-force-exit');
  const run = await runNode([...flags, fixture('leaked-interval.js')], exitBoundMs, /ok \d+ - no-hang fixture: the last test/);
  assert.match(run.output, /not ok \d+ - no-hang fixture: a failing test that leaves an interval running/);
  assert.equal(run.stillRunning, true, `the fixture exited by itself (${run.code}): it no longer leaks, so the test above proves nothing:\n${run.output}`);
});

test('a KV lab test failing in a background client fails as that test, and its file exits without --test-force-exit', { timeout: 2 * exitBoundMs }, async () => {
  const { testRunnerFlags } = await runnerFlags();
  const flags = testRunnerFlags.filter((flag) => flag !== '--test-force-exit');
  const run = await runNode([...flags, fixture('kv-planted-duplicates.js')], exitBoundMs);
  assert.equal(run.stillRunning, false, `the run did not end within ${exitBoundMs} ms: the cluster was left running:\n${run.output}`);
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /not ok \d+ - no-hang fixture: KV duplicate detection off, found by a background client/);
  assert.match(run.output, /get wrong value, key k/);
  assert.match(run.output, /replay with SEED=\d+/);
  assert.match(run.output, /failureType: 'testCodeFailure'/);
  assert.doesNotMatch(run.output, /unhandledRejection|asynchronous activity after the test ended/);
  assert.match(run.output, /ok \d+ - no-hang fixture: the last test/);
});
