// The etcd MVCC store on its own. Tests marked "etcd 3.4.23:" replay what a real etcd 3.4.23
// (Debian's /usr/bin/etcd, single member, fresh data dir) answered to the same requests
// through etcdctl -w json or its JSON gateway; the expected values are copied from it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MvccError,
  MvccStore,
  crc32cUpdate,
  txnOpsMax,
  type Bytes,
  type Compare,
  type DeleteRangeRequest,
  type KeyValue,
  type PutRequest,
  type RangeRequest,
  type RequestOp,
  type TxnRequest,
  type WatchEvent,
} from '../../src/etcd/mvcc.js';
import { Prng } from '../../src/stdx/prng.js';
import { Packr } from 'msgpackr';

const b = (text: string): Bytes => new Uint8Array(Buffer.from(text, 'latin1'));
const str = (bytes: Bytes): string => Buffer.from(bytes).toString('latin1');
const prefixEnd = (prefix: string): Bytes => {
  const end = Buffer.from(prefix, 'latin1');
  end[end.length - 1]!++;
  return new Uint8Array(end);
};
const fromKey = new Uint8Array([0]);

function rangeReq(key: string, options: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key: b(key),
    rangeEnd: new Uint8Array(0),
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
    ...options,
  };
}

function putReq(key: string, value: string, options: Partial<PutRequest> = {}): PutRequest {
  return { key: b(key), value: b(value), lease: 0, prevKv: false, ignoreValue: false, ignoreLease: false, ...options };
}

function delReq(key: string, rangeEnd = '', prevKv = false): DeleteRangeRequest {
  return { key: b(key), rangeEnd: b(rangeEnd), prevKv };
}

function cmp(key: string, target: Compare['target'], result: Compare['result'], operand: number | string, rangeEnd = ''): Compare {
  return { key: b(key), rangeEnd: b(rangeEnd), target, result, operand: typeof operand === 'string' ? b(operand) : operand };
}

function txnReq(compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): TxnRequest {
  return { compare, success, failure };
}

/** A KeyValue as etcdctl -w json shows it (fields left out when zero), with text for key and value. */
interface Shown {
  key: string;
  create_revision?: number;
  mod_revision?: number;
  version?: number;
  value?: string;
  lease?: number;
}

function show(kv: KeyValue | undefined): Shown | undefined {
  if (kv === undefined) return undefined;
  const shown: Shown = { key: str(kv.key) };
  if (kv.createRevision !== 0) shown.create_revision = kv.createRevision;
  if (kv.modRevision !== 0) shown.mod_revision = kv.modRevision;
  if (kv.version !== 0) shown.version = kv.version;
  if (kv.value.length !== 0) shown.value = str(kv.value);
  if (kv.lease !== 0) shown.lease = kv.lease;
  return shown;
}

const showAll = (kvs: readonly KeyValue[]): (Shown | undefined)[] => kvs.map(show);
const showEvents = (events: readonly WatchEvent[]) => events.map((event) => ({ type: event.type, kv: show(event.kv), prevKv: show(event.prevKv) }));

/** Byte equality (msgpackr hangs a dataView property on buffers it reads, which deepEqual would see). */
function sameBytes(actual: Uint8Array, expected: Uint8Array, message?: string): void {
  assert.ok(Buffer.from(actual).equals(Buffer.from(expected)), message ?? 'the bytes differ');
}

function eventsOf(result: WatchEvent[] | 'compacted'): WatchEvent[] {
  assert.notEqual(result, 'compacted');
  return result as WatchEvent[];
}

function get(store: MvccStore, key: string, options: Partial<RangeRequest> = {}) {
  const result = store.range(rangeReq(key, options));
  return { kvs: showAll(result.kvs), more: result.more, count: result.count };
}

function throwsMvcc(run: () => unknown, code: MvccError['code'], message: string): void {
  assert.throws(run, (error: unknown) => error instanceof MvccError && error.code === code && error.message === message);
}

const compactedMessage = 'etcdserver: mvcc: required revision has been compacted';
const futureMessage = 'etcdserver: mvcc: required revision is a future revision';
const duplicateMessage = 'etcdserver: duplicate key given in txn request';
const notFoundMessage = 'etcdserver: key not found';
const tooManyMessage = 'etcdserver: too many operations in txn request';

/**
 * The session run against etcd 3.4.23 (revisions in the comments), whose answers several tests
 * below compare with. It ends at revision 18, compacted at 16 (unless `compact` is false).
 */
function etcdSession(compact = true): MvccStore {
  const s = new MvccStore();
  s.put(putReq('foo', 'bar')); // 2
  s.txn(txnReq([], [{ put: putReq('a', '1') }, { put: putReq('b', '2') }, { put: putReq('c', '3') }])); // 3
  s.txn(txnReq([], [])); // no change: revision 3
  s.txn(txnReq([cmp('a', 'mod', 'equal', 3)], [{ put: putReq('a', '11') }, { range: rangeReq('a') }, { put: putReq('d', '4') }, { range: rangeReq('d') }])); // 4
  s.txn(txnReq([], [{ deleteRange: delReq('a', '\0') }, { put: putReq('b', '2') }])); // 5
  s.txn(txnReq([], [{ put: putReq('x', '1') }], [{ put: putReq('x', '2') }])); // 6
  s.put(putReq('k1', 'v3')); // 7
  s.put(putReq('k2', 'v1')); // 8
  s.put(putReq('k2', 'v2')); // 9
  s.put(putReq('k3', 'v2')); // 10
  s.put(putReq('k3', 'v2b')); // 11
  s.put(putReq('k3', 'v3')); // 12
  s.put(putReq('k1', '', { ignoreValue: true, prevKv: true })); // 13
  s.put(putReq('k1', 'new', { ignoreLease: true })); // 14
  s.put(putReq('c1', 'x')); // 15
  s.deleteRange(delReq('c1')); // 16
  s.put(putReq('c2', 'y')); // 17
  s.put(putReq('c0', 'z')); // 18
  if (compact) s.compact(16);
  return s;
}

test('revisions: 1 at the start, +1 per changing write, versions and generations (etcd 3.4.23)', () => {
  const s = new MvccStore();
  assert.equal(s.revision, 1); // a fresh etcd's header revision is 1
  assert.equal(s.compactRevision, -1);
  assert.deepEqual(get(s, 'foo'), { kvs: [], more: false, count: 0 });
  const first = s.put(putReq('foo', 'bar'));
  assert.equal(first.revision, 2);
  assert.deepEqual(get(s, 'foo').kvs, [{ key: 'foo', create_revision: 2, mod_revision: 2, version: 1, value: 'bar' }]); // etcd: the same
  s.put(putReq('foo', 'baz'));
  assert.deepEqual(get(s, 'foo').kvs, [{ key: 'foo', create_revision: 2, mod_revision: 3, version: 2, value: 'baz' }]);
  const deleted = s.deleteRange(delReq('foo'));
  assert.deepEqual([deleted.revision, deleted.result.deleted], [4, 1]);
  s.put(putReq('foo', 'again'));
  assert.deepEqual(get(s, 'foo').kvs, [{ key: 'foo', create_revision: 5, mod_revision: 5, version: 1, value: 'again' }], 'a new generation');
});

test('a txn with three puts takes one revision; no-op writes keep the revision (etcd 3.4.23)', () => {
  const s = new MvccStore();
  s.put(putReq('foo', 'bar'));
  const out = s.txn(txnReq([], [{ put: putReq('a', '1') }, { put: putReq('b', '2') }, { put: putReq('c', '3') }]));
  assert.equal(out.revision, 3); // etcd: header revision 3, each ResponsePut revision 3
  assert.deepEqual(
    showAll(s.range(rangeReq('a', { rangeEnd: fromKey })).kvs).map((kv) => [kv!.key, kv!.mod_revision, kv!.create_revision]),
    [
      ['a', 3, 3],
      ['b', 3, 3],
      ['c', 3, 3],
      ['foo', 2, 2],
    ],
  );
  assert.deepEqual(
    out.events.map((e) => [e.type, str(e.kv.key), e.kv.modRevision]),
    [
      ['put', 'a', 3],
      ['put', 'b', 3],
      ['put', 'c', 3],
    ],
  );
  // etcd: `del nothing` answers revision 3, a failed txn without ops too.
  const nothing = s.deleteRange(delReq('nothing'));
  assert.deepEqual([nothing.revision, nothing.result.deleted, nothing.events.length], [3, 0, 0]);
  const failed = s.txn(txnReq([cmp('zzz', 'value', 'equal', 'x')], [], []));
  assert.deepEqual([failed.revision, failed.result.succeeded, failed.events.length], [3, false, 0]);
  const readOnly = s.txn(txnReq([], [{ range: rangeReq('a') }]));
  assert.equal(readOnly.revision, 3);
  assert.equal(s.revision, 3);
  const emptyDelete = s.txn(txnReq([], [{ deleteRange: delReq('q', 'r') }]));
  assert.equal(emptyDelete.revision, 3, 'a txn whose delete deletes nothing changes nothing');
});

test('range: single key, prefix, "\\0" and empty intervals; keys compare as unsigned bytes', () => {
  const s = new MvccStore();
  for (const key of ['a', 'ab', 'abc', 'b', '\x7f', '\x80', '\xff']) s.put(putReq(key, key));
  const keys = (request: RangeRequest) => s.range(request).kvs.map((kv) => str(kv.key));
  assert.deepEqual(keys(rangeReq('ab')), ['ab']);
  assert.deepEqual(keys(rangeReq('a', { rangeEnd: prefixEnd('a') })), ['a', 'ab', 'abc']);
  assert.deepEqual(keys(rangeReq('ab', { rangeEnd: fromKey })), ['ab', 'abc', 'b', '\x7f', '\x80', '\xff']);
  assert.deepEqual(keys(rangeReq('\0', { rangeEnd: fromKey })), ['a', 'ab', 'abc', 'b', '\x7f', '\x80', '\xff']);
  assert.deepEqual(keys(rangeReq('b', { rangeEnd: b('a') })), [], 'range_end below key: nothing');
  assert.deepEqual(keys(rangeReq('b', { rangeEnd: b('b') })), []);
  assert.deepEqual(keys(rangeReq('\x7f', { rangeEnd: b('\x81') })), ['\x7f', '\x80'], '0x80 sorts after 0x7f (unsigned)');
  // UTF-8 bytes, not UTF-16 strings: U+10000 (f0 90 80 80) sorts after U+FFFF (ef bf bf) as bytes, before it as a JS string.
  const t = new MvccStore();
  const high = new Uint8Array(Buffer.from('\u{10000}', 'utf8'));
  const bmp = new Uint8Array(Buffer.from('\uffff', 'utf8'));
  t.put({ ...putReq('', ''), key: high });
  t.put({ ...putReq('', ''), key: bmp });
  assert.ok('\u{10000}' < '\uffff');
  assert.deepEqual(
    t.range({ ...rangeReq(''), key: new Uint8Array([0xe0]), rangeEnd: fromKey }).kvs.map((kv) => Buffer.from(kv.key).toString('utf8')),
    ['\uffff', '\u{10000}'],
  );
});

test('range: limit, more, count, keys-only, sort and revision filters (etcd 3.4.23)', () => {
  const s = etcdSession(false);
  const k = { rangeEnd: prefixEnd('k') };
  const kv1 = { key: 'k1', create_revision: 7, mod_revision: 14, version: 3, value: 'new' };
  const kv2 = { key: 'k2', create_revision: 8, mod_revision: 9, version: 2, value: 'v2' };
  const kv3 = { key: 'k3', create_revision: 10, mod_revision: 12, version: 3, value: 'v3' };
  // At revision 12 (before the ignore_value/ignore_lease puts), as etcd answered then:
  const at12 = { ...k, revision: 12 };
  const old1 = { key: 'k1', create_revision: 7, mod_revision: 7, version: 1, value: 'v3' };
  // get k --prefix --sort-by=VERSION: order NONE with target VERSION sorts ascending.
  assert.deepEqual(get(s, 'k', { ...at12, sortTarget: 'version' }), { kvs: [old1, kv2, kv3], more: false, count: 3 });
  assert.deepEqual(get(s, 'k', { ...at12, sortTarget: 'version', sortOrder: 'descend' }).kvs, [kv3, kv2, old1]);
  // --sort-by=VALUE --order=DESCEND --limit 2: ties (k1 and k3 are both "v3") keep key order.
  assert.deepEqual(get(s, 'k', { ...at12, sortTarget: 'value', sortOrder: 'descend', limit: 2 }), { kvs: [old1, kv3], more: true, count: 3 });
  // --limit 1 --keys-only
  assert.deepEqual(get(s, 'k', { ...at12, limit: 1, keysOnly: true }), { kvs: [{ key: 'k1', create_revision: 7, mod_revision: 7, version: 1 }], more: true, count: 3 });
  // Gateway, at 12: min_mod_revision 9 + limit 1 -> k2, more, count 3 (count ignores the filters).
  assert.deepEqual(get(s, 'k', { ...at12, minModRevision: 9, limit: 1 }), { kvs: [kv2], more: true, count: 3 });
  assert.deepEqual(get(s, 'k', { ...at12, minModRevision: 9, countOnly: true }), { kvs: [], more: false, count: 3 });
  assert.deepEqual(get(s, 'k', { ...at12, minCreateRevision: 8, maxCreateRevision: 8 }), { kvs: [kv2], more: false, count: 3 });
  assert.deepEqual(get(s, 'k', { ...at12, sortTarget: 'mod', limit: 2 }), { kvs: [old1, kv2], more: true, count: 3 });
  assert.deepEqual(get(s, 'k', { ...at12, sortTarget: 'mod', sortOrder: 'descend', countOnly: true }), { kvs: [], more: false, count: 3 });
  // Now (revision 18):
  assert.deepEqual(get(s, 'k', k).kvs, [kv1, kv2, kv3]);
  assert.deepEqual(get(s, 'k', { ...k, sortTarget: 'key', sortOrder: 'descend' }).kvs, [kv3, kv2, kv1]);
  assert.deepEqual(get(s, 'k', { ...k, sortTarget: 'create', sortOrder: 'descend' }).kvs, [kv3, kv2, kv1]);
  assert.deepEqual(get(s, 'k', { ...k, maxModRevision: 12 }).kvs, [kv2, kv3]);
  assert.deepEqual(get(s, 'k', { ...k, limit: 3 }).more, false, 'exactly limit: no more');
  assert.deepEqual(get(s, 'k', { ...k, limit: 2, maxModRevision: 12 }), { kvs: [kv2, kv3], more: false, count: 3 }, 'more counts after the filters');
});

test('range at a past revision; compacted and future revisions refused (etcd 3.4.23)', () => {
  assert.deepEqual(get(etcdSession(false), 'k1', { revision: 13 }).kvs, [{ key: 'k1', create_revision: 7, mod_revision: 13, version: 2, value: 'v3' }]);
  const s = etcdSession();
  assert.deepEqual(get(s, 'c', { rangeEnd: prefixEnd('c'), revision: 16 }), { kvs: [], more: false, count: 0 }, 'at the compact revision itself: works');
  assert.deepEqual(get(s, 'c', { rangeEnd: prefixEnd('c'), revision: 17 }).kvs, [{ key: 'c2', create_revision: 17, mod_revision: 17, version: 1, value: 'y' }]);
  throwsMvcc(() => s.range(rangeReq('c', { rangeEnd: prefixEnd('c'), revision: 15 })), 'compacted', compactedMessage);
  throwsMvcc(() => s.range(rangeReq('k1', { revision: 99 })), 'future-revision', futureMessage);
  assert.equal(get(s, 'k1', { revision: 18 }).count, 1, 'the current revision is not in the future');
  assert.equal(get(s, 'k1', { revision: -5 }).count, 1, 'a revision <= 0 reads the current one, as etcd');
});

test('txn: compares against zero values, value compares on missing keys fail, ranges of keys (etcd 3.4.23)', () => {
  const s = etcdSession();
  const outcome = (compare: Compare[]) => s.txn(txnReq(compare, [])).result.succeeded;
  assert.equal(outcome([cmp('zzz', 'version', 'equal', 0)]), true); // etcd: succeeded
  assert.equal(outcome([cmp('zzz', 'version', 'greater', 0)]), false); // etcd: failed
  assert.equal(outcome([cmp('zzz', 'value', 'equal', 'x')]), false); // etcd: failed
  assert.equal(outcome([cmp('zzz', 'value', 'not_equal', 'x')]), false); // etcd: failed (no key, no value)
  assert.equal(outcome([cmp('zzz', 'create', 'equal', 0), cmp('zzz', 'mod', 'equal', 0), cmp('zzz', 'lease', 'equal', 0)]), true);
  assert.equal(outcome([cmp('k1', 'value', 'equal', 'new')]), true);
  assert.equal(outcome([cmp('k1', 'value', 'greater', 'ne')]), true);
  assert.equal(outcome([cmp('k1', 'value', 'less', 'new')]), false);
  assert.equal(outcome([cmp('k2', 'version', 'equal', 2), cmp('k3', 'version', 'equal', 2)]), false, 'every compare must hold');
  // Over a range, every key must satisfy the compare.
  assert.equal(outcome([cmp('k', 'version', 'greater', 1, 'l')]), true);
  assert.equal(outcome([cmp('k', 'version', 'greater', 2, 'l')]), false);
  assert.equal(outcome([cmp('k', 'create', 'less', 11, 'l')]), true);
  assert.equal(outcome([cmp('k2', 'mod', 'less', 99, '\0')]), true, '"\\0" compares every key >= k2');
  assert.equal(outcome([cmp('q', 'version', 'equal', 0, 'r')]), true, 'an empty range compares as one zero key');
  assert.equal(s.revision, 18);
});

test('txn: ranges see earlier writes, responses per op, failure branch (etcd 3.4.23)', () => {
  const s = new MvccStore();
  s.put(putReq('foo', 'bar'));
  s.txn(txnReq([], [{ put: putReq('a', '1') }, { put: putReq('b', '2') }, { put: putReq('c', '3') }]));
  // etcd: mod("a") = "3" / put a 11, get a, put d 4, get d, get a --prefix
  const out = s.txn(
    txnReq([cmp('a', 'mod', 'equal', 3)], [{ put: putReq('a', '11') }, { range: rangeReq('a') }, { put: putReq('d', '4') }, { range: rangeReq('d') }, { range: rangeReq('a', { rangeEnd: b('b') }) }]),
  );
  assert.equal(out.revision, 4);
  assert.equal(out.result.succeeded, true);
  const ranges = out.result.responses.flatMap((r) => ('range' in r ? [showAll(r.range.kvs)] : []));
  const a = { key: 'a', create_revision: 3, mod_revision: 4, version: 2, value: '11' };
  assert.deepEqual(ranges, [[a], [{ key: 'd', create_revision: 4, mod_revision: 4, version: 1, value: '4' }], [a]]);
  assert.deepEqual(
    out.result.responses.map((r) => Object.keys(r)[0]),
    ['put', 'range', 'put', 'range', 'range'],
  );
  // etcd: value("zzz") != "x" / get a / get b -> the failure branch ran: get b.
  const other = s.txn(txnReq([cmp('zzz', 'value', 'not_equal', 'x')], [{ range: rangeReq('a') }], [{ range: rangeReq('b') }]));
  assert.equal(other.result.succeeded, false);
  assert.deepEqual(
    other.result.responses.map((r) => ('range' in r ? showAll(r.range.kvs) : [])),
    [[{ key: 'b', create_revision: 3, mod_revision: 3, version: 1, value: '2' }]],
  );
  // A range inside a txn at an explicit past revision reads the past.
  const past = s.txn(txnReq([], [{ put: putReq('a', '12') }, { range: rangeReq('a', { revision: 3 }) }]));
  const pastRange = past.result.responses[1]!;
  assert.ok('range' in pastRange);
  assert.deepEqual(showAll(pastRange.range.kvs), [{ key: 'a', create_revision: 3, mod_revision: 3, version: 1, value: '1' }]);
});

test('txn: nested txns choose their branch against the state before the txn', () => {
  const s = new MvccStore();
  s.put(putReq('x', '1')); // 2
  const out = s.txn(
    txnReq(
      [cmp('x', 'version', 'equal', 1)],
      [
        { put: putReq('x', '2') },
        // Still sees version 1: every compare of the txn is evaluated before any of its ops runs (apply.go compareToPath).
        { txn: txnReq([cmp('x', 'version', 'equal', 1)], [{ put: putReq('y', 'inner-success') }], [{ put: putReq('y', 'inner-failure') }]) },
        { txn: txnReq([cmp('x', 'value', 'equal', '2')], [{ put: putReq('z', 'seen') }], [{ range: rangeReq('x') }]) },
      ],
    ),
  );
  assert.equal(out.revision, 3);
  const [, inner1, inner2] = out.result.responses;
  assert.ok(inner1 !== undefined && 'txn' in inner1 && inner2 !== undefined && 'txn' in inner2);
  assert.equal(inner1.txn.succeeded, true);
  assert.equal(inner2.txn.succeeded, false);
  const innerRange = inner2.txn.responses[0]!;
  assert.ok('range' in innerRange);
  assert.equal(str(innerRange.range.kvs[0]!.value), '2', 'but its ranges see the earlier writes');
  assert.equal(get(s, 'y').kvs[0]!.value, 'inner-success');
  assert.equal(get(s, 'z').count, 0);
});

test('txn: duplicate keys refused like etcd checkIntervals, before anything changes (etcd 3.4.23)', () => {
  const s = etcdSession();
  const before = s.snapshot();
  const dup = (request: TxnRequest, _why = '') => throwsMvcc(() => s.txn(request), 'duplicate-key', duplicateMessage);
  dup(txnReq([], [{ put: putReq('q', '1') }, { put: putReq('q', '2') }])); // etcd: duplicate key
  dup(txnReq([], [{ deleteRange: delReq('a', 'b') }, { put: putReq('ab', '2') }])); // etcd: duplicate key (del a --prefix; put ab)
  dup(txnReq([], [{ put: putReq('k1', '2') }, { deleteRange: delReq('k1') }]));
  dup(txnReq([], [{ range: rangeReq('k1') }], [{ put: putReq('q', '1') }, { put: putReq('q', '1') }]), 'the failure branch is checked too');
  dup(txnReq([], [{ deleteRange: delReq('k', 'l') }, { txn: txnReq([], [{ put: putReq('k2', 'x') }]) }]), 'a nested put in an outer deleted range');
  dup(txnReq([], [{ put: putReq('k2', 'x') }, { txn: txnReq([], [{ deleteRange: delReq('k2') }]) }]), 'an outer put in a nested deleted range');
  dup(txnReq([], [{ txn: txnReq([], [{ put: putReq('k2', 'x') }]) }, { txn: txnReq([], [{ put: putReq('k2', 'y') }]) }]), 'two nested txns put one key');
  dup(txnReq([], [{ deleteRange: delReq('a', '\0') }, { put: putReq('k1', '', { ignoreValue: true }) }]), 'ours: etcd would panic applying this');
  sameBytes(s.snapshot(), before, 'nothing changed');
  assert.equal(s.revision, 18);
  // Allowed: then and else of one txn may put the same key (etcd: put x in success and failure works),
  s.txn(txnReq([], [{ put: putReq('x', '1') }], [{ put: putReq('x', '2') }]));
  s.txn(txnReq([], [{ txn: txnReq([cmp('x', 'version', 'equal', 99)], [{ put: putReq('y', 'then') }], [{ put: putReq('y', 'else') }]) }]));
  assert.equal(get(s, 'y').kvs[0]!.value, 'else');
  // a nested put before a later sibling's delete of the key (etcd's check does not look that way),
  s.txn(txnReq([], [{ txn: txnReq([], [{ put: putReq('y', 'gone') }]) }, { txn: txnReq([], [{ deleteRange: delReq('y') }]) }]));
  assert.equal(get(s, 'y').count, 0);
  // and, as etcd 3.4.23 does, a put of a key that a "\0" (from-key) delete of the same txn removed:
  // etcd: `del a --from-key` + `put b 2` succeeded, deleted 5, b came back at the txn's revision with version 1.
  const t = new MvccStore();
  t.put(putReq('foo', 'bar'));
  t.txn(txnReq([], [{ put: putReq('a', '1') }, { put: putReq('b', '2') }, { put: putReq('c', '3') }]));
  t.txn(txnReq([], [{ put: putReq('a', '11') }, { put: putReq('d', '4') }]));
  const out = t.txn(txnReq([], [{ deleteRange: delReq('a', '\0') }, { put: putReq('b', '2') }]));
  const first = out.result.responses[0]!;
  assert.ok('deleteRange' in first);
  assert.deepEqual([out.revision, first.deleteRange.deleted], [5, 5]);
  assert.deepEqual(get(t, 'b').kvs, [{ key: 'b', create_revision: 5, mod_revision: 5, version: 1, value: '2' }]);
  // etcd: `watch b --rev 5 --prev-kv` showed the delete (with prev_kv) and then the put (a create: no prev_kv).
  const expected = [
    { type: 'delete', kv: { key: 'b', mod_revision: 5 }, prevKv: { key: 'b', create_revision: 3, mod_revision: 3, version: 1, value: '2' } },
    { type: 'put', kv: { key: 'b', create_revision: 5, mod_revision: 5, version: 1, value: '2' }, prevKv: undefined },
  ];
  assert.deepEqual(showEvents(eventsOf(t.eventsSince(4, b('b'), b('')))), expected);
  assert.deepEqual(showEvents(out.events.filter((e) => str(e.kv.key) === 'b')), expected);
});

test('txn: at most 128 compares or ops per branch, nested txns share the budget, malformed ops refused', () => {
  const s = new MvccStore();
  const puts = (count: number, prefix = 'k'): RequestOp[] => Array.from({ length: count }, (_, i) => ({ put: putReq(`${prefix}${i}`, 'v') }));
  const tooMany = (request: TxnRequest, _why = '') => throwsMvcc(() => s.txn(request), 'too-many-ops', tooManyMessage);
  assert.equal(txnOpsMax, 128);
  tooMany(txnReq([], puts(129)));
  tooMany(txnReq([], [], puts(129)));
  tooMany(
    txnReq(
      Array.from({ length: 129 }, () => cmp('a', 'version', 'equal', 0)),
      [],
    ),
  );
  // The nested txn gets 128 - 100 = 28.
  tooMany(txnReq([], [...puts(99), { txn: txnReq([], puts(29, 'n')) }]));
  tooMany(txnReq([], puts(200), []), 'too many is checked before duplicates');
  assert.equal(s.revision, 1);
  assert.equal(s.txn(txnReq([], [...puts(99), { txn: txnReq([], puts(28, 'n')) }])).revision, 2);
  assert.equal(s.txn(txnReq([], puts(128, 'm'))).revision, 3);
  assert.equal(get(s, 'm', { rangeEnd: prefixEnd('m'), countOnly: true }).count, 128);
  // An op with none of range/put/deleteRange/txn: etcd's ErrGRPCKeyNotFound.
  throwsMvcc(() => s.txn(txnReq([], [{} as RequestOp])), 'key-not-found', notFoundMessage);
});

test('put: prev_kv, ignore_value, ignore_lease; delete: prev_kv (etcd 3.4.23)', () => {
  const s = etcdSession(false);
  // Gateway: put nokey with ignore_value -> "etcdserver: key not found" (code 3).
  throwsMvcc(() => s.put(putReq('nokey', '', { ignoreValue: true })), 'key-not-found', notFoundMessage);
  throwsMvcc(() => s.put(putReq('nokey', 'v', { ignoreLease: true })), 'key-not-found', notFoundMessage);
  throwsMvcc(() => s.txn(txnReq([], [{ put: putReq('nokey', '', { ignoreValue: true }) }])), 'key-not-found', notFoundMessage);
  assert.equal(s.revision, 18);
  // At 13, etcd answered prev_kv k1 v3 version 1, and at 14 put with ignore_lease changed only the value.
  assert.deepEqual(get(s, 'k1', { revision: 13 }).kvs, [{ key: 'k1', create_revision: 7, mod_revision: 13, version: 2, value: 'v3' }]);
  const withPrev = s.put(putReq('k2', 'v9', { prevKv: true }));
  assert.deepEqual(show(withPrev.result.prevKv), { key: 'k2', create_revision: 8, mod_revision: 9, version: 2, value: 'v2' });
  assert.equal(s.put(putReq('k2', 'v10')).result.prevKv, undefined, 'no prev_kv unless asked');
  assert.equal(s.put(putReq('brand-new', 'v', { prevKv: true })).result.prevKv, undefined);
  const deleted = s.deleteRange(delReq('k', 'l', true));
  assert.equal(deleted.result.deleted, 3);
  assert.deepEqual(
    deleted.result.prevKvs.map((kv) => [str(kv.key), str(kv.value)]),
    [
      ['k1', 'new'],
      ['k2', 'v10'],
      ['k3', 'v3'],
    ],
  );
  assert.deepEqual(s.deleteRange(delReq('c', 'd')).result.prevKvs, [], 'no prev_kvs unless asked');
  // Inside a txn, prev_kv sees the txn's earlier writes (a nested put, then a later sibling's delete: etcd allows that order).
  const out = s.txn(txnReq([], [{ txn: txnReq([], [{ put: putReq('p', '1') }]) }, { txn: txnReq([], [{ deleteRange: delReq('p', 'q', true) }]) }]));
  const second = out.result.responses[1]!;
  assert.ok('txn' in second);
  const inner = second.txn.responses[0]!;
  assert.ok('deleteRange' in inner);
  assert.deepEqual(showAll(inner.deleteRange.prevKvs), [{ key: 'p', create_revision: out.revision, mod_revision: out.revision, version: 1, value: '1' }]);
});

test('leases: keys attach and detach with puts, ignore_lease and deletes', () => {
  const s = new MvccStore();
  s.put(putReq('a', '1', { lease: 7 }));
  s.put(putReq('b', '1', { lease: 7 }));
  s.put(putReq('c', '1', { lease: 8 }));
  assert.deepEqual(s.keysWithLease(7).map(str), ['a', 'b']);
  s.put(putReq('a', '2', { ignoreLease: true }));
  assert.deepEqual(show(s.range(rangeReq('a')).kvs[0]), { key: 'a', create_revision: 2, mod_revision: 5, version: 2, value: '2', lease: 7 });
  s.put(putReq('b', '2')); // lease 0 detaches
  assert.deepEqual(s.keysWithLease(7).map(str), ['a']);
  s.put(putReq('c', '', { ignoreValue: true, lease: 7 }));
  assert.deepEqual(s.keysWithLease(7).map(str), ['a', 'c']);
  assert.deepEqual(s.keysWithLease(8), []);
  s.deleteRange(delReq('a', '\0'));
  assert.deepEqual(s.keysWithLease(7), []);
  assert.equal(s.txn(txnReq([cmp('a', 'lease', 'equal', 0)], [{ put: putReq('a', 'x', { lease: 9 }) }])).result.succeeded, true);
  assert.equal(s.txn(txnReq([cmp('a', 'lease', 'equal', 9)], [])).result.succeeded, true);
  assert.deepEqual(s.keysWithLease(9).map(str), ['a']);
  assert.deepEqual(MvccStore.restore(s.snapshot()).keysWithLease(9).map(str), ['a'], 'rebuilt on restore');
});

test('compaction keeps the latest version at or below it, drops tombstones; errors (etcd 3.4.23)', () => {
  const fresh = new MvccStore();
  fresh.compact(0); // etcd: `compact 0` on a fresh member: "compacted revision 0"
  assert.equal(fresh.compactRevision, 0);
  throwsMvcc(() => fresh.compact(0), 'compacted', compactedMessage); // etcd: the second one is refused
  const s = new MvccStore();
  s.put(putReq('a', '1')); // 2
  s.put(putReq('a', '2')); // 3
  s.put(putReq('b', '1')); // 4
  s.deleteRange(delReq('b')); // 5
  s.put(putReq('a', '3')); // 6
  s.put(putReq('c', '1')); // 7
  const sizeBefore = s.sizeBytes();
  s.compact(5);
  assert.ok(s.sizeBytes() < sizeBefore, 'compaction frees space');
  assert.deepEqual(get(s, 'a', { rangeEnd: fromKey, revision: 5 }).kvs, [{ key: 'a', create_revision: 2, mod_revision: 3, version: 2, value: '2' }]);
  assert.deepEqual(
    get(s, 'a', { rangeEnd: fromKey, revision: 6 }).kvs.map((kv) => kv!.value),
    ['3'],
  );
  throwsMvcc(() => s.range(rangeReq('a', { revision: 4 })), 'compacted', compactedMessage);
  throwsMvcc(() => s.compact(5), 'compacted', compactedMessage);
  throwsMvcc(() => s.compact(4), 'compacted', compactedMessage);
  throwsMvcc(() => s.compact(8), 'future-revision', futureMessage); // etcd: `compact 99` at 18 -> future revision
  assert.deepEqual(
    showEvents(eventsOf(s.eventsSince(4, b('\0'), fromKey))).map((e) => [e.type, e.kv!.key, e.kv!.mod_revision]),
    [
      ['put', 'a', 6],
      ['put', 'c', 7],
    ],
    'the tombstone of b at 5 went with the compaction',
  );
  s.compact(7);
  assert.deepEqual(
    get(s, 'a', { rangeEnd: fromKey }).kvs.map((kv) => [kv!.key, kv!.value]),
    [
      ['a', '3'],
      ['c', '1'],
    ],
  );
  assert.equal(MvccStore.restore(s.snapshot()).sizeBytes(), s.sizeBytes());
});

test('eventsSince: order, prev_kv, ranges; from the compact revision but not before it (etcd 3.4.23)', () => {
  const s = etcdSession();
  // etcd: `watch c --prefix --rev 16` after `compact 16`: c2@17 and c0@18; the delete of c1 at 16 is gone.
  const fromCompact = s.eventsSince(15, b('c'), prefixEnd('c'));
  assert.notEqual(fromCompact, 'compacted');
  assert.deepEqual(showEvents(eventsOf(fromCompact)), [
    { type: 'put', kv: { key: 'c2', create_revision: 17, mod_revision: 17, version: 1, value: 'y' }, prevKv: undefined },
    { type: 'put', kv: { key: 'c0', create_revision: 18, mod_revision: 18, version: 1, value: 'z' }, prevKv: undefined },
  ]);
  // etcd: `watch c --prefix --rev 15` -> canceled, compact_revision 16.
  assert.equal(s.eventsSince(14, b('c'), prefixEnd('c')), 'compacted');
  assert.deepEqual(s.eventsSince(18, b('\0'), fromKey), []);
  const t = new MvccStore();
  t.put(putReq('a', '1')); // 2
  t.put(putReq('b', '1')); // 3
  t.put(putReq('a', '2')); // 4
  t.txn(txnReq([], [{ deleteRange: delReq('a') }, { put: putReq('c', '1') }, { put: putReq('b', '2') }])); // 5
  assert.deepEqual(showEvents(eventsOf(t.eventsSince(3, b('a'), b('')))), [
    { type: 'put', kv: { key: 'a', create_revision: 2, mod_revision: 4, version: 2, value: '2' }, prevKv: { key: 'a', create_revision: 2, mod_revision: 2, version: 1, value: '1' } },
    { type: 'delete', kv: { key: 'a', mod_revision: 5 }, prevKv: { key: 'a', create_revision: 2, mod_revision: 4, version: 2, value: '2' } },
  ]);
  const all = eventsOf(t.eventsSince(1, b('a'), fromKey));
  assert.deepEqual(
    all.map((e) => `${e.type} ${str(e.kv.key)}@${e.kv.modRevision}`),
    ['put a@2', 'put b@3', 'put a@4', 'delete a@5', 'put c@5', 'put b@5'],
  );
  assert.deepEqual(
    eventsOf(t.eventsSince(1, b('b'), b('c'))).map((e) => e.kv.modRevision),
    [3, 5],
  );
  t.compact(4);
  assert.equal(t.eventsSince(2, b('a'), fromKey), 'compacted');
  // From the compact revision: the kept put of a at 4 (its prev at 3 is compacted: no prev_kv, as etcd's watch range fails).
  assert.deepEqual(showEvents(eventsOf(t.eventsSince(3, b('a'), b('')))), [
    { type: 'put', kv: { key: 'a', create_revision: 2, mod_revision: 4, version: 2, value: '2' }, prevKv: undefined },
    { type: 'delete', kv: { key: 'a', mod_revision: 5 }, prevKv: { key: 'a', create_revision: 2, mod_revision: 4, version: 2, value: '2' } },
  ]);
});

test('hash equals etcd 3.4.23 HashKV for the same history', () => {
  const check = new Uint8Array(Buffer.from('123456789'));
  assert.equal((crc32cUpdate(0xffffffff, check) ^ 0xffffffff) >>> 0, 0xe3069283, 'the CRC-32C check value');
  // etcd, fresh member: `endpoint hashkv` -> hash 1084519789, compact_revision -1.
  assert.equal(new MvccStore().hash(0), 1084519789);
  assert.equal(new MvccStore().compactRevision, -1);
  const s = etcdSession();
  // etcd: `endpoint hashkv` -> 1127989689, `endpoint hashkv --rev 17` -> 2732689538, `--rev 16` -> compacted.
  assert.equal(s.hash(0), 1127989689);
  assert.equal(s.hash(18), 1127989689);
  assert.equal(s.hash(17), 2732689538);
  throwsMvcc(() => s.hash(16), 'compacted', compactedMessage);
  throwsMvcc(() => s.hash(19), 'future-revision', futureMessage);
  assert.equal(MvccStore.restore(s.snapshot()).hash(17), 2732689538);
  // Then a tombstone and a lease (granted with ID 42 through the gateway): put t1 x (19), del t1 (20), put leased v --lease 42 (21).
  const more = etcdSession();
  more.put(putReq('t1', 'x'));
  more.deleteRange(delReq('t1'));
  more.put(putReq('leased', 'v', { lease: 42 }));
  assert.equal(more.hash(0), 317853919); // etcd: endpoint hashkv
  assert.equal(more.hash(20), 4147154508); // etcd: endpoint hashkv --rev 20
  const other = etcdSession();
  other.put(putReq('one-more', 'x'));
  assert.notEqual(other.hash(0), s.hash(0));
  assert.equal(other.hash(18), s.hash(18), 'a hash at a revision ignores later writes');
});

test('snapshot: round trip of everything, deterministic bytes; malformed snapshots refused', () => {
  const s = etcdSession();
  s.put(putReq('leased', 'v', { lease: 42 }));
  const bytes = s.snapshot();
  const restored = MvccStore.restore(bytes);
  sameBytes(restored.snapshot(), bytes);
  assert.equal(restored.hash(0), s.hash(0));
  assert.equal(restored.revision, s.revision);
  assert.equal(restored.compactRevision, 16);
  assert.equal(restored.sizeBytes(), s.sizeBytes());
  assert.deepEqual(restored.eventsSince(15, b('\0'), fromKey), s.eventsSince(15, b('\0'), fromKey));
  assert.deepEqual(restored.range(rangeReq('\0', { rangeEnd: fromKey, revision: 16 })), s.range(rangeReq('\0', { rangeEnd: fromKey, revision: 16 })));
  assert.deepEqual(restored.keysWithLease(42).map(str), ['leased']);
  throwsMvcc(() => restored.range(rangeReq('a', { revision: 15 })), 'compacted', compactedMessage);
  // Both go on alike.
  for (const store of [s, restored]) store.txn(txnReq([cmp('k1', 'version', 'equal', 3)], [{ put: putReq('k1', 'after') }]));
  sameBytes(restored.snapshot(), s.snapshot());
  sameBytes(MvccStore.restore(new MvccStore().snapshot()).snapshot(), new MvccStore().snapshot());

  const packr = new Packr({ useRecords: false });
  const good = packr.unpack(bytes) as unknown[];
  const mutate = (change: (copy: unknown[]) => void): Uint8Array => {
    const copy = structuredClone(good);
    change(copy);
    return packr.pack(copy);
  };
  const keyList = (copy: unknown[]) => copy[3] as unknown[];
  const refused: [string, Uint8Array, RegExp][] = [
    ['a lone 0xc1 (never used)', new Uint8Array([0xc1]), /not an array/],
    ['a bad string length', new Uint8Array([0x94, 0xdb, 0xff, 0xff, 0xff, 0xff]), /not MessagePack/],
    ['empty', new Uint8Array(0), /not MessagePack/],
    ['a map', packr.pack({ a: 1 }), /not an array/],
    ['truncated', bytes.subarray(0, bytes.length - 3), /not MessagePack/],
    ['unknown format', mutate((c) => (c[0] = 2)), /unknown format 2/],
    ['revision 0', mutate((c) => (c[1] = 0)), /revision is not an integer >= 1/],
    ['compact above revision', mutate((c) => (c[2] = 1000)), /compact revision 1000 is above/],
    ['fractional revision', mutate((c) => (c[1] = 18.5)), /revision is not an integer/],
    ['keys out of order', mutate((c) => keyList(c).splice(0, 4, keyList(c)[2], keyList(c)[3], keyList(c)[0], keyList(c)[1])), /keys out of order/],
    ['key not bytes', mutate((c) => (keyList(c)[0] = 'text')), /key 0 is not bytes/],
    ['odd key list', mutate((c) => keyList(c).pop()), /odd length/],
    ['no records', mutate((c) => (keyList(c)[1] = [])), /record fields/],
    ['record above revision', mutate((c) => ((keyList(c)[1] as unknown[])[0] = 99)), /above the revision/],
    ['tombstone first', mutate((c) => ((keyList(c)[1] as unknown[])[4] = null)), /tombstone must follow a put/],
    ['bad version', mutate((c) => ((keyList(c)[1] as unknown[])[3] = 0)), /bad version/],
    ['extra field', mutate((c) => c.push(1)), /expected 4 fields/],
  ];
  for (const [what, data, message] of refused) {
    assert.throws(
      () => MvccStore.restore(data),
      (error: unknown) => error instanceof Error && /malformed etcd MVCC snapshot/.test(error.message) && message.test(error.message),
      what,
    );
  }
  // A broken generation: two puts of one key whose versions do not follow.
  const t = new MvccStore();
  t.put(putReq('a', '1'));
  t.put(putReq('a', '2'));
  const raw = packr.unpack(t.snapshot()) as unknown[];
  ((raw[3] as unknown[])[1] as unknown[])[9] = 5; // the second record's version
  assert.throws(() => MvccStore.restore(packr.pack(raw)), /break the generation/);
  // Two keys claiming one (revision, sub).
  const u = new MvccStore();
  u.txn(txnReq([], [{ put: putReq('a', '1') }, { put: putReq('b', '1') }]));
  const clash = packr.unpack(u.snapshot()) as unknown[];
  ((clash[3] as unknown[])[3] as unknown[])[1] = 0;
  assert.throws(() => MvccStore.restore(packr.pack(clash)), /two records at revision 2\.0/);
});

// ---- A randomized comparison with a naive model ----------------------------------------------

interface ModelKv {
  create: number;
  mod: number;
  version: number;
  value: string;
  lease: number;
}

type ModelState = Map<string, ModelKv>;

/** Every state by revision, copied whole: slow and obviously right. */
class Model {
  states = new Map<number, ModelState>([[1, new Map()]]);
  events = new Map<number, { type: 'put' | 'delete'; key: string }[]>();
  revision = 1;
  compacted = -1;

  get current(): ModelState {
    return this.states.get(this.revision)!;
  }

  /** Runs `ops` as one write transaction (keys distinct, so no duplicates). */
  write(ops: ({ put: [string, string, number] } | { del: [string, string] })[]): void {
    const next = new Map([...this.current].map(([k, v]) => [k, { ...v }]));
    const rev = this.revision + 1;
    const events: { type: 'put' | 'delete'; key: string }[] = [];
    for (const op of ops) {
      if ('put' in op) {
        const [key, value, lease] = op.put;
        const old = next.get(key);
        next.set(key, { create: old?.create ?? rev, mod: rev, version: (old?.version ?? 0) + 1, value, lease });
        events.push({ type: 'put', key });
      } else {
        const [key, end] = op.del;
        for (const k of [...next.keys()].sort(byBytes)) {
          if (end === '' ? k === key : byBytes(k, key) >= 0 && (end === '\0' || byBytes(k, end) < 0)) {
            next.delete(k);
            events.push({ type: 'delete', key: k });
          }
        }
      }
    }
    if (events.length === 0) return;
    this.revision = rev;
    this.states.set(rev, next);
    this.events.set(rev, events);
  }

  range(key: string, end: string, revision: number): [string, ModelKv][] {
    const state = this.states.get(revision === 0 ? this.revision : revision)!;
    return [...state].filter(([k]) => (end === '' ? k === key : byBytes(k, key) >= 0 && (end === '\0' || byBytes(k, end) < 0))).sort(([a], [c]) => byBytes(a, c));
  }
}

function byBytes(a: string, c: string): number {
  return Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(c, 'latin1'));
}

function asModel(kv: KeyValue): [string, ModelKv] {
  return [str(kv.key), { create: kv.createRevision, mod: kv.modRevision, version: kv.version, value: str(kv.value), lease: kv.lease }];
}

test('randomized: the store agrees with a naive model (seeded)', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const prng = new Prng(seed);
    const keys = ['a', 'ab', 'b', 'ba', 'c', '\x7f', '\x80', '\xff'];
    const ends = ['', '', '\0', 'b', 'c', '\x80', 'a'];
    const store = new MvccStore();
    const twin = new MvccStore();
    const model = new Model();
    for (let step = 0; step < 300; step++) {
      const roll = prng.int(100);
      const where = `seed ${seed} step ${step}`;
      if (roll < 35) {
        const key = prng.pick(keys);
        const value = `v${step}`;
        const lease = prng.pick([0, 0, 5, 6]);
        for (const s of [store, twin]) s.put(putReq(key, value, { lease }));
        model.write([{ put: [key, value, lease] }]);
      } else if (roll < 50) {
        const key = prng.pick(keys);
        const end = prng.pick(ends);
        for (const s of [store, twin]) s.deleteRange(delReq(key, end));
        model.write([{ del: [key, end] }]);
      } else if (roll < 70) {
        // A txn on distinct keys guarded by a version compare.
        const [k1, k2] = [prng.pick(keys), prng.pick(keys)];
        const expected = prng.pick([0, 1, 2, model.current.get(k1)?.version ?? 0]);
        const holds = (model.current.get(k1)?.version ?? 0) === expected;
        const success: RequestOp[] = [{ put: putReq(k1, `t${step}`) }];
        if (k2 !== k1) success.push({ put: putReq(k2, `u${step}`) });
        const failure: RequestOp[] = [{ deleteRange: delReq(k2) }];
        for (const s of [store, twin]) assert.equal(s.txn(txnReq([cmp(k1, 'version', 'equal', expected)], success, failure)).result.succeeded, holds, where);
        if (holds) model.write(k2 !== k1 ? [{ put: [k1, `t${step}`, 0] }, { put: [k2, `u${step}`, 0] }] : [{ put: [k1, `t${step}`, 0] }]);
        else model.write([{ del: [k2, ''] }]);
      } else if (roll < 75 && model.revision > model.compacted + 1) {
        const at = prng.range(Math.max(model.compacted + 1, 1), model.revision);
        for (const s of [store, twin]) s.compact(at);
        model.compacted = at;
      } else {
        const key = prng.pick(keys);
        const end = prng.pick(ends);
        const revision = prng.chance(0.5) ? 0 : prng.range(Math.max(model.compacted, 1), model.revision);
        assert.deepEqual(store.range(rangeReq(key, { rangeEnd: b(end), revision })).kvs.map(asModel), model.range(key, end, revision), where);
      }
      assert.equal(store.revision, model.revision, where);
      if (step % 50 === 49) checkEvents(store, model, prng, where);
    }
    for (const lease of [5, 6]) {
      const attached = [...model.current]
        .filter(([, kv]) => kv.lease === lease)
        .map(([k]) => k)
        .sort(byBytes);
      assert.deepEqual(store.keysWithLease(lease).map(str), attached, `seed ${seed}: lease ${lease}`);
    }
    sameBytes(twin.snapshot(), store.snapshot(), `seed ${seed}: same ops, same bytes`);
    assert.equal(twin.hash(0), store.hash(0));
    const restored = MvccStore.restore(store.snapshot());
    sameBytes(restored.snapshot(), store.snapshot());
    assert.equal(restored.hash(0), store.hash(0));
  }
});

/** Events after a revision at or above the compact one: every change, in order, with prev_kv from the model. */
function checkEvents(store: MvccStore, model: Model, prng: Prng, where: string): void {
  const after = prng.range(Math.max(model.compacted, 1), model.revision);
  const got = store.eventsSince(after, b('\0'), fromKey);
  assert.notEqual(got, 'compacted', where);
  const expected: unknown[] = [];
  for (let rev = after + 1; rev <= model.revision; rev++) {
    for (const event of model.events.get(rev) ?? []) {
      const kv = event.type === 'put' ? model.states.get(rev)!.get(event.key) : undefined;
      const prev = model.states.get(rev - 1)!.get(event.key);
      const create = kv !== undefined && kv.create === rev;
      expected.push([event.type, event.key, rev, kv?.version ?? 0, create ? undefined : prev?.mod]);
    }
  }
  assert.deepEqual(
    eventsOf(got).map((e) => [e.type, str(e.kv.key), e.kv.modRevision, e.kv.version, e.prevKv?.modRevision]),
    expected,
    where,
  );
  if (model.compacted > 1) assert.equal(store.eventsSince(model.compacted - 2, b('\0'), fromKey), 'compacted', where);
}
