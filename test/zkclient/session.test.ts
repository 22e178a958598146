// ZkClient sessions across connection loss: against a real ZooKeeper through a proxy that
// cuts or silences the connection, and against a scripted server for the exact bytes.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CREATOR_ALL_ACL, Err, ZkClient, ZkError, type WatchEvent, type ZkState } from '../../src/zkclient/index.js';
import { EventType, KeeperState, OpCode, Xid } from '../../src/zk/constants.js';
import { FAKE_PASSWD, FAKE_SESSION_ID, startFakeServer } from './fake-server.js';
import { startProxy, type ZkProxy } from './proxy.js';
import { zkHarness, targetKinds, sleep, uniquePath, waitUntil, within } from './helpers.js';

for (const kind of targetKinds()) {
  describe(`against ${kind}`, () => {
    const zk = zkHarness(kind);

    async function withProxy(body: (proxy: ZkProxy) => Promise<void>): Promise<void> {
      const proxy = await startProxy(zk.server().port);
      try {
        await body(proxy);
      } finally {
        await proxy.stop();
      }
    }

    function stateLog(client: ZkClient): { states: ZkState[]; next(state: ZkState, timeoutMs: number): Promise<number> } {
      const states: ZkState[] = [];
      const waiters: { state: ZkState; resolve: (ms: number) => void }[] = [];
      client.on('state', (state) => {
        states.push(state);
        for (const waiter of waiters.filter((w) => w.state === state)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(Date.now());
        }
      });
      return {
        states,
        next: (state, timeoutMs) => within(timeoutMs, `state ${state}`, new Promise<number>((resolve) => waiters.push({ state, resolve }))),
      };
    }

    async function failsWith(promise: Promise<unknown>, code: number): Promise<void> {
      await assert.rejects(promise, (error: unknown) => error instanceof ZkError && error.code === code);
    }

    test('session: a cut connection fails in-flight calls with CONNECTIONLOSS; the session resumes with its auth, ephemerals and watches', { timeout: 30_000 }, async () => {
      await withProxy(async (proxy) => {
        const client = await zk.connect({ servers: [proxy.connectString], auth: [{ scheme: 'digest', auth: 'carol:pw' }], reconnectDelayMsMax: 50 });
        const observer = await zk.connect();
        const log = stateLog(client);
        const base = uniquePath('resume');
        await client.create(base);
        await client.create(`${base}/e`, null, { mode: 'ephemeral' });
        await client.create(`${base}/secret`, 's', { acl: CREATOR_ALL_ACL });
        await client.create(`${base}/w`, 'before');
        const events: WatchEvent[] = [];
        await client.getData(`${base}/w`, (event) => events.push(event));
        const sessionId = client.sessionId;

        const disconnected = log.next('disconnected', 5_000);
        const inFlight = client.getData(`${base}/w`);
        proxy.cut();
        await failsWith(inFlight, Err.connectionLoss);
        await disconnected;
        await observer.setData(`${base}/w`, 'during');
        const connectionsBefore = new Set(proxy.frames.map((frame) => frame.connection)).size;
        const connected = log.next('connected', 5_000);
        proxy.heal();
        await connected;

        assert.equal(client.sessionId, sessionId);
        await waitUntil('the watch re-armed by setWatches to fire', 5_000, () => events.length === 1);
        assert.deepEqual(events, [{ type: 'dataChanged', path: `${base}/w` }]);
        assert.notEqual(await observer.exists(`${base}/e`), null, 'the ephemeral survived the reconnect');
        assert.equal(Buffer.from((await client.getData(`${base}/secret`)).data!).toString(), 's', 'the credential was re-sent');
        const resumed = proxy.frames.filter((frame) => frame.connection === Math.max(...proxy.frames.map((f) => f.connection)));
        assert.deepEqual(
          resumed.slice(0, 3).map((frame) => frame.opcode),
          ['connect', OpCode.auth, OpCode.setWatches],
        );
        assert.ok(new Set(proxy.frames.map((frame) => frame.connection)).size > connectionsBefore);
      });
    });

    test('session: after the server expired the session, the reconnect reports expired: calls fail SESSIONEXPIRED, watchers get sessionEnded', { timeout: 30_000 }, async () => {
      await withProxy(async (proxy) => {
        const client = await zk.connect({ servers: [proxy.connectString], sessionTimeoutMs: 1_000, reconnectDelayMsMax: 50 });
        const observer = await zk.connect();
        const log = stateLog(client);
        const base = uniquePath('expire');
        await observer.create(base);
        await client.create(`${base}/e`, null, { mode: 'ephemeral' });
        const events: WatchEvent[] = [];
        await client.exists(`${base}/e`, (event) => events.push(event));

        proxy.cut();
        await log.next('disconnected', 5_000);
        await waitUntil('the server to expire the session', 10_000, async () => (await observer.exists(`${base}/e`)) === null);
        proxy.heal();
        await log.next('expired', 5_000);
        assert.deepEqual(log.states, ['disconnected', 'expired']);
        assert.deepEqual(events, [{ type: 'sessionEnded', path: `${base}/e` }]);
        await failsWith(client.exists(base), Err.sessionExpired);
        assert.equal((await client.whenEnded()).code, Err.sessionExpired);
      });
    });

    test('session: a silent server is dropped after 2/3 of the session timeout, and the session resumes elsewhere', { timeout: 30_000 }, async () => {
      await withProxy(async (proxy) => {
        const client = await zk.connect({ servers: [proxy.connectString], sessionTimeoutMs: 2_000, reconnectDelayMsMax: 50 });
        const log = stateLog(client);
        const sessionId = client.sessionId;
        const readTimeoutMs = (client.negotiatedTimeoutMs * 2) / 3;
        const startedMs = Date.now();
        proxy.blackhole();
        const droppedMs = await log.next('disconnected', 5_000);
        proxy.heal();
        // Nothing was received since at most one ping interval (1/3) before the blackhole.
        const silentMs = droppedMs - startedMs;
        assert.ok(silentMs >= readTimeoutMs - client.negotiatedTimeoutMs / 3 - 50 && silentMs <= readTimeoutMs + 500, `dropped after ${silentMs} ms (read timeout ${readTimeoutMs})`);
        await log.next('connected', 5_000);
        assert.equal(client.sessionId, sessionId);
        assert.equal((await client.exists('/'))?.numChildren !== undefined, true);
      });
    });

    test('session: an idle client pings every 1/3 of the session timeout and keeps its session', { timeout: 30_000 }, async () => {
      await withProxy(async (proxy) => {
        const client = await zk.connect({ servers: [proxy.connectString], sessionTimeoutMs: 1_200 });
        const log = stateLog(client);
        assert.equal(client.negotiatedTimeoutMs, 1_200);
        await sleep(1_700);
        const pings = proxy.frames.filter((frame) => frame.opcode === OpCode.ping);
        assert.ok(pings.length >= 3 && pings.length <= 6, `${pings.length} pings in 1.7 s (one per 400 ms idle)`);
        assert.ok(pings.every((frame) => frame.xid === Xid.ping && frame.body.length === 8));
        assert.deepEqual(log.states, []);
        assert.notEqual(await client.exists('/'), null);
      });
    });

    test('wire: the handshake is 45 bytes with readOnly=false; xids count from 1; an out-of-order reply drops the connection; the reconnect resumes the session', { timeout: 30_000 }, async () => {
      const fake = await startFakeServer((connection, frame) => {
        const { xid, request } = frame;
        if (request.type === 'auth' || request.type === 'setWatches') connection.reply(xid, 0n);
        else if (request.type === 'exists') connection.reply(xid, 0x10n, Err.noNode);
        else if (request.type === 'getData' && request.path === '/c') {
          // Answer /c before /b: the client expects xid 2 first.
          connection.reply(xid, 0x11n, Err.noNode);
        }
      });
      let client: ZkClient | undefined;
      try {
        client = await ZkClient.connect({ servers: [fake.connectString], sessionTimeoutMs: 3_000, auth: [{ scheme: 'digest', auth: 'u:p' }], reconnectDelayMsMax: 20 });
        const log = stateLog(client);
        assert.equal(client.sessionId, FAKE_SESSION_ID);
        const events: WatchEvent[] = [];
        assert.equal(await client.exists('/a', (event) => events.push(event)), null);
        const connected = log.next('connected', 5_000);
        const b = client.getData('/b');
        const c = client.getData('/c');
        await failsWith(b, Err.connectionLoss);
        await failsWith(c, Err.connectionLoss);
        await connected;
        await waitUntil('auth and setWatches on the new connection', 5_000, () => (fake.connections[1]?.requests.length ?? 0) >= 2);

        const [first, second] = fake.connections;
        assert.ok(first !== undefined && second !== undefined);
        assert.equal(first.connectBytes, 45);
        assert.deepEqual(
          { ...first.connect, passwd: [...first.connect.passwd] },
          { protocolVersion: 0, lastZxidSeen: 0n, timeOut: 3_000, sessionId: 0n, passwd: new Array(16).fill(0), readOnly: false },
        );
        assert.deepEqual(
          first.requests.map((frame) => [frame.xid, frame.request.type]),
          [
            [Xid.auth, 'auth'],
            [1, 'exists'],
            [2, 'getData'],
            [3, 'getData'],
          ],
        );
        assert.equal(second.connectBytes, 45);
        assert.equal(second.connect.sessionId, FAKE_SESSION_ID);
        assert.deepEqual([...second.connect.passwd], [...FAKE_PASSWD]);
        assert.equal(second.connect.lastZxidSeen, 0x10n, 'the highest zxid of an in-order reply');
        const resumed = second.requests.map((frame) => frame.request);
        assert.deepEqual(
          resumed.map((request) => request.type),
          ['auth', 'setWatches'],
        );
        assert.deepEqual(resumed[1], { type: 'setWatches', relativeZxid: 0x10n, dataWatches: [], existWatches: ['/a'], childWatches: [] });
        assert.equal(second.requests[1]?.xid, Xid.setWatches);

        second.notify({ type: EventType.nodeCreated, state: KeeperState.syncConnected, path: '/a' });
        await waitUntil('the notification', 5_000, () => events.length === 1);
        assert.deepEqual(events, [{ type: 'created', path: '/a' }]);
        assert.deepEqual(log.states, ['disconnected', 'connected']);
      } finally {
        client?.close().catch(() => {});
        await sleep(10);
        await fake.stop();
      }
    });
  });
}
