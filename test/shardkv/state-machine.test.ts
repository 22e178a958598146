// The sharded key/value state machine on its own: ownership checked when an entry applies,
// configurations strictly in order and only once the current one is installed, shards
// moving with their sessions, garbage collection, totality on malformed input, and
// snapshots that restore to the same behaviour.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freezeConfig, type Gid, type ShardConfig, shardCount } from '../../src/shardctrler/index.js';
import { index as idx } from '../../src/stdx/types.js';
import { decodeResult, encodeCommand, key2shard, pack, ShardKvStateMachine, type ShardKvOp } from '../../src/shardkv/index.js';
import { decodeCommand } from '../../src/shardkv/codec.js';

function config(num: number, shards: Gid[], gids: Gid[]): ShardConfig {
  return freezeConfig({ num, shards, groups: new Map(gids.map((gid) => [gid, [`server-${gid}-0`]])) });
}

const all = (gid: Gid): Gid[] => new Array<Gid>(shardCount).fill(gid);

class Driver {
  index = 0;
  constructor(readonly machine: ShardKvStateMachine) {}
  apply(command: Uint8Array): { err: string; value: string } {
    return decodeResult(this.machine.apply(command, idx(++this.index)));
  }
  op(kind: ShardKvOp['kind'], key: string, value = '', client = 0, seq = 0): { err: string; value: string } {
    return this.apply(encodeCommand({ kind: 'op', op: { kind, key, value, client, seq } }));
  }
  config(c: ShardConfig): void {
    this.apply(encodeCommand({ kind: 'config', config: c }));
  }
}

test('key2shard is the first byte mod 10, 0 for the empty key', () => {
  assert.deepEqual(['0', '1', '2', '9', 'k', ''].map(key2shard), [8, 9, 0, 7, 7, 0]);
});

test('a group serves only shards it owns and holds; configurations apply in order, once installed', () => {
  const d = new Driver(new ShardKvStateMachine(100));
  assert.equal(d.op('get', 'a').err, 'ErrWrongGroup', 'configuration 0: no group serves anything');
  d.config(config(2, all(100), [100]));
  assert.equal(d.machine.config.num, 0, 'configuration 2 before 1 is ignored');
  d.config(config(1, all(100), [100]));
  assert.equal(d.machine.config.num, 1);
  assert.equal(d.op('put', 'a', 'x', 7, 1).err, 'OK');
  assert.equal(d.op('append', 'a', 'y', 7, 2).err, 'OK');
  assert.equal(d.op('append', 'a', 'y', 7, 2).err, 'OK', 'a duplicate answers OK');
  assert.equal(d.op('get', 'a').value, 'xy', 'and does not run again');
  // Configuration 2 gives shard 7 ('a' is 97) to 101: 100 stops serving it at once.
  const shards = all(100);
  shards[7] = 101;
  d.config(config(2, shards, [100, 101]));
  assert.equal(d.machine.shardState(7), 'handoff');
  assert.equal(d.op('get', 'a').err, 'ErrWrongGroup');
  assert.equal(d.op('get', 'b').err, 'OK', 'shard 8 is unaffected');
  d.config(config(3, all(100), [100]));
  assert.equal(d.machine.config.num, 2, 'no configuration 3 while shard 7 is not handed off');
  const exported = d.machine.exportShards(2, [7]);
  assert.ok(typeof exported === 'object');
  assert.equal(exported.shards.get(7)?.get('a'), 'xy');
  assert.equal(exported.sessions.get(7), 2, 'the sessions travel with the shard');
  assert.equal(d.machine.exportShards(3, [7]), 'not-ready');
  d.apply(encodeCommand({ kind: 'delete', num: 2, shards: [7] }));
  assert.equal(d.machine.shardState(7), undefined, 'deleted once the new owner has it');
  assert.equal(d.machine.exportShards(2, [7]), 'gone');
  assert.ok(d.machine.settled);
});

test('a gained shard is pulling (not served) until its data and sessions arrive, then served at once', () => {
  const d = new Driver(new ShardKvStateMachine(101));
  d.config(config(1, all(100), [100]));
  const shards = all(100);
  shards[7] = 101;
  shards[8] = 101;
  d.config(config(2, shards, [100, 101]));
  assert.equal(d.machine.shardState(7), 'pulling');
  assert.equal(d.op('get', 'a').err, 'ErrWrongGroup');
  assert.deepEqual([...d.machine.pendingWork().pull], [[100, [7, 8]]]);
  d.apply(encodeCommand({ kind: 'insert', num: 1, shards: new Map([[7, new Map([['a', 'old']])]]), sessions: new Map(), final: true }));
  assert.equal(d.machine.shardState(7), 'pulling', 'an insert for another configuration is ignored');
  d.apply(encodeCommand({ kind: 'insert', num: 2, shards: new Map([[7, new Map([['a', 'xy']])]]), sessions: new Map([[7, 2]]), final: true }));
  assert.equal(d.machine.shardState(7), 'gc');
  assert.equal(d.op('get', 'a').value, 'xy', 'served as soon as it arrived (challenge 2)');
  assert.equal(d.op('get', 'b').err, 'ErrWrongGroup', 'shard 8 has not arrived');
  assert.equal(d.op('append', 'a', 'y', 7, 2).err, 'OK');
  assert.equal(d.op('get', 'a').value, 'xy', 'a retry of a write that ran at the old owner does not run again');
  assert.deepEqual([...d.machine.pendingWork().gc], [[100, [7]]]);
  d.apply(encodeCommand({ kind: 'gcdone', num: 2, shards: [7] }));
  assert.equal(d.machine.shardState(7), 'serving');
  assert.ok(!d.machine.settled, 'shard 8 is still pulling');
});

test('a shard moves in pages: each page adds keys to the pulling shard, the final one completes it', () => {
  // The old owner, 100, hands shards 7 and 8 off in configuration 2.
  const old = new Driver(new ShardKvStateMachine(100));
  old.config(config(1, all(100), [100]));
  const keys = Array.from({ length: 50 }, (_, i) => `${String.fromCharCode(107 + (i % 2))}${String(i).padStart(3, '0')}`); // 'k…' is shard 7, 'l…' shard 8
  for (const [i, key] of keys.entries()) assert.equal(old.op('put', key, `v${i}`, 1, i + 1).err, 'OK');
  const shards = all(100);
  shards[7] = 101;
  shards[8] = 101;
  old.config(config(2, shards, [100, 101]));
  const fresh = new Driver(new ShardKvStateMachine(101));
  fresh.config(config(1, all(100), [100]));
  fresh.config(config(2, shards, [100, 101]));
  // Page through with a 40-character budget (each key and value is 6 or 7 characters).
  const pages: number[] = [];
  let after: { shard: number; key: string } | undefined;
  for (let page = 0; page < 100; page++) {
    const exported = old.machine.exportShards(2, [8, 7], { ...(after === undefined ? {} : { after }), bytesMax: 40 });
    assert.ok(typeof exported === 'object');
    const count = [...exported.shards.values()].reduce((sum, data) => sum + data.size, 0);
    pages.push(count);
    const final = exported.more === undefined;
    assert.equal(exported.sessions.size, final ? 1 : 0, 'sessions come with the last page');
    const data = new Map(exported.shards);
    if (final) for (const shard of [7, 8]) if (!data.has(shard)) data.set(shard, new Map());
    fresh.apply(encodeCommand({ kind: 'insert', num: 2, shards: data, sessions: exported.sessions, final }));
    assert.equal(fresh.machine.shardState(7), final ? 'gc' : 'pulling', 'a shard is not served before its last page');
    if (final) break;
    assert.equal(fresh.op('get', 'k000').err, 'ErrWrongGroup');
    after = exported.more;
  }
  assert.ok(pages.length >= 5 && pages.every((count) => count >= 1), `pages: ${pages.join(' ')}`);
  assert.equal(
    pages.reduce((sum, count) => sum + count, 0),
    keys.length,
    'every key exactly once over the pages',
  );
  for (const [i, key] of keys.entries()) assert.equal(fresh.op('get', key).value, `v${i}`);
  assert.equal(fresh.op('append', keys[3]!, 'again', 1, 4).err, 'OK');
  assert.equal(fresh.op('get', keys[3]!).value, 'v3', 'the sessions arrived with the last page');
  // A 4-field insert (written before pages existed) is final.
  assert.equal(decodeCommand(pack([2, 2, [], []])).kind === 'insert' && (decodeCommand(pack([2, 2, [], []])) as { final: boolean }).final, true);
});

test('apply() is total: malformed entries get ErrMalformed and change nothing', () => {
  const d = new Driver(new ShardKvStateMachine(100));
  d.config(config(1, all(100), [100]));
  const before = d.machine.snapshot();
  for (const bad of [
    new Uint8Array([0xc1]),
    pack(5),
    pack([9]),
    pack([0, 7, 'k', 'v', 0, 0]),
    pack([0, 1, 'k']),
    pack([1, [1, [1, 2], []]]),
    pack([2, 1, ['x'], []]),
    pack([2, 1, [], [], 7]),
    pack([3, -1, []]),
  ]) {
    assert.equal(d.apply(bad).err, 'ErrMalformed');
  }
  const after = new ShardKvStateMachine(100);
  after.restore(d.machine.snapshot(), idx(d.index));
  const reference = new ShardKvStateMachine(100);
  reference.restore(before, idx(d.index));
  assert.deepEqual(after.snapshot(), reference.snapshot());
});

test('a snapshot restores shards, their states, both configurations and the sessions', () => {
  const d = new Driver(new ShardKvStateMachine(101));
  d.config(config(1, all(100), [100]));
  const shards = all(100);
  shards[7] = 101;
  shards[8] = 101;
  d.config(config(2, shards, [100, 101]));
  d.apply(encodeCommand({ kind: 'insert', num: 2, shards: new Map([[7, new Map([['a', 'xy']])]]), sessions: new Map([[7, 2]]), final: true }));
  const restored = new Driver(new ShardKvStateMachine(101));
  restored.machine.restore(d.machine.snapshot(), idx(d.index));
  restored.index = d.index;
  assert.equal(restored.machine.config.num, 2);
  assert.equal(restored.machine.previousConfig.num, 1);
  assert.equal(restored.machine.shardState(7), 'gc');
  assert.equal(restored.machine.shardState(8), 'pulling');
  assert.equal(restored.op('append', 'a', 'z', 7, 2).err, 'OK');
  assert.equal(restored.op('get', 'a').value, 'xy', 'the sessions came back');
});
