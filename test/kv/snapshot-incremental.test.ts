// Incremental KV snapshots (src/kv/snapshot.ts): while a snapshot is encoded a step at a
// time, applies go on, and the snapshot still holds exactly the state at the index where it
// began — the bytes a synchronous snapshot() returned at that moment — and restores.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStateMachine } from '../../src/kv/state-machine.js';
import { arrayHeader } from '../../src/kv/snapshot.js';
import { decodeResult, encodeCommand, pack, type KvOp, type KvResult, type SessionStamp } from '../../src/kv/codec.js';
import { Prng } from '../../src/stdx/prng.js';
import { index } from '../../src/stdx/types.js';

const bytes = (text: string): Uint8Array => Buffer.from(text, 'utf8');

/** Applies commands at consecutive indices, from 1. */
class Driver {
  next = 1;
  constructor(readonly machine = new KvStateMachine()) {}
  run(op: KvOp, session?: SessionStamp, timeMs = 0): KvResult {
    return decodeResult(this.machine.apply(encodeCommand({ op, session, timeMs }), index(this.next++)));
  }
}

function restored(snapshot: Uint8Array, at: number): KvStateMachine {
  const machine = new KvStateMachine();
  machine.restore(snapshot, index(at));
  return machine;
}

test('put, append, delete, new keys and cas during a snapshot do not change what it holds', () => {
  const d = new Driver();
  const keys = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, '0')}`);
  for (const key of keys) d.run({ kind: 'put', key, value: bytes(`v-${key}`) }, { client: 7, seq: d.next, ack: d.next - 1 }, 1000 + d.next);
  d.run({ kind: 'append', key: 'k05', value: bytes('+tail') });
  const at = d.machine.appliedIndex;
  const expected = Buffer.from(d.machine.snapshot());
  const encoder = d.machine.beginSnapshot();
  assert.equal(encoder.index, at);
  assert.equal(encoder.step(5), false);
  assert.equal(encoder.keysDone, 5);
  // Keys already encoded (k00..k04) and keys not yet encoded, with every kind of write.
  d.run({ kind: 'put', key: 'k01', value: bytes('changed') });
  d.run({ kind: 'put', key: 'k20', value: bytes('changed') });
  d.run({ kind: 'append', key: 'k05', value: bytes('+more') });
  d.run({ kind: 'append', key: 'k30', value: bytes('+more') });
  d.run({ kind: 'delete', key: 'k02' });
  d.run({ kind: 'delete', key: 'k31' });
  d.run({ kind: 'put', key: 'a-new-first', value: bytes('new') });
  d.run({ kind: 'append', key: 'zz-new-last', value: bytes('new') });
  d.run({ kind: 'cas', key: 'k32', version: 33, value: bytes('swapped') });
  d.run({ kind: 'cas', key: 'k33', version: 0, value: bytes('not swapped') });
  d.run({ kind: 'cas', key: 'k-new', version: 0, value: bytes('created') });
  d.run({ kind: 'put', key: 'k20', value: bytes('changed twice') });
  d.run({ kind: 'delete', key: 'k20' });
  // Sessions change too: a new client, and the old one's reply window and ack.
  d.run({ kind: 'put', key: 'k10', value: bytes('session') }, { client: 7, seq: 1000, ack: 999 }, 5000);
  d.run({ kind: 'put', key: 'k11', value: bytes('session') }, { client: 8, seq: 1, ack: 0 }, 5001);
  let steps = 1;
  while (!encoder.step(5)) {
    steps++;
    d.run({ kind: 'put', key: keys[(steps * 7) % keys.length]!, value: bytes(`step ${steps}`) });
  }
  assert.ok(steps >= 8, `${steps} steps`);
  const snapshot = Buffer.from(encoder.finish());
  assert.deepEqual(snapshot, expected, 'the snapshot is the state at its index');
  assert.deepEqual(Buffer.from(restored(snapshot, at).snapshot()), expected, 'and it restores');
  // The live state did move on, and a later snapshot shows it.
  assert.notDeepEqual(Buffer.from(d.machine.snapshot()), expected);
  const later = d.machine.beginSnapshot();
  while (!later.step(1000)) {}
  assert.deepEqual(Buffer.from(later.finish()), Buffer.from(d.machine.snapshot()));
});

test('random writes between steps: the snapshot equals a synchronous one taken when it began', () => {
  const prng = new Prng(42);
  const d = new Driver();
  const key = (): string => `key-${prng.int(300)}`;
  const randomOp = (): KvOp => {
    switch (prng.int(5)) {
      case 0:
        return { kind: 'put', key: key(), value: bytes(`p${d.next}`) };
      case 1:
        return { kind: 'append', key: key(), value: bytes(`a${d.next}`) };
      case 2:
        return { kind: 'delete', key: key() };
      case 3:
        return { kind: 'cas', key: key(), version: prng.int(d.next), value: bytes(`c${d.next}`) };
      default:
        return { kind: 'get', key: key() };
    }
  };
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 200; i++) d.run(randomOp(), { client: 1 + prng.int(20), seq: d.next, ack: d.next - 1 }, d.next);
    const at = d.machine.appliedIndex;
    const expected = Buffer.from(d.machine.snapshot());
    const encoder = d.machine.beginSnapshot();
    while (!encoder.step(1 + prng.int(30))) {
      for (let i = prng.int(10); i > 0; i--) d.run(randomOp(), { client: 1 + prng.int(30), seq: d.next, ack: d.next - 1 }, d.next);
    }
    const snapshot = Buffer.from(encoder.finish());
    assert.deepEqual(snapshot, expected, `round ${round}`);
    assert.deepEqual(Buffer.from(restored(snapshot, at).snapshot()), expected);
  }
});

test('a 200k-key store encodes in steps of at most the budget, and round-trips', () => {
  const machine = new KvStateMachine();
  const total = 200_000;
  for (let i = 1; i <= total; i++) {
    machine.apply(encodeCommand({ op: { kind: 'put', key: `key-${i}`, value: bytes(`value-${i}`) }, session: undefined, timeMs: 0 }), index(i));
  }
  const expected = Buffer.from(machine.snapshot());
  const budget = 5000;
  const encoder = machine.beginSnapshot();
  assert.equal(encoder.keysTotal, total);
  let steps = 0;
  let done = false;
  let next = total + 1;
  while (!done) {
    const before = encoder.keysDone;
    done = encoder.step(budget);
    steps++;
    assert.ok(encoder.keysDone - before <= budget, `step ${steps} encoded ${encoder.keysDone - before} keys`);
    // Overwrite a key the encoder has not reached yet.
    if (!done) machine.apply(encodeCommand({ op: { kind: 'put', key: `key-${total - steps}`, value: bytes('late') }, session: undefined, timeMs: 0 }), index(next++));
  }
  assert.equal(steps, total / budget);
  const snapshot = Buffer.from(encoder.finish());
  assert.deepEqual(snapshot, expected);
  const copy = restored(snapshot, total);
  assert.equal(copy.keyCount, total);
  assert.deepEqual(Buffer.from(copy.snapshot()), expected);
});

test('the lab SnapshotSize4B state stays small when encoded incrementally', () => {
  const d = new Driver();
  for (let i = 1; i <= 400; i++) d.run({ kind: 'put', key: 'x', value: bytes(String(i % 2)) }, { client: 2 ** 52 + 12345, seq: i, ack: i - 1 }, 60_000 + i);
  const encoder = d.machine.beginSnapshot();
  assert.equal(encoder.step(1), false, 'the key, then the session');
  assert.equal(encoder.step(1), true);
  const snapshot = encoder.finish();
  assert.deepEqual(Buffer.from(snapshot), Buffer.from(d.machine.snapshot()));
  assert.ok(snapshot.length < 60, `${snapshot.length} bytes`);
  const empty = new KvStateMachine().beginSnapshot();
  assert.equal(empty.step(1), true);
  assert.deepEqual(Buffer.from(empty.finish()), Buffer.from(new KvStateMachine().snapshot()));
});

test('abort ends the capture: another snapshot may begin; restore ends one in progress', () => {
  const d = new Driver();
  for (let i = 0; i < 10; i++) d.run({ kind: 'put', key: `k${i}`, value: bytes('v') });
  const first = d.machine.beginSnapshot();
  assert.throws(() => d.machine.beginSnapshot(), /one snapshot in progress/);
  first.step(3);
  first.abort();
  assert.throws(() => first.step(3), /aborted/);
  const second = d.machine.beginSnapshot();
  second.step(3);
  d.machine.restore(new Driver().machine.snapshot(), index(0));
  assert.throws(() => second.step(3), /cleared/);
  second.abort();
  const third = d.machine.beginSnapshot();
  assert.equal(third.step(10), true);
  assert.deepEqual(Buffer.from(third.finish()), Buffer.from(d.machine.snapshot()));
});

test('array headers match msgpackr at the size boundaries', () => {
  for (const length of [0, 1, 15, 16, 65_535, 65_536, 70_000]) {
    const packed = pack(new Array<number>(length).fill(0));
    assert.deepEqual(Buffer.from(arrayHeader(length)), Buffer.from(packed.subarray(0, packed.length - length)), `length ${length}`);
  }
});
