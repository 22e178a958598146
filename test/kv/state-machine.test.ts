// The key/value state machine on its own: every operation, the limits, sessions and
// deduplication, snapshots, and determinism.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStateMachine } from '../../src/kv/state-machine.js';
import { decodeResult, encodeCommand, encodeResult, decodeCommand, KvDecodeError, type KvOp, type KvResult, type SessionStamp } from '../../src/kv/codec.js';
import { Prng } from '../../src/stdx/prng.js';
import { index } from '../../src/stdx/types.js';

const bytes = (text: string): Uint8Array => Buffer.from(text, 'utf8');
const textOf = (value: Uint8Array | null): string | null => (value === null ? null : Buffer.from(value).toString('utf8'));

/** Applies commands at consecutive indices, from 1. */
class Driver {
  next = 1;
  constructor(readonly machine = new KvStateMachine()) {}
  run(op: KvOp, session?: SessionStamp, timeMs = 0): KvResult {
    return decodeResult(this.machine.apply(encodeCommand({ op, session, timeMs }), index(this.next++)));
  }
  value(key: string): string | null {
    const result = this.machine.query({ kind: 'get', key });
    assert.equal(result.kind, 'value');
    return result.kind === 'value' ? textOf(result.value) : null;
  }
}

test('get, put, append, delete: values are bytes, versions are the index of the last write', () => {
  const d = new Driver();
  assert.deepEqual(d.run({ kind: 'get', key: 'k' }), { kind: 'value', value: null, version: 0 });
  assert.deepEqual(d.run({ kind: 'put', key: 'k', value: bytes('a') }), { kind: 'written', version: 2 });
  assert.deepEqual(d.run({ kind: 'append', key: 'k', value: bytes('b') }), { kind: 'written', version: 3 });
  assert.deepEqual(d.run({ kind: 'append', key: 'new', value: bytes('x') }), { kind: 'written', version: 4 });
  const got = d.run({ kind: 'get', key: 'k' });
  assert.equal(got.kind === 'value' && textOf(got.value), 'ab');
  assert.equal(got.kind === 'value' && got.version, 3);
  assert.deepEqual(d.run({ kind: 'delete', key: 'k' }), { kind: 'deleted', existed: true });
  assert.deepEqual(d.run({ kind: 'delete', key: 'k' }), { kind: 'deleted', existed: false });
  assert.equal(d.value('k'), null);
  assert.equal(d.value('new'), 'x');
  // Binary values survive unchanged.
  d.run({ kind: 'put', key: 'bin', value: Uint8Array.from([0, 255, 128]) });
  const bin = d.machine.query({ kind: 'get', key: 'bin' });
  assert.deepEqual(bin.kind === 'value' && [...bin.value!], [0, 255, 128]);
});

test('compare-and-set on the version: 0 means absent; a mismatch reports the current version', () => {
  const d = new Driver();
  assert.deepEqual(d.run({ kind: 'cas', key: 'k', version: 0, value: bytes('1') }), { kind: 'cas', swapped: true, version: 1 });
  assert.deepEqual(d.run({ kind: 'cas', key: 'k', version: 0, value: bytes('2') }), { kind: 'cas', swapped: false, version: 1 });
  assert.deepEqual(d.run({ kind: 'cas', key: 'k', version: 1, value: bytes('3') }), { kind: 'cas', swapped: true, version: 3 });
  assert.equal(d.value('k'), '3');
  d.run({ kind: 'delete', key: 'k' });
  assert.deepEqual(d.run({ kind: 'cas', key: 'k', version: 3, value: bytes('4') }), { kind: 'cas', swapped: false, version: 0 });
});

test('scan by prefix with a limit and a continuation, in key order', () => {
  const d = new Driver();
  for (const key of ['b2', 'a', 'b1', 'b3', 'c', 'b10']) d.run({ kind: 'put', key, value: bytes(key) });
  const page1 = d.run({ kind: 'scan', prefix: 'b', limit: 2, after: '' });
  assert.equal(page1.kind, 'scan');
  if (page1.kind !== 'scan') return;
  assert.deepEqual(
    page1.entries.map((e) => e.key),
    ['b1', 'b10'],
  );
  assert.equal(page1.next, 'b10');
  const page2 = d.machine.query({ kind: 'scan', prefix: 'b', limit: 2, after: page1.next! });
  assert.ok(page2.kind === 'scan');
  assert.deepEqual(
    page2.entries.map((e) => e.key),
    ['b2', 'b3'],
  );
  assert.equal(page2.next, null);
  const all = d.machine.query({ kind: 'scan', prefix: '', limit: 100, after: '' });
  assert.ok(all.kind === 'scan');
  assert.deepEqual(
    all.entries.map((e) => e.key),
    ['a', 'b1', 'b10', 'b2', 'b3', 'c'],
  );
  assert.deepEqual(
    all.entries.map((e) => textOf(e.value)),
    ['a', 'b1', 'b10', 'b2', 'b3', 'c'],
  );
  const none = d.machine.query({ kind: 'scan', prefix: 'z', limit: 5, after: '' });
  assert.deepEqual(none, { kind: 'scan', entries: [], next: null });
  d.run({ kind: 'delete', key: 'b10' });
  const afterDelete = d.machine.query({ kind: 'scan', prefix: 'b', limit: 10, after: 'b1' });
  assert.ok(afterDelete.kind === 'scan');
  assert.deepEqual(
    afterDelete.entries.map((e) => e.key),
    ['b2', 'b3'],
  );
});

test('limits: key size, value size (appends too), key count, scan limit — typed errors, nothing changed', () => {
  const d = new Driver(new KvStateMachine({ keyBytesMax: 4, valueBytesMax: 8, keysMax: 2, scanLimitMax: 3 }));
  const code = (result: KvResult): string => (result.kind === 'error' ? result.code : result.kind);
  assert.equal(code(d.run({ kind: 'put', key: '', value: bytes('v') })), 'key-invalid');
  assert.equal(code(d.run({ kind: 'put', key: 'abcde', value: bytes('v') })), 'key-invalid');
  assert.equal(code(d.run({ kind: 'put', key: 'é', value: bytes('v') })), 'written'); // 2 bytes
  assert.equal(code(d.run({ kind: 'put', key: 'ééé', value: bytes('v') })), 'key-invalid'); // 6 bytes
  assert.equal(code(d.run({ kind: 'put', key: 'k', value: bytes('123456789') })), 'value-too-large');
  assert.equal(code(d.run({ kind: 'put', key: 'k', value: bytes('12345') })), 'written');
  assert.equal(code(d.run({ kind: 'append', key: 'k', value: bytes('6789') })), 'value-too-large');
  assert.equal(d.value('k'), '12345');
  assert.equal(code(d.run({ kind: 'put', key: 'k3', value: bytes('v') })), 'keys-full');
  assert.equal(code(d.run({ kind: 'cas', key: 'k3', version: 0, value: bytes('v') })), 'keys-full');
  assert.equal(code(d.run({ kind: 'put', key: 'k', value: bytes('over') })), 'written');
  assert.equal(code(d.run({ kind: 'scan', prefix: '', limit: 4, after: '' })), 'scan-limit');
  assert.equal(code(d.run({ kind: 'scan', prefix: '', limit: 0, after: '' })), 'scan-limit');
  assert.equal(d.machine.keyCount, 2);
});

test('a malformed command gets a typed error result, never an exception', () => {
  const machine = new KvStateMachine();
  for (const junk of [new Uint8Array([0xc1]), Buffer.from('hello'), encodeResult({ kind: 'written', version: 1 })]) {
    const result = decodeResult(machine.apply(junk, index(machine.appliedIndex + 1)));
    assert.equal(result.kind === 'error' && result.code, 'malformed');
  }
  assert.throws(() => decodeCommand(Buffer.from([0x93, 9, 0, 0])), KvDecodeError);
});

test('sessions: a retried request gets the kept reply and runs once; ack frees replies; stale and expired refused', () => {
  const d = new Driver();
  const s = (seq: number, ack: number): SessionStamp => ({ client: 7, seq, ack });
  const first = d.run({ kind: 'append', key: 'k', value: bytes('a') }, s(1, 0));
  assert.deepEqual(d.run({ kind: 'append', key: 'k', value: bytes('a') }, s(1, 0)), first, 'the retry gets the same reply');
  assert.equal(d.value('k'), 'a', 'and did not run again');
  d.run({ kind: 'append', key: 'k', value: bytes('b') }, s(2, 1));
  const stale = d.run({ kind: 'append', key: 'k', value: bytes('a') }, s(1, 0));
  assert.equal(stale.kind === 'error' && stale.code, 'session-stale');
  assert.equal(d.value('k'), 'ab');
  // An unknown session whose client has seen replies: its earlier requests may have run.
  const expired = d.run({ kind: 'append', key: 'k', value: bytes('z') }, { client: 8, seq: 5, ack: 4 });
  assert.equal(expired.kind === 'error' && expired.code, 'session-expired');
  assert.equal(d.value('k'), 'ab');
});

test('sessions: many outstanding requests up to the window, then session-window-full', () => {
  const d = new Driver(new KvStateMachine({ sessionRepliesMax: 2 }));
  d.run({ kind: 'put', key: 'a', value: bytes('1') }, { client: 3, seq: 1, ack: 0 });
  d.run({ kind: 'put', key: 'b', value: bytes('2') }, { client: 3, seq: 2, ack: 0 });
  const full = d.run({ kind: 'put', key: 'c', value: bytes('3') }, { client: 3, seq: 3, ack: 0 });
  assert.equal(full.kind === 'error' && full.code, 'session-window-full');
  assert.equal(d.value('c'), null);
  assert.equal(d.run({ kind: 'put', key: 'c', value: bytes('3') }, { client: 3, seq: 3, ack: 2 }).kind, 'written');
});

test('sessions expire by log time (leader stamps), and the least recently used is evicted beyond sessionsMax', () => {
  const d = new Driver(new KvStateMachine({ sessionIdleMsMax: 1000, sessionsMax: 2 }));
  d.run({ kind: 'put', key: 'k', value: bytes('1') }, { client: 1, seq: 1, ack: 0 }, 0);
  d.run({ kind: 'put', key: 'k', value: bytes('2') }, { client: 2, seq: 1, ack: 0 }, 900);
  // A stamp from a leader whose clock is behind does not move the log's clock back.
  d.run({ kind: 'get', key: 'k' }, undefined, 500);
  assert.equal(d.machine.logClockMs, 900);
  d.run({ kind: 'get', key: 'k' }, undefined, 1500);
  assert.equal(d.machine.sessionCount, 1, 'client 1 was idle for 1500 ms > 1000');
  const gone = d.run({ kind: 'put', key: 'k', value: bytes('x') }, { client: 1, seq: 2, ack: 1 }, 1500);
  assert.equal(gone.kind === 'error' && gone.code, 'session-expired');
  d.run({ kind: 'put', key: 'k', value: bytes('3') }, { client: 3, seq: 1, ack: 0 }, 1600);
  d.run({ kind: 'put', key: 'k', value: bytes('4') }, { client: 4, seq: 1, ack: 0 }, 1700);
  assert.equal(d.machine.sessionCount, 2, 'client 2, least recently used, was evicted');
  const evicted = d.run({ kind: 'put', key: 'k', value: bytes('y') }, { client: 2, seq: 2, ack: 1 }, 1800);
  assert.equal(evicted.kind === 'error' && evicted.code, 'session-expired');
});

/** A random workload of every operation, with sessions, retries and time stamps. */
function randomCommands(seed: number, count: number): Uint8Array[] {
  const prng = new Prng(seed);
  const seqs = [0, 0, 0];
  const commands: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const key = `k${prng.int(8)}`;
    const value = bytes(`v${i}`);
    const ops: KvOp[] = [
      { kind: 'get', key },
      { kind: 'put', key, value },
      { kind: 'append', key, value },
      { kind: 'delete', key },
      { kind: 'cas', key, version: prng.int(i + 1), value },
      { kind: 'scan', prefix: 'k', limit: 1 + prng.int(4), after: prng.chance(0.5) ? '' : key },
    ];
    const client = prng.int(4);
    let session: SessionStamp | undefined;
    if (client > 0) {
      const retry = seqs[client - 1]! > 0 && prng.chance(0.2);
      if (!retry) seqs[client - 1]!++;
      const seq = seqs[client - 1]!;
      session = { client, seq, ack: seq - 1 };
    }
    commands.push(encodeCommand({ op: prng.pick(ops), session, timeMs: i * 10 }));
  }
  return commands;
}

test('determinism and snapshots: replicas agree; restoring a snapshot mid-log gives the same results and state', () => {
  const commands = randomCommands(5, 600);
  const a = new KvStateMachine({ sessionIdleMsMax: 2000 });
  const b = new KvStateMachine({ sessionIdleMsMax: 2000 });
  let c = new KvStateMachine({ sessionIdleMsMax: 2000 });
  commands.forEach((command, i) => {
    const at = index(i + 1);
    const ra = Buffer.from(a.apply(command, at));
    assert.deepEqual(Buffer.from(b.apply(command, at)), ra);
    if (i % 97 === 0) {
      // Round-trip through a snapshot: c continues from it as a restarted member would.
      const snapshot = c.snapshot();
      c = new KvStateMachine({ sessionIdleMsMax: 2000 });
      c.restore(snapshot, index(i));
    }
    assert.deepEqual(Buffer.from(c.apply(command, at)), ra, `result at index ${at}`);
  });
  assert.deepEqual(Buffer.from(a.snapshot()), Buffer.from(b.snapshot()));
  assert.deepEqual(Buffer.from(c.snapshot()), Buffer.from(a.snapshot()));
  assert.throws(() => c.restore(a.snapshot(), index(3)), /index/);
});

test('snapshot of the lab SnapshotSize4B state is small', () => {
  const d = new Driver();
  for (let i = 1; i <= 400; i++) d.run({ kind: 'put', key: 'x', value: bytes(String(i % 2)) }, { client: 2 ** 52 + 12345, seq: i, ack: i - 1 }, 60_000 + i);
  assert.ok(d.machine.snapshot().length < 60, `${d.machine.snapshot().length} bytes`);
});

test('a snapshot may trail the log index it is installed at (no-ops never reach the service)', () => {
  const a = new KvStateMachine({ sessionIdleMsMax: 2000 });
  const d = new Driver();
  d.run({ kind: 'put', key: 'k', value: bytes('v') }, { client: 7, seq: 1, ack: 0 }, 1000);
  const snapshot = d.machine.snapshot();
  // The node snapshotted at index 5 though the last command was at 1 (a leader's no-op came after).
  a.restore(snapshot, index(5));
  assert.equal(a.appliedIndex, 5);
  const after = new Driver(a);
  after.next = 6;
  assert.equal(after.value('k'), 'v');
  after.run({ kind: 'put', key: 'k', value: bytes('w') }, { client: 7, seq: 2, ack: 1 }, 1001);
  assert.equal(after.value('k'), 'w');
});
