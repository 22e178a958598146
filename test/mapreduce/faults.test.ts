// Bad input and faults through the real command line: each gives a clear error naming what
// failed, within bounded time, and never a hang.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Procs, expectedOutputs, gutenbergFiles, scratchDir, sortedOutput, testApp } from './helpers.js';

const FAULT_TIMEOUT_MS = 30_000;

test('a missing input file is refused before the job starts', { timeout: FAULT_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const missing = join(dir, 'no-such-book.txt');
  const run = new Procs(t).start(['mr', 'run', '--app', 'wc', '--workers', '1', '--out', join(dir, 'out'), missing], dir);
  assert.equal((await run.exited).code, 2);
  assert.match(run.stderr, new RegExp(`cannot read input file "${missing}": ENOENT`));
});

test('an input that disappears after the job started fails its map task, named, after 3 attempts', { timeout: FAULT_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const input = join(dir, 'vanishing.txt');
  await writeFile(input, 'here today');
  const procs = new Procs(t);
  const { proc: coordinator, address } = await procs.coordinator(['--app', 'wc', '--out', join(dir, 'out'), input], dir);
  await rm(input);
  const worker = procs.worker(address, dir);
  assert.equal((await coordinator.exited).code, 1);
  assert.match(coordinator.stderr, new RegExp(`job failed .*: map task 0 \\(input "${input}"\\) failed 3 times; last error: cannot read input file "${input}": ENOENT`));
  assert.equal((await worker.exited).code, 1);
});

test('an application module that throws while loading stops the job with its error', { timeout: FAULT_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const run = new Procs(t).start(['mr', 'run', '--app', testApp('broken'), '--workers', '2', '--out', dir, ...(await gutenbergFiles())], dir);
  assert.equal((await run.exited).code, 1);
  assert.match(run.stderr, /job failed .*could not start: cannot load application ".*broken\.(ts|js)": this module is broken on purpose/);
});

test('a module that is not an application, or does not exist, is refused', { timeout: FAULT_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const procs = new Procs(t);
  const inputs = await gutenbergFiles();
  const notApp = procs.start(['mr', 'run', '--app', testApp('notanapp'), '--workers', '1', '--out', dir, ...inputs], dir);
  const missing = procs.start(['mr', 'run', '--app', join(dir, 'nothing.js'), '--workers', '1', '--out', dir, ...inputs], dir);
  assert.equal((await notApp.exited).code, 1);
  assert.match(notApp.stderr, /must export functions map\(filename, contents\) and reduce\(key, values\)/);
  assert.equal((await missing.exited).code, 2);
  assert.match(missing.stderr, /application module not found: .*nothing\.js/);
});

test('a map function that throws is retried a bounded number of times, then the job stops naming the task', { timeout: FAULT_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const inputs = await gutenbergFiles();
  const grimm = inputs.findIndex((input) => input.includes('grimm'));
  const run = new Procs(t).start(['mr', 'run', '--app', testApp('throws'), '--workers', '2', '--out', dir, ...inputs], dir);
  assert.equal((await run.exited).code, 1);
  assert.match(run.stderr, new RegExp(`job failed .*: map task ${grimm} \\(input ".*pg-grimm.txt"\\) failed 3 times; last error: map\\(".*pg-grimm.txt"\\) threw: the wolf ate the input`));
});

test('a worker given a dead coordinator address exits with a clear error', { timeout: FAULT_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const procs = new Procs(t);
  const worker = procs.worker('127.0.0.1:1', dir);
  assert.equal((await worker.exited).code, 1);
  assert.match(worker.stderr, /cannot reach the coordinator at 127\.0\.0\.1:1: .*ECONNREFUSED/);
});

test('mr run reports a summary and writes the lab output files', { timeout: FAULT_TIMEOUT_MS }, async (t) => {
  const dir = await scratchDir(t);
  const inputs = await gutenbergFiles();
  // The figures come from the input, not from an earlier run: wc's map emits one record per
  // distinct word of its document, and the output has one line per distinct word.
  const expected = await expectedOutputs(inputs);
  const mebibytes = (expected.inputBytes / 2 ** 20).toFixed(1).replace('.', '\\.');
  const run = new Procs(t).start(['mr', 'run', '--app', 'wc', '--reduce', '4', '--workers', '2', '--out', dir, ...inputs], dir);
  assert.equal((await run.exited).code, 0, run.stderr);
  const summary = new RegExp(
    `mr: done in [\\d.]+ s: ${mebibytes} MiB in ${inputs.length} map tasks, ${expected.distinctWordsPerInput} map records, ${expected.distinctWords} output lines in 4 files .* 0 tasks retried, [12] workers?`,
  );
  assert.match(run.stdout, summary);
  assert.equal(await sortedOutput(dir), expected.wordCount, 'the output files hold the word count of the input');
});
