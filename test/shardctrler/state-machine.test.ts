// The shard controller's state machine on its own: the lab's semantics, rebalancing with the
// fewest moves under random Join/Leave/Move sequences, determinism whatever order the groups
// were inserted in, exactly-once sessions, snapshots, and a clear error for every bad input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { Prng } from '../../src/stdx/prng.js';
import type { Index } from '../../src/stdx/types.js';
import {
  decodeResult,
  describeConfig,
  encodeCommand,
  type Gid,
  rebalance,
  type ShardConfig,
  ShardCtrlerStateMachine,
  type ShardCtrlerUnsafe,
  type ShardOp,
  type ShardResult,
  type ShardSessionStamp,
  shardCount,
  sortedGids,
} from '../../src/shardctrler/index.js';

/** A state machine and the next log index to apply at. */
class Harness {
  next = 1;
  constructor(readonly machine = new ShardCtrlerStateMachine()) {}

  run(op: ShardOp, session?: ShardSessionStamp): ShardResult {
    return this.raw(encodeCommand({ op, session, timeMs: this.next }));
  }

  raw(bytes: Uint8Array): ShardResult {
    return decodeResult(this.machine.apply(bytes, this.next++ as Index));
  }

  join(...gids: Gid[]): ShardResult {
    return this.run({ kind: 'join', groups: gids.map((gid): [Gid, string[]] => [gid, [`s${gid}`]]) });
  }
}

function counts(config: ShardConfig): Map<Gid, number> {
  const result = new Map<Gid, number>(sortedGids(config.groups).map((gid) => [gid, 0]));
  for (const gid of config.shards) if (result.has(gid)) result.set(gid, result.get(gid)! + 1);
  return result;
}

/** The fewest shards any balanced assignment over `gids` must move from `shards` (computed apart from rebalance()). */
function fewestMoves(shards: readonly Gid[], gids: readonly Gid[]): number {
  if (gids.length === 0) return shards.filter((gid) => gid !== 0).length;
  const held = gids.map((gid) => shards.filter((owner) => owner === gid).length).sort((a, b) => b - a);
  const base = Math.floor(shardCount / gids.length);
  const extra = shardCount % gids.length;
  // A group keeps at most its target; the largest holders should get the larger targets.
  const kept = held.reduce((sum, count, rank) => sum + Math.min(count, base + (rank < extra ? 1 : 0)), 0);
  return shardCount - kept;
}

test('configuration 0 has no groups and every shard on gid 0; Query(-1) and a num beyond the latest return the latest', () => {
  const h = new Harness();
  const c0 = h.machine.query(0);
  assert.equal(c0.num, 0);
  assert.deepEqual([...c0.shards], new Array(shardCount).fill(0));
  assert.equal(c0.groups.size, 0);
  assert.deepEqual(h.join(1), { kind: 'done', num: 1 });
  assert.deepEqual(h.run({ kind: 'join', groups: [[2, ['a', 'b', 'c']]] }), { kind: 'done', num: 2 });
  assert.equal(h.machine.query(-1).num, 2);
  assert.equal(h.machine.query(99).num, 2);
  assert.equal(h.machine.query(1).num, 1);
  assert.deepEqual([...h.machine.query(1).shards], new Array(shardCount).fill(1), 'the old configuration is kept unchanged');
  assert.deepEqual(h.machine.query(2).groups.get(2), ['a', 'b', 'c'], 'server lists stored exactly, in order');
  assert.deepEqual(h.run({ kind: 'leave', gids: [1, 2] }), { kind: 'done', num: 3 });
  assert.deepEqual([...h.machine.query(3).shards], new Array(shardCount).fill(0), 'with no groups left, shards go back to gid 0');
  assert.ok(Object.isFrozen(h.machine.query(2).shards), 'configurations are immutable');
});

test('rebalancing: every shard on a live group, max - min <= 1, and exactly the fewest moves, over random Join/Leave/Move (seeded)', () => {
  for (let seed = 1; seed <= 50; seed++) {
    const prng = new Prng(seed);
    const h = new Harness();
    const live = new Set<Gid>();
    for (let step = 0; step < 60; step++) {
      const before = h.machine.latest;
      const roll = prng.int(10);
      let op: ShardOp;
      if (roll < 5 || live.size === 0) {
        const gids = Array.from({ length: 1 + prng.int(3) }, () => 1 + prng.int(30)).filter((gid, i, all) => !live.has(gid) && all.indexOf(gid) === i);
        if (gids.length === 0) continue;
        op = { kind: 'join', groups: gids.map((gid): [Gid, string[]] => [gid, [`s${gid}`]]) };
        for (const gid of gids) live.add(gid);
      } else if (roll < 9) {
        const gids = [...live].filter(() => prng.chance(0.4));
        if (gids.length === 0) continue;
        op = { kind: 'leave', gids };
        for (const gid of gids) live.delete(gid);
      } else {
        const gid = [...live][prng.int(live.size)]!;
        op = { kind: 'move', shard: prng.int(shardCount), gid };
      }
      const result = h.run(op);
      assert.equal(result.kind, 'done', `seed ${seed} step ${step}: ${JSON.stringify(result)}`);
      const after = h.machine.latest;
      assert.equal(after.num, before.num + 1);
      assert.deepEqual(
        sortedGids(after.groups),
        [...live].sort((a, b) => a - b),
      );
      if (op.kind === 'move') continue;
      const where = `seed ${seed} step ${step}: ${describeConfig(before)} -> ${describeConfig(after)}`;
      if (live.size === 0) {
        assert.deepEqual([...after.shards], new Array(shardCount).fill(0), where);
        continue;
      }
      for (const gid of after.shards) assert.ok(after.groups.has(gid), `shard on a dead group: ${where}`);
      const values = [...counts(after).values()];
      assert.ok(Math.max(...values) - Math.min(...values) <= 1, `unbalanced: ${where}`);
      const moved = after.shards.filter((gid, shard) => gid !== before.shards[shard]).length;
      assert.equal(moved, fewestMoves(before.shards, sortedGids(after.groups)), `not the fewest moves: ${where}`);
    }
  }
});

test('more groups than shards: ten groups get one shard each, the others none', () => {
  const h = new Harness();
  h.join(...Array.from({ length: 14 }, (_, i) => i + 1));
  const c = h.machine.latest;
  const values = [...counts(c).values()];
  assert.equal(values.filter((n) => n === 1).length, shardCount);
  assert.equal(values.filter((n) => n === 0).length, 4);
});

/**
 * Two state machines given the same Joins with the groups in different orders (the order of
 * a Join's list, and a snapshot restore that rebuilds the group map by gid), then the same
 * later commands: their configurations must be identical.
 */
function divergence(unsafe: ShardCtrlerUnsafe): string | undefined {
  const a = new Harness(new ShardCtrlerStateMachine({}, unsafe));
  const b = new Harness(new ShardCtrlerStateMachine({}, unsafe));
  a.run({
    kind: 'join',
    groups: [
      [7, ['g7']],
      [3, ['g3']],
      [5, ['g5']],
    ],
  });
  b.run({
    kind: 'join',
    groups: [
      [5, ['g5']],
      [7, ['g7']],
      [3, ['g3']],
    ],
  });
  // b restarts from its own snapshot: its group map is rebuilt in gid order.
  const restored = new Harness(new ShardCtrlerStateMachine({}, unsafe));
  restored.machine.restore(b.machine.snapshot(), (b.next - 1) as Index);
  restored.next = b.next;
  const sequence: ShardOp[] = [
    { kind: 'join', groups: [[1, ['g1']]] },
    {
      kind: 'join',
      groups: [
        [9, ['g9']],
        [2, ['g2']],
      ],
    },
    { kind: 'leave', gids: [5] },
    { kind: 'join', groups: [[4, ['g4']]] },
    { kind: 'leave', gids: [7, 1] },
  ];
  for (const op of sequence) {
    a.run(op);
    restored.run(op);
    const [ca, cb] = [describeConfig(a.machine.latest), describeConfig(restored.machine.latest)];
    if (ca !== cb) return `${ca}\n${cb}`;
  }
  return undefined;
}

test('determinism: groups inserted in different orders (command order, snapshot restore) give identical configurations', () => {
  assert.equal(divergence({}), undefined);
  // And rebalance() itself depends only on the set of gids it is given sorted.
  const shards = [1, 1, 1, 1, 2, 2, 2, 0, 0, 0];
  assert.deepEqual(
    rebalance(shards, [1, 2, 3]),
    rebalance(
      shards,
      sortedGids(
        new Map([
          [3, 0],
          [1, 0],
          [2, 0],
        ]),
      ),
    ),
  );
});

test('planted bug: unsortedRebalance (Map insertion order) makes replicas diverge, and the determinism check catches it', () => {
  const found = divergence({ unsortedRebalance: true });
  assert.ok(found !== undefined, 'iterating the group map in insertion order must make the two replicas differ');
});

test('exactly-once: a retried Join, Leave or Move applies once and gets its first reply', () => {
  const h = new Harness();
  const session = (seq: number): ShardSessionStamp => ({ client: 42, seq, ack: seq - 1 });
  const join: ShardOp = { kind: 'join', groups: [[1, ['a']]] };
  assert.deepEqual(h.run(join, session(1)), { kind: 'done', num: 1 });
  assert.deepEqual(h.run(join, session(1)), { kind: 'done', num: 1 }, 'the retry gets the first reply');
  assert.equal(h.machine.latest.num, 1, 'and makes no configuration');
  assert.deepEqual(h.run({ kind: 'move', shard: 3, gid: 1 }, session(2)), { kind: 'done', num: 2 });
  assert.deepEqual(h.run({ kind: 'move', shard: 3, gid: 1 }, session(2)), { kind: 'done', num: 2 });
  assert.deepEqual(h.run({ kind: 'leave', gids: [1] }, session(3)), { kind: 'done', num: 3 });
  assert.deepEqual(h.run({ kind: 'leave', gids: [1] }, session(3)), { kind: 'done', num: 3 }, 'not group-unknown: the first reply');
  assert.equal(h.machine.latest.num, 3);
  const stale = h.run(join, session(1));
  assert.equal(stale.kind === 'error' && stale.code, 'session-stale');
  const expired = h.run(join, { client: 77, seq: 5, ack: 4 });
  assert.equal(expired.kind === 'error' && expired.code, 'session-expired', 'an unknown session with earlier requests is refused');
  assert.equal(h.machine.latest.num, 3);
});

test('sessions beyond sessionsMax evict the least recently used', () => {
  const h = new Harness(new ShardCtrlerStateMachine({ sessionsMax: 2 }));
  h.run({ kind: 'join', groups: [[1, ['a']]] }, { client: 1, seq: 1, ack: 0 });
  h.run({ kind: 'join', groups: [[2, ['a']]] }, { client: 2, seq: 1, ack: 0 });
  h.run({ kind: 'join', groups: [[3, ['a']]] }, { client: 3, seq: 1, ack: 0 });
  assert.equal(h.machine.sessionCount, 2);
  const evicted = h.run({ kind: 'leave', gids: [1] }, { client: 1, seq: 2, ack: 1 });
  assert.equal(evicted.kind === 'error' && evicted.code, 'session-expired');
});

test('snapshots carry every configuration and the sessions: a restored machine answers as the original', () => {
  const h = new Harness();
  h.run(
    {
      kind: 'join',
      groups: [
        [4, ['d1', 'd2']],
        [2, ['b']],
      ],
    },
    { client: 9, seq: 1, ack: 0 },
  );
  h.run({ kind: 'move', shard: 0, gid: 4 }, { client: 9, seq: 2, ack: 1 });
  h.run({ kind: 'leave', gids: [2] }, { client: 9, seq: 3, ack: 2 });
  const copy = new Harness();
  copy.machine.restore(h.machine.snapshot(), (h.next - 1) as Index);
  copy.next = h.next;
  for (let num = 0; num <= 3; num++) assert.equal(describeConfig(copy.machine.query(num)), describeConfig(h.machine.query(num)));
  assert.deepEqual(copy.machine.snapshot(), h.machine.snapshot(), 'equal states encode equally');
  assert.deepEqual(copy.run({ kind: 'leave', gids: [2] }, { client: 9, seq: 3, ack: 2 }), { kind: 'done', num: 3 }, 'a retry after a restore gets its first reply');
  assert.equal(copy.machine.latest.num, 3);
  assert.throws(() => copy.machine.restore(new Uint8Array([1, 2, 3]), 10 as Index), /snapshot/);
});

test('bad inputs are refused with a clear error and change nothing; the machine keeps working', () => {
  const h = new Harness(new ShardCtrlerStateMachine({ groupsMax: 3, serversPerGroupMax: 2, serverNameBytesMax: 8 }));
  h.join(1);
  const refusals: Array<[ShardResult, string, RegExp]> = [
    [h.run({ kind: 'join', groups: [[0, ['a']]] }), 'gid-invalid', /gid 0 is reserved/],
    [h.run({ kind: 'join', groups: [] }), 'gid-invalid', /at least one group/],
    [h.run({ kind: 'join', groups: [[1, ['a']]] }), 'group-exists', /group 1 has already joined/],
    [h.run({ kind: 'join', groups: [[2, []]] }), 'servers-invalid', /lists no servers/],
    [h.run({ kind: 'join', groups: [[2, ['a', 'b', 'c']]] }), 'servers-invalid', /serversPerGroupMax/],
    [h.run({ kind: 'join', groups: [[2, ['']]] }), 'servers-invalid', /serverNameBytesMax/],
    [
      h.run({
        kind: 'join',
        groups: [
          [2, ['a']],
          [3, ['a']],
          [4, ['a']],
        ],
      }),
      'groups-full',
      /groupsMax/,
    ],
    [h.run({ kind: 'leave', gids: [5] }), 'group-unknown', /group 5 is not in configuration 1/],
    [h.run({ kind: 'leave', gids: [] }), 'gid-invalid', /at least one group/],
    [h.run({ kind: 'move', shard: shardCount, gid: 1 }), 'shard-invalid', /shard 10 does not exist; shards are 0 to 9/],
    [h.run({ kind: 'move', shard: -1, gid: 1 }), 'shard-invalid', /shard -1 does not exist/],
    [h.run({ kind: 'move', shard: 0, gid: 8 }), 'group-unknown', /Join it before/],
    [h.raw(new Uint8Array([0xc1])), 'malformed', /not MessagePack|not a non-empty array/],
    [h.raw(new Uint8Array([0x93, 0x01])), 'malformed', /not MessagePack/],
    [h.raw(new Packr({ useRecords: false }).pack([9, 0, 0, 0, 0])), 'malformed', /unknown opcode 9/],
    [h.raw(new Packr({ useRecords: false }).pack([0, 0, 0, 0, 0, [1, 'not-a-list']])), 'malformed', /servers of gid 1 are not a list/],
    [h.raw(new Packr({ useRecords: false }).pack([0, 0, 0, 0, 0, [2, ['a'], 2, ['b']]])), 'malformed', /gid 2 is named twice/],
    [h.raw(new Packr({ useRecords: false }).pack([2, 0, 0, 0, 0, 1.5, 1])), 'malformed', /shard is not a safe integer/],
    [h.raw(new Packr({ useRecords: false }).pack([1, 0, 5, 1, 1, [1]])), 'malformed', /0 <= ack < seq/],
  ];
  for (const [result, code, message] of refusals) {
    assert.equal(result.kind, 'error', JSON.stringify(result));
    assert.equal(result.kind === 'error' && result.code, code, JSON.stringify(result));
    assert.match(result.kind === 'error' ? result.message : '', message);
  }
  assert.equal(h.machine.latest.num, 1, 'no refused command made a configuration');
  assert.deepEqual(h.join(2), { kind: 'done', num: 2 }, 'and the machine still works');
});

test('configsMax: at the bound every command is refused (configs-full), old configurations kept', () => {
  const h = new Harness(new ShardCtrlerStateMachine({ configsMax: 3 }));
  h.join(1);
  h.join(2);
  const full = h.join(3);
  assert.equal(full.kind === 'error' && full.code, 'configs-full');
  assert.equal(h.machine.latest.num, 2);
  assert.equal(h.machine.query(0).num, 0);
});
