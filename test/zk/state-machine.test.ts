// The coordination service's state machine (src/zk/state-machine.ts): sessions, the owner
// and sequence checks, writes through the log, the listener, the codec, snapshots whole and
// incremental, and totality on arbitrary input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OUT_OF_ORDER, ZkStateMachine, decodeZkCommand, decodeZkResult, encodeZkCommand, sessionIdBase, type ZkApplyEvent, type ZkCommand, type ZkResult } from '../../src/zk/state-machine.js';
import { pack } from '../../src/zk/tree-snapshot.js';
import { CreateMode, Err, Perm } from '../../src/zk/constants.js';
import type { Acl, Data, Id, WriteOp } from '../../src/zk/types.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const anyone: Id = { scheme: 'world', id: 'anyone' };
const open: Acl[] = [{ perms: Perm.all, id: anyone }];
const localhost: Id = { scheme: 'ip', id: '127.0.0.1' };
const bob: Id = { scheme: 'digest', id: 'bob:fyVmFCwVbTJYrznoSu1koqYEYF0=' };
const passwd = (seed: number): Uint8Array => Uint8Array.from({ length: 16 }, (_, i) => (seed * 31 + i) & 0xff);

const create = (path: string, flags = 0, data: Data = bytes('x'), acl: readonly Acl[] = open): WriteOp => ({ op: 'create', path, data, acl, flags, withStat: true });
const del = (path: string, version = -1): WriteOp => ({ op: 'delete', path, version });
const setData = (path: string, data: Data, version = -1): WriteOp => ({ op: 'setData', path, data, version });

interface Session {
  readonly id: number;
  owner: string;
  seq: number;
}

/** Applies commands at consecutive indices, from 1, and records the listener's events. */
class Driver {
  next = 1;
  readonly events: ZkApplyEvent[] = [];
  restores = 0;
  readonly machine: ZkStateMachine;
  constructor() {
    this.machine = new ZkStateMachine({ onApply: (event) => this.events.push(event), onRestore: () => this.restores++ });
  }
  apply(command: ZkCommand): ZkResult {
    return decodeZkResult(this.machine.apply(encodeZkCommand(command), this.next++));
  }
  open(owner = 'm1:c1', timeoutMs = 6000): Session {
    const result = this.apply({ t: 'open', timeoutMs, passwd: passwd(this.next), owner, origin: `1:${this.next}` });
    assert.equal(result.t, 'session');
    return { id: result.t === 'session' ? result.sessionId : 0, owner, seq: 0 };
  }
  /** A write with the session's next seq (unless given), at time 1000 × index. */
  write(session: Session, ops: WriteOp[], options: { multi?: boolean; auth?: Id[]; seq?: number } = {}): ZkResult {
    const seq = options.seq ?? session.seq + 1;
    const result = this.apply({
      t: 'write',
      sessionId: session.id,
      owner: session.owner,
      seq,
      timeMs: 1000 * this.next,
      auth: options.auth ?? [localhost],
      ops,
      multi: options.multi ?? ops.length !== 1,
      origin: 'o',
    });
    if (result.t === 'write') session.seq = seq;
    return result;
  }
  close(session: Session, reason: 'client' | 'expire' = 'client'): ZkResult {
    return this.apply({ t: 'close', sessionId: session.id, reason, origin: 'o' });
  }
}

/** Everything observable about a machine's state. */
function dump(machine: ZkStateMachine): unknown {
  const tree = machine.tree;
  const nodes = [...tree.records()].map(([path, record]) => ({ path, record, stat: tree.stat(path), children: tree.children(path) }));
  nodes.sort((a, b) => (a.path < b.path ? -1 : 1));
  const sessions = [...machine.sessions()].sort((a, b) => a.sessionId - b.sessionId);
  return { nodes, sessions, zxid: machine.lastZxid, size: tree.approximateDataSize, ephemerals: sessions.map((s) => tree.ephemerals(s.sessionId)) };
}

function restored(snapshot: Uint8Array, index: number): ZkStateMachine {
  const machine = new ZkStateMachine();
  machine.restore(snapshot, index);
  return machine;
}

// ---- sessions --------------------------------------------------------------------------------

test('open gives index + 2^40; attach checks the password and rebinds the owner', () => {
  const d = new Driver();
  d.next = 5;
  const s = d.open('m1:c1', 6000);
  assert.equal(s.id, 5 + sessionIdBase);
  assert.deepEqual(d.machine.session(s.id), { sessionId: s.id, timeoutMs: 6000, passwd: passwd(5), owner: 'm1:c1', lastSeq: 0 });
  assert.deepEqual(d.apply({ t: 'attach', sessionId: s.id, passwd: passwd(9), owner: 'm2:c7', origin: 'o' }), { t: 'error', err: Err.authFailed });
  assert.deepEqual(d.apply({ t: 'attach', sessionId: 12345, passwd: passwd(5), owner: 'm2:c7', origin: 'o' }), { t: 'error', err: Err.sessionExpired });
  assert.deepEqual(d.apply({ t: 'attach', sessionId: s.id, passwd: passwd(5), owner: 'm2:c7', origin: 'o' }), { t: 'session', sessionId: s.id, timeoutMs: 6000, passwd: passwd(5) });
  assert.equal(d.machine.session(s.id)!.owner, 'm2:c7');
  // A duplicate of that attach (the transport may duplicate a forward) leaves lastSeq alone,
  // so a duplicated write cannot apply twice (the simulator's seed 460).
  assert.equal(d.write({ id: s.id, owner: 'm2:c7', seq: 0 }, [create('/once')]).t, 'write');
  assert.equal(d.apply({ t: 'attach', sessionId: s.id, passwd: passwd(5), owner: 'm2:c7', origin: 'o' }).t, 'session');
  assert.deepEqual(d.write({ id: s.id, owner: 'm2:c7', seq: 0 }, [create('/once')], { seq: 1 }), { t: 'error', err: OUT_OF_ORDER });
  assert.equal(d.close(s).t, 'closed');
  assert.equal(d.machine.session(s.id), undefined);
  assert.deepEqual(d.close(s), { t: 'closed' }, 'closing an unknown session is not an error');
  assert.deepEqual([...d.machine.sessions()], []);
});

test('writes check the session, its owner and the sequence number', () => {
  const d = new Driver();
  const s = d.open();
  assert.deepEqual(d.write({ id: 999, owner: s.owner, seq: 0 }, [create('/a')]), { t: 'error', err: Err.sessionExpired });
  assert.deepEqual(d.write({ ...s, owner: 'm9:c9' }, [create('/a')]), { t: 'error', err: Err.sessionMoved });
  assert.deepEqual(d.write(s, [create('/a')], { seq: 2 }), { t: 'error', err: OUT_OF_ORDER }, 'a gap');
  assert.equal(d.write(s, [create('/a')]).t, 'write');
  assert.deepEqual(d.write(s, [create('/b')], { seq: 1 }), { t: 'error', err: OUT_OF_ORDER }, 'a duplicate applies once');
  assert.equal(d.machine.tree.node('/b'), undefined);
  // A write whose op fails still consumes its seq.
  assert.deepEqual(d.write(s, [create('/a')]), { t: 'write', results: [{ op: 'error', err: Err.nodeExists }] });
  assert.equal(d.machine.session(s.id)!.lastSeq, 2);
  // After a resume elsewhere the old connection is refused and the new one counts from 1.
  d.apply({ t: 'attach', sessionId: s.id, passwd: d.machine.session(s.id)!.passwd, owner: 'm2:c1', origin: 'o' });
  assert.deepEqual(d.write(s, [create('/c')]), { t: 'error', err: Err.sessionMoved });
  const moved = { id: s.id, owner: 'm2:c1', seq: 0 };
  assert.equal(d.write(moved, [create('/c')]).t, 'write');
  assert.equal(d.machine.session(s.id)!.lastSeq, 1);
});

test('a write applies at zxid = index and time = timeMs; ephemerals belong to the session', () => {
  const d = new Driver();
  const s = d.open();
  const index = d.next;
  const result = d.write(s, [create('/e', CreateMode.ephemeral, null)]);
  assert.equal(result.t, 'write');
  const created = result.t === 'write' ? result.results[0]! : undefined;
  assert.equal(created?.op, 'create');
  if (created?.op !== 'create') return;
  assert.equal(created.stat.czxid, index);
  assert.equal(created.stat.ctime, 1000 * index);
  assert.equal(created.stat.ephemeralOwner, s.id);
  assert.equal(created.withStat, true);
  assert.equal(d.machine.lastZxid, index);
  assert.equal(d.machine.tree.node('/e')!.data, null);
  assert.deepEqual(d.machine.tree.ephemerals(s.id), ['/e']);
  assert.deepEqual(d.write(s, [create('/e/child')]), { t: 'write', results: [{ op: 'error', err: Err.noChildrenForEphemerals }] });
});

test('close deletes the session ephemerals at its zxid and reports the triggers to the listener', () => {
  const d = new Driver();
  const s = d.open();
  const other = d.open('m1:c2');
  d.write(s, [create('/locks'), create('/locks/l-', CreateMode.ephemeralSequential), create('/mine', CreateMode.ephemeral)]);
  d.write(other, [create('/locks/l-', CreateMode.ephemeralSequential)]);
  const index = d.next;
  assert.deepEqual(d.close(s, 'expire'), { t: 'closed' });
  const event = d.events.at(-1)!;
  assert.equal(event.zxid, index);
  assert.deepEqual(event.command, { t: 'close', sessionId: s.id, reason: 'expire', origin: 'o' });
  assert.deepEqual(event.triggers, [
    { path: '/locks/l-0000000000', type: 'deleted' },
    { path: '/locks', type: 'childrenChanged' },
    { path: '/mine', type: 'deleted' },
    { path: '/', type: 'childrenChanged' },
  ]);
  assert.deepEqual(d.machine.tree.children('/locks'), ['l-0000000001']);
  assert.equal(d.machine.tree.stat('/locks')!.pzxid, index);
});

// ---- writes, the listener, the codec -------------------------------------------------------

test('multi results, auth ACLs from the command, and the listener sees every apply', () => {
  const d = new Driver();
  const s = d.open();
  const failed = d.write(s, [create('/a'), setData('/a', null, 7), del('/a')], { multi: true });
  assert.deepEqual(failed, {
    t: 'write',
    results: [
      { op: 'error', err: 0 },
      { op: 'error', err: Err.badVersion },
      { op: 'error', err: Err.runtimeInconsistency },
    ],
  });
  assert.deepEqual(d.events.at(-1)!.triggers, []);
  const single = d.write(s, [create('/solo', 0, null, [{ perms: Perm.all, id: { scheme: 'auth', id: '' } }])], { multi: true, auth: [localhost, bob] });
  assert.equal(single.t === 'write' && single.results[0]!.op, 'create');
  assert.deepEqual(d.machine.tree.node('/solo')!.acl, [{ perms: Perm.all, id: bob }]);
  assert.deepEqual(d.write(s, [setData('/solo', bytes('no'))]), { t: 'write', results: [{ op: 'error', err: Err.noAuth }] });
  assert.deepEqual(d.write(s, [], { multi: true }), { t: 'write', results: [] });
  assert.equal(d.events.length, 5);
  assert.deepEqual(
    d.events.map((e) => e.zxid),
    [1, 2, 3, 4, 5],
  );
  assert.equal(d.events[2]!.command?.t, 'write');
});

test('an undecodable command is a marshalling error and changes nothing', () => {
  const d = new Driver();
  const before = dump(d.machine);
  for (const command of [new Uint8Array(0), Uint8Array.of(0xc1), pack({ t: 'open' }), pack([9]), pack([0, -1, passwd(1), 'o', 'o']), pack([3, 1, 'o', 1, 0, [], [create('/a')], false, 'o'])]) {
    const index = d.next++;
    const result = decodeZkResult(d.machine.apply(command, index));
    assert.deepEqual(result, { t: 'error', err: Err.marshallingError });
    assert.equal(d.events.at(-1)!.command, undefined);
    assert.equal(d.machine.lastZxid, index);
  }
  assert.deepEqual({ ...(dump(d.machine) as object), zxid: 0 }, before);
  // A plain write is exactly one op.
  assert.throws(() => decodeZkCommand(pack([3, 1, 'o', 1, 0, [], [], false, 'o'])), /1 op/);
});

test('commands round-trip through the codec; data stays Uint8Array or null', () => {
  const commands: ZkCommand[] = [
    { t: 'open', timeoutMs: 30000, passwd: passwd(1), owner: '2:17', origin: '2:99' },
    { t: 'attach', sessionId: sessionIdBase + 12, passwd: passwd(2), owner: '3:1', origin: '3:5' },
    { t: 'close', sessionId: sessionIdBase + 12, reason: 'client', origin: '' },
    {
      t: 'write',
      sessionId: sessionIdBase + 12,
      owner: '3:1',
      seq: 4,
      timeMs: 1_700_000_000_000,
      auth: [localhost, bob],
      ops: [
        create('/a', 3, new Uint8Array([0, 255, 7])),
        create('/n', 0, null, [{ perms: 1, id: bob }]),
        del('/a', 3),
        setData('/a', new Uint8Array(0), -1),
        { op: 'setACL', path: '/a', acl: open, version: 2 },
        { op: 'check', path: '/a', version: -2147483648 },
      ],
      multi: true,
      origin: '3:6',
    },
  ];
  for (const command of commands) {
    const decoded = decodeZkCommand(encodeZkCommand(command));
    assert.deepEqual(decoded, command);
  }
  const write = decodeZkCommand(encodeZkCommand(commands[3]!));
  const data = write.t === 'write' && write.ops[0]!.op === 'create' ? write.ops[0]!.data : undefined;
  assert.equal(Object.getPrototypeOf(data), Uint8Array.prototype, 'a plain Uint8Array, not a Buffer view');
});

// ---- snapshots -------------------------------------------------------------------------------

/** A machine with nested nodes, data, ACLs, sequential and ephemeral nodes and sessions. */
function populated(): { d: Driver; sessions: Session[] } {
  const d = new Driver();
  const sessions = [d.open('m1:a'), d.open('m2:b', 10000), d.open('m3:c')];
  const [a, b, c] = sessions as [Session, Session, Session];
  d.write(a, [create('/app'), create('/app/locks'), create('/app/config', 0, bytes('{"x":1}'))]);
  for (let i = 0; i < 40; i++) d.write(i % 2 === 0 ? a : b, [create(`/app/locks/l-`, CreateMode.ephemeralSequential, null)]);
  for (let i = 0; i < 60; i++) d.write(c, [create(`/app/n${i}`, 0, bytes(`value ${i}`))]);
  d.write(c, [create('/app/n3/deep'), create('/app/n3/deep/er', 0, new Uint8Array(0), [{ perms: Perm.read, id: bob }])]);
  d.write(a, [setData('/app/config', bytes('{"x":2}'), 0)]);
  d.write(a, [{ op: 'setACL', path: '/app/n5', acl: [{ perms: Perm.read | Perm.admin, id: anyone }], version: 0 }]);
  d.write(b, [del('/app/n7')]);
  return { d, sessions };
}

test('restore(snapshot()) rebuilds exactly the state, and both go on alike', () => {
  const { d, sessions } = populated();
  const snapshot = d.machine.snapshot();
  const index = d.next - 1;
  const copy = restored(snapshot, index + 3);
  assert.deepEqual(dump(copy), dump(d.machine));
  assert.equal(copy.lastZxid, index, "the runtime may snapshot past the last command the service saw; the zxid stays the last command's");
  const again = restored(copy.snapshot(), index + 3);
  assert.deepEqual(dump(again), dump(copy));
  // The same commands give the same results and the same state on both.
  const ops: ZkCommand[] = [
    {
      t: 'write',
      sessionId: sessions[0]!.id,
      owner: 'm1:a',
      seq: sessions[0]!.seq + 1,
      timeMs: 5,
      auth: [localhost],
      ops: [create('/app/locks/l-', CreateMode.ephemeralSequential)],
      multi: false,
      origin: 'o',
    },
    { t: 'close', sessionId: sessions[1]!.id, reason: 'expire', origin: 'o' },
  ];
  let at = index + 4;
  for (const command of ops) {
    d.next = at;
    const expected = d.machine.apply(encodeZkCommand(command), at);
    assert.deepEqual(copy.apply(encodeZkCommand(command), at), expected);
    at++;
  }
  assert.deepEqual(copy.snapshot(), d.machine.snapshot());
  let restoredCalls = 0;
  const listening = new ZkStateMachine({ onRestore: () => restoredCalls++ });
  listening.restore(snapshot, index);
  assert.equal(restoredCalls, 1);
  assert.throws(() => new ZkStateMachine().restore(snapshot, index - 1), /beyond the log/);
  assert.throws(() => new ZkStateMachine().restore(pack([1, 0, [], []]), 5), /root/);
  assert.throws(() => new ZkStateMachine().restore(Uint8Array.of(1, 2, 3), 5));
});

test('an incremental snapshot holds the state where it began while writes go on', () => {
  const { d, sessions } = populated();
  const [a, b, c] = sessions as [Session, Session, Session];
  // Created by the last command the snapshot holds, changed right after it began.
  d.write(c, [create('/app/last', 0, bytes('original'))]);
  const expected = d.machine.snapshot();
  const encoder = d.machine.beginSnapshot();
  assert.equal(encoder.zxid, d.machine.lastZxid);
  assert.equal(encoder.step(7), false);
  // Nodes already encoded and nodes not yet encoded, changed in every way.
  d.write(c, [setData('/app/n1', bytes('changed'))]);
  d.write(c, [setData('/app/n50', bytes('changed'))]);
  d.write(c, [setData('/app/last', bytes('changed'))]);
  d.write(c, [del('/app/n2')]);
  d.write(c, [del('/app/n59')]);
  d.write(c, [create('/app/n59', 0, bytes('recreated'))]);
  d.write(a, [{ op: 'setACL', path: '/app/n40', acl: [{ perms: Perm.read, id: anyone }], version: -1 }]);
  assert.equal(encoder.step(7), false);
  d.write(c, [create('/app/new'), create('/app/new/child'), del('/app/new/child')], { multi: true });
  d.write(c, [create('/app/x'), del('/app/n10'), setData('/app/n11', null, 99)], { multi: true });
  d.close(b, 'expire');
  const late = d.open('m9:z');
  d.write(late, [create('/late', CreateMode.ephemeral)]);
  d.write(a, [create('/app/locks/l-', CreateMode.ephemeralSequential)]);
  d.apply({ t: 'attach', sessionId: c.id, passwd: d.machine.session(c.id)!.passwd, owner: 'm4:moved', origin: 'o' });
  let steps = 2;
  while (!encoder.step(7)) {
    steps++;
    d.write(a, [setData('/app/config', bytes(`step ${steps}`))]);
    d.write(a, [del(`/app/n${20 + steps}`)]);
  }
  assert.ok(steps > 10, `a small budget takes many steps (${steps})`);
  assert.ok(encoder.nodesDone === encoder.nodesTotal);
  const bytesOut = encoder.finish();
  assert.deepEqual(bytesOut, new Uint8Array(expected));
  const fromIncremental = restored(bytesOut, encoder.zxid);
  assert.deepEqual(dump(fromIncremental), dump(restored(expected, encoder.zxid)));
  // The capture ended: a second snapshot can begin, and with no writes it equals snapshot().
  const second = d.machine.beginSnapshot();
  while (!second.step(1000));
  assert.deepEqual(second.finish(), new Uint8Array(d.machine.snapshot()));
});

test('an aborted incremental snapshot releases the capture; restore ends one in progress', () => {
  const { d, sessions } = populated();
  const first = d.machine.beginSnapshot();
  first.step(3);
  d.write(sessions[2]!, [del('/app/n1')]);
  first.abort();
  first.abort();
  assert.throws(() => first.step(1), /aborted/);
  const second = d.machine.beginSnapshot();
  second.step(3);
  d.machine.restore(d.machine.snapshot(), d.next++);
  assert.equal(d.restores, 1);
  assert.throws(() => second.step(3), /abort it first/);
  second.abort();
  const third = d.machine.beginSnapshot();
  while (!third.step(50));
  assert.deepEqual(third.finish(), new Uint8Array(d.machine.snapshot()));
});

// ---- totality ----------------------------------------------------------------------------------

/** MessagePack-able junk, biased toward the shapes commands have. */
const junk = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer({ min: -3, max: 5 }),
    fc.constantFrom(sessionIdBase + 1, -1, 2 ** 31, 0.5, Number.NaN),
    fc.constantFrom('/', '/a', '/a/', '', 'digest', 'world', 'anyone', 'auth', 'ip', '10.0.0.0/8', 'o'),
    fc.string({ maxLength: 6 }),
    fc.uint8Array({ maxLength: 4 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 6 }),
  ),
}));

/** The tree's invariants, recomputed from scratch: children match paths, the size matches. */
function checkTree(machine: ZkStateMachine): void {
  const tree = machine.tree;
  let size = 0;
  let childCount = 0;
  for (const [path, record] of tree.records()) {
    size += path.length + (record.data?.length ?? 0);
    childCount += tree.children(path).length;
    if (path === '/') continue;
    const parent = path.slice(0, Math.max(1, path.lastIndexOf('/')));
    assert.ok(tree.children(parent).includes(path.slice(path.lastIndexOf('/') + 1)), `${parent} lists ${path}`);
    assert.equal(tree.node(parent)!.ephemeralOwner, 0);
  }
  assert.equal(childCount, tree.nodeCount - 1);
  assert.equal(tree.approximateDataSize, size);
}

const path = fc.constantFrom('/a', '/a/b', '/a/', '/a/b/c', '/e', '/e/x', '/', '/zookeeper', '/zookeeper/config', 'bad', '/a//b');
const aclArb = fc.constantFrom<Acl[]>(
  open,
  [],
  [{ perms: Perm.read, id: anyone }],
  [{ perms: Perm.all, id: { scheme: 'auth', id: '' } }],
  [{ perms: Perm.all & ~Perm.delete, id: { scheme: 'ip', id: '127.0.0.0/8' } }],
  [{ perms: 31, id: { scheme: 'nope', id: '' } }],
);
const version = fc.integer({ min: -2, max: 2 });
const data = fc.option(fc.uint8Array({ maxLength: 3 }), { nil: null });
const writeOp: fc.Arbitrary<WriteOp> = fc.oneof(
  fc.record({ op: fc.constant('create' as const), path, data, acl: aclArb, flags: fc.integer({ min: -1, max: 7 }), withStat: fc.boolean() }),
  fc.record({ op: fc.constant('delete' as const), path, version }),
  fc.record({ op: fc.constant('setData' as const), path, data, version }),
  fc.record({ op: fc.constant('setACL' as const), path, acl: aclArb, version }),
  fc.record({ op: fc.constant('check' as const), path, version }),
);

test('apply never throws: random bytes, random command-shaped arrays, random writes', () => {
  const d = new Driver();
  const s = d.open('m1:c1');
  const check = (command: Uint8Array): void => {
    const result = decodeZkResult(d.machine.apply(command, d.next++));
    assert.ok(['session', 'closed', 'write', 'error'].includes(result.t));
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), check), { numRuns: 300 });
  const shaped = fc.tuple(fc.integer({ min: 0, max: 4 }), fc.array(junk.value, { maxLength: 9 })).map(([tag, rest]) => pack([tag, ...rest]));
  fc.assert(fc.property(shaped, check), { numRuns: 300 });
  // Well-formed writes from the live session reach the tree: it stays consistent and never throws.
  const write = fc.record({ ops: fc.array(writeOp, { minLength: 1, maxLength: 4 }), close: fc.boolean() });
  fc.assert(
    fc.property(write, ({ ops, close }) => {
      const seq = d.machine.session(s.id)!.lastSeq + 1;
      const command: ZkCommand = { t: 'write', sessionId: s.id, owner: 'm1:c1', seq, timeMs: 7, auth: [localhost], ops, multi: ops.length > 1, origin: 'o' };
      check(encodeZkCommand(command));
      assert.equal(d.machine.session(s.id)!.lastSeq, seq);
      checkTree(d.machine);
      // Now and then another session's ephemerals come and go.
      const other = d.open('m2:x');
      d.write(other, [create('/e', CreateMode.ephemeral)]);
      if (close) d.close(other);
      checkTree(d.machine);
    }),
    { numRuns: 300 },
  );
  const restoredCopy = restored(d.machine.snapshot(), d.next);
  assert.deepEqual(dump(restoredCopy), dump(d.machine));
});

test('a 50,000-node tree is snapshotted in many bounded steps, not one long pause', () => {
  const d = new Driver();
  const s = d.open();
  // 50 parents × 1,000 children, 100 creates per command.
  for (let p = 0; p < 50; p++) {
    d.write(s, [create(`/p${p}`)]);
    for (let batch = 0; batch < 10; batch++) {
      d.write(
        s,
        Array.from({ length: 100 }, (_, i) => create(`/p${p}/c${batch * 100 + i}`, 0, bytes('x'))),
        { multi: true },
      );
    }
  }
  assert.ok(d.machine.tree.nodeCount > 50_000);
  const encoder = d.machine.beginSnapshot();
  // The runtime's default budget (snapshotStepUnitsDefault): each step encodes at most that
  // many nodes, so a step's cost is bounded whatever the tree's size.
  let steps = 1;
  while (!encoder.step(4096)) steps++;
  assert.ok(steps >= Math.floor(d.machine.tree.nodeCount / 4096), `${steps} steps for ${d.machine.tree.nodeCount} nodes`);
  assert.deepEqual(encoder.finish(), new Uint8Array(d.machine.snapshot()));
});
