import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type EtcdInput,
  type EtcdOutput,
  type Operation,
  type RegisterInput,
  type RegisterOutput,
  check,
  describeResult,
  etcdModel,
  kvModel,
  registerModel,
  renderHtml,
} from '../../src/lincheck/index.js';

type RegisterOp = Operation<RegisterInput, RegisterOutput>;

function write(clientId: number, value: number, callTime: number, returnTime: number | undefined): RegisterOp {
  return { clientId, input: { kind: 'write', value }, output: returnTime === undefined ? undefined : 0, callTime, returnTime };
}

function read(clientId: number, value: number | undefined, callTime: number, returnTime: number | undefined): RegisterOp {
  return { clientId, input: { kind: 'read' }, output: value, callTime, returnTime };
}

test('an empty history is linearizable', () => {
  const result = check(registerModel(), []);
  assert.equal(result.verdict, 'ok');
  assert.equal(result.partitions.length, 0);
});

test('a read concurrent with a write may see either value', () => {
  assert.equal(check(registerModel(), [write(0, 1, 0, 10), read(1, 1, 5, 6)]).verdict, 'ok');
  assert.equal(check(registerModel(), [write(0, 1, 0, 10), read(1, 0, 5, 6)]).verdict, 'ok');
  assert.equal(check(registerModel(), [write(0, 1, 0, 10), read(1, 2, 5, 6)]).verdict, 'illegal');
});

test('a read after a completed write must see it, and the explanation says so', () => {
  const history = [write(0, 1, 0, 10), read(1, 0, 11, 12)];
  const result = check(registerModel(), history);
  assert.equal(result.verdict, 'illegal');
  const partition = result.partitions[result.failingPartition!]!;
  assert.deepEqual(partition.linearization, [0]);
  assert.deepEqual(partition.states, [1]);
  assert.deepEqual(partition.unplaceable, [1]);
  assert.equal(partition.blocking, 1);
  const text = describeResult(registerModel(), result);
  assert.match(text, /NOT linearizable/);
  assert.match(text, /Longest linearizable prefix: 1 of 2/);
  assert.match(text, /read\(\) -> 0/);
});

test('equal call and return times count as concurrent', () => {
  assert.equal(check(registerModel(), [write(0, 1, 0, 5), read(1, 0, 5, 6)]).verdict, 'ok');
});

test('a write that never returned may take effect at any later time, or never', () => {
  const pending = write(0, 1, 0, undefined);
  assert.equal(check(registerModel(), [pending, read(1, 0, 10, 11), read(1, 1, 20, 21)]).verdict, 'ok');
  assert.equal(check(registerModel(), [pending, read(1, 0, 10, 11), read(1, 0, 20, 21)]).verdict, 'ok');
  // Once it has been seen it cannot be undone.
  assert.equal(check(registerModel(), [pending, read(1, 1, 10, 11), read(1, 0, 20, 21)]).verdict, 'illegal');
  // It cannot take effect before it was called.
  assert.equal(check(registerModel(), [read(1, 1, 0, 1), write(0, 1, 5, undefined)]).verdict, 'illegal');
});

test('a completed operation with an unknown result is accepted in any state', () => {
  assert.equal(check(registerModel(), [write(0, 1, 0, 1), read(1, undefined, 2, 3)]).verdict, 'ok');
});

test('a timed-out write (returned, result unknown) may apply after its return, or never', () => {
  const timedOut: RegisterOp = { clientId: 0, input: { kind: 'write', value: 1 }, output: undefined, callTime: 0, returnTime: 10 };
  assert.equal(check(registerModel(), [timedOut, read(1, 0, 20, 21)]).verdict, 'ok');
  assert.equal(check(registerModel(), [timedOut, read(1, 0, 20, 21), read(1, 1, 30, 31)]).verdict, 'ok');
  assert.equal(check(registerModel(), [timedOut, read(1, 1, 20, 21), read(1, 0, 30, 31)]).verdict, 'illegal');
});

test('an operation that never returned cannot have an output', () => {
  const broken: RegisterOp = { clientId: 0, input: { kind: 'read' }, output: 3, callTime: 0, returnTime: undefined };
  assert.throws(() => check(registerModel(), [broken]), /never returned/);
});

test('etcd: compare-and-set results must match the state', () => {
  const op = (clientId: number, input: EtcdInput, output: EtcdOutput | undefined, callTime: number, returnTime?: number): Operation<EtcdInput, EtcdOutput> => ({
    clientId,
    input,
    output,
    callTime,
    returnTime,
  });
  const model = etcdModel();
  const writeOne = op(0, { kind: 'write', value: 1 }, true, 0, 1);
  assert.equal(check(model, [writeOne, op(1, { kind: 'cas', from: 1, to: 2 }, true, 2, 3), op(2, { kind: 'read' }, 2, 4, 5)]).verdict, 'ok');
  assert.equal(check(model, [writeOne, op(1, { kind: 'cas', from: 1, to: 2 }, false, 2, 3)]).verdict, 'illegal');
  assert.equal(check(model, [writeOne, op(1, { kind: 'cas', from: 3, to: 2 }, true, 2, 3)]).verdict, 'illegal');
  assert.equal(check(model, [op(1, { kind: 'read' }, null, 0, 1)]).verdict, 'ok');
  assert.equal(check(model, [op(1, { kind: 'read' }, 0, 0, 1)]).verdict, 'illegal');
  // An indeterminate cas may or may not have applied.
  const maybe = op(1, { kind: 'cas', from: 1, to: 2 }, undefined, 2);
  assert.equal(check(model, [writeOne, maybe, op(2, { kind: 'read' }, 2, 4, 5)]).verdict, 'ok');
  assert.equal(check(model, [writeOne, maybe, op(2, { kind: 'read' }, 1, 4, 5)]).verdict, 'ok');
});

test('kv: partitions by key, and a stale get fails only its own key', () => {
  const history: Operation<import('../../src/lincheck/index.js').KvInput, string>[] = [
    { clientId: 0, input: { kind: 'put', key: 'a', value: 'x' }, output: '', callTime: 0, returnTime: 1 },
    { clientId: 0, input: { kind: 'append', key: 'b', value: 'y' }, output: '', callTime: 2, returnTime: 3 },
    { clientId: 1, input: { kind: 'get', key: 'b' }, output: 'y', callTime: 4, returnTime: 5 },
    { clientId: 1, input: { kind: 'get', key: 'a' }, output: '', callTime: 6, returnTime: 7 },
  ];
  const result = check(kvModel(), history, { stopAtFirstIllegal: false });
  assert.equal(result.verdict, 'illegal');
  assert.deepEqual(
    result.partitions.map((p) => [p.key, p.outcome]),
    [
      ['a', 'illegal'],
      ['b', 'ok'],
    ],
  );
  assert.equal(check(kvModel(), history, { noPartition: true }).partitions.length, 1);
  assert.equal(check(kvModel(), history, { noPartition: true }).verdict, 'illegal');
});

/** A history whose search needs many steps: many concurrent writes, one impossible read at the end. */
function hardHistory(writers: number): RegisterOp[] {
  const history: RegisterOp[] = [];
  for (let i = 0; i < writers; i++) history.push(write(i, i + 1, 0, 100));
  history.push(read(writers, 0, 200, 201));
  return history;
}

test('running out of time gives unknown, never ok', () => {
  let clock = 0;
  const nowMs = (): number => (clock += 1000);
  const result = check(registerModel(), hardHistory(20), { timeBudgetMs: 1, nowMs });
  assert.equal(result.verdict, 'unknown');
  assert.equal(result.partitions[0]!.outcome, 'time');
  assert.match(describeResult(registerModel(), result), /not a proof/);
});

test('running out of memory gives unknown, never ok', () => {
  const result = check(registerModel(), hardHistory(20), { cacheBytesMax: 64 * 1024 });
  assert.equal(result.verdict, 'unknown');
  assert.equal(result.partitions[0]!.outcome, 'memory');
  assert.ok(result.partitions[0]!.stats.cacheBytes <= 64 * 1024);
});

test('a time budget without a clock is a programmer error', () => {
  assert.throws(() => check(registerModel(), [], { timeBudgetMs: 10 }), /clock/);
});

test('an operation that returns before its call is a programmer error', () => {
  assert.throws(() => check(registerModel(), [write(0, 1, 5, 4)]), /returned before/);
});

test('the HTML report is self-contained and marks the failing point', () => {
  const history = [write(0, 1, 0, 10), read(1, 0, 11, 12), write(2, 5, 3, undefined)];
  const html = renderHtml(registerModel(), check(registerModel(), history), 'a <test>');
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /class="stuck"/);
  assert.match(html, /class="op unplaceable blocking"/);
  assert.match(html, /client 0/);
  assert.match(html, /client 2/);
  assert.match(html, /a &#60;test&#62;/);
  assert.doesNotMatch(html, /<script|src=|href=/);
});
