// The `etcd3` npm client (1.1.2), unchanged, against a three-member Flotilla: its KV
// builders, transactions, watches, leases with keep-alive, and its Lock and Election helpers,
// all through etcd's v3 gRPC API on the members' etcd ports.

import { type TestContext, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3, EtcdLockFailedError, type IKeyValue } from 'etcd3';
import { sleep, TestCluster, waitFor } from '../server/helpers.js';

/**
 * A three-member Flotilla and an etcd3 client on all its etcd ports. `closing` registers
 * cleanups (watchers, the client) that run before the cluster is stopped, newest first, also
 * when the test fails: after-hooks run in registration order, so this one is registered first.
 */
async function client(t: TestContext): Promise<{ etcd: Etcd3; closing: (close: () => unknown) => void }> {
  const closers: (() => unknown)[] = [];
  t.after(async () => {
    for (const close of closers.reverse()) await close();
  });
  const cluster = await TestCluster.start(t, 3);
  const hosts = cluster.ids.map((id) => `http://127.0.0.1:${cluster.ports.get(id)!.etcd}`);
  const etcd = new Etcd3({ hosts, dialTimeout: 5000 });
  closers.push(() => etcd.close());
  await waitFor('the etcd group answers the etcd3 client', 20_000, async () => {
    try {
      await etcd.get('probe').string();
      return true;
    } catch {
      return undefined;
    }
  });
  return { etcd, closing: (close) => closers.push(close) };
}

test('etcd3 client: put/get/getAll with a prefix/delete, and transactions with if().then().else()', { timeout: 90_000 }, async (t) => {
  const { etcd } = await client(t);
  await etcd.put('app/a').value('1');
  await etcd.put('app/b').value('2');
  await etcd.put('other').value('x');
  assert.equal(await etcd.get('app/a').string(), '1');
  assert.equal(await etcd.get('missing').string(), null);
  assert.deepEqual(await etcd.getAll().prefix('app/').strings(), { 'app/a': '1', 'app/b': '2' });
  assert.deepEqual(await etcd.getAll().prefix('app/').keys(), ['app/a', 'app/b']);
  assert.equal(await etcd.getAll().prefix('app/').count(), 2);
  const kv = (await etcd.get('app/a').exec()).kvs[0] as IKeyValue;
  assert.equal(kv.version, '1');
  await etcd.delete().key('app/b');
  assert.deepEqual(await etcd.getAll().prefix('app/').keys(), ['app/a']);

  // A compare-and-swap that succeeds, then one that fails and runs the else branch.
  const swapped = await etcd.if('app/a', 'Value', '==', '1').then(etcd.put('app/a').value('2')).else(etcd.put('app/failed').value('yes')).commit();
  assert.equal(swapped.succeeded, true);
  assert.equal(await etcd.get('app/a').string(), '2');
  const missed = await etcd.if('app/a', 'Value', '==', '1').then(etcd.put('app/a').value('3')).else(etcd.put('app/failed').value('yes'), etcd.get('app/a')).commit();
  assert.equal(missed.succeeded, false);
  assert.equal(Buffer.from(missed.responses[1]!.response_range!.kvs[0]!.value).toString(), '2');
  assert.equal(await etcd.get('app/failed').string(), 'yes');
  // Version and create-revision compares.
  const created = await etcd.if('app/new', 'Create', '==', 0).then(etcd.put('app/new').value('first')).commit();
  assert.equal(created.succeeded, true);
  const again = await etcd.if('app/new', 'Create', '==', 0).then(etcd.put('app/new').value('second')).commit();
  assert.equal(again.succeeded, false);
  assert.equal(await etcd.get('app/new').string(), 'first');
  await etcd.delete().prefix('app/');
  assert.equal(await etcd.getAll().prefix('app/').count(), 0);
});

test('etcd3 client: a watcher on a prefix receives put and delete events in order', { timeout: 90_000 }, async (t) => {
  const { etcd, closing } = await client(t);
  const watcher = await etcd.watch().prefix('w/').create();
  closing(() => watcher.cancel());
  const seen: string[] = [];
  watcher.on('put', (kv) => seen.push(`put ${kv.key.toString()}=${kv.value.toString()}`));
  watcher.on('delete', (kv) => seen.push(`delete ${kv.key.toString()}`));
  await etcd.put('w/1').value('a');
  await etcd.put('elsewhere').value('ignored');
  await etcd.put('w/2').value('b');
  await etcd.put('w/1').value('c');
  await etcd.delete().key('w/2');
  await waitFor(`four events (got ${seen.join(', ')})`, 10_000, () => (seen.length >= 4 ? true : undefined));
  assert.deepEqual(seen, ['put w/1=a', 'put w/2=b', 'put w/1=c', 'delete w/2']);
});

test('etcd3 client: lease grant, put with the lease, keep-alive past the TTL, revoke deletes the key', { timeout: 90_000 }, async (t) => {
  const { etcd } = await client(t);
  const lease = etcd.lease(3);
  const id = await lease.grant();
  assert.match(id, /^\d+$/);
  await lease.put('leased').value('v');
  const kept: string[] = [];
  lease.on('keepaliveSucceeded', (res) => kept.push(String(res.TTL)));
  const once = await lease.keepaliveOnce();
  assert.equal(String(once.TTL), '3');
  // The client renews on its own (every TTL/3); the key outlives two TTLs.
  await sleep(7000);
  assert.equal(lease.revoked(), false);
  assert.equal(await etcd.get('leased').string(), 'v');
  assert.ok(kept.length >= 2, `the client's keep-alives were answered (${kept.length})`);
  assert.ok(kept.every((ttl) => ttl === '3'));
  const kv = (await etcd.get('leased').exec()).kvs[0] as IKeyValue;
  assert.equal(kv.lease, id, 'the key carries the lease id');
  await lease.revoke();
  assert.equal(await etcd.get('leased').string(), null, 'revoking deleted the key');

  // A lease released without revoking (no more keep-alives) expires, and its key with it.
  const dropped = etcd.lease(2);
  await dropped.put('dropped').value('v');
  dropped.release();
  await waitFor('the released lease’s key expires', 10_000, async () => ((await etcd.get('dropped').string()) === null ? true : undefined));
});

test('etcd3 client: Lock excludes a second holder until released; Election elects, observes and hands over', { timeout: 90_000 }, async (t) => {
  const { etcd, closing } = await client(t);
  const first = await etcd.lock('jobs').ttl(5).acquire();
  await assert.rejects(etcd.lock('jobs').ttl(5).acquire(), (error: unknown) => error instanceof EtcdLockFailedError);
  await first.release();
  const second = await etcd.lock('jobs').ttl(5).acquire();
  await second.release();
  // do(): the lock is held while the function runs, and released after.
  const inside = await etcd.lock('jobs').do(async () => {
    await assert.rejects(etcd.lock('jobs').acquire(), (error: unknown) => error instanceof EtcdLockFailedError);
    return 'ran';
  });
  assert.equal(inside, 'ran');

  const election = etcd.election('leader', 5);
  const alice = election.campaign('alice');
  await alice.wait();
  assert.equal(await election.leader(), 'alice');
  const observer = await election.observe();
  closing(() => observer.cancel());
  const changes: (string | undefined)[] = [];
  observer.on('change', (value) => changes.push(value));
  const bob = election.campaign('bob');
  let bobElected = false;
  bob.on('elected', () => (bobElected = true));
  await sleep(1000);
  assert.equal(bobElected, false, 'bob waits while alice leads');
  await alice.proclaim('alice-2');
  await waitFor('the observer sees the proclamation', 10_000, () => (changes.includes('alice-2') ? true : undefined));
  await alice.resign();
  await bob.wait();
  assert.equal(await election.leader(), 'bob');
  await waitFor(`the observer sees bob (${changes.join(', ')})`, 10_000, () => (changes.includes('bob') ? true : undefined));
  await bob.resign();
});
