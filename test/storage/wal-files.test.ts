// The WAL and snapshot files on real files in a temporary directory: truncated bytes and
// flipped bits, as an operator (or a failing disk) would leave them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate, readFile, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsDisk } from '../../src/platform/fs-disk.js';
import { Wal, type WalOptions } from '../../src/storage/wal.js';
import { SnapshotFiles } from '../../src/storage/snapshot-file.js';
import { StorageError } from '../../src/storage/errors.js';

const options: Partial<WalOptions> = { segmentBytesMax: 4096, recordBytesMax: 1024, flushBytesMax: 2048 };
// 16-byte header + 8-byte index + 40 data bytes: every entry record is 64 bytes, after a 48-byte segment header.
const ENTRY_RECORD_BYTES = 64;
const FIRST_RECORD_OFFSET = 48;

async function withDir(body: (disk: FsDisk, root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-wal-'));
  try {
    await body(new FsDisk(root), root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function writeEntries(disk: FsDisk, count: number): Promise<string[]> {
  const { wal } = await Wal.open(disk, 'wal', options);
  await Promise.all(Array.from({ length: count }, (_, i) => wal.append({ entries: [{ index: i + 1, data: Buffer.alloc(40, i + 1) }] })));
  await wal.close();
  return wal.segmentNames();
}

async function flipBit(path: string, offset: number): Promise<void> {
  const content = await readFile(path);
  content[offset]! ^= 0x10;
  await writeFile(path, content);
}

test('a torn last record (truncated file) is cut off, reported, and the log continues', async () => {
  await withDir(async (disk, root) => {
    const [segment] = await writeEntries(disk, 10);
    const path = join(root, 'wal', segment!);
    const size = (await stat(path)).size;
    await truncate(path, size - 20);
    const { wal, recovered } = await Wal.open(disk, 'wal', options);
    assert.equal(recovered.lastIndex, 9);
    assert.equal(recovered.events.length, 1);
    const event = recovered.events[0]!;
    assert.equal(event.kind, 'torn-tail-truncated');
    assert.ok(event.kind === 'torn-tail-truncated' && event.offset === FIRST_RECORD_OFFSET + 9 * ENTRY_RECORD_BYTES && event.file === `wal/${segment}`);
    await wal.append({ entries: [{ index: 10, data: Buffer.from('again') }] });
    await wal.close();
    const reopened = await Wal.open(disk, 'wal', options);
    assert.equal(reopened.recovered.lastIndex, 10);
    assert.deepEqual(reopened.recovered.events, []);
    await reopened.wal.close();
  });
});

test('a zero-filled tail (a torn write on ext4) is tolerated', async () => {
  await withDir(async (disk, root) => {
    const [segment] = await writeEntries(disk, 5);
    const path = join(root, 'wal', segment!);
    const content = await readFile(path);
    content.fill(0, content.length - 30);
    await writeFile(path, Buffer.concat([content, Buffer.alloc(100)]));
    const { wal, recovered } = await Wal.open(disk, 'wal', options);
    assert.equal(recovered.lastIndex, 4);
    await wal.close();
  });
});

test('a flipped bit in the middle of the last segment is refused with file and offset', async () => {
  await withDir(async (disk, root) => {
    const [segment] = await writeEntries(disk, 10);
    const offset = FIRST_RECORD_OFFSET + 4 * ENTRY_RECORD_BYTES;
    await flipBit(join(root, 'wal', segment!), offset + 30);
    await assert.rejects(Wal.open(disk, 'wal', options), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.equal(error.code, 'corrupt-record');
      assert.equal(error.file, `wal/${segment}`);
      assert.equal(error.offset, offset);
      assert.ok(error.message.includes(`wal/${segment}`) && error.message.includes(`byte offset ${offset}`), error.message);
      assert.match(error.message, /refuses to start/);
      return true;
    });
  });
});

test('a flipped length field or a cut in an earlier segment is refused', async () => {
  await withDir(async (disk, root) => {
    const names = await writeEntries(disk, 150);
    assert.ok(names.length >= 3, `${names.length} segments`);
    const path = join(root, 'wal', names[0]!);
    const lengthField = FIRST_RECORD_OFFSET + 2 * ENTRY_RECORD_BYTES + 4;
    await flipBit(path, lengthField);
    await assert.rejects(Wal.open(disk, 'wal', options), (error: unknown) => error instanceof StorageError && error.file === `wal/${names[0]}` && error.offset === lengthField - 4);
    await flipBit(path, lengthField);
    const middle = join(root, 'wal', names[1]!);
    await truncate(middle, (await stat(middle)).size - 8);
    await assert.rejects(Wal.open(disk, 'wal', options), (error: unknown) => error instanceof StorageError && error.code === 'corrupt-record' && error.file === `wal/${names[1]}`);
  });
});

test('snapshot files: atomic save, newest wins, a flipped bit is refused with file and offset', async () => {
  await withDir(async (disk, root) => {
    const snapshots = new SnapshotFiles(disk, 'snap');
    assert.deepEqual(await snapshots.init(), []);
    assert.equal(await snapshots.loadLatest(), undefined);
    await snapshots.save(10, Buffer.from('ten'));
    await snapshots.save(20, Buffer.from('twenty'));
    await writeFile(join(root, 'snap', 'snapshot-0000000000000030.snap.tmp'), 'half written');
    const reopened = new SnapshotFiles(disk, 'snap');
    const events = await reopened.init();
    assert.equal(events.length, 1);
    const latest = await reopened.loadLatest();
    assert.equal(latest?.index, 20);
    assert.equal(Buffer.from(latest!.data).toString(), 'twenty');
    assert.deepEqual(await disk.list('snap'), ['snapshot-0000000000000014.snap']);
    await flipBit(join(root, 'snap', 'snapshot-0000000000000014.snap'), 34);
    await assert.rejects(reopened.loadLatest(), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.equal(error.code, 'unreadable-snapshot');
      assert.equal(error.file, 'snap/snapshot-0000000000000014.snap');
      assert.equal(error.offset, 0);
      assert.match(error.message, /snapshot-0000000000000014\.snap.*byte offset 0/);
      return true;
    });
  });
});
