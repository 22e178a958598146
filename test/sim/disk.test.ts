import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler } from '../../src/sim/scheduler.js';
import { SimDisk } from '../../src/sim/disk.js';
import { yieldToHost } from '../../src/platform/host.js';
import { Prng } from '../../src/stdx/prng.js';
import { DiskError } from '../../src/io/disk.js';
import { run } from '../storage/helpers.js';

function setup(seed: number, tornWriteProbability = 0): { scheduler: Scheduler; disk: SimDisk } {
  const scheduler = new Scheduler(yieldToHost);
  return { scheduler, disk: new SimDisk(scheduler, new Prng(seed), { tornWriteProbability }) };
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString();

test('operations take virtual time and settle in order per file', async () => {
  const { scheduler, disk } = setup(1);
  await run(scheduler, disk.mkdirp('d'));
  const file = await run(scheduler, disk.open('d/f', { create: true }));
  const order: number[] = [];
  const appends = [1, 2, 3].map((i) => file.append([Buffer.from(String(i))]).then(() => order.push(i)));
  await run(scheduler, Promise.all(appends));
  assert.deepEqual(order, [1, 2, 3]);
  await run(scheduler, file.sync());
  assert.ok(scheduler.nowMs >= 1, 'sync took virtual time');
  assert.equal(text(await run(scheduler, file.read(1, 10))), '23');
});

test('a crash keeps exactly the synced bytes and synced directory entries', async () => {
  const { scheduler, disk } = setup(2);
  await run(scheduler, disk.mkdirp('d'));
  const file = await run(scheduler, disk.open('d/f', { create: true }));
  await run(scheduler, file.append([Buffer.from('synced')]));
  await run(scheduler, file.sync());
  await run(scheduler, disk.syncDir('d'));
  await run(scheduler, file.append([Buffer.from('-lost')]));
  const other = await run(scheduler, disk.open('d/g', { create: true }));
  await run(scheduler, other.append([Buffer.from('x')]));
  await run(scheduler, other.sync()); // synced data, but its directory entry is not
  disk.crash();
  assert.deepEqual(await run(scheduler, disk.list('d')), ['f']);
  assert.equal(text(await run(scheduler, disk.readFile('d/f'))), 'synced');
  await assert.rejects(run(scheduler, file.append([Buffer.from('y')])), (error: unknown) => error instanceof DiskError && error.code === 'EBADF');
});

test('an unsynced truncate is undone by a crash; a synced one is not', async () => {
  const { scheduler, disk } = setup(3);
  const file = await run(scheduler, disk.open('f', { create: true }));
  await run(scheduler, file.append([Buffer.from('abcdef')]));
  await run(scheduler, file.sync());
  await run(scheduler, disk.syncDir(''));
  await run(scheduler, file.truncate(2));
  await run(scheduler, file.append([Buffer.from('XY')]));
  disk.crash();
  assert.equal(text(await run(scheduler, disk.readFile('f'))), 'abcdef');
  const again = await run(scheduler, disk.open('f', { create: false }));
  await run(scheduler, again.truncate(3));
  await run(scheduler, again.sync());
  disk.crash();
  assert.equal(text(await run(scheduler, disk.readFile('f'))), 'abc');
});

test('a torn write keeps a strict prefix of the unsynced tail', async () => {
  const lengths = new Set<number>();
  for (let seed = 0; seed < 20; seed++) {
    const { scheduler, disk } = setup(seed, 1);
    const file = await run(scheduler, disk.open('f', { create: true }));
    await run(scheduler, disk.syncDir(''));
    await run(scheduler, file.append([Buffer.from('base')]));
    await run(scheduler, file.sync());
    await run(scheduler, file.append([Buffer.from('0123456789')]));
    disk.crash();
    const content = text(await run(scheduler, disk.readFile('f')));
    assert.ok('base0123456789'.startsWith(content) && content.length >= 4 && content.length < 14, content);
    lengths.add(content.length);
  }
  assert.ok(lengths.size > 3, 'tears land at different places');
});

test('a crash fails operations in flight', async () => {
  const { scheduler, disk } = setup(4);
  const file = await run(scheduler, disk.open('f', { create: true }));
  const sync = file.sync();
  disk.crash();
  await assert.rejects(sync, (error: unknown) => error instanceof DiskError && error.code === 'ECRASHED');
});

test('injected faults: one-shot read, append and sync errors; random read errors', async () => {
  const { scheduler, disk } = setup(5);
  const file = await run(scheduler, disk.open('f', { create: true }));
  await run(scheduler, file.append([Buffer.from('data')]));
  disk.failNext('f', 'read');
  await assert.rejects(run(scheduler, file.read(0, 4)), (error: unknown) => error instanceof DiskError && error.code === 'EIO');
  assert.equal(text(await run(scheduler, file.read(0, 4))), 'data');
  disk.failNext('f', 'sync');
  await assert.rejects(run(scheduler, file.sync()), (error: unknown) => error instanceof DiskError && error.code === 'EIO');
  await assert.rejects(run(scheduler, file.append([Buffer.from('x')])), 'a failed sync leaves the file unusable');

  const flaky = new SimDisk(scheduler, new Prng(6), { readErrorProbability: 0.5 });
  const flakyFile = await run(scheduler, flaky.open('g', { create: true }));
  let failures = 0;
  for (let i = 0; i < 40; i++) {
    try {
      await run(scheduler, flakyFile.read(0, 1));
    } catch {
      failures++;
    }
  }
  assert.ok(failures > 5 && failures < 35, `${failures} of 40 reads failed`);
});

test('the same seed gives the same timings and tears', async () => {
  const trace = async (seed: number) => {
    const { scheduler, disk } = setup(seed, 0.7);
    const events: string[] = [];
    for (let i = 0; i < 5; i++) {
      const file = await run(scheduler, disk.open(`f${i}`, { create: true }));
      await run(scheduler, file.append([Buffer.alloc(100, i)]));
      await run(scheduler, file.sync());
      await run(scheduler, file.append([Buffer.alloc(50, i)]));
      events.push(`t=${scheduler.nowMs}`);
    }
    await run(scheduler, disk.syncDir(''));
    disk.crash();
    for (let i = 0; i < 5; i++) events.push(`f${i}=${disk.describeFile(`f${i}`)!.size}`);
    return events.join(' ');
  };
  assert.equal(await trace(42), await trace(42));
  assert.notEqual(await trace(42), await trace(43));
});
