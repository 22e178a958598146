import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEtcdJsonl, parseJepsenEtcd, parseJepsenKv, parseKvJsonl, parseRegisterJsonl } from '../../src/lincheck/index.js';

test('JSONL kv: fields, pending calls and unknown results', () => {
  const text = [
    '{"client": 0, "call": 0, "return": 5, "op": "put", "key": "a", "value": "x"}',
    '',
    '{"client": 1, "call": 1, "return": 6, "op": "get", "key": "a", "output": "x"}',
    '{"client": 2, "call": 2, "op": "append", "key": "a", "value": "y"}',
    '{"client": 3, "call": 3, "return": null, "op": "get", "key": "a", "output": "xy"}',
  ].join('\n');
  const parsed = parseKvJsonl(text);
  assert.ok(parsed.ok);
  assert.equal(parsed.value.length, 4);
  assert.deepEqual(parsed.value[0], { clientId: 0, input: { kind: 'put', key: 'a', value: 'x' }, output: '', callTime: 0, returnTime: 5 });
  assert.deepEqual(parsed.value[1]!.output, 'x');
  assert.equal(parsed.value[2]!.returnTime, undefined);
  // A call that never returned has no observed output, whatever the line claims.
  assert.equal(parsed.value[3]!.output, undefined);
});

test('JSONL errors name the line', () => {
  const cases: [string, RegExp][] = [
    ['{"client": 0, "call": 0, "return": 1, "op": "get", "key": "a"}\nnot json', /not JSON/],
    ['{"client": -1, "call": 0, "return": 1, "op": "get", "key": "a"}', /client/],
    ['{"client": 0, "call": 5, "return": 1, "op": "get", "key": "a"}', /return/],
    ['{"client": 0, "call": 0, "return": 1, "op": "inc", "key": "a"}', /"op"/],
    ['{"client": 0, "call": 0, "return": 1, "op": "put", "key": "a"}', /value/],
    ['[1, 2]', /object/],
  ];
  for (const [text, pattern] of cases) {
    const parsed = parseKvJsonl(text);
    assert.ok(!parsed.ok, text);
    assert.match(parsed.message, pattern);
    assert.equal(parsed.line, text.includes('not json') ? 2 : 1);
  }
});

test('JSONL register and etcd models', () => {
  const register = parseRegisterJsonl('{"client": 0, "call": 0, "return": 1, "op": "write", "value": 3}\n{"client": 1, "call": 2, "return": 3, "op": "read", "output": 3}');
  assert.ok(register.ok);
  assert.deepEqual(register.value[1]!.input, { kind: 'read' });
  const etcd = parseEtcdJsonl('{"client": 0, "call": 0, "return": 1, "op": "cas", "from": 1, "to": 2, "output": false}\n{"client": 1, "call": 0, "return": 1, "op": "read", "output": null}');
  assert.ok(etcd.ok);
  assert.deepEqual(etcd.value[0]!.input, { kind: 'cas', from: 1, to: 2 });
  assert.equal(etcd.value[0]!.output, false);
  assert.equal(etcd.value[1]!.output, null);
  assert.ok(!parseEtcdJsonl('{"client": 0, "call": 0, "return": 1, "op": "cas", "from": 1}').ok);
});

test('Jepsen etcd: tabs or spaces, info stays pending, failed reads return unknown, failed writes vanish', () => {
  const text = [
    'INFO  jepsen.util - 0\t:invoke\t:write\t3',
    'INFO  jepsen.util - 1   :invoke :read   nil',
    'INFO  jepsen.util - 2\t:invoke\t:cas\t[3 4]',
    'INFO  jepsen.util - 3\t:invoke\t:write\t1',
    'INFO  jepsen.util - 0\t:info\t:write\t:timed-out',
    'INFO  jepsen.util - 1   :fail   :read   :timed-out',
    'INFO  jepsen.util - 2\t:ok\t:cas\t[3 4]',
    'INFO  jepsen.util - 3\t:fail\t:write\t1',
    'INFO  jepsen.util - 5\t:invoke\t:read\tnil',
    'INFO  jepsen.util - 5\t:ok\t:read\t4',
  ].join('\n');
  const parsed = parseJepsenEtcd(text);
  assert.ok(parsed.ok);
  const summary = parsed.value.map((op) => [op.clientId, op.input.kind, op.output, op.callTime, op.returnTime]);
  assert.deepEqual(summary, [
    [0, 'write', undefined, 0, undefined],
    [1, 'read', undefined, 1, 5],
    [2, 'cas', true, 2, 6],
    [5, 'read', 4, 8, 9],
  ]);
  assert.ok(!parseJepsenEtcd('INFO  jepsen.util - 0\t:ok\t:read\t1').ok);
  assert.ok(!parseJepsenEtcd('garbage').ok);
});

test('Jepsen kv EDN lines', () => {
  const text = [
    '{:process 3, :type :invoke, :f :append, :key "4", :value "x 3 17 y"}',
    '{:process 0, :type :invoke, :f :get, :key "5", :value nil}',
    '{:process 3, :type :ok, :f :append, :key "4", :value "x 3 17 y"}',
    '{:process 0, :type :ok, :f :get, :key "5", :value ""}',
  ].join('\n');
  const parsed = parseJepsenKv(text);
  assert.ok(parsed.ok);
  assert.deepEqual(
    parsed.value.map((op) => [op.input, op.output, op.callTime, op.returnTime]),
    [
      [{ kind: 'append', key: '4', value: 'x 3 17 y' }, '', 0, 2],
      [{ kind: 'get', key: '5' }, '', 1, 3],
    ],
  );
});
