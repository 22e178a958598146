// etcd leases: the replicated part (log entries, the lease table, revoke deleting a lease's
// keys in one revision, the snapshot), the leader's expiry on a manual clock, and etcdctl
// against a three-member Flotilla (keep-alive through a follower, expiry, kill -9 of the
// leader), with the answers' shapes checked against a real etcd 3.4.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Packr } from 'msgpackr';
import type { Clock, Timer } from '../../src/io/clock.js';
import { defaultTiming } from '../../src/raft/config.js';
import { MemoryStorage } from '../../src/runtime/memory-storage.js';
import { decodeCommand, EtcdDecodeError, encodeCommand, type EtcdCommand } from '../../src/etcd/codec.js';
import { type Bytes, MvccStore, type PutRequest, type TxnRequest } from '../../src/etcd/mvcc.js';
import { decodeLeaseMessage, encodeLeaseAnswer, encodeLeaseAsk, EtcdLeaseError, EtcdService, leaseTtlMinSeconds } from '../../src/etcd/service.js';
import { type EtcdOutcome, EtcdStateMachine } from '../../src/etcd/state-machine.js';
import { Prng } from '../../src/stdx/prng.js';
import { index, nodeId } from '../../src/stdx/types.js';
import { sleep, TestCluster, waitFor } from '../server/helpers.js';
import { ETCDCTL_PATH, etcdctl, etcdSkipReason, RealEtcd } from './etcdctl.js';

const b = (text: string): Bytes => new Uint8Array(Buffer.from(text));
const str = (bytes: Bytes): string => Buffer.from(bytes).toString();
const put = (key: string, value: string, lease = 0): PutRequest => ({ key: b(key), value: b(value), lease, prevKv: false, ignoreValue: false, ignoreLease: false });

/** A state machine fed commands as a log would, recording every outcome and event batch. */
function machine() {
  const sm = new EtcdStateMachine();
  const outcomes: EtcdOutcome[] = [];
  const batches: { revision: number; events: string[] }[] = [];
  let at = 0;
  sm.listener = {
    applied: (_command, outcome, events) => {
      outcomes.push(outcome);
      if (events.length > 0) batches.push({ revision: outcome.revision, events: events.map((e) => `${e.type} ${str(e.kv.key)}`) });
    },
  };
  const apply = (command: Parameters<EtcdService['submit']>[0]): EtcdOutcome => {
    sm.apply(encodeCommand({ ...command, origin: 'test' } as EtcdCommand), index(++at));
    return outcomes.at(-1)!;
  };
  return { sm, apply, batches };
}

const errorOf = (outcome: EtcdOutcome) => (outcome.ok ? 'ok' : `${outcome.code}: ${outcome.message}`);

test('state machine: grant, a second grant of the id refused, puts attach to a lease only if it exists', () => {
  const { sm, apply } = machine();
  assert.equal(errorOf(apply({ kind: 'leaseGrant', id: 7, ttl: 5 })), 'ok');
  assert.equal(errorOf(apply({ kind: 'leaseGrant', id: 7, ttl: 9 })), 'lease-exists: etcdserver: lease already exists');
  assert.equal(sm.leases.ttl(7), 5, 'the refused grant changed nothing');
  assert.equal(errorOf(apply({ kind: 'put', request: put('a', '1', 7) })), 'ok');
  assert.equal(errorOf(apply({ kind: 'put', request: put('b', '1', 8) })), 'lease-not-found: etcdserver: requested lease not found');
  assert.equal(sm.store.revision, 2, 'the refused put took no revision');
  assert.deepEqual(sm.store.keysWithLease(7).map(str), ['a']);
  // A put without the lease detaches the key; re-attach it.
  apply({ kind: 'put', request: put('a', '2') });
  assert.deepEqual(sm.store.keysWithLease(7), []);
  apply({ kind: 'put', request: put('a', '3', 7) });
  assert.deepEqual(sm.store.keysWithLease(7).map(str), ['a']);
});

test('state machine: a txn checks the leases of the puts on the path it takes, not the other branch', () => {
  const { sm, apply } = machine();
  apply({ kind: 'leaseGrant', id: 3, ttl: 10 });
  const txn = (succeedIf: string, success: PutRequest, failure: PutRequest): TxnRequest => ({
    compare: [{ result: 'equal', target: 'value', key: b('flag'), rangeEnd: new Uint8Array(0), operand: b(succeedIf) }],
    success: [{ put: success }],
    failure: [{ put: failure }],
  });
  apply({ kind: 'put', request: put('flag', 'yes') });
  // Taken branch has the known lease, the untaken one an unknown lease: fine.
  assert.equal(errorOf(apply({ kind: 'txn', request: txn('yes', put('x', '1', 3), put('y', '1', 99)) })), 'ok');
  // Taken branch (failure) names lease 99: refused, nothing changes.
  const before = sm.store.revision;
  assert.equal(errorOf(apply({ kind: 'txn', request: txn('no', put('x', '2', 3), put('y', '1', 99)) })), 'lease-not-found: etcdserver: requested lease not found');
  assert.equal(sm.store.revision, before);
  // An ignore_value put of a missing key before the bad lease: the key's error comes first, as in etcd.
  const ignoreMissing = { ...put('missing', ''), ignoreValue: true };
  const both: TxnRequest = { compare: [], success: [{ put: ignoreMissing }, { put: put('z', '1', 99) }], failure: [] };
  assert.equal(errorOf(apply({ kind: 'txn', request: both })), 'key-not-found: etcdserver: key not found');
});

test('state machine: revoke deletes every key of the lease in ONE revision (one event batch) and forgets the lease', () => {
  const { sm, apply, batches } = machine();
  apply({ kind: 'leaseGrant', id: 42, ttl: 5 });
  // More keys than a txn may hold ops (128): a revoke is not limited by it.
  for (let i = 0; i < 200; i++) apply({ kind: 'put', request: put(`k${String(i).padStart(3, '0')}`, 'v', 42) });
  apply({ kind: 'put', request: put('other', 'v') });
  const before = sm.store.revision;
  batches.length = 0;
  const revoked = apply({ kind: 'leaseRevoke', id: 42 });
  assert.ok(revoked.ok && revoked.result.kind === 'leaseRevoke' && revoked.result.deleted === 200);
  assert.equal(sm.store.revision, before + 1, 'one revision for all 200 deletes');
  assert.equal(batches.length, 1);
  assert.equal(batches[0]!.events.length, 200);
  assert.ok(batches[0]!.events.every((event) => event.startsWith('delete k')));
  assert.equal(sm.leases.has(42), false);
  assert.equal(sm.store.range({ ...rangeAll, countOnly: true }).count, 1, 'only the key without a lease is left');
  assert.equal(errorOf(apply({ kind: 'leaseRevoke', id: 42 })), 'lease-not-found: etcdserver: requested lease not found');
  // A lease with no keys revokes without a revision.
  apply({ kind: 'leaseGrant', id: 43, ttl: 5 });
  const empty = sm.store.revision;
  assert.equal(errorOf(apply({ kind: 'leaseRevoke', id: 43 })), 'ok');
  assert.equal(sm.store.revision, empty);
});

const rangeAll = {
  key: new Uint8Array([0]),
  rangeEnd: new Uint8Array([0]),
  limit: 0,
  revision: 0,
  sortOrder: 'none',
  sortTarget: 'key',
  keysOnly: false,
  countOnly: false,
  minModRevision: 0,
  maxModRevision: 0,
  minCreateRevision: 0,
  maxCreateRevision: 0,
} as const;

test('snapshot: the lease table travels with the store; a damaged snapshot is refused; a pre-lease store snapshot restores with no leases', () => {
  const { sm, apply } = machine();
  apply({ kind: 'leaseGrant', id: 9, ttl: 60 });
  apply({ kind: 'leaseGrant', id: 2 ** 52, ttl: 3 });
  apply({ kind: 'put', request: put('a', '1', 9) });
  apply({ kind: 'put', request: put('b', '1', 2 ** 52) });
  const copy = new EtcdStateMachine();
  copy.restore(sm.snapshot(), index(4));
  assert.deepEqual(copy.leases.list(), [
    { id: 9, ttl: 60 },
    { id: 2 ** 52, ttl: 3 },
  ]);
  assert.deepEqual(copy.store.keysWithLease(9).map(str), ['a']);
  assert.deepEqual(copy.snapshot(), sm.snapshot(), 'the same bytes again');
  // Revoke on the copy works as on the original.
  copy.apply(encodeCommand({ kind: 'leaseRevoke', origin: 't', id: 9 }), index(5));
  assert.deepEqual(copy.store.keysWithLease(9), []);

  const packr = new Packr({ useRecords: false, variableMapSize: true });
  const store = sm.store.snapshot();
  const refuse = (data: unknown, pattern: RegExp) => assert.throws(() => new EtcdStateMachine().restore(Uint8Array.from(packr.pack(data)), index(1)), pattern);
  refuse([4, store, []], /unknown format 4/);
  refuse([3, store, []], /3 fields, not 4/);
  refuse([2, store], /2 fields, not 3/);
  refuse([2, 'x', []], /store is not bytes/);
  refuse([2, store, [9, 60]], /carries lease 4503599627370496, which is not in the table/);
  refuse([2, store, [9, 0, 2 ** 52, 3]], /lease 9 has TTL 0/);
  refuse([2, store, [2 ** 52, 3, 9, 60]], /lease id 9 is not a positive integer above/);
  refuse([2, store, [9, 60, 2 ** 52]], /pairs/);
  assert.throws(() => new EtcdStateMachine().restore(new Uint8Array([0x93, 0x02]), index(1)), /malformed etcd snapshot: not MessagePack/);
  // The bare store format (before leases): no key carried a lease then.
  const bare = new MvccStore();
  bare.put(put('old', 'v'));
  const restored = new EtcdStateMachine();
  restored.restore(bare.snapshot(), index(1));
  assert.equal(restored.leases.size, 0);
  assert.equal(restored.store.revision, 2);
});

test('codec: lease entries round-trip; ids 0 or from 2^53, TTL 0 or above 9000000000 are refused on decode', () => {
  for (const command of [
    { kind: 'leaseGrant', origin: 'o', id: 1, ttl: 1 },
    { kind: 'leaseGrant', origin: 'o', id: 2 ** 53 - 1, ttl: 9_000_000_000 },
    { kind: 'leaseRevoke', origin: 'o', id: 5 },
  ] as const) {
    assert.deepEqual(decodeCommand(encodeCommand(command)), command);
  }
  const packr = new Packr({ useRecords: false, variableMapSize: true });
  const refuse = (raw: unknown, pattern: RegExp) =>
    assert.throws(
      () => decodeCommand(Uint8Array.from(packr.pack(raw))),
      (error: unknown) => error instanceof EtcdDecodeError && pattern.test(error.message),
    );
  refuse(['o', 4, [0, 5]], /lease id is 0/);
  refuse(['o', 4, [2 ** 53, 5]], /lease id is not a non-negative integer/);
  refuse(['o', 4, [-1, 5]], /lease id is not a non-negative integer/);
  refuse(['o', 4, [1, 0]], /lease ttl 0 is not in/);
  refuse(['o', 4, [1, 9_000_000_001]], /lease ttl 9000000001 is not in/);
  refuse(['o', 4, [1]], /leaseGrant has 1 fields/);
  refuse(['o', 5, 'x'], /lease id is not a non-negative integer/);
  // A malformed entry is answered, not thrown.
  const { sm } = machine();
  assert.doesNotThrow(() => sm.apply(Uint8Array.from(packr.pack(['o', 4, [0, 5]])), index(1)));
});

test('lease messages between members: round-trip, and junk is refused', () => {
  const ask = decodeLeaseMessage(encodeLeaseAsk({ from: nodeId(3), ask: 12, question: 'remaining', id: 2 ** 52 }));
  assert.deepEqual(ask, { kind: 'ask', from: 3, ask: 12, question: 'remaining', id: 2 ** 52 });
  assert.deepEqual(decodeLeaseMessage(encodeLeaseAnswer({ ask: 12, leads: true, value: -1 })), { kind: 'answer', ask: 12, leads: true, value: -1 });
  assert.equal(decodeLeaseMessage(new Uint8Array([0xe1, 0xc1])), undefined);
  assert.equal(decodeLeaseMessage(Uint8Array.from([0xe1, ...new Packr().pack([3, 12, 7, 5])])), undefined, 'unknown question');
  assert.equal(decodeLeaseMessage(Uint8Array.from([0xe1, ...new Packr().pack([0, 12, 0, 5])])), undefined, 'member 0');
  assert.equal(decodeLeaseMessage(Uint8Array.from([0xe2, ...new Packr().pack([12, 'yes', 5])])), undefined, 'leads not a boolean');
  assert.equal(decodeLeaseMessage(Uint8Array.from([0x93, 1, 2, 3])), undefined, 'a command is not a lease message');
});

// ---- The leader's expiry, on a manual clock ----

class ManualClock implements Clock {
  private now = 0;
  private timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  nowMs(): number {
    return this.now;
  }
  setTimer(delayMs: number, fn: () => void): Timer {
    const timer = { at: this.now + delayMs, fn, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (let fired = 0; fired < 1_000_000; fired++) {
      const due = this.timers.filter((timer) => !timer.cancelled && timer.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.timers.splice(this.timers.indexOf(due), 1);
      this.now = due.at;
      due.fn();
      for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    }
    this.now = end;
  }
}

const TICK_MS = 100;

async function soloService(clock = new ManualClock(), storage = new MemoryStorage()) {
  let random = 0;
  const service = await EtcdService.open({
    config: { id: nodeId(1), voters: [nodeId(1)], ...defaultTiming, noopOnElection: true },
    prng: new Prng(1),
    clock,
    tickMs: TICK_MS,
    transport: { send: () => undefined },
    storage,
    requestTimeoutMs: 5000,
    randomBytes: (n) => new Uint8Array(n).fill(++random),
    forward: () => assert.fail('a single member forwards nothing'),
  });
  await clock.advance(30 * TICK_MS);
  assert.equal(service.leader(), 1);
  return { clock, service };
}

/** Resolves `promise` while the manual clock runs (a write needs ticks to commit). */
async function run<T>(clock: ManualClock, promise: Promise<T>): Promise<T> {
  let done = false;
  const settled = promise.finally(() => (done = true));
  for (let i = 0; i < 100 && !done; i++) await clock.advance(TICK_MS);
  return settled;
}

test('service: the minimum TTL, generated ids, the leader renews and expires; an abandoned lease is revoked with its keys', async () => {
  assert.equal(leaseTtlMinSeconds(10, 100), 2, 'ceil(1.5 s) with Flotilla’s defaults, as etcd’s defaults give');
  assert.equal(leaseTtlMinSeconds(10, 1000), 15);
  const { clock, service } = await soloService();
  try {
    const short = await run(clock, service.grantLease(0, 1));
    assert.ok(short.ok && short.result.kind === 'leaseGrant');
    assert.equal(short.result.ttl, 2, 'a 1 s grant is raised to the minimum');
    const kept = await run(clock, service.grantLease(0, 5));
    const dropped = await run(clock, service.grantLease(0, 5));
    assert.ok(kept.ok && kept.result.kind === 'leaseGrant' && dropped.ok && dropped.result.kind === 'leaseGrant');
    const [keptId, droppedId] = [kept.result.id, dropped.result.id];
    assert.ok(keptId > 0 && keptId < 2 ** 53 && droppedId !== keptId && droppedId !== short.result.id);
    await assert.rejects(service.grantLease(0, 9_000_000_001), (error: unknown) => error instanceof EtcdLeaseError && error.message === 'etcdserver: too large lease TTL');
    const taken = await run(clock, service.grantLease(keptId, 5));
    assert.equal(errorOf(taken), 'lease-exists: etcdserver: lease already exists');
    await run(clock, service.submit({ kind: 'put', request: put('kept', 'v', keptId) }));
    await run(clock, service.submit({ kind: 'put', request: put('dropped', 'v', droppedId) }));

    assert.equal(await service.leaseRemaining(keptId), 4, 'whole seconds left (truncated), a few ticks after the grant');
    // Keep one alive every second for 8 s; the other is left alone.
    for (let second = 0; second < 8; second++) {
      assert.equal(await service.renewLease(keptId), 5);
      await clock.advance(1000);
    }
    assert.equal(service.machine.leases.has(droppedId), false, 'the abandoned lease expired');
    assert.equal(service.machine.leases.has(short.result.id), false);
    assert.deepEqual(service.machine.store.keysWithLease(keptId).map(str), ['kept']);
    assert.equal(service.machine.store.range({ ...rangeAll, key: b('dropped'), rangeEnd: new Uint8Array(0) }).count, 0, 'its key is gone');
    assert.equal(await service.renewLease(droppedId), 0, 'renewing a lease that is gone answers TTL 0');
    assert.equal(await service.leaseRemaining(droppedId), -1);
    // Stop renewing: it goes within TTL + one check interval.
    await clock.advance(5500);
    assert.equal(service.machine.leases.has(keptId), false);
    assert.equal(await service.leaseRemaining(keptId), -1);
  } finally {
    service.stop();
  }
});

test('service: a restarted leader gives every lease a fresh full TTL (etcd Promote), from the replicated log', async () => {
  const clock = new ManualClock();
  const storage = new MemoryStorage();
  const first = await soloService(clock, storage);
  const granted = await run(clock, first.service.grantLease(77, 10));
  assert.ok(granted.ok);
  await clock.advance(6000);
  assert.equal(await first.service.leaseRemaining(77), 4);
  first.service.stop();
  // Down for 3 s: by the old deadline only ~1 s would be left; the new leader starts 10 s afresh.
  await clock.advance(3000);
  const second = await soloService(clock, storage);
  try {
    assert.deepEqual(second.service.machine.leases.list(), [{ id: 77, ttl: 10 }]);
    assert.equal(await second.service.leaseRemaining(77), 9, 'a fresh full TTL, less the ticks since the election');
    await clock.advance(8000);
    assert.equal(second.service.machine.leases.has(77), true);
    await clock.advance(3000);
    assert.equal(second.service.machine.leases.has(77), false, 'and it still expires');
  } finally {
    second.service.stop();
  }
});

// ---- etcdctl against real processes ----

interface GrantJson {
  ID: number;
  TTL: number;
}

async function leaderEndpoints(cluster: TestCluster): Promise<{ leader: number; leaderEndpoint: string; follower: string; others: string }> {
  const endpoint = (id: number) => `127.0.0.1:${cluster.ports.get(nodeId(id))!.etcd}`;
  const leader = await waitFor('an etcd leader', 20_000, async () => {
    for (const id of cluster.ids) {
      try {
        const status = (await cluster.status(id)) as unknown as { etcd: { leader: number } };
        if (status.etcd.leader !== 0) return status.etcd.leader;
      } catch {
        // a member that is down
      }
    }
    return undefined;
  });
  const others = cluster.ids.filter((id) => id !== leader);
  return { leader, leaderEndpoint: endpoint(leader), follower: endpoint(others[0]!), others: others.map(endpoint).join(',') };
}

const hex = (id: number) => id.toString(16);
/** As etcdctl prints a lease id (%016x). */
const printed = (id: number) => id.toString(16).padStart(16, '0');

async function ok(endpoint: string, args: readonly string[]): Promise<string> {
  const result = await etcdctl(endpoint, args);
  assert.equal(result.code, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function keyExists(endpoint: string, key: string): Promise<boolean> {
  const out = JSON.parse(await ok(endpoint, ['get', key, '-w', 'json'])) as { count?: number };
  return (out.count ?? 0) > 0;
}

test('etcdctl through a follower: lease grant, put --lease, timetolive --keys, keep-alive --once, list, revoke deletes the key; an abandoned lease expires', { timeout: 120_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const cluster = await TestCluster.start(t, 3);
  const { follower } = await leaderEndpoints(cluster);
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(follower, ['endpoint', 'health'])).code === 0 ? true : undefined));

  const granted = JSON.parse(await ok(follower, ['lease', 'grant', '5', '-w', 'json'])) as GrantJson;
  assert.equal(granted.TTL, 5);
  assert.ok(granted.ID > 0);
  const id = hex(granted.ID);
  const shown = printed(granted.ID);
  await ok(follower, ['put', 'k', 'v', `--lease=${id}`]);
  const ttl = JSON.parse(await ok(follower, ['lease', 'timetolive', id, '--keys', '-w', 'json'])) as { id: number; ttl: number; 'granted-ttl': number; keys: string[] };
  assert.equal(ttl.id, granted.ID);
  assert.equal(ttl['granted-ttl'], 5);
  assert.ok(ttl.ttl >= 3 && ttl.ttl <= 5, `time left ${ttl.ttl}`);
  assert.deepEqual(
    ttl.keys.map((key) => Buffer.from(key, 'base64').toString()),
    ['k'],
  );
  const text = await ok(follower, ['lease', 'timetolive', id, '--keys']);
  assert.match(text, new RegExp(`^lease ${shown} granted with TTL\\(5s\\), remaining\\(\\d+s\\), attached keys\\(\\[k\\]\\)`));
  assert.match(await ok(follower, ['lease', 'keep-alive', '--once', id]), new RegExp(`lease ${shown} keepalived with TTL\\(5\\)`));
  const list = JSON.parse(await ok(follower, ['lease', 'list', '-w', 'json'])) as { leases: { id: number }[] };
  assert.deepEqual(
    list.leases.map((lease) => lease.id),
    [granted.ID],
  );
  // Revoke: the key goes with it; the lease is then unknown.
  assert.match(await ok(follower, ['lease', 'revoke', id]), new RegExp(`lease ${shown} revoked`));
  assert.equal(await keyExists(follower, 'k'), false);
  const gone = await etcdctl(follower, ['lease', 'revoke', id]);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /etcdserver: requested lease not found/);
  assert.match(await ok(follower, ['lease', 'timetolive', id]), new RegExp(`lease ${shown} already expired`));
  const unknownPut = await etcdctl(follower, ['put', 'k2', 'v', `--lease=${id}`]);
  assert.match(unknownPut.stderr, /etcdserver: requested lease not found/);

  // A lease nobody keeps alive expires, and its key with it, within TTL + a few seconds.
  const abandoned = JSON.parse(await ok(follower, ['lease', 'grant', '3', '-w', 'json'])) as GrantJson;
  await ok(follower, ['put', 'temp', 'v', `--lease=${hex(abandoned.ID)}`]);
  const start = Date.now();
  await waitFor('the abandoned lease’s key disappears', 10_000, async () => ((await keyExists(follower, 'temp')) ? undefined : true));
  assert.ok(Date.now() - start >= 1500, 'it did not vanish at once');
  assert.match(await ok(follower, ['lease', 'timetolive', hex(abandoned.ID)]), /already expired/);
});

test('kill -9 of the etcd leader: a kept-alive lease survives on the new leader, an abandoned one still expires', { timeout: 120_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const cluster = await TestCluster.start(t, 3);
  const { leader, leaderEndpoint, others } = await leaderEndpoints(cluster);
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(leaderEndpoint, ['endpoint', 'health'])).code === 0 ? true : undefined));
  const kept = JSON.parse(await ok(leaderEndpoint, ['lease', 'grant', '4', '-w', 'json'])) as GrantJson;
  const abandoned = JSON.parse(await ok(leaderEndpoint, ['lease', 'grant', '4', '-w', 'json'])) as GrantJson;
  await ok(leaderEndpoint, ['put', 'kept', 'v', `--lease=${hex(kept.ID)}`]);
  await ok(leaderEndpoint, ['put', 'abandoned', 'v', `--lease=${hex(abandoned.ID)}`]);
  // etcdctl's own keep-alive loop against the members that will survive.
  const keeper = spawn(ETCDCTL_PATH, [`--endpoints=${others}`, 'lease', 'keep-alive', hex(kept.ID)], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let keeperOut = '';
  keeper.stdout.on('data', (chunk: Buffer) => (keeperOut += chunk.toString()));
  keeper.stderr.on('data', (chunk: Buffer) => (keeperOut += chunk.toString()));
  t.after(() => void keeper.kill('SIGKILL'));
  await waitFor('the keep-alive loop renews', 10_000, () => (keeperOut.includes('keepalived') ? true : undefined));
  await cluster.kill(leader);
  const killedAt = Date.now();
  // The abandoned lease gets a fresh TTL on the new leader, then expires with its key.
  await waitFor('the abandoned key expires after the leader change', 20_000, async () => {
    const got = await etcdctl(others, ['get', 'abandoned', '-w', 'json']);
    return got.code === 0 && !got.stdout.includes('"count"') ? true : undefined;
  });
  // Well past any TTL since the kill, the kept lease and its key are still there.
  const waited = Date.now() - killedAt;
  if (waited < 10_000) await sleep(10_000 - waited);
  assert.equal(await keyExists(others, 'kept'), true, `the kept-alive lease survived (keep-alive output: ${keeperOut.slice(-400)})`);
  const ttl = JSON.parse(await ok(others, ['lease', 'timetolive', hex(kept.ID), '-w', 'json'])) as { ttl: number; 'granted-ttl': number };
  assert.equal(ttl['granted-ttl'], 4);
  assert.ok(ttl.ttl >= 1, `time left ${ttl.ttl}`);
  keeper.kill('SIGKILL');
});

/** The set of field names, recursively (values differ between two clusters: ids, TTLs left). */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length === 0 ? [] : [shape(value[0])];
  if (value === null || typeof value !== 'object') return typeof value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .sort(([a], [c]) => a.localeCompare(c))
      .map(([key, field]) => [key, shape(field)]),
  );
}

test('differential shapes: the same lease commands against a real etcd 3.4 and Flotilla answer in the same form', { timeout: 120_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const real = await RealEtcd.start();
  t.after(() => real.stop());
  const cluster = await TestCluster.start(t, 3);
  const flotilla = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`).join(',');
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(flotilla, ['endpoint', 'health'])).code === 0 ? true : undefined));
  const differences: string[] = [];
  const both = async (args: (id: string) => string[], compare: (etcd: unknown, ours: unknown) => void): Promise<void> => {
    const [real1, ours1] = [await etcdctl(real.endpoint, args(realId)), await etcdctl(flotilla, args(ourId))];
    const what = `etcdctl ${args('ID').join(' ')}`;
    if (real1.code !== ours1.code) return void differences.push(`${what}: exit ${ours1.code}, etcd ${real1.code}: ${ours1.stderr} / ${real1.stderr}`);
    if (real1.code !== 0) {
      const line = (stderr: string) => stderr.split('\n').find((l) => l.startsWith('Error:')) ?? stderr.trim();
      if (line(real1.stderr) !== line(ours1.stderr)) differences.push(`${what}: ${line(ours1.stderr)} / etcd ${line(real1.stderr)}`);
      return;
    }
    const [want, got] = [JSON.parse(real1.stdout) as unknown, JSON.parse(ours1.stdout) as unknown];
    try {
      assert.deepStrictEqual(shape(got), shape(want));
      compare(want, got);
    } catch (error) {
      differences.push(`${what}:\n  flotilla: ${ours1.stdout.trim()}\n  etcd:     ${real1.stdout.trim()}\n  ${(error as Error).message.split('\n')[0]}`);
    }
  };
  // etcd's ids use 64 bits, more than JSON.parse keeps: the id is read from the text.
  const grant = async (endpoint: string) => {
    const text = await ok(endpoint, ['lease', 'grant', '30', '-w', 'json']);
    const id = BigInt(/"ID":(\d+)/.exec(text)?.[1] ?? 'missing').toString(16);
    return { json: JSON.parse(text) as GrantJson, id };
  };
  const [realGrant, ourGrant] = [await grant(real.endpoint), await grant(flotilla)];
  assert.deepStrictEqual(shape(ourGrant.json), shape(realGrant.json));
  assert.equal(ourGrant.json.TTL, realGrant.json.TTL);
  const realId = realGrant.id;
  const ourId = ourGrant.id;
  const field = (object: unknown, name: string) => (object as Record<string, unknown>)[name];
  await both(
    (id) => ['put', 'lk', 'v', `--lease=${id}`, '-w', 'json'],
    () => {},
  );
  await both(
    () => ['get', 'lk', '-w', 'json'],
    (etcd, ours) => assert.equal(typeof field((field(ours, 'kvs') as unknown[])[0], 'lease'), typeof field((field(etcd, 'kvs') as unknown[])[0], 'lease')),
  );
  await both(
    (id) => ['lease', 'timetolive', id, '--keys', '-w', 'json'],
    (etcd, ours) => {
      assert.equal(field(ours, 'granted-ttl'), field(etcd, 'granted-ttl'));
      assert.deepEqual(field(ours, 'keys'), field(etcd, 'keys'));
    },
  );
  await both(
    (id) => ['lease', 'keep-alive', '--once', id, '-w', 'json'],
    (etcd, ours) => assert.equal(field(ours, 'TTL'), field(etcd, 'TTL')),
  );
  await both(
    () => ['lease', 'list', '-w', 'json'],
    (etcd, ours) => assert.equal((field(ours, 'leases') as unknown[]).length, (field(etcd, 'leases') as unknown[]).length),
  );
  await both(
    (id) => ['lease', 'revoke', id, '-w', 'json'],
    () => {},
  );
  await both(
    () => ['get', 'lk', '-w', 'json'],
    (etcd, ours) => assert.equal(field(ours, 'count'), field(etcd, 'count')),
  );
  await both(
    (id) => ['lease', 'timetolive', id, '-w', 'json'],
    (etcd, ours) => assert.equal(field(ours, 'ttl'), field(etcd, 'ttl')),
  );
  await both(
    (id) => ['lease', 'revoke', id],
    () => {},
  );
  await both(
    () => ['lease', 'grant', '1', '-w', 'json'],
    (etcd, ours) => assert.equal(field(ours, 'TTL'), field(etcd, 'TTL'), 'the same minimum TTL'),
  );
  await both(
    () => ['lease', 'grant', '9000000001'],
    () => {},
  );
  await both(
    () => ['lease', 'grant', '99999999999999999999'],
    () => {},
  );
  await both(
    () => ['put', 'd', 'x', '--lease', '1234'],
    () => {},
  );
  await both(
    (id) => ['lease', 'keep-alive', '--once', id],
    () => {},
  );
  assert.deepEqual(differences, [], differences.join('\n'));
});
