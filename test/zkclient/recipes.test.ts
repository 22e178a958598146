// LeaderElection, Barrier, Queue and ReadyConfig against a real ZooKeeper.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Barrier, LeaderElection, Queue, ReadyConfig, type Config, type Data, type ZkClient } from '../../src/zkclient/index.js';
import { zkHarness, targetKinds, sleep, uniquePath, waitUntil, within } from './helpers.js';

for (const kind of targetKinds()) {
  describe(`against ${kind}`, () => {
    const zk = zkHarness(kind);
    const text = (data: Data) => (data === null ? '' : Buffer.from(data).toString('utf8'));

    async function connectMany(count: number): Promise<ZkClient[]> {
      return Promise.all(Array.from({ length: count }, () => zk.connect()));
    }

    test('election: the first candidate leads; resigning or closing the session hands over to the next, waking only it', { timeout: 30_000 }, async () => {
      const clients = await connectMany(3);
      const path = uniquePath('election');
      const candidates = clients.map((client, i) => new LeaderElection(client, path, { data: `candidate-${i}` }));
      const elected: number[] = [];
      candidates.forEach((candidate, i) => {
        candidate.onElected(() => elected.push(i));
      });
      for (const candidate of candidates) await candidate.join();
      await within(5_000, 'first leader', candidates[0]!.whenElected());
      await sleep(100);
      assert.deepEqual(
        candidates.map((candidate) => candidate.isLeader),
        [true, false, false],
      );
      assert.equal(text((await candidates[2]!.leader())!.data), 'candidate-0');

      await candidates[0]!.resign();
      await within(5_000, 'second leader', candidates[1]!.whenElected());
      await sleep(100);
      assert.deepEqual(
        candidates.map((candidate) => candidate.isLeader),
        [false, true, false],
      );
      assert.deepEqual(
        candidates.map((candidate) => candidate.wakeups),
        [0, 1, 0],
        'only the successor woke',
      );
      assert.equal(text((await candidates[2]!.leader())!.data), 'candidate-1');

      await clients[1]!.close();
      await within(5_000, 'third leader', candidates[2]!.whenElected());
      assert.deepEqual(
        candidates.map((candidate) => candidate.isLeader),
        [false, false, true],
      );
      assert.deepEqual(
        candidates.map((candidate) => candidate.wakeups),
        [0, 1, 1],
      );
      assert.deepEqual(elected, [0, 1, 2]);
      await candidates[2]!.resign();
      assert.equal(await candidates[2]!.leader(), null);
    });

    test('election: a waiting candidate that resigns is never elected, and whenElected rejects', { timeout: 30_000 }, async () => {
      const [first, second] = await connectMany(2);
      const path = uniquePath('election-resign');
      const leader = new LeaderElection(first!, path);
      const follower = new LeaderElection(second!, path);
      await leader.join();
      await follower.join();
      await within(5_000, 'leader', leader.whenElected());
      const rejected = assert.rejects(follower.whenElected(), /resigned/);
      await follower.resign();
      await rejected;
      await leader.resign();
      await sleep(100);
      assert.equal(follower.isLeader, false);
      assert.deepEqual(await first!.getChildren(path), []);
    });

    test('barrier: waiters block while the barrier is up and all proceed when it is removed', { timeout: 30_000 }, async () => {
      const clients = await connectMany(4);
      const path = `${uniquePath('barrier')}/b`;
      const barrier = new Barrier(clients[0]!, path);
      assert.equal(await new Barrier(clients[1]!, path).wait(), true, 'no barrier: no wait');
      await barrier.set();
      await barrier.set();
      let passed = 0;
      const waits = clients.slice(1).map((client) =>
        new Barrier(client, path).wait().then((ok) => {
          passed++;
          return ok;
        }),
      );
      assert.equal(await new Barrier(clients[1]!, path).wait({ timeoutMs: 200 }), false);
      assert.equal(passed, 0);
      await barrier.remove();
      assert.deepEqual(await within(5_000, 'all waiters', Promise.all(waits)), [true, true, true]);
      await barrier.remove();
    });

    test('queue: one consumer gets items in FIFO order; poll and take on an empty queue', { timeout: 30_000 }, async () => {
      const [producer, consumer] = await connectMany(2);
      const path = uniquePath('queue-fifo');
      const queue = new Queue(producer!, path);
      const items = Array.from({ length: 10 }, (_, i) => `item ${i}`);
      for (const item of items) await queue.put(item);
      const consumerQueue = new Queue(consumer!, path);
      const taken: string[] = [];
      for (let i = 0; i < items.length; i++) taken.push(text(await consumerQueue.take()));
      assert.deepEqual(taken, items);
      assert.equal(await consumerQueue.poll(), null);
      const startedMs = Date.now();
      assert.equal(await consumerQueue.take({ timeoutMs: 200 }), null);
      assert.ok(Date.now() - startedMs >= 190);
      const later = consumerQueue.take({ timeoutMs: 5_000 });
      await sleep(100);
      await queue.put('late');
      assert.equal(text(await later), 'late');
    });

    test('queue: concurrent producers and consumers deliver every item exactly once, each consumer in order', { timeout: 60_000 }, async (t) => {
      const clients = await connectMany(6);
      const path = uniquePath('queue-many');
      const producers = clients.slice(0, 3);
      const consumers = clients.slice(3);
      const perProducer = 40;
      const total = producers.length * perProducer;
      let takenCount = 0;
      const takenBy: string[][] = consumers.map(() => []);
      const consuming = consumers.map(async (client, c) => {
        const queue = new Queue(client, path);
        while (takenCount < total) {
          const item = await queue.take({ timeoutMs: 500 });
          if (item === null) continue;
          takenCount++;
          takenBy[c]!.push(text(item));
        }
      });
      await Promise.all(
        producers.map(async (client, p) => {
          const queue = new Queue(client, path);
          for (let i = 0; i < perProducer; i++) await queue.put(`${p}:${i}`);
        }),
      );
      await within(30_000, 'every item consumed', Promise.all(consuming));
      const all = takenBy.flat();
      assert.equal(all.length, total);
      assert.equal(new Set(all).size, total, 'no item delivered twice');
      for (const taken of takenBy) {
        for (let p = 0; p < producers.length; p++) {
          const indexes = taken.filter((item) => item.startsWith(`${p}:`)).map((item) => Number(item.split(':')[1]));
          assert.deepEqual(
            indexes,
            [...indexes].sort((a, b) => a - b),
            "a consumer takes one producer's items in order",
          );
        }
      }
      // How the work was shared depends on timing (on a cluster, a consumer whose member
      // applies first may win every race): reported, not asserted.
      t.diagnostic(`items per consumer: ${takenBy.map((taken) => taken.length).join(', ')}`);
    });

    test('ready config: a reader only ever sees complete configurations, in order, ending with the last one', { timeout: 60_000 }, async () => {
      const [publisherClient, readerClient, naiveClient] = await connectMany(3);
      const base = uniquePath('config');
      const publisher = new ReadyConfig(publisherClient!, base);
      const reader = new ReadyConfig(readerClient!, base);
      assert.equal(await reader.read(), null, 'nothing published yet');

      const seen: Config[] = [];
      const errors: Error[] = [];
      const stop = reader.watch(
        (config) => seen.push(config),
        (error) => errors.push(error),
      );
      const versions = 60;
      const configOf = (version: number): Record<string, string> => {
        const config: Record<string, string> = { a: `${version}`, b: `${version}`, c: `${version}` };
        if (version % 3 === 0) config['extra'] = `${version}`; // keys come and go
        return config;
      };
      // Test the test: the same keys read without the ready protocol do come out mixed.
      let publishing = true;
      let naiveMixed = 0;
      // One key after the other (read together, the three requests leave in one write and are
      // answered in one pass, which would rarely fall between two of the publisher's writes).
      const naive = (async () => {
        while (publishing) {
          const values: string[] = [];
          for (const key of ['a', 'b', 'c']) {
            values.push(
              await naiveClient!.getData(`${base}/config/${key}`).then(
                (reply) => text(reply.data),
                () => 'gone',
              ),
            );
          }
          if (new Set(values).size > 1) naiveMixed++;
        }
      })();
      try {
        for (let version = 1; version <= versions; version++) {
          await publisher.publish(configOf(version));
          if (version % 10 === 0) await sleep(20);
        }
        publishing = false;
        await naive;
        await waitUntil('the reader to see the last version', 10_000, () => seen.length > 0 && text(seen[seen.length - 1]!.get('a')!) === `${versions}`);
      } finally {
        publishing = false;
        stop();
      }
      assert.ok(naiveMixed > 0, 'a reader ignoring ready saw a mixed configuration');
      assert.deepEqual(errors, []);
      let previous = 0;
      for (const config of seen) {
        const version = Number(text(config.get('a')!));
        const expected = configOf(version);
        assert.deepEqual([...config.keys()], Object.keys(expected).sort(), `keys of version ${version}`);
        for (const [key, value] of config) assert.equal(text(value), expected[key], `version ${version} key ${key}: a mixed configuration`);
        assert.ok(version > previous, `versions increase: ${previous} then ${version}`);
        previous = version;
      }
      const final = await reader.read();
      assert.equal(text(final!.get('b')!), `${versions}`);
      assert.ok(seen.length <= versions, 'at most one delivery per version');
    });
  });
}
