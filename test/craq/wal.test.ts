// A CRAQ node's write-ahead log (src/craq/wal.ts) on the real disk: what is committed
// survives a reopen, what is not is dropped, a state transfer replaces the log, local
// snapshots compact it, and a damaged log is refused with a reason.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsDisk } from '../../src/platform/fs-disk.js';
import { CraqWal } from '../../src/craq/wal.js';
import type { ChainWrite } from '../../src/craq/types.js';

function writes(from: number, to: number, key = 'x', firstVersion = from): ChainWrite[] {
  return Array.from({ length: to - from + 1 }, (_, k) => ({ seq: from + k, key, version: firstVersion + k, value: `v${from + k}` }));
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-craq-wal-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('committed writes survive a reopen; uncommitted ones are dropped; a re-sent seq replaces the old one', async () => {
  await withDir(async (dir) => {
    const first = await CraqWal.open(new FsDisk(dir), 'craq');
    assert.deepEqual(first.recovered, { snapshot: undefined, writes: [] });
    await first.storage.save({ snapshot: undefined, writes: writes(1, 5), committedSeq: 3 });
    await first.storage.close();
    const second = await CraqWal.open(new FsDisk(dir), 'craq');
    assert.deepEqual(second.recovered.writes, writes(1, 3));
    // The chain gave seq 4 to another write meanwhile: it replaces the old 4 and 5.
    await second.storage.save({ snapshot: undefined, writes: [{ seq: 4, key: 'y', version: 1, value: 'other' }], committedSeq: 4 });
    await second.storage.close();
    const third = await CraqWal.open(new FsDisk(dir), 'craq');
    assert.deepEqual(third.recovered.writes, [...writes(1, 3), { seq: 4, key: 'y', version: 1, value: 'other' }]);
    await third.storage.close();
  });
});

test('a state transfer replaces the log, and local snapshots compact it', async () => {
  await withDir(async (dir) => {
    const { storage } = await CraqWal.open(new FsDisk(dir), 'craq', { snapshotEveryWrites: 10 });
    await storage.save({ snapshot: { seq: 100, objects: [{ key: 'a', version: 7, value: 'seven' }] }, writes: writes(101, 125, 'b', 1), committedSeq: 125 });
    await storage.close();
    const reopened = await CraqWal.open(new FsDisk(dir), 'craq');
    assert.equal(reopened.recovered.snapshot?.seq, 125, 'a local snapshot was taken at the last commit');
    const objects = new Map(reopened.recovered.snapshot!.objects.map((object) => [object.key, object]));
    assert.deepEqual(objects.get('a'), { key: 'a', version: 7, value: 'seven' });
    assert.deepEqual(objects.get('b'), { key: 'b', version: 25, value: 'v125' });
    assert.deepEqual(reopened.recovered.writes, []);
    assert.deepEqual(await readdir(join(dir, 'craq', 'snap')), ['snapshot-000000000000007d.snap']);
    await reopened.storage.close();
  });
});

test('a damaged log is refused with a reason, not read as empty', async () => {
  await withDir(async (dir) => {
    const { storage } = await CraqWal.open(new FsDisk(dir), 'craq');
    await storage.save({ snapshot: undefined, writes: writes(1, 40), committedSeq: 40 });
    await storage.close();
    const segments = await readdir(join(dir, 'craq', 'wal'));
    const file = join(dir, 'craq', 'wal', segments.at(-1)!);
    const bytes = await readFile(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    await writeFile(file, bytes);
    await assert.rejects(CraqWal.open(new FsDisk(dir), 'craq'), (error: unknown) => error instanceof Error && /corrupt|checksum|crc/i.test(error.message));
  });
});
