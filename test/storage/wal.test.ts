// The WAL on the simulated disk: semantics, group commit, rolling and compaction, and the
// crash property (recovery gives exactly a prefix of the issued records that includes
// every acknowledged one).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Wal, type WalOptions, type WalRecovered } from '../../src/storage/wal.js';
import { StorageError } from '../../src/storage/errors.js';
import { LogModel } from '../../src/storage/segment.js';
import type { Prng } from '../../src/stdx/prng.js';
import { simSetup, bytes, text, type SimSetup } from './helpers.js';

const small: Partial<WalOptions> = { segmentBytesMax: 1024, recordBytesMax: 256, flushBytesMax: 512 };

function describe(recovered: Pick<WalRecovered, 'entries' | 'lastIndex' | 'state'>): string {
  const entries = recovered.entries.map((entry) => `${entry.index}:${text(entry.data)}`).join(',');
  return `[${entries}] last=${recovered.lastIndex} state=${text(recovered.state)}`;
}

async function reopen(sim: SimSetup, options = small): Promise<{ wal: Wal; recovered: WalRecovered }> {
  return sim.go(Wal.open(sim.disk, 'wal', options));
}

test('entries, conflict truncation, truncation markers and state survive a reopen', async () => {
  const sim = simSetup(1);
  const { wal } = await reopen(sim);
  await sim.go(wal.append({ entries: [1, 2, 3, 4].map((i) => ({ index: i, data: bytes(`a${i}`) })), state: bytes('s1') }));
  await sim.go(wal.append({ entries: [{ index: 3, data: bytes('b3') }] }));
  assert.equal(wal.lastIndex(), 3);
  await sim.go(wal.close());
  let { wal: again, recovered } = await reopen(sim);
  assert.equal(describe(recovered), '[1:a1,2:a2,3:b3] last=3 state=s1');
  await sim.go(again.append({ truncateAfterIndex: 10, entries: [{ index: 11, data: bytes('c11') }], state: bytes('s2') }));
  await sim.go(again.close());
  ({ recovered } = await reopen(sim));
  assert.equal(describe(recovered), '[11:c11] last=11 state=s2');
});

test('appends that arrive during a sync share the next one (group commit)', async () => {
  const sim = simSetup(2);
  const { wal } = await reopen(sim, {});
  const writes = Array.from({ length: 200 }, (_, i) => wal.append({ entries: [{ index: i + 1, data: bytes(`e${i + 1}`) }] }));
  await sim.go(Promise.all(writes));
  const stats = wal.stats();
  assert.equal(stats.writeCount, 200);
  // The first append flushes alone; everything queued behind it goes in the next flush.
  assert.ok(stats.flushCount <= 3, `${stats.flushCount} flushes for 200 appends`);
  await sim.go(wal.close());
  const { recovered } = await reopen(sim, {});
  assert.equal(recovered.entries.length, 200);
  assert.equal(recovered.lastIndex, 200);
});

test('segments roll at the size bound and compaction removes whole covered segments', async () => {
  const sim = simSetup(3);
  const { wal } = await reopen(sim);
  for (let i = 1; i <= 60; i++) await sim.go(wal.append({ entries: [{ index: i, data: Buffer.alloc(40, i) }], state: bytes(`term${i}`) }));
  const names = wal.segmentNames();
  assert.ok(names.length >= 4, `${names.length} segments`);
  for (const name of names) assert.ok((sim.disk.describeFile(`wal/${name}`)?.size ?? 0) <= 1024, name);
  const removed = await sim.go(wal.compact(40));
  assert.ok(removed >= 2);
  assert.equal(wal.segmentNames().length, names.length - removed);
  await sim.go(wal.close());
  const { recovered } = await reopen(sim);
  assert.equal(recovered.lastIndex, 60);
  assert.equal(text(recovered.state), 'term60');
  assert.ok(recovered.entries[0]!.index <= 41, 'every entry after the compaction point is kept');
  assert.equal(recovered.entries.at(-1)!.index, 60);
});

test('a record over the limit is refused without breaking the log', async () => {
  const sim = simSetup(4);
  const { wal } = await reopen(sim);
  await assert.rejects(sim.go(wal.append({ entries: [{ index: 1, data: Buffer.alloc(300) }] })), (error: unknown) => error instanceof StorageError && error.code === 'record-too-large');
  await sim.go(wal.append({ entries: [{ index: 1, data: bytes('ok') }] }));
  assert.equal(wal.lastIndex(), 1);
});

test('a failed sync fails the batch and every later append', async () => {
  const sim = simSetup(5);
  const { wal } = await reopen(sim);
  await sim.go(wal.append({ entries: [{ index: 1, data: bytes('x') }] }));
  sim.disk.failNext(`wal/${wal.segmentNames()[0]}`, 'sync');
  await assert.rejects(sim.go(wal.append({ entries: [{ index: 2, data: bytes('y') }] })), (error: unknown) => error instanceof StorageError && error.code === 'write-failed');
  await assert.rejects(sim.go(wal.append({ entries: [{ index: 3, data: bytes('z') }] })), (error: unknown) => error instanceof StorageError && error.code === 'write-failed');
});

test('corruption in an earlier segment, or before valid records, names the file and offset', async () => {
  const sim = simSetup(6);
  const { wal } = await reopen(sim);
  for (let i = 1; i <= 40; i++) await sim.go(wal.append({ entries: [{ index: i, data: Buffer.alloc(40, i) }] }));
  const [first, second] = wal.segmentNames();
  await sim.go(wal.close());
  // Byte 100 of a segment is inside an entry record after the header (48 bytes).
  sim.disk.flipBit(`wal/${first}`, 100);
  await assert.rejects(reopen(sim), (error: unknown) => {
    assert.ok(error instanceof StorageError);
    assert.equal(error.code, 'corrupt-record');
    assert.equal(error.file, `wal/${first}`);
    assert.equal(error.offset, 48);
    assert.match(error.message, new RegExp(`wal/${first}.*byte offset 48`));
    return true;
  });
  sim.disk.flipBit(`wal/${first}`, 100);
  const last = wal.segmentNames().at(-1)!;
  sim.disk.flipBit(`wal/${last}`, 60);
  await assert.rejects(reopen(sim), (error: unknown) => error instanceof StorageError && error.file === `wal/${last}` && error.offset === 48);
  sim.disk.flipBit(`wal/${last}`, 60);
  assert.ok(second !== undefined);
  await sim.go(sim.disk.remove(`wal/${second}`));
  await assert.rejects(reopen(sim), (error: unknown) => error instanceof StorageError && error.code === 'missing-segment');
});

test('a read error during recovery is a typed error naming the file', async () => {
  const sim = simSetup(7);
  const { wal } = await reopen(sim);
  await sim.go(wal.append({ entries: [{ index: 1, data: bytes('x') }] }));
  await sim.go(wal.close());
  const file = `wal/${wal.segmentNames()[0]}`;
  sim.disk.failNext(file, 'read');
  await assert.rejects(reopen(sim), (error: unknown) => error instanceof StorageError && error.code === 'read-failed' && error.file === file);
});

// ---- The crash property ----

type ModelRecord = { kind: 'truncate'; index: number } | { kind: 'entry'; index: number; data: string } | { kind: 'state'; data: string };

function modelOf(base: WalRecovered): LogModel {
  const model = new LogModel(base.lastIndex);
  model.entries = [...base.entries];
  model.state = base.state;
  return model;
}

function applyRecord(model: LogModel, record: ModelRecord): void {
  if (record.kind === 'truncate') model.truncateAfter(record.index);
  else if (record.kind === 'entry') model.append({ index: record.index, data: bytes(record.data) });
  else model.state = bytes(record.data);
}

/** The log after each of the first `acked`..all issued records, described. */
function acceptableOutcomes(base: WalRecovered, records: readonly ModelRecord[], acked: number): Set<string> {
  const model = modelOf(base);
  for (const record of records.slice(0, acked)) applyRecord(model, record);
  const outcomes = new Set<string>();
  for (let count = acked; ; count++) {
    outcomes.add(describe(model));
    if (count === records.length) return outcomes;
    applyRecord(model, records[count]!);
  }
}

/** Issues random writes until the disk crashes; returns the issued records and how many were acknowledged. */
async function writeUntilCrash(sim: SimSetup, wal: Wal, prng: Prng, writers: number): Promise<{ records: ModelRecord[]; acked: number }> {
  const records: ModelRecord[] = [];
  let acked = 0;
  const crashCount = sim.disk.crashCount;
  const writer = async (id: number) => {
    for (let n = 0; sim.disk.crashCount === crashCount && n < 10_000; n++) {
      const write = randomWrite(wal.lastIndex(), prng, `${id}.${n}`);
      records.push(...write.records);
      const end = records.length;
      wal.append(write.write).then(
        () => (acked = Math.max(acked, end)),
        () => undefined,
      );
      await sim.scheduler.sleep(prng.range(0, 3));
    }
  };
  await Promise.all(Array.from({ length: writers }, (_, id) => writer(id)));
  return { records, acked };
}

function randomWrite(lastIndex: number, prng: Prng, tag: string) {
  const records: ModelRecord[] = [];
  let truncateAfterIndex: number | undefined;
  if (prng.chance(0.03)) {
    truncateAfterIndex = lastIndex + prng.range(-2, 5);
    truncateAfterIndex = Math.max(0, truncateAfterIndex);
    records.push({ kind: 'truncate', index: truncateAfterIndex });
  }
  const after = truncateAfterIndex ?? lastIndex;
  const start = Math.max(1, after + 1 - (prng.chance(0.2) ? prng.range(1, 3) : 0));
  const entries = Array.from({ length: prng.range(0, 4) }, (_, i) => ({ index: start + i, data: bytes(`${tag}/${i}`.padEnd(prng.range(4, 60), '.')) }));
  for (const entry of entries) records.push({ kind: 'entry', index: entry.index, data: text(entry.data)! });
  const state = prng.chance(0.3) ? bytes(`state ${tag}`) : undefined;
  if (state !== undefined) records.push({ kind: 'state', data: text(state)! });
  return { records, write: { truncateAfterIndex, entries, state } };
}

async function crashRounds(seed: number): Promise<{ tornTails: number; trace: string }> {
  const sim = simSetup(seed, { tornWriteProbability: 0.6 });
  const prng = sim.prng.fork();
  let previous: { base: WalRecovered; records: ModelRecord[]; acked: number } | undefined;
  let tornTails = 0;
  const trace: string[] = [];
  for (let round = 0; round < 4; round++) {
    const { wal, recovered } = await reopen(sim);
    tornTails += recovered.events.filter((event) => event.kind === 'torn-tail-truncated').length;
    trace.push(`t=${sim.scheduler.nowMs} ${describe(recovered)} ${JSON.stringify(recovered.events)}`);
    if (previous !== undefined) {
      const got = describe(recovered);
      const candidates = acceptableOutcomes(previous.base, previous.records, previous.acked);
      assert.ok(candidates.has(got), `seed ${seed} round ${round}: recovered ${got} is not a prefix that keeps all ${previous.acked} acknowledged records`);
    }
    sim.scheduler.after(prng.range(5, 150), () => sim.disk.crash());
    const { records, acked } = await writeUntilCrash(sim, wal, prng, prng.range(1, 8));
    previous = { base: recovered, records, acked };
  }
  return { tornTails, trace: trace.join('\n') };
}

test('after any crash, recovery gives exactly a prefix of the writes that keeps every acknowledged one', async () => {
  let tornTails = 0;
  for (let seed = 1; seed <= 30; seed++) tornTails += (await crashRounds(seed)).tornTails;
  assert.ok(tornTails > 5, `torn tails were exercised (${tornTails})`);
});

test('the crash runs are deterministic for a seed', async () => {
  const first = (await crashRounds(11)).trace;
  assert.equal((await crashRounds(11)).trace, first);
  assert.notEqual((await crashRounds(12)).trace, first);
});
