// Lock and ReadWriteLock against a real ZooKeeper: mutual exclusion, no herd, release on
// session close, timeouts, and the GUID search after a create whose reply was lost.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lock, ReadWriteLock, SequenceLock, type ZkClient } from '../../src/zkclient/index.js';
import { OpCode } from '../../src/zk/constants.js';
import { startProxy } from './proxy.js';
import { zkHarness, targetKinds, sleep, uniquePath, waitUntil, within } from './helpers.js';

for (const kind of targetKinds()) {
  describe(`against ${kind}`, () => {
    const zk = zkHarness(kind);

    async function connectMany(count: number): Promise<ZkClient[]> {
      return Promise.all(Array.from({ length: count }, () => zk.connect()));
    }

    /** Clients spread over every member (on a cluster, waiters and holders on different members). */
    async function connectSpread(count: number): Promise<ZkClient[]> {
      const members = zk.server().members;
      return Promise.all(Array.from({ length: count }, (_, i) => zk.connect({ servers: [members[i % members.length]!] })));
    }

    test('lock: N clients incrementing a znode counter under the lock end exact, never two holders at once', { timeout: 60_000 }, async () => {
      const clients = await connectSpread(6);
      const path = uniquePath('lock-counter');
      const counter = `${path}-counter`;
      await clients[0]!.create(counter, '0');
      const roundsPerClient = 5;
      let holders = 0;
      let holdersMax = 0;
      await within(
        45_000,
        'all rounds',
        Promise.all(
          clients.map(async (client) => {
            const lock = new Lock(client, path);
            for (let round = 0; round < roundsPerClient; round++) {
              assert.equal(await lock.acquire(), true);
              holders++;
              holdersMax = Math.max(holdersMax, holders);
              // A read-modify-write with no version check: only the lock prevents lost updates.
              const value = Number(Buffer.from((await client.getData(counter)).data!).toString());
              await sleep(2);
              await client.setData(counter, String(value + 1));
              holders--;
              await lock.release();
            }
            // Each acquire waits for at most one predecessor's deletion: at most one wakeup each.
            assert.ok(lock.wakeups <= roundsPerClient, `${lock.wakeups} wakeups in ${roundsPerClient} acquires`);
          }),
        ),
      );
      assert.equal(holdersMax, 1);
      // The same workload without the lock loses updates, so the exact count above means something.
      const unlocked = `${counter}-unlocked`;
      await clients[0]!.create(unlocked, '0');
      await Promise.all(
        clients.map(async (client) => {
          // Reads are served by each client's own server: sync first to see the create (on a
          // cluster another client's write is not visible before then, as in ZooKeeper).
          await client.sync(unlocked);
          const value = Number(Buffer.from((await client.getData(unlocked)).data!).toString());
          await sleep(20);
          await client.setData(unlocked, String(value + 1));
        }),
      );
      await clients[0]!.sync(path);
      assert.ok(Number(Buffer.from((await clients[0]!.getData(unlocked)).data!).toString()) < clients.length);
      assert.equal(Buffer.from((await clients[0]!.getData(counter)).data!).toString(), String(clients.length * roundsPerClient));
      assert.deepEqual(await clients[0]!.getChildren(path), [], 'every lock node was removed');
    });

    test('lock: each release wakes exactly one waiter (the next in line), and no other waiter hears anything', { timeout: 60_000 }, async () => {
      const clients = await connectMany(5);
      const path = uniquePath('lock-herd');
      const locks = clients.map((client) => new Lock(client, path));
      assert.equal(await locks[0]!.acquire(), true);
      // Queue the waiters one after another, so their order in line is their index.
      const acquired: Promise<boolean>[] = [];
      for (const lock of locks.slice(1)) {
        acquired.push(lock.acquire());
        await waitUntil('the waiter to queue', 5_000, () => lock.nodePath !== undefined);
      }
      await sleep(100);
      assert.deepEqual(
        locks.map((lock) => lock.wakeups),
        [0, 0, 0, 0, 0],
        'nobody woken before a release',
      );
      for (let holder = 0; holder < locks.length - 1; holder++) {
        await locks[holder]!.release();
        await within(5_000, `waiter ${holder + 1} to acquire`, acquired[holder]!);
        await sleep(100); // give any stray notification time to arrive
        const expected = locks.map((_, i) => (i >= 1 && i <= holder + 1 ? 1 : 0));
        assert.deepEqual(
          locks.map((lock) => lock.wakeups),
          expected,
          `after release ${holder + 1}`,
        );
        assert.equal(locks[holder + 1]!.isHeld, true);
      }
      await locks[locks.length - 1]!.release();
    });

    test('lock: the wakeup count catches a herd (a planted lock whose waiters all watch the holder)', { timeout: 30_000 }, async () => {
      const clients = await connectMany(4);
      const path = uniquePath('lock-planted-herd');
      const locks = clients.map((client, i) => new SequenceLock(client, path, 'lock', ['lock'], (nodes, mine) => (mine === 0 ? undefined : nodes[0]), `herd${i}`));
      assert.equal(await locks[0]!.acquire(), true);
      const acquired: Promise<boolean>[] = [];
      for (const lock of locks.slice(1)) {
        acquired.push(lock.acquire());
        await waitUntil('the waiter to queue', 5_000, () => lock.nodePath !== undefined);
      }
      await sleep(100);
      await locks[0]!.release();
      await within(5_000, 'the next holder', acquired[0]!);
      await waitUntil('every waiter to be woken', 5_000, () => locks.slice(1).every((lock) => lock.wakeups === 1));
      for (const [i, lock] of locks.slice(1).entries()) {
        await lock.release();
        if (i + 1 < acquired.length) await within(5_000, 'next', acquired[i + 1]!);
      }
    });

    test('lock: a holder whose session closes releases the lock; a timed-out waiter withdraws its node', { timeout: 30_000 }, async () => {
      const [holderClient, waiterClient, impatientClient] = await connectMany(3);
      const path = uniquePath('lock-close');
      const holder = new Lock(holderClient!, path);
      const waiter = new Lock(waiterClient!, path);
      const impatient = new Lock(impatientClient!, path);
      assert.equal(await holder.acquire(), true);
      const waiting = waiter.acquire();
      // The waiter's node first, so that it waits on the holder and not on the impatient one.
      await waitUntil("the waiter's node", 5_000, async () => {
        await holderClient!.sync(path);
        return (await holderClient!.getChildren(path)).length === 2;
      });
      const startedMs = Date.now();
      assert.equal(await impatient.acquire({ timeoutMs: 300 }), false);
      assert.ok(Date.now() - startedMs >= 290);
      await holderClient!.sync(path);
      assert.equal((await holderClient!.getChildren(path)).length, 2, "the impatient waiter's node is gone");

      await holderClient!.close();
      assert.equal(holder.isHeld, false);
      assert.equal(await within(3_000, 'the waiter to acquire after the holder closed', waiting), true);
      assert.equal(waiter.wakeups, 1);
      await waiter.release();
    });

    test('lock: a create whose reply is lost is found again by its GUID, not created twice', { timeout: 30_000 }, async () => {
      const proxy = await startProxy(zk.server().port);
      try {
        const client = await zk.connect({ servers: [proxy.connectString], reconnectDelayMsMax: 50 });
        const path = uniquePath('lock-guid');
        await client.create(path);
        const lock = new Lock(client, path, { guid: 'feedfacecafebeef' });
        const createsBefore = proxy.frames.filter((frame) => frame.opcode === OpCode.create).length;
        proxy.loseReplyAfter(OpCode.create);
        assert.equal(await within(10_000, 'acquire across the lost reply', lock.acquire()), true);
        const children = await client.getChildren(path);
        assert.equal(children.length, 1, `one node: ${children.join(',')}`);
        assert.match(children[0]!, /^feedfacecafebeef-lock-\d{10}$/);
        assert.equal(lock.nodePath, `${path}/${children[0]}`);
        assert.equal(proxy.frames.filter((frame) => frame.opcode === OpCode.create).length - createsBefore, 1, 'the create was sent once');
        assert.ok(
          proxy.frames.some((frame) => frame.opcode === OpCode.getChildren),
          'and then searched for',
        );
        await lock.release();
      } finally {
        await proxy.stop();
      }
    });

    test('read-write lock: readers share, a writer excludes everyone, and a writer waits for earlier readers', { timeout: 60_000 }, async () => {
      const clients = await connectMany(6);
      const path = uniquePath('rwlock');
      let readers = 0;
      let writers = 0;
      let readersMax = 0;
      let violations = 0;
      const hold = async (lock: SequenceLock, kind: 'read' | 'write') => {
        assert.equal(await lock.acquire(), true);
        if (kind === 'read') readers++;
        else writers++;
        if (writers > 1 || (writers === 1 && readers > 0)) violations++;
        readersMax = Math.max(readersMax, readers);
        await sleep(30);
        if (kind === 'read') readers--;
        else writers--;
        await lock.release();
      };
      await within(
        45_000,
        'all holders',
        Promise.all(
          clients.map(async (client, i) => {
            const lock = new ReadWriteLock(client, path);
            for (let round = 0; round < 4; round++) {
              const kind = (i + round) % 3 === 0 ? 'write' : 'read';
              await hold(kind === 'read' ? lock.readLock : lock.writeLock, kind);
            }
          }),
        ),
      );
      assert.equal(violations, 0);
      assert.ok(readersMax >= 2, `readers overlapped (max ${readersMax})`);

      // Order: a reader that arrives after a waiting writer waits for that writer.
      const [a, b, c] = clients.map((client) => new ReadWriteLock(client, path));
      assert.equal(await a!.readLock.acquire(), true);
      const writer = b!.writeLock.acquire();
      await waitUntil('the writer to queue', 5_000, async () => (await clients[0]!.getChildren(path)).length === 2);
      assert.equal(await c!.readLock.acquire({ timeoutMs: 300 }), false, 'a later reader waits behind the writer');
      await a!.readLock.release();
      assert.equal(await within(3_000, 'writer', writer), true);
      await b!.writeLock.release();
    });
  });
}
