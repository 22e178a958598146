// The 6.824 MapReduce lab tests (test-mr.sh, docs/6824-tests.md §2.5), with the same
// applications, worker counts and acceptance rules, on the lab's Gutenberg input. The
// coordinator and every worker are separate OS processes talking over TCP on loopback.
//
// Where the lab compares with its sequential implementation (mrsequential.go), these tests
// compare with outputs computed from the input files here (helpers.ts, crashOutput below):
// this repository's sequential runner shares the applications and the output code with the
// distributed one, so it would repeat their bugs (issue 12, item 8).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Procs, expectedOutputs, gutenbergFiles, mergedOutput, scratchDir, sleep, sortedOutput, testApp } from './helpers.js';

/** The lab runs each process under `timeout 45s` (the crash test: 120 s). */
const LAB_TIMEOUT_MS = 45_000;
const LAB_CRASH_TIMEOUT_MS = 120_000;

/**
 * The crash and nocrash apps' output for `inputs` (apps/crashlib.ts): under key a the input
 * names, b their lengths in bytes, c the inputs' sizes, d one 'xyzzy' per input; each list
 * sorted as crashReduce sorts it (JavaScript's default sort) and joined by spaces.
 */
async function crashOutput(inputs: readonly string[]): Promise<string> {
  const sizes = await Promise.all(inputs.map(async (input) => String((await stat(input)).size)));
  const values = {
    a: [...inputs],
    b: inputs.map((input) => String(Buffer.byteLength(input))),
    c: sizes,
    d: inputs.map(() => 'xyzzy'),
  };
  return Object.entries(values)
    .map(([key, list]) => `${key} ${list.sort().join(' ')}`)
    .join('\n');
}

/** Starts a coordinator and `workers` workers in `dir`, waits for the coordinator to exit. */
async function runJob(procs: Procs, app: string, inputs: string[], dir: string, workers: number): Promise<void> {
  const { proc, address } = await procs.coordinator(['--app', app, '--out', dir, ...inputs], dir);
  for (let i = 0; i < workers; i++) procs.worker(address, dir);
  const status = await proc.exited;
  assert.equal(status.code, 0, `coordinator failed: ${proc.stderr}`);
}

test('wc: 3 workers produce the word count computed from the input', { timeout: LAB_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const inputs = await gutenbergFiles();
  const expected = await expectedOutputs(inputs);
  // The known figures for this input (data/gutenberg/README.md, counted with tr, sort, uniq).
  const lines = expected.wordCount.split('\n');
  assert.equal(lines.length, 22_107);
  assert.ok(lines.includes('A 509'));
  await runJob(new Procs(t), 'wc', inputs, dir, 3);
  assert.equal(await sortedOutput(dir), expected.wordCount);
});

test('indexer: 2 workers produce the index computed from the input', { timeout: LAB_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const inputs = await gutenbergFiles();
  const expected = await expectedOutputs(inputs);
  await runJob(new Procs(t), 'indexer', inputs, dir, 2);
  assert.equal(await sortedOutput(dir), expected.index);
});

test('map parallelism: 2 workers run map tasks at the same time', { timeout: LAB_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  await runJob(new Procs(t), testApp('mtiming'), await gutenbergFiles(), dir, 2);
  const lines = (await mergedOutput(dir)).split('\n');
  assert.equal(lines.filter((line) => line.startsWith('times-')).length, 2, 'exactly two workers ran map tasks');
  assert.ok(
    lines.some((line) => /^parallel.* 2/.test(line)),
    `no map saw two workers at once:\n${lines.join('\n')}`,
  );
});

test('reduce parallelism: 2 workers run reduce tasks at the same time', { timeout: LAB_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  await runJob(new Procs(t), testApp('rtiming'), await gutenbergFiles(), dir, 2);
  const lines = (await mergedOutput(dir)).split('\n');
  const parallel = lines.filter((line) => /^[a-z] 2/.test(line)).length;
  assert.ok(parallel >= 2, `only ${parallel} reduce calls saw two workers at once:\n${lines.join('\n')}`);
});

test('job count: no map task runs twice when no worker fails', { timeout: LAB_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const procs = new Procs(t);
  const { proc: coordinator, address } = await procs.coordinator(['--app', testApp('jobcount'), '--out', dir, ...(await gutenbergFiles())], dir);
  // Two pairs of workers; the second pair starts once the first pair's foreground worker exits.
  for (let pair = 0; pair < 2; pair++) {
    procs.worker(address, dir);
    await procs.worker(address, dir).exited;
  }
  assert.equal((await coordinator.exited).code, 0, coordinator.stderr);
  const output = await mergedOutput(dir);
  assert.equal(output, 'a 8', 'map tasks must have run exactly 8 times in total');
});

test('early exit: no process exits before every output is final', { timeout: LAB_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const procs = new Procs(t);
  const inputs = await gutenbergFiles();
  const { proc: coordinator, address } = await procs.coordinator(['--app', testApp('early_exit'), '--out', dir, ...inputs], dir);
  const workers = [0, 1, 2].map(() => procs.worker(address, dir));
  const all = [coordinator, ...workers];
  await Promise.race(all.map((proc) => proc.exited));
  const atFirstExit = await mergedOutput(dir);
  await Promise.all(all.map((proc) => proc.exited));
  assert.equal(await mergedOutput(dir), atFirstExit);
  assert.equal(
    atFirstExit,
    inputs
      .map((input) => `${input} 1`)
      .sort()
      .join('\n'),
  );
});

test('crash: workers that die or stall do not change the output', { timeout: LAB_CRASH_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const procs = new Procs(t);
  const inputs = await gutenbergFiles();
  const expected = await crashOutput(inputs);
  // The lab's task timeout (10 s) stays: crashed workers are noticed when their connection
  // closes, stalled ones (up to 10 s) when their lease runs out.
  const { proc: coordinator, address } = await procs.coordinator(['--app', testApp('crash'), '--out', dir, ...inputs], dir);
  let done = false;
  void coordinator.exited.then(() => (done = true));
  procs.worker(address, dir);
  // Three loops keep replacing crashed workers while the coordinator runs, as test-mr.sh does.
  const loops = [0, 1, 2].map(async () => {
    while (!done) {
      await procs.worker(address, dir).exited;
      await sleep(1000);
    }
  });
  const status = await coordinator.exited;
  assert.equal(status.code, 0, coordinator.stderr);
  await Promise.all(loops);
  assert.equal(await sortedOutput(dir), expected);
  assert.ok(!existsSync(join(dir, 'mr-0-0')), 'intermediate files are removed after the job');
});
