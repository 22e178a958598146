import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile as fsReadFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsDisk, IOVEC_COUNT_MAX } from '../../src/platform/fs-disk.js';
import { RealClock } from '../../src/platform/clock.js';
import { DiskError } from '../../src/io/disk.js';

async function withDisk(body: (disk: FsDisk, root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-fsdisk-'));
  try {
    await body(new FsDisk(root), root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('append, read, sync, truncate and reopen keep the bytes', async () => {
  await withDisk(async (disk, root) => {
    await disk.mkdirp('a/b');
    const file = await disk.open('a/b/f', { create: true });
    assert.equal(file.size(), 0);
    // Concurrent appends land in call order.
    await Promise.all([file.append([Buffer.from('he'), Buffer.from('llo')]), file.append([Buffer.from(' world')])]);
    assert.equal(file.size(), 11);
    await file.sync();
    assert.equal(Buffer.from(await file.read(6, 100)).toString(), 'world');
    await file.truncate(5);
    await file.append([Buffer.from('!')]);
    await file.sync();
    await file.close();
    assert.equal((await fsReadFile(join(root, 'a/b/f'))).toString(), 'hello!');
    const again = await disk.open('a/b/f', { create: false });
    assert.equal(again.size(), 6);
    await again.close();
    assert.equal(Buffer.from(await disk.readFile('a/b/f')).toString(), 'hello!');
  });
});

test('more chunks than IOV_MAX are written in order', async () => {
  await withDisk(async (disk) => {
    const file = await disk.open('many', { create: true });
    const chunks = Array.from({ length: IOVEC_COUNT_MAX * 2 + 5 }, (_, i) => Buffer.from([i & 0xff]));
    await file.append(chunks);
    await file.close();
    assert.deepEqual(Buffer.from(await disk.readFile('many')), Buffer.concat(chunks));
  });
});

test('directory operations: list sorted, rename, remove, syncDir, exists', async () => {
  await withDisk(async (disk) => {
    await disk.mkdirp('d');
    for (const name of ['b', 'a', 'c']) await (await disk.open(`d/${name}`, { create: true })).close();
    assert.deepEqual(await disk.list('d'), ['a', 'b', 'c']);
    await disk.rename('d/a', 'd/z');
    await disk.remove('d/b');
    await disk.remove('d/missing');
    await disk.syncDir('d');
    assert.deepEqual(await disk.list('d'), ['c', 'z']);
    assert.equal(await disk.exists('d/z'), true);
    assert.equal(await disk.exists('d/a'), false);
  });
});

test('errors are DiskErrors with a code; paths cannot leave the root', async () => {
  await withDisk(async (disk) => {
    await assert.rejects(disk.open('nope', { create: false }), (error: unknown) => error instanceof DiskError && error.code === 'ENOENT');
    await assert.rejects(disk.readFile('nope'), (error: unknown) => error instanceof DiskError && error.code === 'ENOENT');
    assert.throws(() => disk.resolvePath('../escape'));
    const file = await disk.open('f', { create: true });
    await file.close();
    await assert.rejects(file.append([Buffer.from('x')]), (error: unknown) => error instanceof DiskError && error.code === 'EBADF');
  });
});

test('the real clock is monotonic and its timers fire and cancel', async () => {
  const clock = new RealClock({ keepAlive: true });
  const start = clock.nowMs();
  const fired: string[] = [];
  const cancelled = clock.setTimer(5, () => fired.push('cancelled'));
  cancelled.cancel();
  await new Promise<void>((resolve) => clock.setTimer(20, () => resolve()));
  assert.ok(clock.nowMs() - start >= 19);
  assert.deepEqual(fired, []);
});
