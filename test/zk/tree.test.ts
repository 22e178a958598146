// The znode tree on its own (src/zk/tree.ts, paths.ts, acl.ts): Stat maintenance, ZooKeeper's
// error precedence for every write, multi rollback, ephemerals, ACLs, path rules.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataTree, initialRecords, nextVersion, type NodeRecord, type TxnContext } from '../../src/zk/tree.js';
import { baseName, parentOf, sequenceSuffix, validatePath } from '../../src/zk/paths.js';
import { checkAcl, ipMatches, maskAcl, validateAcl } from '../../src/zk/acl.js';
import { CreateMode, Err, Perm } from '../../src/zk/constants.js';
import type { Acl, Data, Id, WriteOp, WriteResult } from '../../src/zk/types.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const anyone: Id = { scheme: 'world', id: 'anyone' };
const open: Acl[] = [{ perms: Perm.all, id: anyone }];
const bob: Id = { scheme: 'digest', id: 'bob:fyVmFCwVbTJYrznoSu1koqYEYF0=' };
const alice: Id = { scheme: 'digest', id: 'alice:aaaaaaaaaaaaaaaaaaaaaaaaaaa=' };
const localhost: Id = { scheme: 'ip', id: '127.0.0.1' };

const create = (path: string, flags = 0, acl: readonly Acl[] = open, data: Data = bytes('x')): WriteOp => ({ op: 'create', path, data, acl, flags, withStat: false });
const del = (path: string, version = -1): WriteOp => ({ op: 'delete', path, version });
const setData = (path: string, data: Data, version = -1): WriteOp => ({ op: 'setData', path, data, version });
const setAcl = (path: string, acl: readonly Acl[], version = -1): WriteOp => ({ op: 'setACL', path, acl, version });
const check = (path: string, version = -1): WriteOp => ({ op: 'check', path, version });

/** Applies writes at consecutive zxids, from 1, as session 7 with `ids` (localhost by default). */
class Driver {
  zxid = 0;
  constructor(readonly tree = new DataTree()) {}
  context(ids: readonly Id[], sessionId = 7): TxnContext {
    this.zxid++;
    return { zxid: this.zxid, timeMs: 1000 * this.zxid, sessionId, ids };
  }
  run(op: WriteOp, ids: readonly Id[] = [localhost], sessionId = 7): WriteResult {
    const outcome = this.tree.transact([op], this.context(ids, sessionId));
    assert.equal(outcome.results.length, 1);
    return outcome.results[0]!;
  }
  /** The error code of a write (0 if it succeeded). */
  err(op: WriteOp, ids: readonly Id[] = [localhost], sessionId = 7): number {
    const result = this.run(op, ids, sessionId);
    return result.op === 'error' ? result.err : 0;
  }
  ok(op: WriteOp, ids: readonly Id[] = [localhost], sessionId = 7): WriteResult {
    const result = this.run(op, ids, sessionId);
    assert.notEqual(result.op, 'error', `${op.op} ${op.path} failed: ${JSON.stringify(result)}`);
    return result;
  }
}

/** Everything observable about a tree, for before/after comparisons. */
function dump(tree: DataTree): unknown {
  const out: Record<string, unknown> = {};
  for (const [path] of tree.records()) {
    const node = tree.node(path)!;
    out[path] = { stat: tree.stat(path), data: node.data, acl: node.acl, children: tree.children(path), creations: node.creations };
  }
  return { nodes: out, size: tree.approximateDataSize, count: tree.nodeCount, ephemerals: tree.ephemeralOwners().map((s) => [s, tree.ephemerals(s)]) };
}

// ---- paths -----------------------------------------------------------------------------------

test('validatePath follows PathUtils: valid paths', () => {
  for (const path of ['/', '/a', '/a/b', '/a.b', '/.a', '/a./b', '/..a', '/a/...', '/ü/漢字', '/a b', '/\u00a0']) {
    assert.equal(validatePath(path, false), undefined, path);
  }
  // The suffix is appended, so a trailing '/' (and the root) are fine for a sequential create.
  for (const path of ['/', '/a/', '/a/s-', '/a/.']) assert.equal(validatePath(path, true), undefined, path);
});

test('validatePath follows PathUtils: invalid paths', () => {
  const invalid = [
    '',
    'a',
    'a/b',
    '/a/',
    '//',
    '/a//b',
    '/.',
    '/..',
    '/a/.',
    '/a/..',
    '/./a',
    '/../a',
    '/a/./b',
    '/a\u0000b',
    '/\u0001',
    '/a\u001f',
    '/\u007f',
    '/\u009f',
    '/\ud83d\ude00',
    '/\ud800',
    '/\uf8ff',
    '/\ufff0',
    '/\uffff',
  ];
  for (const path of invalid) assert.notEqual(validatePath(path, false), undefined, JSON.stringify(path));
  for (const path of ['', 'a', '/a//', '//']) assert.notEqual(validatePath(path, true), undefined, JSON.stringify(path));
});

test('parentOf, baseName and sequenceSuffix', () => {
  assert.equal(parentOf('/a/b/c'), '/a/b');
  assert.equal(parentOf('/a'), '/');
  assert.equal(parentOf('/a/'), '/a');
  assert.equal(parentOf('/'), '/');
  assert.equal(baseName('/a/b'), 'b');
  assert.equal(baseName('/a'), 'a');
  assert.equal(sequenceSuffix(0), '0000000000');
  assert.equal(sequenceSuffix(3), '0000000003');
  assert.equal(sequenceSuffix(2147483647), '2147483647');
  assert.equal(sequenceSuffix(-5), '-000000005');
  assert.equal(sequenceSuffix(-2147483648), '-2147483648');
  assert.throws(() => sequenceSuffix(2147483648));
});

// ---- ACLs ------------------------------------------------------------------------------------

test('checkAcl: empty list, world, digest, super, perm bits', () => {
  assert.equal(checkAcl([], Perm.admin, []), true);
  assert.equal(checkAcl(open, Perm.write, []), true);
  const bobOnly: Acl[] = [{ perms: Perm.read | Perm.write, id: bob }];
  assert.equal(checkAcl(bobOnly, Perm.read, [localhost, bob]), true);
  assert.equal(checkAcl(bobOnly, Perm.write, [bob]), true);
  assert.equal(checkAcl(bobOnly, Perm.delete, [bob]), false, 'the entry lacks the bit');
  assert.equal(checkAcl(bobOnly, Perm.read, [localhost, alice]), false);
  assert.equal(checkAcl(bobOnly, Perm.read, [{ scheme: 'ip', id: bob.id }]), false, 'schemes must match');
  assert.equal(checkAcl(bobOnly, Perm.admin, [{ scheme: 'super', id: '' }]), true);
  assert.equal(checkAcl([{ perms: Perm.read, id: anyone }], Perm.write, [bob]), false);
});

test('checkAcl: ip by exact address and CIDR, IPv4-mapped IPv6 clients, IPv6', () => {
  const acl = (id: string): Acl[] => [{ perms: Perm.all, id: { scheme: 'ip', id } }];
  const client = (id: string): Id[] => [{ scheme: 'ip', id }];
  assert.equal(checkAcl(acl('127.0.0.1'), Perm.read, client('127.0.0.1')), true);
  assert.equal(checkAcl(acl('127.0.0.1'), Perm.read, client('127.0.0.2')), false);
  assert.equal(checkAcl(acl('10.0.0.0/8'), Perm.read, client('127.0.0.1')), false, '§2.7: ip:10.0.0.0/8 → NOAUTH from localhost');
  assert.equal(checkAcl(acl('10.0.0.0/8'), Perm.read, client('10.200.3.4')), true);
  assert.equal(checkAcl(acl('192.168.1.128/25'), Perm.read, client('192.168.1.200')), true);
  assert.equal(checkAcl(acl('192.168.1.128/25'), Perm.read, client('192.168.1.127')), false);
  assert.equal(checkAcl(acl('0.0.0.0/0'), Perm.read, client('8.8.8.8')), true);
  assert.equal(checkAcl(acl('127.0.0.1'), Perm.read, client('::ffff:127.0.0.1')), true);
  assert.equal(checkAcl(acl('::1'), Perm.read, client('::1')), true);
  assert.equal(checkAcl(acl('::1'), Perm.read, client('0:0:0:0:0:0:0:1')), true);
  assert.equal(checkAcl(acl('::1'), Perm.read, client('127.0.0.1')), false);
  assert.equal(checkAcl(acl('fe80::/10'), Perm.read, client('fe80::1234')), true);
  assert.equal(ipMatches('not an address', '127.0.0.1'), false);
});

test('validateAcl: INVALIDACL cases', () => {
  const one = (scheme: string, id: string): Acl[] => [{ perms: Perm.all, id: { scheme, id } }];
  assert.equal(validateAcl([], [bob]), undefined, 'empty list');
  assert.equal(validateAcl(one('auth', ''), [localhost]), undefined, 'auth without a digest id');
  assert.equal(validateAcl(one('digest', 'bob'), []), undefined, 'digest without a colon');
  assert.equal(validateAcl(one('digest', 'bob:a:b'), []), undefined, 'digest with two colons');
  assert.equal(validateAcl(one('digest', 'bob:'), []), undefined, 'digest without a hash');
  assert.equal(validateAcl(one('ip', 'localhost'), []), undefined);
  assert.equal(validateAcl(one('ip', '10.0.0.0/33'), []), undefined);
  assert.equal(validateAcl(one('ip', '10.0.0/8'), []), undefined);
  assert.equal(validateAcl(one('ip', '256.0.0.1'), []), undefined);
  assert.equal(validateAcl(one('ip', '1::2::3'), []), undefined);
  assert.equal(validateAcl(one('world', 'someone'), []), undefined);
  assert.equal(validateAcl(one('x509', 'CN=x'), []), undefined, 'unknown scheme');
  assert.equal(validateAcl(one('super', ''), []), undefined, 'super is not an ACL scheme');
});

test('validateAcl: valid lists, auth replaced by all digest ids, duplicates dropped', () => {
  const ipAcl: Acl[] = [
    { perms: Perm.read, id: { scheme: 'ip', id: '10.0.0.0/8' } },
    { perms: Perm.read, id: { scheme: 'ip', id: '::1' } },
  ];
  assert.deepEqual(validateAcl(ipAcl, []), ipAcl);
  assert.deepEqual(validateAcl([{ perms: Perm.all, id: bob }], []), [{ perms: Perm.all, id: bob }]);
  const auth: Acl[] = [{ perms: Perm.read | Perm.admin, id: { scheme: 'auth', id: 'ignored' } }];
  assert.deepEqual(validateAcl(auth, [localhost, bob, alice]), [
    { perms: Perm.read | Perm.admin, id: bob },
    { perms: Perm.read | Perm.admin, id: alice },
  ]);
  assert.deepEqual(validateAcl([...open, ...open], []), open);
});

test('maskAcl hides digest hashes only', () => {
  assert.deepEqual(maskAcl([{ perms: 1, id: bob }, ...open]), [{ perms: 1, id: { scheme: 'digest', id: 'bob:x' } }, ...open]);
});

// ---- the initial tree and Stat maintenance ---------------------------------------------------

test('the initial tree matches a fresh ZooKeeper', () => {
  const tree = new DataTree();
  assert.deepEqual(tree.children('/'), ['zookeeper']);
  assert.deepEqual(tree.children('/zookeeper'), ['config', 'quota']);
  assert.deepEqual(tree.stat('/'), { czxid: 0, mzxid: 0, ctime: 0, mtime: 0, version: 0, cversion: -1, aversion: 0, ephemeralOwner: 0, dataLength: 0, numChildren: 1, pzxid: 0 });
  assert.equal(tree.stat('/zookeeper')!.cversion, -2);
  assert.deepEqual(tree.node('/zookeeper/config')!.acl, [{ perms: Perm.read, id: anyone }]);
  assert.deepEqual(tree.node('/zookeeper/quota')!.acl, open);
  assert.deepEqual(tree.node('/')!.data, new Uint8Array(0));
  assert.equal(tree.node(''), tree.node('/'), "'' is the root for reads");
  assert.equal(tree.nodeCount, 4);
  assert.equal(tree.approximateDataSize, 1 + 10 + 16 + 17);
  assert.deepEqual(tree.children('/missing'), []);
});

test('create sets the stats of the node and its parent', () => {
  const d = new Driver();
  const result = d.ok({ op: 'create', path: '/a', data: bytes('hello'), acl: open, flags: 0, withStat: true });
  const expected = { czxid: 1, mzxid: 1, ctime: 1000, mtime: 1000, version: 0, cversion: 0, aversion: 0, ephemeralOwner: 0, dataLength: 5, numChildren: 0, pzxid: 1 };
  assert.deepEqual(result, { op: 'create', path: '/a', stat: expected, withStat: true });
  assert.deepEqual(d.tree.stat('/a'), expected);
  const root = d.tree.stat('/')!;
  assert.equal(root.pzxid, 1);
  assert.equal(root.numChildren, 2);
  assert.equal(root.cversion, 0, '2 × 1 creation − 2 children');
  assert.equal(root.mzxid, 0, 'a child does not change the parent data stats');
  d.ok(create('/n', 0, open, null));
  assert.equal(d.tree.node('/n')!.data, null, 'null data stays null');
  assert.equal(d.tree.stat('/n')!.dataLength, 0);
});

test('3 sequential creates and 1 delete: cversion 4, the next suffix is 0000000003 (§2.2)', () => {
  const d = new Driver();
  d.ok(create('/q'));
  const names = [0, 1, 2].map(() => (d.ok(create('/q/s-', CreateMode.persistentSequential)) as { path: string }).path);
  assert.deepEqual(names, ['/q/s-0000000000', '/q/s-0000000001', '/q/s-0000000002']);
  d.ok(del('/q/s-0000000001'));
  const stat = d.tree.stat('/q')!;
  assert.equal(stat.cversion, 4);
  assert.equal(stat.numChildren, 2);
  assert.equal(stat.pzxid, 5, 'the delete set pzxid');
  assert.deepEqual(d.ok(create('/q/s-', CreateMode.persistentSequential)), { op: 'create', path: '/q/s-0000000003', stat: d.tree.stat('/q/s-0000000003'), withStat: false });
  // A trailing '/' names the child by its number alone; the counter is per parent.
  assert.equal((d.ok(create('/q/', CreateMode.persistentSequential)) as { path: string }).path, '/q/0000000004');
  assert.equal((d.ok(create('/', CreateMode.persistentSequential)) as { path: string }).path, '/0000000001');
  assert.equal(d.tree.stat('/')!.cversion, 2 * 2 - 3);
});

test('the sequence counter is a signed 32-bit int and wraps as Java prints it', () => {
  const records = initialRecords();
  records.push(['/w', { ...records[1]![1], creations: 0x7fffffff }]);
  const d = new Driver();
  d.tree.load(records);
  assert.equal((d.ok(create('/w/', CreateMode.persistentSequential)) as { path: string }).path, '/w/2147483647');
  assert.equal((d.ok(create('/w/', CreateMode.persistentSequential)) as { path: string }).path, '/w/-2147483648');
  assert.equal(d.tree.node('/w')!.creations, -0x7fffffff);
});

test('setData: version + 1, mzxid, mtime, data; the version wraps past 2^31-1 and skips -1', () => {
  const d = new Driver();
  d.ok(create('/a'));
  assert.deepEqual(d.ok(setData('/a', bytes('yz'), 0)), { op: 'setData', stat: { ...d.tree.stat('/a')!, version: 1 } });
  const stat = d.tree.stat('/a')!;
  assert.equal(stat.version, 1);
  assert.equal(stat.mzxid, 2);
  assert.equal(stat.mtime, 2000);
  assert.equal(stat.ctime, 1000);
  assert.equal(stat.dataLength, 2);
  assert.equal(nextVersion(0), 1);
  assert.equal(nextVersion(0x7fffffff), -0x80000000);
  assert.equal(nextVersion(-2), 0);
  const records = initialRecords();
  records.push(['/max', { ...records[1]![1], version: 0x7fffffff }], ['/m2', { ...records[1]![1], version: -2 }]);
  d.tree.load(records);
  d.ok(setData('/max', null, 0x7fffffff));
  assert.equal(d.tree.stat('/max')!.version, -0x80000000);
  d.ok(setData('/m2', null, -2));
  assert.equal(d.tree.stat('/m2')!.version, 0, '-1 means any version, so it is skipped');
});

test('setACL: aversion + 1, data stats unchanged, no trigger', () => {
  const d = new Driver();
  d.ok(create('/a'));
  const outcome = d.tree.transact([setAcl('/a', [{ perms: Perm.read, id: anyone }], 0)], d.context([localhost]));
  assert.deepEqual(outcome.triggers, []);
  const stat = d.tree.stat('/a')!;
  assert.equal(stat.aversion, 1);
  assert.equal(stat.mzxid, 1);
  assert.equal(stat.version, 0);
  assert.deepEqual(d.tree.node('/a')!.acl, [{ perms: Perm.read, id: anyone }]);
});

// ---- error precedence (§2.3) ---------------------------------------------------------------

test('create: flags, then the parent-finding shape, ACL, parent, CREATE permission, then the whole path', () => {
  const d = new Driver();
  d.ok(create('/locked', 0, [{ perms: Perm.read, id: anyone }]));
  d.ok(create('/locked/x'), [{ scheme: 'super', id: '' }]);
  for (const flags of [-1, 7, 9]) assert.equal(d.err(create('bad//path', flags, [])), Err.badArguments, `flags ${flags}`);
  for (const flags of [4, 5, 6]) assert.equal(d.err(create('bad//path', flags, [])), Err.unimplemented, `flags ${flags}`);
  assert.equal(d.err(create('no-slash', 0, [])), Err.badArguments, 'a path without "/" before the ACL');
  assert.equal(d.err(create('/a\0b', 0, [])), Err.badArguments, 'a NUL before the ACL');
  assert.equal(d.err(create('/a/', 0, [])), Err.invalidAcl, 'the ACL before the rest of the path (validatePathForCreate)');
  assert.equal(d.err(create('/a/')), Err.noNode, 'the parent "/a" before the trailing slash');
  assert.equal(d.err(create('/locked/.')), Err.noAuth, 'CREATE permission before the whole path');
  assert.equal(d.err(create('/locked/.'), [{ scheme: 'super', id: '' }]), Err.badArguments, 'the whole path last, before NODEEXISTS');
  assert.equal(d.err(create('/missing/a', 0, [])), Err.invalidAcl, 'the ACL before the parent');
  assert.equal(d.err(create('/missing/a', 0, [{ perms: Perm.all, id: { scheme: 'auth', id: '' } }])), Err.invalidAcl, 'auth without credentials');
  assert.equal(d.err(create('/missing/a')), Err.noNode);
  assert.equal(d.err(create('/locked/x')), Err.noAuth, 'CREATE permission before NODEEXISTS');
  assert.equal(d.err(create('/locked/y')), Err.noAuth);
  assert.equal(d.err(create('/locked/y'), [{ scheme: 'super', id: '' }]), 0);
  assert.equal(d.err(create('/')), Err.nodeExists);
  assert.equal(d.err(create('/zookeeper')), Err.nodeExists);
  assert.equal(d.err(create('/zookeeper/mine')), 0, 'ordinary children under /zookeeper are allowed');
});

test('create: NODEEXISTS, then NOCHILDRENFOREPHEMERALS; ephemeral nodes are owned by the session', () => {
  const d = new Driver();
  const result = d.ok(create('/e', CreateMode.ephemeral), [localhost], 42);
  assert.equal(result.op === 'create' && result.stat.ephemeralOwner, 42);
  assert.equal(d.err(create('/e')), Err.nodeExists);
  assert.equal(d.err(create('/e/child')), Err.noChildrenForEphemerals);
  assert.equal(d.err(create('/e/', CreateMode.persistentSequential)), Err.noChildrenForEphemerals);
  d.ok(create('/es-', CreateMode.ephemeralSequential), [localhost], 42);
  assert.deepEqual(d.tree.ephemerals(42), ['/e', '/es-0000000001']);
  d.ok(create('/locked-e', CreateMode.ephemeral, [{ perms: Perm.read, id: anyone }]), [localhost], 42);
  assert.equal(d.err(create('/locked-e/c')), Err.noAuth, 'NOAUTH before NOCHILDRENFOREPHEMERALS');
});

test('delete: path, system paths, parent, DELETE permission, existence, version, children', () => {
  const d = new Driver();
  d.ok(create('/p', 0, [{ perms: Perm.all & ~Perm.delete, id: anyone }]));
  d.ok(create('/p/c'));
  d.ok(create('/a'));
  d.ok(create('/a/b'));
  d.ok(create('/a/b/c'));
  assert.equal(d.err(del('/a/')), Err.noNode, 'only the parent-finding shape is checked: "/a/" is a missing child of "/a"');
  assert.equal(d.err(del('/a//b')), Err.noNode);
  assert.equal(d.err(del('')), Err.badArguments, 'no "/"');
  assert.equal(d.err(del('/a\0')), Err.badArguments, 'a NUL');
  for (const path of ['/', '/zookeeper', '/zookeeper/quota', '/zookeeper/config']) {
    assert.equal(d.err(del(path)), Err.badArguments, path);
    assert.equal(d.err(del(path), [{ scheme: 'super', id: '' }]), Err.badArguments, `${path} even for super`);
  }
  assert.equal(d.err(del('/missing/x')), Err.noNode, 'the parent is missing');
  assert.equal(d.err(del('/p/missing')), Err.noAuth, 'DELETE on the parent before existence');
  assert.equal(d.err(del('/p/c')), Err.noAuth);
  assert.equal(d.err(del('/a/missing')), Err.noNode);
  assert.equal(d.err(del('/a/b', 3)), Err.badVersion, 'the version before the children');
  assert.equal(d.err(del('/a/b', 0)), Err.notEmpty);
  assert.equal(d.err(del('/a/b/c', 0)), 0);
  assert.equal(d.err(del('/a/b')), 0);
  assert.equal(d.tree.node('/a/b'), undefined);
  assert.deepEqual(d.tree.children('/a'), []);
});

test('setData: path, existence, WRITE permission, version', () => {
  const d = new Driver();
  d.ok(create('/ro', 0, [{ perms: Perm.read, id: anyone }]));
  d.ok(create('/a'));
  assert.equal(d.err(setData('/a/', null)), Err.badArguments);
  assert.equal(d.err(setData('/missing', null, 5)), Err.noNode);
  assert.equal(d.err(setData('/ro', null, 5)), Err.noAuth, 'permission before version');
  assert.equal(d.err(setData('/zookeeper/config', bytes('x'))), Err.noAuth, '§2.2: /zookeeper/config is read-only');
  assert.equal(d.err(setData('/a', null, 5)), Err.badVersion);
  assert.equal(d.err(setData('/a', null, 0)), 0);
  assert.equal(d.err(setData('/a', null, 0)), Err.badVersion);
});

test('setACL: path, ACL, existence, ADMIN permission, aversion', () => {
  const d = new Driver();
  d.ok(create('/noadmin', 0, [{ perms: Perm.all & ~Perm.admin, id: anyone }]));
  assert.equal(d.err(setAcl('/x/', [])), Err.badArguments);
  assert.equal(d.err(setAcl('/missing', [])), Err.invalidAcl, 'the ACL before existence');
  assert.equal(d.err(setAcl('/missing', open)), Err.noNode);
  assert.equal(d.err(setAcl('/noadmin', open, 9)), Err.noAuth, 'ADMIN before aversion');
  assert.equal(d.err(setAcl('/noadmin', open, 9), [bob, { scheme: 'super', id: '' }]), Err.badVersion);
  assert.equal(d.err(setAcl('/noadmin', open, 0), [{ scheme: 'super', id: '' }]), 0);
  assert.equal(d.err(setAcl('/zookeeper/config', open)), Err.noAuth);
  assert.equal(d.tree.stat('/zookeeper/config')!.aversion, -1, 'Java sets its ACL with version -1');
});

test('check: path, existence, READ permission, version', () => {
  const d = new Driver();
  d.ok(create('/secret', 0, [{ perms: Perm.write, id: anyone }]));
  d.ok(create('/a'));
  assert.equal(d.err(check('a')), Err.badArguments);
  assert.equal(d.err(check('/missing', 3)), Err.noNode);
  assert.equal(d.err(check('/secret', 3)), Err.noAuth);
  assert.equal(d.err(check('/a', 3)), Err.badVersion);
  assert.deepEqual(d.run(check('/a', 0)), { op: 'check' });
});

test('digest and ip ACLs guard the node, auth ACLs become the caller digest ids', () => {
  const d = new Driver();
  d.ok(create('/mine', 0, [{ perms: Perm.all, id: { scheme: 'auth', id: '' } }]), [localhost, bob]);
  assert.deepEqual(d.tree.node('/mine')!.acl, [{ perms: Perm.all, id: bob }]);
  assert.equal(d.err(setData('/mine', null)), Err.noAuth);
  assert.equal(d.err(setData('/mine', null), [alice]), Err.noAuth);
  assert.equal(d.err(setData('/mine', null), [bob]), 0);
  d.ok(create('/lan', 0, [{ perms: Perm.all, id: { scheme: 'ip', id: '10.0.0.0/8' } }]));
  assert.equal(d.err(create('/lan/x')), Err.noAuth);
  assert.equal(d.err(create('/lan/x'), [{ scheme: 'ip', id: '10.1.2.3' }]), 0);
  assert.equal(d.err(create('/empty-acl', 0, [])), Err.invalidAcl);
});

// ---- multi and rollback (§1.7, §2.6) -----------------------------------------------------

test('a multi sees its own earlier ops and applies them at one zxid', () => {
  const d = new Driver();
  const outcome = d.tree.transact([create('/a'), create('/a/b'), setData('/a/b', bytes('v'), 0), check('/a/b', 1), create('/a/s', CreateMode.persistentSequential)], d.context([localhost]));
  assert.equal(outcome.committed, true);
  assert.deepEqual(
    outcome.results.map((r) => r.op),
    ['create', 'create', 'setData', 'check', 'create'],
  );
  for (const path of ['/a', '/a/b', '/a/s0000000001']) assert.equal(d.tree.stat(path)!.czxid, 1, path);
  assert.equal(d.tree.stat('/a/b')!.mzxid, 1);
  assert.deepEqual(outcome.triggers, [
    { path: '/a', type: 'created' },
    { path: '/', type: 'childrenChanged' },
    { path: '/a/b', type: 'created' },
    { path: '/a', type: 'childrenChanged' },
    { path: '/a/b', type: 'dataChanged' },
    { path: '/a/s0000000001', type: 'created' },
    { path: '/a', type: 'childrenChanged' },
  ]);
  const empty = d.tree.transact([], d.context([localhost]));
  assert.deepEqual(empty, { committed: true, results: [], triggers: [] });
});

test('a failed multi changes nothing, sequence counters included, and reports 0 / code / -2', () => {
  const d = new Driver();
  d.ok(create('/q'));
  d.ok(create('/q/s-', CreateMode.persistentSequential));
  d.ok(create('/gone', CreateMode.ephemeral));
  d.ok(create('/x'));
  d.ok(create('/x/y'));
  const before = dump(d.tree);
  const ops = [
    create('/q/s-', CreateMode.persistentSequential),
    create('/q/new'),
    setData('/x', bytes('changed')),
    setAcl('/x/y', [{ perms: Perm.read, id: anyone }]),
    del('/x/y'),
    del('/gone'),
    setData('/q', null, 99),
    del('/x'),
  ];
  const outcome = d.tree.transact(ops, d.context([localhost]));
  assert.equal(outcome.committed, false);
  assert.deepEqual(outcome.triggers, []);
  assert.deepEqual(
    outcome.results,
    [0, 0, 0, 0, 0, 0, Err.badVersion, Err.runtimeInconsistency].map((err) => ({ op: 'error', err })),
  );
  assert.deepEqual(dump(d.tree), before);
  assert.equal((d.ok(create('/q/s-', CreateMode.persistentSequential)) as { path: string }).path, '/q/s-0000000001');
  // The captured failure of §1.7: create ok, setData with a wrong version, delete.
  const captured = d.tree.transact([create('/hx'), setData('/hx', null, 5), del('/hx')], d.context([localhost]));
  assert.deepEqual(captured.results, [
    { op: 'error', err: 0 },
    { op: 'error', err: -103 },
    { op: 'error', err: -2 },
  ]);
  assert.equal(d.tree.node('/hx'), undefined);
});

test('a single failing write is a transaction of one', () => {
  const d = new Driver();
  assert.deepEqual(d.tree.transact([del('/missing')], d.context([localhost])), { committed: false, results: [{ op: 'error', err: Err.noNode }], triggers: [] });
});

// ---- sessions' ephemerals ------------------------------------------------------------------

test('closeSession deletes every ephemeral of the session at one zxid, with triggers', () => {
  const d = new Driver();
  d.ok(create('/app'));
  d.ok(create('/app/b', CreateMode.ephemeral), [localhost], 5);
  d.ok(create('/app/a', CreateMode.ephemeral), [localhost], 5);
  d.ok(create('/top', CreateMode.ephemeralSequential), [localhost], 5);
  d.ok(create('/app/other', CreateMode.ephemeral), [localhost], 6);
  d.ok(create('/app/persistent'), [localhost], 5);
  const sizeBefore = d.tree.approximateDataSize;
  assert.deepEqual(d.tree.ephemerals(5), ['/app/a', '/app/b', '/top0000000001']);
  const triggers = d.tree.closeSession(5, 99);
  assert.deepEqual(triggers, [
    { path: '/app/a', type: 'deleted' },
    { path: '/app', type: 'childrenChanged' },
    { path: '/app/b', type: 'deleted' },
    { path: '/app', type: 'childrenChanged' },
    { path: '/top0000000001', type: 'deleted' },
    { path: '/', type: 'childrenChanged' },
  ]);
  assert.deepEqual(d.tree.children('/app'), ['other', 'persistent']);
  assert.equal(d.tree.stat('/app')!.pzxid, 99);
  assert.equal(d.tree.stat('/')!.pzxid, 99);
  assert.deepEqual(d.tree.ephemerals(5), []);
  assert.deepEqual(d.tree.ephemerals(6), ['/app/other']);
  assert.deepEqual(d.tree.ephemeralOwners(), [6]);
  assert.equal(d.tree.approximateDataSize, sizeBefore - '/app/a'.length - '/app/b'.length - '/top0000000001'.length - 3);
  assert.deepEqual(d.tree.closeSession(5, 100), []);
});

test('load rebuilds children, the ephemeral index and the data size; it refuses an orphan', () => {
  const d = new Driver();
  d.ok(create('/a'));
  d.ok(create('/a/e', CreateMode.ephemeral), [localhost], 3);
  d.ok(setData('/a', bytes('0123456789')));
  const copy = new DataTree();
  copy.load([...d.tree.records()].map(([path, record]): [string, NodeRecord] => [path, { ...record }]));
  assert.deepEqual(dump(copy), dump(d.tree));
  const orphan = initialRecords();
  orphan.push(['/no/parent', orphan[1]![1]]);
  assert.throws(() => new DataTree().load(orphan), /parent of \/no\/parent/);
});
