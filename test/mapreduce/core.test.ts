// The MapReduce logic without processes or sockets: the coordinator's state machine on a
// manual clock, workers running in-process against an in-memory disk, the sequential
// reference, partitioning, ordering, and the decoders.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Clock, Timer } from '../../src/io/clock.js';
import { Coordinator, type CoordinatorConfig } from '../../src/mapreduce/coordinator.js';
import { JobFailedError } from '../../src/mapreduce/errors.js';
import { ihash } from '../../src/mapreduce/hash.js';
import { decodeGroupsInto } from '../../src/mapreduce/intermediate.js';
import { ProtocolError, decodeRequest, decodeResponse, type Request, type Response } from '../../src/mapreduce/protocol.js';
import { runSequential } from '../../src/mapreduce/sequential.js';
import { compareKeys, type MapReduceApp } from '../../src/mapreduce/types.js';
import { runWorker, type WorkerOutcome } from '../../src/mapreduce/worker.js';
import { forEachWord } from '../../src/mapreduce/apps/words.js';
import * as wc from '../../src/mapreduce/apps/wc.js';
import * as indexer from '../../src/mapreduce/apps/indexer.js';
import { FsDisk } from '../../src/platform/fs-disk.js';
import { MemoryDisk } from './memory-disk.js';
import { gutenbergFiles } from './helpers.js';

/** Time moves only when a timer is set: a sleeping worker advances it by its delay. */
class ManualClock implements Clock {
  now = 0;
  nowMs(): number {
    return this.now;
  }
  setTimer(delayMs: number, fn: () => void): Timer {
    this.now += delayMs;
    const handle = setImmediate(fn);
    return { cancel: () => clearImmediate(handle) };
  }
}

function config(overrides: Partial<CoordinatorConfig> = {}): CoordinatorConfig {
  return { app: 'wc', inputs: ['in/a', 'in/b', 'in/c'], reduceCount: 2, workDir: '/job', taskTimeoutMs: 10_000, taskFailuresMax: 3, waitPollMs: 50, ...overrides };
}

test('ihash is the lab FNV-1a 32 masked to 31 bits', () => {
  assert.equal(ihash(''), 0x811c9dc5 & 0x7fffffff);
  assert.equal(ihash('a'), 0xe40c292c & 0x7fffffff);
  assert.equal(ihash('foobar'), 0xbf9cf968 & 0x7fffffff);
  // Non-ASCII keys hash their UTF-8 bytes.
  const fnv = (bytes: Uint8Array) => bytes.reduce((hash, byte) => Math.imul(hash ^ byte, 0x01000193) >>> 0, 0x811c9dc5) & 0x7fffffff;
  for (const key of ['é', 'naïve', '日本語', '\u{1F600}']) assert.equal(ihash(key), fnv(Buffer.from(key)), key);
});

test('compareKeys is byte-wise UTF-8 order', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
      const expected = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
      assert.equal(Math.sign(compareKeys(a, b)), expected);
    }),
    { seed: 6824, numRuns: 2000 },
  );
  assert.ok(compareKeys('\u{1F600}', '\uFFFD') > 0, 'an astral character sorts after U+FFFD in UTF-8');
});

test('words are maximal runs of letters, Unicode letters included', () => {
  const words: string[] = [];
  forEachWord("It's 1 naïve día—日本語 x2y, end", (word) => words.push(word));
  assert.deepEqual(words, ['It', 's', 'naïve', 'día', '日本語', 'x', 'y', 'end']);
});

test('the coordinator hands out reduce tasks only after every map task is done', () => {
  const clock = new ManualClock();
  const coordinator = new Coordinator(config(), clock);
  assert.deepEqual(coordinator.handle(1, { type: 'hello' }), { type: 'welcome', workerId: 1, app: 'wc', reduceCount: 2, workDir: '/job' });
  const maps = [0, 1, 2].map(() => coordinator.handle(1, { type: 'getTask', workerId: 1 }));
  assert.deepEqual(
    maps.map((task) => task.type === 'map' && task.file),
    ['in/a', 'in/b', 'in/c'],
  );
  assert.equal(coordinator.handle(1, { type: 'getTask', workerId: 1 }).type, 'wait');
  for (const taskId of [0, 1]) coordinator.handle(1, { type: 'taskDone', workerId: 1, kind: 'map', taskId, records: 1, bytesIn: 1 });
  assert.equal(coordinator.handle(1, { type: 'getTask', workerId: 1 }).type, 'wait', 'one map is still running');
  coordinator.handle(1, { type: 'taskDone', workerId: 1, kind: 'map', taskId: 2, records: 1, bytesIn: 1 });
  assert.deepEqual(coordinator.handle(1, { type: 'getTask', workerId: 1 }), { type: 'reduce', taskId: 0, mapCount: 3 });
  assert.equal(coordinator.progress().phase, 'reduce');
});

/** Time stands still, and timers fire, only when the test says so. */
class HeldClock implements Clock {
  private now = 0;
  private readonly timers = new Map<() => void, number>();
  nowMs(): number {
    return this.now;
  }
  setTimer(delayMs: number, fn: () => void): Timer {
    this.timers.set(fn, this.now + delayMs);
    return { cancel: () => this.timers.delete(fn) };
  }
  /** Moves time to the last timer's due time and fires every timer. */
  fireAll(): void {
    for (const [fn, dueMs] of [...this.timers]) {
      this.timers.delete(fn);
      this.now = Math.max(this.now, dueMs);
      fn();
    }
  }
  pending(): number {
    return this.timers.size;
  }
}

/** A promise's outcome so far, without waiting for it. */
function track<T>(promise: Promise<T>): { value: T | undefined } {
  const state: { value: T | undefined } = { value: undefined };
  void promise.then((value) => (state.value = value));
  return state;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('serve holds a getTask with nothing to hand out and answers it the moment a task is ready', async () => {
  const clock = new HeldClock();
  const coordinator = new Coordinator(config({ inputs: ['in/a'], reduceCount: 1 }), clock);
  const getTask = (peer: number) => track(coordinator.serve(peer, { type: 'getTask', workerId: peer }));
  const first = getTask(1);
  await settle();
  assert.equal(first.value?.type, 'map');
  const second = getTask(2);
  await settle();
  assert.equal(second.value, undefined, 'held: the only map task is running');
  coordinator.handle(1, { type: 'taskDone', workerId: 1, kind: 'map', taskId: 0, records: 1, bytesIn: 1 });
  await settle();
  assert.deepEqual(second.value, { type: 'reduce', taskId: 0, mapCount: 1 }, 'answered when the map phase ended, with no timer');
  // A held worker that disconnects is assigned nothing; the requeued task goes to the next.
  const third = getTask(3);
  await settle();
  coordinator.disconnected(3);
  coordinator.disconnected(2);
  await settle();
  assert.equal(third.value?.type, 'wait');
  assert.deepEqual(coordinator.handle(4, { type: 'getTask', workerId: 4 }), { type: 'reduce', taskId: 0, mapCount: 1 });
  // With nothing to hand out until the hold runs out, the answer is "wait" with no delay.
  const fifth = getTask(5);
  await settle();
  assert.equal(clock.pending(), 1);
  clock.fireAll();
  await settle();
  assert.deepEqual(fifth.value, { type: 'wait', delayMs: 0 });
  assert.equal(clock.pending(), 0, 'every hold has ended');
});

test('a task is reissued when its lease runs out or its worker disconnects, and late reports are harmless', async () => {
  const clock = new ManualClock();
  const coordinator = new Coordinator(config({ inputs: ['in/a', 'in/b'], reduceCount: 1 }), clock);
  const first = coordinator.handle(1, { type: 'getTask', workerId: 1 });
  const second = coordinator.handle(2, { type: 'getTask', workerId: 2 });
  assert.deepEqual([first.type, second.type], ['map', 'map']);
  clock.now = 5_000;
  coordinator.disconnected(2);
  assert.deepEqual(coordinator.handle(3, { type: 'getTask', workerId: 3 }), { type: 'map', taskId: 1, file: 'in/b', reduceCount: 1 });
  clock.now = 9_999;
  assert.equal(coordinator.handle(3, { type: 'getTask', workerId: 3 }).type, 'wait', 'leases last 10 s');
  clock.now = 10_000;
  assert.deepEqual(coordinator.handle(3, { type: 'getTask', workerId: 3 }), { type: 'map', taskId: 0, file: 'in/a', reduceCount: 1 });
  // Both the expired worker 1 and worker 3 finish task 0; the second report is ignored.
  for (const workerId of [1, 3]) coordinator.handle(workerId, { type: 'taskDone', workerId, kind: 'map', taskId: 0, records: 5, bytesIn: 7 });
  coordinator.handle(3, { type: 'taskDone', workerId: 3, kind: 'map', taskId: 1, records: 5, bytesIn: 7 });
  coordinator.handle(3, { type: 'getTask', workerId: 3 });
  coordinator.handle(3, { type: 'taskDone', workerId: 3, kind: 'reduce', taskId: 0, records: 2, bytesIn: 9 });
  const result = await coordinator.finished;
  assert.ok(result.ok);
  assert.equal(result.progress.mapRecords, 10);
  assert.equal(result.progress.tasksRetried, 2);
  assert.deepEqual(coordinator.handle(3, { type: 'getTask', workerId: 3 }), { type: 'exit', outcome: 'done' });
});

test('a task that keeps failing stops the job with its error, after taskFailuresMax attempts', async () => {
  const coordinator = new Coordinator(config(), new ManualClock());
  for (let attempt = 1; attempt <= 3; attempt++) {
    let task = coordinator.handle(1, { type: 'getTask', workerId: 1 });
    while (task.type === 'map' && task.taskId !== 1) task = coordinator.handle(1, { type: 'getTask', workerId: 1 });
    assert.deepEqual(task, { type: 'map', taskId: 1, file: 'in/b', reduceCount: 2 }, `attempt ${attempt}`);
    coordinator.handle(1, { type: 'taskFailed', workerId: 1, kind: 'map', taskId: 1, message: 'disk on fire' });
  }
  const result = await coordinator.finished;
  assert.ok(!result.ok);
  assert.ok(result.error instanceof JobFailedError);
  assert.equal(result.error.message, 'map task 1 (input "in/b") failed 3 times; last error: disk on fire');
  assert.deepEqual(coordinator.handle(1, { type: 'getTask', workerId: 1 }), { type: 'exit', outcome: 'failed' });
});

/** Runs a whole job in this process: a coordinator, `workers` workers, one in-memory disk. */
async function runInProcess(app: MapReduceApp, disk: MemoryDisk, inputs: string[], workers: number) {
  const clock = new ManualClock();
  const coordinator = new Coordinator(config({ inputs, reduceCount: 3 }), clock);
  const outcomes: Promise<WorkerOutcome>[] = [];
  for (let peer = 1; peer <= workers; peer++) {
    // Every message goes through the decoders, as it would over the wire.
    const link = { call: async (request: Request): Promise<Response> => decodeResponse(coordinator.handle(peer, decodeRequest(request))) };
    outcomes.push(runWorker({ link, clock, loadApp: async () => app, openWorkDisk: () => disk, inputDisk: disk }));
  }
  const result = await coordinator.finished;
  return { result, outcomes: await Promise.all(outcomes) };
}

function memoryInputs(disk: MemoryDisk, texts: Record<string, string>): string[] {
  for (const [name, text] of Object.entries(texts)) disk.files.set(name, Buffer.from(text));
  return Object.keys(texts);
}

test('in-process workers produce the same lines as the sequential reference', async () => {
  const disk = new MemoryDisk();
  const inputs = memoryInputs(disk, { 'in/1': 'the cat and the hat', 'in/2': 'The end. the END', 'in/3': '' });
  for (const app of [wc, indexer] as MapReduceApp[]) {
    const { result, outcomes } = await runInProcess(app, disk, inputs, 2);
    assert.ok(result.ok);
    assert.deepEqual(
      outcomes.map((outcome) => outcome.type),
      ['done', 'done'],
    );
    const lines = [0, 1, 2]
      .flatMap((r) => disk.text(`mr-out-${r}`).split('\n'))
      .filter((line) => line !== '')
      .sort(compareKeys);
    const reference = new MemoryDisk();
    await runSequential({ app, inputs, inputDisk: disk, outDisk: reference });
    assert.deepEqual(
      lines,
      reference
        .text('mr-out-0')
        .split('\n')
        .filter((line) => line !== ''),
    );
  }
  assert.ok(![...disk.files.keys()].some((name) => name.startsWith('.mr-tmp')), 'every temporary file was renamed');
});

test('an unreadable input stops the job with an error naming the task and the file', async () => {
  const disk = new MemoryDisk();
  memoryInputs(disk, { 'in/1': 'a b c' });
  const { result } = await runInProcess(wc as MapReduceApp, disk, ['in/1', 'in/missing'], 1);
  assert.ok(!result.ok);
  assert.match(result.error.message, /^map task 1 \(input "in\/missing"\) failed 3 times; last error: cannot read input file "in\/missing": ENOENT/);
});

test('a map function that throws stops the job after bounded retries, naming the task', async () => {
  const disk = new MemoryDisk();
  const inputs = memoryInputs(disk, { 'in/1': 'x', 'in/2': 'y' });
  let calls = 0;
  const app: MapReduceApp = {
    map: (file) => {
      calls += 1;
      if (file === 'in/2') throw new Error('boom');
      return [{ key: 'k', value: 'v' }];
    },
    reduce: (_key, values) => String(values.length),
  };
  const { result, outcomes } = await runInProcess(app, disk, inputs, 2);
  assert.ok(!result.ok);
  assert.equal(result.error.message, 'map task 1 (input "in/2") failed 3 times; last error: map("in/2") threw: boom');
  assert.equal(calls, 4, 'one good map, three failed attempts');
  assert.deepEqual(
    outcomes.map((outcome) => outcome.type),
    ['job-failed', 'job-failed'],
  );
});

test('an application that fails to load stops the job with the load error', async () => {
  const disk = new MemoryDisk();
  const coordinator = new Coordinator(config({ inputs: ['in/1'] }), new ManualClock());
  const link = { call: async (request: Request) => coordinator.handle(1, request) };
  const outcome = await runWorker({
    link,
    clock: new ManualClock(),
    loadApp: async () => {
      throw new Error('syntax error in app');
    },
    openWorkDisk: () => disk,
    inputDisk: disk,
  });
  assert.deepEqual(outcome, { type: 'app-failed', message: 'syntax error in app' });
  const result = await coordinator.finished;
  assert.ok(!result.ok);
  assert.equal(result.error.message, 'worker 1 could not start: syntax error in app');
});

test('wc on the Gutenberg texts gives the known counts, with and without the combiner', async () => {
  const inputs = await gutenbergFiles();
  const outputs: string[] = [];
  for (const useCombiner of [true, false]) {
    const out = new MemoryDisk();
    const stats = await runSequential({ app: wc as MapReduceApp, inputs, inputDisk: new FsDisk('/'), outDisk: out, useCombiner });
    // wc's map emits one (word, count) pair per distinct word of each book.
    assert.equal(stats.mapRecords, 52_580);
    outputs.push(out.text('mr-out-0'));
  }
  assert.equal(outputs[0], outputs[1]);
  const lines = outputs[0]!.trimEnd().split('\n');
  const words = lines.reduce((sum, line) => sum + Number(line.split(' ')[1]), 0);
  assert.equal(words, 623_948, 'every word of the input is counted once');
  assert.equal(lines.length, 22_107);
  for (const line of ['A 509', 'ABOUT 2', 'ACT 8', 'ACTRESS 1', 'the 29748', 'a 13382']) assert.ok(lines.includes(line), line);
});

test('the decoders accept every well-formed message and refuse anything else with ProtocolError', () => {
  const good: Request[] = [
    { type: 'hello' },
    { type: 'getTask', workerId: 3 },
    { type: 'taskDone', workerId: 1, kind: 'reduce', taskId: 4, records: 10, bytesIn: 99 },
    { type: 'taskFailed', workerId: 1, kind: 'map', taskId: 0, message: 'x' },
  ];
  for (const request of good) assert.deepEqual(decodeRequest(request), request);
  const bad = [
    null,
    7,
    'hello',
    [],
    {},
    { type: 'getTask' },
    { type: 'getTask', workerId: 0 },
    { type: 'getTask', workerId: 1.5 },
    { type: 'taskDone', workerId: 1, kind: 'sort', taskId: 0, records: 0, bytesIn: 0 },
    { type: 'taskFailed', workerId: 1, kind: 'map', taskId: -1, message: '' },
  ];
  for (const value of bad) assert.throws(() => decodeRequest(value), ProtocolError, JSON.stringify(value));
  assert.throws(() => decodeResponse({ type: 'map', taskId: 0, file: 'f', reduceCount: 0 }), ProtocolError);
  fc.assert(
    fc.property(fc.anything(), (value) => {
      for (const decode of [decodeRequest, decodeResponse]) {
        try {
          decode(value);
        } catch (error) {
          assert.ok(error instanceof ProtocolError, String(error));
        }
      }
    }),
    { seed: 6824, numRuns: 2000 },
  );
});

test('a malformed intermediate file is refused with its name', () => {
  const into = new Map<string, string[]>();
  assert.throws(() => decodeGroupsInto(Buffer.from([0x93, 0x01]), 'mr-0-0', into), /intermediate file mr-0-0 does not decode/);
  assert.throws(() => decodeGroupsInto(Buffer.from([0x93, 0x01, 0x91, 0x01, 0x90]), 'mr-0-1', into), /mr-0-1 is malformed/);
});
