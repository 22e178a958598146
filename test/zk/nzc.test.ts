// ZooKeeper compatibility through a real third-party client: node-zookeeper-client 1.1.3 (pure
// JavaScript; docs/zookeeper.md §3.2 lists what it sends) against the target
// chosen by ZK_TARGET (target.ts). Every expectation here was first checked against a real
// ZooKeeper 3.8.0, so the same file later tells whether Flotilla behaves the same.
//
// One server for the file (tickTime 200 ms, so sessions may last 0.4–4 s); each test works
// under its own top-level path. All clients connect to member 0: that makes "B's write was
// acknowledged, so A's next request on the same server sees it, and A's notification comes
// first" hold on any target (§2.4, §2.5).
//
// Two tests reach into the client's internals (pinned at 1.1.3):
//  * one-shot watches: the client itself drops a watcher once it fired, so a server that
//    wrongly kept firing would go unnoticed through the public API. The test counts raw
//    notification frames by wrapping connectionManager.watcherManager.emit.
//  * closing: a client stuck reconnecting ignores close(); forceClose stops its loop.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ACL, CreateMode, Event, Exception, Id, Permission, State, createClient, type Client, type Stat, type Transaction, type TransactionResult } from 'node-zookeeper-client';
import { startCuttableProxy, startTarget, targetKinds, type TargetKind, targetSkipReason, type ZkTarget } from './target.js';

const TICK_TIME_MS = 200;
const TEST_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;
const EVENT_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 3_000;
/** Requested by the expiry test; within [2, 20] × tickTime, so granted as asked by ZooKeeper. */
const SHORT_SESSION_MS = 1_000;
const EXPIRY_WAIT_MS = 20_000;
/** How far a node's ctime may be from this process's clock (same machine). */
const CLOCK_SLACK_MS = 10_000;

const MANAGER_CLOSING = -1;
const MANAGER_CLOSED = -2;

// ---- A promise-shaped wrapper around one client ------------------------------------------

interface Notification {
  readonly type: number;
  readonly path: string;
}

class Zk {
  /** Every watch notification the server sent on this session, in arrival order. */
  readonly notifications: Notification[] = [];

  constructor(readonly client: Client) {
    const manager = client.connectionManager.watcherManager;
    const emit = manager.emit.bind(manager);
    manager.emit = (event) => {
      this.notifications.push({ type: event.type, path: event.path });
      emit(event);
    };
  }

  sessionId(): bigint {
    return this.client.getSessionId().readBigInt64BE(0);
  }

  create(path: string, data: string | null = null, mode: number = CreateMode.PERSISTENT, acls: ACL[] = ACL.OPEN_ACL_UNSAFE): Promise<string> {
    return new Promise((resolve, reject) => {
      this.client.create(path, data === null ? null : Buffer.from(data), acls, mode, (error, created) => (error ? reject(error) : resolve(created)));
    });
  }

  getData(path: string, watcher?: (event: Event) => void): Promise<{ data: Buffer | null | undefined; stat: Stat }> {
    return new Promise((resolve, reject) => {
      this.client.getData(path, watcher, (error, data, stat) => (error ? reject(error) : resolve({ data, stat })));
    });
  }

  async getText(path: string): Promise<string> {
    const { data } = await this.getData(path);
    return data === null || data === undefined ? '' : data.toString();
  }

  setData(path: string, data: string, version = -1): Promise<Stat> {
    return new Promise((resolve, reject) => {
      this.client.setData(path, Buffer.from(data), version, (error, stat) => (error ? reject(error) : resolve(stat)));
    });
  }

  exists(path: string, watcher?: (event: Event) => void): Promise<Stat | null> {
    return new Promise((resolve, reject) => {
      this.client.exists(path, watcher, (error, stat) => (error ? reject(error) : resolve(stat)));
    });
  }

  getChildren(path: string, watcher?: (event: Event) => void): Promise<{ children: string[]; stat: Stat }> {
    return new Promise((resolve, reject) => {
      this.client.getChildren(path, watcher, (error, children, stat) => (error ? reject(error) : resolve({ children, stat })));
    });
  }

  remove(path: string, version = -1): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.remove(path, version, (error) => (error ? reject(error) : resolve()));
    });
  }

  getACL(path: string): Promise<ACL[]> {
    return new Promise((resolve, reject) => {
      this.client.getACL(path, (error, acls) => (error ? reject(error) : resolve(acls)));
    });
  }

  /** Commits; a failed multi resolves too, with the error the client derived from the results. */
  commit(transaction: Transaction): Promise<{ error: Exception | undefined; results: TransactionResult[] }> {
    return new Promise((resolve) => {
      transaction.commit((error, results) => resolve({ error: error ?? undefined, results }));
    });
  }

  /** Closes the session (closeSession), waiting until the connection is gone. */
  async close(): Promise<void> {
    const manager = this.client.connectionManager;
    if (manager.state === MANAGER_CLOSED) return;
    const closed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), CLOSE_TIMEOUT_MS);
      manager.on('state', (state: number) => {
        if (state !== MANAGER_CLOSED) return;
        clearTimeout(timer);
        resolve(true);
      });
    });
    this.client.close();
    if (!(await closed)) forceClose(this.client);
  }
}

/** Ends a client that did not close: no more reconnects, and its socket destroyed. */
function forceClose(client: Client): void {
  const manager = client.connectionManager;
  manager.connect = () => {};
  manager.state = MANAGER_CLOSING; // onSocketClosed then goes to CLOSED instead of retrying
  manager.socket?.destroy();
}

function long(buffer: Buffer): bigint {
  return buffer.readBigInt64BE(0);
}

function withinMs<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A watcher function and the promise of the first event it receives. */
function watch(): { watcher: (event: Event) => void; fired: Promise<Event> } {
  let watcher: (event: Event) => void = () => {};
  const fired = new Promise<Event>((resolve) => {
    watcher = resolve;
  });
  return { watcher, fired };
}

async function expectError(promise: Promise<unknown>, code: number, what: string): Promise<void> {
  await assert.rejects(
    promise,
    (error: unknown) => {
      assert.ok(error instanceof Exception, `${what}: expected a ZooKeeper exception, got ${String(error)}`);
      assert.equal(error.getCode(), code, `${what}: expected code ${code}, got ${error.getCode()} (${error.getName()})`);
      return true;
    },
    what,
  );
}

function sequenceSuffix(path: string, prefix: string): number {
  assert.ok(path.startsWith(prefix), `${path} starts with ${prefix}`);
  const suffix = path.slice(prefix.length);
  assert.match(suffix, /^\d{10}$/, `${path}: a sequential node ends in 10 digits`);
  return Number(suffix);
}

function digestId(user: string, password: string): string {
  return `${user}:${createHash('sha1').update(`${user}:${password}`).digest('base64')}`;
}

// ---- The tests -----------------------------------------------------------------------------

function suite(kind: TargetKind): void {
  const skip = targetSkipReason(kind);
  if (skip !== undefined) {
    it(`node-zookeeper-client against ${kind}`, { skip }, () => {});
  } else {
    describe(`node-zookeeper-client 1.1.3 against ${kind}`, () => {
      let target: ZkTarget | undefined;
      const clients: Zk[] = [];
      const cleanups: (() => Promise<void>)[] = [];

      before(async () => {
        target = await startTarget(kind, { tickTimeMs: TICK_TIME_MS });
      });

      after(async () => {
        for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
        await Promise.all(clients.map((zk) => zk.close().catch(() => forceClose(zk.client))));
        await target?.stop();
      });

      function server(): ZkTarget {
        assert.ok(target !== undefined, 'target started');
        return target;
      }

      async function open(options: { sessionTimeoutMs?: number; auth?: string; connectString?: string } = {}): Promise<Zk> {
        const client = createClient(options.connectString ?? server().connectStrings[0]!, {
          sessionTimeout: options.sessionTimeoutMs ?? 4_000,
          spinDelay: 200,
        });
        const zk = new Zk(client);
        clients.push(zk);
        if (options.auth !== undefined) client.addAuthInfo('digest', Buffer.from(options.auth));
        const connected = new Promise<void>((resolve) => client.once('connected', () => resolve()));
        client.connect();
        await withinMs(connected, CONNECT_TIMEOUT_MS, `a session with ${server().name}`);
        return zk;
      }

      it('connects: a session, the initial tree, and four-letter words', { timeout: TEST_TIMEOUT_MS }, async () => {
        const zk = await open();
        assert.equal(zk.client.getState(), State.SYNC_CONNECTED);
        assert.notEqual(zk.sessionId(), 0n, 'a session id');
        assert.equal(zk.client.getSessionPassword().length, 16);
        const timeoutMs = zk.client.getSessionTimeout();
        assert.ok(timeoutMs > 0 && timeoutMs <= 4_000, `negotiated timeout ${timeoutMs} within what was asked`);
        assert.ok((await zk.exists('/')) !== null, '/ exists');
        assert.ok((await zk.getChildren('/')).children.includes('zookeeper'), '/zookeeper exists');
        const target = server();
        if (target.fourLetter !== undefined) {
          assert.equal(await target.fourLetter(0, 'ruok'), 'imok');
          assert.match(await target.fourLetter(0, 'srvr'), /^Mode: (standalone|leader|follower)$/m);
        }
      });

      it('create in every mode: returned paths, 10-digit sequence suffixes, Stats', { timeout: TEST_TIMEOUT_MS }, async () => {
        const zk = await open();
        const beforeMs = Date.now();
        assert.equal(await zk.create('/modes', 'parent'), '/modes');
        assert.equal(await zk.create('/modes/p', 'pp'), '/modes/p');
        assert.equal(await zk.create('/modes/e', 'e', CreateMode.EPHEMERAL), '/modes/e');
        const ps = await zk.create('/modes/ps-', 'ps', CreateMode.PERSISTENT_SEQUENTIAL);
        const es = await zk.create('/modes/es-', 'es', CreateMode.EPHEMERAL_SEQUENTIAL);
        // The suffix is the parent's count of child creations so far: p and e came first.
        assert.equal(sequenceSuffix(ps, '/modes/ps-'), 2);
        assert.equal(sequenceSuffix(es, '/modes/es-'), 3);
        const afterMs = Date.now();

        const p = (await zk.getData('/modes/p')).stat;
        assert.equal(long(p.czxid), long(p.mzxid), 'a new node: mzxid = czxid');
        assert.equal(long(p.pzxid), long(p.czxid), 'a new node: pzxid = czxid');
        assert.equal(long(p.ctime), long(p.mtime), 'a new node: mtime = ctime');
        const ctimeMs = Number(long(p.ctime));
        assert.ok(ctimeMs >= beforeMs - CLOCK_SLACK_MS && ctimeMs <= afterMs + CLOCK_SLACK_MS, `ctime ${ctimeMs} is about now (${beforeMs}..${afterMs})`);
        assert.deepEqual([p.version, p.cversion, p.aversion, p.dataLength, p.numChildren], [0, 0, 0, 2, 0]);
        assert.equal(long(p.ephemeralOwner), 0n, 'persistent: no owner');
        assert.equal(long((await zk.getData(ps)).stat.ephemeralOwner), 0n, 'persistent-sequential: no owner');
        assert.equal(long((await zk.getData('/modes/e')).stat.ephemeralOwner), zk.sessionId(), 'ephemeral: owned by the session');
        assert.equal(long((await zk.getData(es)).stat.ephemeralOwner), zk.sessionId(), 'ephemeral-sequential: owned by the session');

        const stats = await Promise.all(['/modes/p', '/modes/e', ps, es].map(async (path) => (await zk.getData(path)).stat));
        const czxids = stats.map((stat) => long(stat.czxid));
        assert.deepEqual(
          [...czxids].sort((a, b) => (a < b ? -1 : 1)),
          czxids,
          'czxids increase in creation order',
        );
        const parent = (await zk.exists('/modes'))!;
        assert.equal(parent.numChildren, 4);
        assert.equal(parent.cversion, 4);
        assert.equal(long(parent.pzxid), czxids[3], 'parent pzxid = last child creation');
      });

      it('sequence numbers count child creations per parent; a delete does not reuse one', { timeout: TEST_TIMEOUT_MS }, async () => {
        const zk = await open();
        await zk.create('/seq');
        assert.equal(await zk.create('/seq/a-', null, CreateMode.PERSISTENT_SEQUENTIAL), '/seq/a-0000000000');
        assert.equal(await zk.create('/seq/b-', null, CreateMode.PERSISTENT_SEQUENTIAL), '/seq/b-0000000001', 'one counter per parent, not per prefix');
        await zk.create('/seq/plain');
        await zk.remove('/seq/plain');
        assert.equal(await zk.create('/seq/c-', null, CreateMode.EPHEMERAL_SEQUENTIAL), '/seq/c-0000000003');
        const parent = (await zk.exists('/seq'))!;
        assert.equal(parent.numChildren, 3);
        assert.equal(parent.cversion, 5, 'cversion counts 4 creations + 1 deletion');
      });

      it('getData/setData with versions; BADVERSION on a mismatch changes nothing', { timeout: TEST_TIMEOUT_MS }, async () => {
        const zk = await open();
        const created = (await zk.getData(await zk.create('/versions', 'one'))).stat;
        assert.equal(await zk.getText('/versions'), 'one');
        const set1 = await zk.setData('/versions', 'two', 0);
        assert.equal(set1.version, 1);
        assert.ok(long(set1.mzxid) > long(created.mzxid), 'setData moves mzxid');
        assert.equal(long(set1.czxid), long(created.czxid), 'setData keeps czxid');
        assert.ok(long(set1.mtime) >= long(created.mtime));
        assert.equal(set1.dataLength, 3);
        await expectError(zk.setData('/versions', 'stale', 0), Exception.BAD_VERSION, 'setData with an old version');
        const { data, stat } = await zk.getData('/versions');
        assert.equal(data?.toString(), 'two');
        assert.equal(stat.version, 1);
        assert.equal(long(stat.mzxid), long(set1.mzxid), 'a failed write leaves mzxid alone');
        assert.equal((await zk.setData('/versions', 'three', -1)).version, 2, 'version -1 matches any');
        await expectError(zk.remove('/versions', 1), Exception.BAD_VERSION, 'remove with an old version');
        await zk.remove('/versions', 2);
        assert.equal(await zk.exists('/versions'), null);
        await zk.create('/versions-empty', null);
        const empty = await zk.getData('/versions-empty');
        assert.equal(empty.stat.dataLength, 0);
        assert.ok(empty.data === null || empty.data === undefined || empty.data.length === 0, 'no data');
      });

      it('exists: a Stat for a present node, null for a missing one', { timeout: TEST_TIMEOUT_MS }, async () => {
        const zk = await open();
        await zk.create('/present', 'x');
        const stat = await zk.exists('/present');
        assert.ok(stat !== null);
        assert.equal(stat.dataLength, 1);
        assert.equal(await zk.exists('/absent'), null);
        assert.equal(await zk.exists('/absent/deeper'), null, 'missing parent: still just null');
      });

      it('getChildren: names (compared sorted), counts, NONODE for a missing parent', { timeout: TEST_TIMEOUT_MS }, async () => {
        const zk = await open();
        await zk.create('/kids');
        for (const name of ['c', 'a', 'b']) await zk.create(`/kids/${name}`);
        const { children, stat } = await zk.getChildren('/kids');
        assert.deepEqual([...children].sort(), ['a', 'b', 'c']);
        assert.equal(stat.numChildren, 3);
        assert.deepEqual((await zk.getChildren('/kids/a')).children, []);
        await expectError(zk.getChildren('/no-kids'), Exception.NO_NODE, 'getChildren of a missing node');
      });

      it('errors: NODEEXISTS, NONODE, NOTEMPTY, NOCHILDRENFOREPHEMERALS', { timeout: TEST_TIMEOUT_MS }, async () => {
        const zk = await open();
        await zk.create('/errors');
        await zk.create('/errors/child');
        await expectError(zk.create('/errors'), Exception.NODE_EXISTS, 'create an existing node');
        await expectError(zk.create('/errors-missing/child'), Exception.NO_NODE, 'create under a missing parent');
        await expectError(zk.getData('/errors-missing'), Exception.NO_NODE, 'getData of a missing node');
        await expectError(zk.setData('/errors-missing', 'x'), Exception.NO_NODE, 'setData of a missing node');
        await expectError(zk.remove('/errors-missing'), Exception.NO_NODE, 'remove a missing node');
        await expectError(zk.remove('/errors'), Exception.NOT_EMPTY, 'remove a node with children');
        await zk.create('/errors/ephemeral', null, CreateMode.EPHEMERAL);
        await expectError(zk.create('/errors/ephemeral/child'), Exception.NO_CHILDREN_FOR_EPHEMERALS, 'create under an ephemeral');
        assert.ok((await zk.exists('/errors/child')) !== null, 'the failed remove left the tree alone');
      });

      it('data watch: NODE_DATA_CHANGED on setData, NODE_DELETED on remove', { timeout: TEST_TIMEOUT_MS }, async () => {
        const watcher = await open();
        const writer = await open();
        await writer.create('/dw', 'v0');
        const changed = watch();
        await watcher.getData('/dw', changed.watcher);
        await writer.setData('/dw', 'v1');
        const event = await withinMs(changed.fired, EVENT_TIMEOUT_MS, 'NODE_DATA_CHANGED');
        assert.equal(event.getType(), Event.NODE_DATA_CHANGED);
        assert.equal(event.getPath(), '/dw');
        const deleted = watch();
        await watcher.getData('/dw', deleted.watcher);
        await writer.remove('/dw');
        const gone = await withinMs(deleted.fired, EVENT_TIMEOUT_MS, 'NODE_DELETED');
        assert.equal(gone.getType(), Event.NODE_DELETED);
        assert.equal(gone.getPath(), '/dw');
      });

      it('exists watch on a missing node fires NODE_CREATED', { timeout: TEST_TIMEOUT_MS }, async () => {
        const watcher = await open();
        const writer = await open();
        const created = watch();
        assert.equal(await watcher.exists('/ew', created.watcher), null);
        await writer.create('/ew', 'here');
        const event = await withinMs(created.fired, EVENT_TIMEOUT_MS, 'NODE_CREATED');
        assert.equal(event.getType(), Event.NODE_CREATED);
        assert.equal(event.getPath(), '/ew');
      });

      it('child watch fires NODE_CHILDREN_CHANGED on a child create and a child delete', { timeout: TEST_TIMEOUT_MS }, async () => {
        const watcher = await open();
        const writer = await open();
        await writer.create('/cw');
        const onCreate = watch();
        await watcher.getChildren('/cw', onCreate.watcher);
        await writer.create('/cw/kid');
        const first = await withinMs(onCreate.fired, EVENT_TIMEOUT_MS, 'NODE_CHILDREN_CHANGED after a create');
        assert.equal(first.getType(), Event.NODE_CHILDREN_CHANGED);
        assert.equal(first.getPath(), '/cw');
        const onDelete = watch();
        await watcher.getChildren('/cw', onDelete.watcher);
        await writer.remove('/cw/kid');
        const second = await withinMs(onDelete.fired, EVENT_TIMEOUT_MS, 'NODE_CHILDREN_CHANGED after a delete');
        assert.equal(second.getType(), Event.NODE_CHILDREN_CHANGED);
        assert.equal(second.getPath(), '/cw');
      });

      it('watches are one-shot: the server sends one notification per arming', { timeout: TEST_TIMEOUT_MS }, async () => {
        const watcher = await open();
        const writer = await open();
        await writer.create('/once', 'v0');
        await writer.create('/once-kids');
        const data = watch();
        const kids = watch();
        await watcher.getData('/once', data.watcher);
        await watcher.getChildren('/once-kids', kids.watcher);
        for (let i = 1; i <= 3; i++) {
          await writer.setData('/once', `v${i}`);
          await writer.create(`/once-kids/k${i}`);
        }
        await withinMs(Promise.all([data.fired, kids.fired]), EVENT_TIMEOUT_MS, 'the first notifications');
        // A round trip on the watching session: notifications for writes acknowledged before it
        // was sent arrive before its reply (§2.4), so any extra notification is in by now.
        await watcher.exists('/once');
        const typesFor = (path: string) => watcher.notifications.filter((n) => n.path === path).map((n) => n.type);
        assert.deepEqual(typesFor('/once'), [Event.NODE_DATA_CHANGED], 'one data notification for three setData');
        assert.deepEqual(typesFor('/once-kids'), [Event.NODE_CHILDREN_CHANGED], 'one child notification for three creates');
      });

      it('a watch event reaches the client before the data that reflects the change', { timeout: TEST_TIMEOUT_MS }, async () => {
        const watcher = await open();
        const writer = await open();
        await writer.create('/order', 'old');
        const seen: string[] = [];
        const changed = watch();
        await watcher.getData('/order', (event) => {
          seen.push(`event ${event.getName()}`);
          changed.watcher(event);
        });
        await writer.setData('/order', 'new');
        const read = watcher.getData('/order').then(({ data }) => seen.push(`read ${data?.toString()}`));
        await withinMs(Promise.all([read, changed.fired]), EVENT_TIMEOUT_MS, 'the event and the read');
        assert.deepEqual(seen, ['event NODE_DATA_CHANGED', 'read new']);
      });

      it('multi: create, setData, check and remove apply together, under one zxid', { timeout: TEST_TIMEOUT_MS }, async () => {
        const zk = await open();
        await zk.create('/tx');
        await zk.create('/tx/kept', 'k0');
        await zk.setData('/tx/kept', 'k1'); // version 1: the client sends a version of 0 as -1
        await zk.create('/tx/doomed');
        const { error, results } = await zk.commit(zk.client.transaction().create('/tx/new', Buffer.from('n')).check('/tx/kept', 1).setData('/tx/kept', Buffer.from('k2'), 1).remove('/tx/doomed', -1));
        assert.equal(error, undefined);
        assert.deepEqual(
          results.map((result) => result.type),
          [1, 13, 5, 2],
          'one result per op, by op code',
        );
        assert.equal(results[0]!.path, '/tx/new');
        assert.equal(results[2]!.stat?.version, 2);
        assert.equal(await zk.getText('/tx/new'), 'n');
        const kept = (await zk.getData('/tx/kept')).stat;
        assert.equal(await zk.getText('/tx/kept'), 'k2');
        assert.equal(await zk.exists('/tx/doomed'), null);
        const created = (await zk.exists('/tx/new'))!;
        assert.equal(long(kept.mzxid), long(created.czxid), 'every change in a multi has the same zxid');
        assert.equal(long((await zk.exists('/tx'))!.pzxid), long(created.czxid));
      });

      it('multi: a failing op applies nothing and is reported per op', { timeout: TEST_TIMEOUT_MS }, async () => {
        const zk = await open();
        await zk.create('/txf');
        await zk.create('/txf/x', 'x0');
        await zk.create('/txf/y');
        const { error, results } = await zk.commit(zk.client.transaction().create('/txf/new').setData('/txf/x', Buffer.from('x1'), 7).remove('/txf/y'));
        assert.ok(error instanceof Exception, 'the client reports the failure');
        assert.equal(error.getCode(), Exception.BAD_VERSION);
        assert.deepEqual(
          results.map((result) => [result.type, result.err]),
          [
            [-1, Exception.OK],
            [-1, Exception.BAD_VERSION],
            [-1, Exception.RUNTIME_INCONSISTENCY],
          ],
          'ops before the failure OK, the failing op its code, later ops RUNTIMEINCONSISTENCY',
        );
        assert.equal(await zk.exists('/txf/new'), null, 'the create was rolled back');
        assert.equal(await zk.getText('/txf/x'), 'x0');
        assert.ok((await zk.exists('/txf/y')) !== null, 'the remove was rolled back');
        // The rolled-back create did not advance the parent's sequence counter either.
        assert.equal(await zk.create('/txf/s-', null, CreateMode.PERSISTENT_SEQUENTIAL), '/txf/s-0000000002');
      });

      it('ephemeral nodes vanish when their session closes, as another client sees', { timeout: TEST_TIMEOUT_MS }, async () => {
        const owner = await open();
        const observer = await open();
        await owner.create('/eph-close');
        await owner.create('/eph-close/plain', null, CreateMode.EPHEMERAL);
        const sequential = await owner.create('/eph-close/seq-', null, CreateMode.EPHEMERAL_SEQUENTIAL);
        const deleted = watch();
        assert.ok((await observer.exists('/eph-close/plain', deleted.watcher)) !== null);
        const children = watch();
        assert.equal((await observer.getChildren('/eph-close', children.watcher)).children.length, 2);
        await owner.close();
        const event = await withinMs(deleted.fired, EVENT_TIMEOUT_MS, 'NODE_DELETED after closeSession');
        assert.equal(event.getType(), Event.NODE_DELETED);
        await withinMs(children.fired, EVENT_TIMEOUT_MS, 'NODE_CHILDREN_CHANGED after closeSession');
        assert.equal(await observer.exists('/eph-close/plain'), null);
        assert.equal(await observer.exists(sequential), null);
        assert.deepEqual((await observer.getChildren('/eph-close')).children, []);
      });

      // A session expires when the server hears nothing for its timeout. The owner talks to the
      // server through a proxy; cutting the proxy drops both TCP connections and refuses new
      // ones, so the client cannot close its session nor keep it alive. That is what a crashed or
      // partitioned client looks like to the server, and it works the same on every target.
      it('ephemeral nodes vanish when their session expires (owner cut off by a proxy)', { timeout: 60_000 }, async (t) => {
        const proxy = await startCuttableProxy(server().connectStrings[0]!);
        cleanups.push(() => proxy.stop());
        const owner = await open({ connectString: proxy.connectString, sessionTimeoutMs: SHORT_SESSION_MS });
        const observer = await open();
        const timeoutMs = owner.client.getSessionTimeout();
        await owner.create('/eph-expire', null, CreateMode.EPHEMERAL);
        const deleted = watch();
        assert.ok((await observer.exists('/eph-expire', deleted.watcher)) !== null);
        const expired = new Promise<void>((resolve) => owner.client.once('expired', () => resolve()));

        const cutAtMs = Date.now();
        proxy.cut();
        assert.ok((await observer.exists('/eph-expire')) !== null, 'a lost connection alone does not end the session');
        const event = await withinMs(deleted.fired, EXPIRY_WAIT_MS, `expiry of a ${timeoutMs} ms session`);
        const vanishedAfterMs = Date.now() - cutAtMs;
        assert.equal(event.getType(), Event.NODE_DELETED);
        assert.equal(await observer.exists('/eph-expire'), null);
        t.diagnostic(`negotiated ${timeoutMs} ms; the ephemeral vanished ${vanishedAfterMs} ms after the cut`);

        // Let the owner back in: the server refuses its old session, and the client says so.
        proxy.heal();
        await withinMs(expired, EXPIRY_WAIT_MS, 'the owner to learn that its session expired');
        assert.equal(owner.client.getState(), State.EXPIRED);
      });

      it('ACL: a digest user creates with CREATOR_ALL_ACL; others get NOAUTH', { timeout: TEST_TIMEOUT_MS }, async () => {
        const alice = await open({ auth: 'alice:secret' });
        const anonymous = await open();
        const impostor = await open({ auth: 'alice:wrong' });
        await alice.create('/acl-secret', 'for alice', CreateMode.PERSISTENT, ACL.CREATOR_ALL_ACL);
        assert.equal(await alice.getText('/acl-secret'), 'for alice');
        const acls = await alice.getACL('/acl-secret');
        assert.deepEqual(
          acls.map((acl) => [acl.permission, acl.id.scheme, acl.id.id]),
          [[Permission.ALL, 'digest', digestId('alice', 'secret')]],
          "the auth scheme became the creator's digest identity",
        );
        await expectError(anonymous.getData('/acl-secret'), Exception.NO_AUTH, 'getData without auth');
        await expectError(anonymous.setData('/acl-secret', 'x'), Exception.NO_AUTH, 'setData without auth');
        await expectError(anonymous.create('/acl-secret/child'), Exception.NO_AUTH, 'create a child without auth');
        await expectError(impostor.getData('/acl-secret'), Exception.NO_AUTH, 'getData with the wrong password');
        await expectError(anonymous.create('/acl-nobody', null, CreateMode.PERSISTENT, ACL.CREATOR_ALL_ACL), Exception.INVALID_ACL, 'CREATOR_ALL_ACL from a session with no identity');
        const readOnly = [new ACL(Permission.READ, new Id('world', 'anyone'))];
        await alice.create('/acl-read-only', 'r', CreateMode.PERSISTENT, readOnly);
        assert.equal(await anonymous.getText('/acl-read-only'), 'r');
        await expectError(anonymous.setData('/acl-read-only', 'w'), Exception.NO_AUTH, 'setData on a READ-only node');
      });
    });
  }
}

// Both servers, unless ZK_TARGET names one.
for (const kind of targetKinds()) suite(kind);
