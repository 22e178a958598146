// RaftStorage on the WAL (src/runtime/wal-storage.ts), on the simulated disk.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WalStorage } from '../../src/runtime/wal-storage.js';
import { Wal } from '../../src/storage/wal.js';
import { StorageError } from '../../src/storage/errors.js';
import type { Entry, HardState, Snapshot } from '../../src/raft/types.js';
import { index, nodeId, term } from '../../src/stdx/types.js';
import { simSetup, bytes, type SimSetup } from './helpers.js';

const walOptions = { segmentBytesMax: 2048, recordBytesMax: 512, flushBytesMax: 1024 };

function entry(i: number, t: number, data = `cmd${i}`): Entry {
  return { index: index(i), term: term(t), type: i % 7 === 0 ? 'config' : 'normal', data: bytes(data) };
}

function hard(t: number, vote: number, commit: number): HardState {
  return { term: term(t), vote: nodeId(vote), commit: index(commit) };
}

function snapshot(i: number, t: number): Snapshot {
  return { meta: { index: index(i), term: term(t), voters: [nodeId(1), nodeId(2), nodeId(3)], learners: [nodeId(4)] }, data: bytes(`state@${i}`) };
}

async function open(sim: SimSetup): Promise<{ storage: WalStorage; state: Awaited<ReturnType<WalStorage['load']>> }> {
  const storage = new WalStorage(sim.disk, 'data', { wal: walOptions });
  const state = await sim.go(storage.load());
  return { storage, state };
}

const describeEntries = (entries: readonly Entry[]) => entries.map((e) => `${e.index}/${e.term}/${e.type}/${Buffer.from(e.data).toString()}`).join(' ');

test('entries and hard state round-trip; a conflicting append replaces the suffix', async () => {
  const sim = simSetup(1);
  const { storage, state } = await open(sim);
  assert.deepEqual(state, { hardState: hard(0, 0, 0), snapshot: undefined, entries: [] });
  await sim.go(storage.save({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1)), hardState: hard(1, 2, 2), snapshot: undefined }));
  await sim.go(storage.save({ entries: [entry(4, 2, 'new4')], hardState: hard(2, 3, 3), snapshot: undefined }));
  assert.ok(storage.sizeBytes() > 0);
  await sim.go(storage.close());
  const reopened = await open(sim);
  assert.deepEqual(reopened.state.hardState, hard(2, 3, 3));
  assert.equal(describeEntries(reopened.state.entries), '1/1/normal/cmd1 2/1/normal/cmd2 3/1/normal/cmd3 4/2/normal/new4');
});

test('a snapshot that matches the log keeps the entries after it and compacts segments', async () => {
  const sim = simSetup(2);
  const { storage } = await open(sim);
  for (let i = 1; i <= 80; i++) await sim.go(storage.save({ entries: [entry(i, 1, `x${i}`.padEnd(30, '.'))], hardState: hard(1, 1, i - 1), snapshot: undefined }));
  const before = storage.sizeBytes();
  await sim.go(storage.save({ entries: [], hardState: undefined, snapshot: snapshot(60, 1) }));
  assert.ok(storage.sizeBytes() < before, 'segments covered by the snapshot were removed');
  await sim.go(storage.close());
  const { state } = await open(sim);
  assert.equal(state.snapshot?.meta.index, 60);
  assert.deepEqual(state.snapshot?.meta.voters, [1, 2, 3]);
  assert.deepEqual(state.snapshot?.meta.learners, [4]);
  assert.equal(Buffer.from(state.snapshot!.data).toString(), 'state@60');
  assert.deepEqual(
    state.entries.map((e) => e.index),
    Array.from({ length: 20 }, (_, i) => 61 + i),
  );
  assert.deepEqual(state.hardState, hard(1, 1, 79));
});

test('a snapshot that does not match the log replaces it (Raft Figure 13)', async () => {
  const sim = simSetup(3);
  const { storage } = await open(sim);
  await sim.go(storage.save({ entries: [1, 2, 3].map((i) => entry(i, 1)), hardState: hard(1, 0, 1), snapshot: undefined }));
  await sim.go(storage.save({ entries: [entry(11, 3)], hardState: hard(3, 0, 10), snapshot: snapshot(10, 3) }));
  await sim.go(storage.close());
  const { state, storage: again } = await open(sim);
  assert.equal(state.snapshot?.meta.index, 10);
  assert.equal(describeEntries(state.entries), '11/3/normal/cmd11');
  await sim.go(again.save({ entries: [entry(12, 3)], hardState: undefined, snapshot: undefined }));
});

test('a crash loses only what save() had not acknowledged', async () => {
  const sim = simSetup(4, { tornWriteProbability: 1 });
  const { storage } = await open(sim);
  await sim.go(storage.save({ entries: [entry(1, 1), entry(2, 1)], hardState: hard(1, 1, 1), snapshot: undefined }));
  const pending = storage.save({ entries: [entry(3, 1)], hardState: hard(1, 1, 2), snapshot: undefined });
  await sim.scheduler.sleep(0); // the append is now in flight, its sync not yet done
  sim.disk.crash();
  await assert.rejects(sim.go(pending), (error: unknown) => error instanceof StorageError && error.code === 'write-failed');
  const { state } = await open(sim);
  assert.ok(state.entries.length >= 2);
  assert.equal(describeEntries(state.entries.slice(0, 2)), '1/1/normal/cmd1 2/1/normal/cmd2');
  assert.ok(state.hardState.commit <= state.entries.length);
});

test('a hard state that commits entries the log lacks is refused', async () => {
  const sim = simSetup(5);
  const { storage } = await open(sim);
  await sim.go(storage.save({ entries: [1, 2, 3].map((i) => entry(i, 1)), hardState: hard(1, 1, 3), snapshot: undefined }));
  await sim.go(storage.close());
  // Plant the damage through the generic log: cut the log below the commit index.
  const { wal } = await sim.go(Wal.open(sim.disk, 'data/wal', walOptions));
  await sim.go(wal.append({ truncateAfterIndex: 2, entries: [] }));
  await sim.go(wal.close());
  await assert.rejects(open(sim), (error: unknown) => error instanceof StorageError && error.code === 'missing-entries' && /index 3 is committed/.test(error.message));
});

test('a snapshot without its log is refused (the term and vote would be lost)', async () => {
  const sim = simSetup(6);
  const { storage } = await open(sim);
  await sim.go(storage.save({ entries: [entry(1, 1)], hardState: hard(1, 1, 1), snapshot: snapshot(1, 1) }));
  await sim.go(storage.close());
  const names = await sim.go(sim.disk.list('data/wal'));
  for (const name of names) await sim.go(sim.disk.remove(`data/wal/${name}`));
  await assert.rejects(open(sim), (error: unknown) => error instanceof StorageError && error.code === 'missing-segment');
});
