// ZkClient against a real ZooKeeper 3.8: the API, watches, sessions. The connection-loss
// paths (proxy) and the exact wire behaviour (scripted server) are in session.test.ts.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CREATOR_ALL_ACL, Err, OPEN_ACL_UNSAFE, Perm, READ_ACL_UNSAFE, ZkClient, ZkError, type WatchEvent } from '../../src/zkclient/index.js';
import { freeLoopbackPort } from '../zk/real-zookeeper.js';
import { zkHarness, targetKinds, sleep, uniquePath, waitUntil, within } from './helpers.js';

for (const kind of targetKinds()) {
  describe(`against ${kind}`, () => {
    const zk = zkHarness(kind);
    const text = (data: Uint8Array | null) => (data === null ? null : Buffer.from(data).toString('utf8'));

    async function rejectsWith(promise: Promise<unknown>, code: number): Promise<ZkError> {
      try {
        await promise;
      } catch (error) {
        assert.ok(error instanceof ZkError, `expected a ZkError, got ${String(error)}`);
        assert.equal(error.code, code, error.message);
        return error;
      }
      assert.fail(`expected a ZkError ${code}, but the call succeeded`);
    }

    test('client: create, read, update and delete with versions; errors carry code and codeName', { timeout: 20_000 }, async () => {
      const client = await zk.connect();
      assert.ok(client.sessionId > 0n);
      assert.ok(client.negotiatedTimeoutMs >= 400 && client.negotiatedTimeoutMs <= 4_000, `negotiated ${client.negotiatedTimeoutMs}`);
      const base = uniquePath('crud');
      assert.equal(await client.create(base, 'root'), base);
      const created = await client.create2(`${base}/a`, 'one');
      assert.equal(created.path, `${base}/a`);
      assert.equal(created.stat.version, 0);
      assert.equal(created.stat.dataLength, 3);

      const read = await client.getData(`${base}/a`);
      assert.equal(text(read.data), 'one');
      const stat = await client.setData(`${base}/a`, 'two', 0);
      assert.equal(stat.version, 1);
      const stale = await rejectsWith(client.setData(`${base}/a`, 'three', 0), Err.badVersion);
      assert.equal(stale.codeName, 'BADVERSION');
      assert.match(stale.message, /^BADVERSION: /);

      await client.create(`${base}/null`, null);
      await client.create(`${base}/empty`, new Uint8Array(0));
      assert.equal((await client.getData(`${base}/null`)).data, null);
      assert.deepEqual((await client.getData(`${base}/empty`)).data, new Uint8Array(0));

      const missing = await rejectsWith(client.getData(`${base}/missing`), Err.noNode);
      assert.equal(missing.codeName, 'NONODE');
      await rejectsWith(client.create(`${base}/a`), Err.nodeExists);
      await rejectsWith(client.delete(base), Err.notEmpty);
      await rejectsWith(client.create('no-slash'), Err.badArguments);
      assert.equal(await client.exists(`${base}/missing`), null);
      assert.equal((await client.exists(`${base}/a`))?.version, 1);

      assert.deepEqual((await client.getChildren(base)).sort(), ['a', 'empty', 'null']);
      const both = await client.getChildren2(base);
      assert.deepEqual(both.children.sort(), ['a', 'empty', 'null']);
      assert.equal(both.stat.numChildren, 3);
      await rejectsWith(client.delete(`${base}/a`, 0), Err.badVersion);
      await client.delete(`${base}/a`, 1);
      assert.equal(await client.sync(base), base);
    });

    test('client: sequential and ephemeral modes; ephemerals vanish at once when the session closes', { timeout: 20_000 }, async () => {
      const owner = await zk.connect();
      const observer = await zk.connect();
      const base = uniquePath('modes');
      await owner.create(base);
      const first = await owner.create(`${base}/s-`, null, { mode: 'persistent-sequential' });
      const second = await owner.create(`${base}/s-`, null, { mode: 'ephemeral-sequential' });
      assert.equal(first, `${base}/s-0000000000`);
      assert.equal(second, `${base}/s-0000000001`);
      await owner.create(`${base}/e`, 'x', { mode: 'ephemeral' });
      const ephemeral = await observer.exists(`${base}/e`);
      assert.ok(ephemeral !== null && ephemeral.ephemeralOwner !== 0);
      await rejectsWith(owner.create(`${base}/e/child`), Err.noChildrenForEphemerals);

      const startedMs = Date.now();
      await owner.close();
      assert.equal(owner.state, 'closed');
      assert.deepEqual((await observer.getChildren(base)).sort(), ['s-0000000000']);
      assert.ok(Date.now() - startedMs < owner.negotiatedTimeoutMs, 'closeSession deleted the ephemerals, no expiry wait');
      await rejectsWith(owner.getData(base), Err.sessionExpired);
    });

    test('client: multi applies all or nothing and reports per-op results', { timeout: 20_000 }, async () => {
      const client = await zk.connect();
      const base = uniquePath('multi');
      await client.create(base, 'v0');
      const results = await client.multi([
        { op: 'create', path: `${base}/a`, data: 'a' },
        { op: 'check', path: base, version: 0 },
        { op: 'setData', path: base, data: 'v1' },
        { op: 'create', path: `${base}/b`, mode: 'persistent-sequential' },
        { op: 'delete', path: `${base}/a` },
      ]);
      assert.deepEqual(
        results.map((result) => result.type),
        ['create', 'check', 'setData', 'create', 'delete'],
      );
      assert.equal(results[3]?.type === 'create' ? results[3].path : '', `${base}/b0000000001`);

      const failed = await rejectsWith(
        client.multi([
          { op: 'create', path: `${base}/c` },
          { op: 'setData', path: base, data: 'v2', version: 0 },
          { op: 'delete', path: `${base}/b0000000001` },
        ]),
        Err.badVersion,
      );
      assert.deepEqual(
        failed.results?.map((result) => (result.type === 'error' ? result.err : result.type)),
        [0, Err.badVersion, Err.runtimeInconsistency],
      );
      assert.equal(await client.exists(`${base}/c`), null, 'nothing of the failed multi applied');
      assert.equal(text((await client.getData(base)).data), 'v1');
      assert.deepEqual(await client.multi([]), []);
    });

    test('client: ACLs and digest auth; a refused credential ends the session as auth-failed', { timeout: 20_000 }, async () => {
      const alice = await zk.connect({ auth: [{ scheme: 'digest', auth: 'alice:secret' }] });
      const stranger = await zk.connect();
      const base = uniquePath('acl');
      await alice.create(base, 'private', { acl: CREATOR_ALL_ACL });
      const { acl } = await alice.getACL(base);
      assert.equal(acl.length, 1);
      assert.equal(acl[0]?.id.scheme, 'digest');
      assert.match(acl[0]?.id.id ?? '', /^alice:/);
      await rejectsWith(stranger.getData(base), Err.noAuth);
      await stranger.addAuth('digest', 'alice:secret');
      assert.equal(text((await stranger.getData(base)).data), 'private');
      await rejectsWith(alice.setACL(base, OPEN_ACL_UNSAFE, 1), Err.badVersion);
      const stat = await alice.setACL(base, READ_ACL_UNSAFE, 0);
      assert.equal(stat.aversion, 1);
      await rejectsWith(alice.setData(base, 'x'), Err.noAuth);
      await rejectsWith(alice.setACL(base, OPEN_ACL_UNSAFE), Err.noAuth);

      const bad = await zk.connect();
      const states: string[] = [];
      bad.on('state', (state) => states.push(state));
      await rejectsWith(bad.addAuth('no-such-scheme', 'x'), Err.authFailed);
      assert.deepEqual(states, ['auth-failed']);
      await rejectsWith(bad.exists('/'), Err.authFailed);
      assert.equal(Perm.all, 31);
    });

    test('client: watches fire once, by the Java client rules, before the data that reflects the change', { timeout: 20_000 }, async () => {
      const watcherClient = await zk.connect();
      const writer = await zk.connect();
      const base = uniquePath('watch');
      await writer.create(base);
      const events: string[] = [];
      const record = (name: string) => (event: WatchEvent) => events.push(`${name}:${event.type}:${event.path}`);

      // exists on a missing node arms an exist watch: NodeCreated.
      assert.equal(await watcherClient.exists(`${base}/n`, record('exists')), null);
      await writer.create(`${base}/n`, 'v1');
      await waitUntil('NodeCreated', 5_000, () => events.length === 1);
      assert.deepEqual(events.splice(0), [`exists:created:${base}/n`]);

      // One function armed by getData and exists gets one NodeDataChanged; it is then disarmed.
      const shared = record('shared');
      await watcherClient.getData(`${base}/n`, shared);
      await watcherClient.exists(`${base}/n`, shared);
      await watcherClient.getChildren(base, record('children'));
      await writer.setData(`${base}/n`, 'v2');
      await writer.setData(`${base}/n`, 'v3');
      await writer.create(`${base}/m`);
      await waitUntil('events', 5_000, () => events.length === 2);
      await sleep(200);
      assert.deepEqual(events.splice(0), [`shared:dataChanged:${base}/n`, `children:childrenChanged:${base}`]);

      // NodeDeleted goes to data, exist and child watchers of the node.
      await watcherClient.getData(`${base}/m`, record('data'));
      await watcherClient.getChildren(`${base}/m`, record('child'));
      await writer.delete(`${base}/m`);
      await waitUntil('NodeDeleted', 5_000, () => events.length === 2);
      assert.deepEqual(events.splice(0).sort(), [`child:deleted:${base}/m`, `data:deleted:${base}/m`]);

      // The watch event arrives before a read that sees the new value.
      const order: string[] = [];
      await watcherClient.getData(`${base}/n`, () => order.push('event'));
      await writer.setData(`${base}/n`, 'v4');
      const read = await watcherClient.getData(`${base}/n`);
      order.push(`read ${text(read.data)}`);
      assert.deepEqual(order, ['event', 'read v4']);
    });

    test('client: close() ends the session for good: watchers get sessionEnded, later calls fail SESSIONEXPIRED', { timeout: 20_000 }, async () => {
      const client = await zk.connect();
      const states: string[] = [];
      client.on('state', (state) => states.push(state));
      const base = uniquePath('close');
      await client.create(base);
      const events: WatchEvent[] = [];
      await client.exists(base, (event) => events.push(event));
      await within(5_000, 'close', client.close());
      await client.close();
      await sleep(10);
      assert.deepEqual(events, [{ type: 'sessionEnded', path: base }]);
      assert.deepEqual(states, ['closed']);
      await rejectsWith(client.exists(base), Err.sessionExpired);
      assert.ok((await client.whenEnded()).code === Err.sessionExpired);
    });

    test('client: connect fails with CONNECTIONLOSS when no server answers, within its deadline', { timeout: 20_000 }, async () => {
      const startedMs = Date.now();
      // A port nothing listens on (port + 1 may be another port of a Flotilla member).
      const dead = `127.0.0.1:${await freeLoopbackPort()}`;
      await rejectsWith(ZkClient.connect({ servers: [dead], sessionTimeoutMs: 2_000, initialConnectDeadlineMs: 1_000 }), Err.connectionLoss);
      assert.ok(Date.now() - startedMs < 3_000);
      // With a dead server and a live one, the client finds the live one whatever the shuffle.
      for (const seed of [1, 2, 3, 4]) {
        const client = await ZkClient.connect({ servers: [dead, zk.server().connectString], sessionTimeoutMs: 2_000, seed, reconnectDelayMsMax: 50 });
        assert.equal(client.state, 'connected');
        await client.close();
      }
    });
  });
}
