// The MVCC key/value store behind the etcd v3 API: pure, deterministic and free of I/O, so
// every member of the group that applies the same Put, DeleteRange, Txn and Compact entries
// in the same order holds the same store (same snapshot bytes, same hash()).
//
// Semantics follow etcd 3.4 (mvcc/kvstore_txn.go, mvcc/key_index.go, etcdserver/apply.go,
// etcdserver/api/v3rpc/key.go); where etcd's behaviour is surprising the comment says so and
// test/etcd/mvcc.test.ts checks it against what a real etcd 3.4.23 answered.
//
// - One revision for the whole store, 1 at the start. A write transaction that changes
//   something (a Put, a DeleteRange that deletes, a Txn whose chosen ops change something)
//   takes the next revision; each change in it gets a sub-revision (its position), which only
//   orders changes and shows in hash().
// - Per key: a list of records (puts and tombstones) in revision order. A put of a missing
//   key starts a new generation (version 1, create revision = its revision).
// - compact(c) keeps, per key, every record above c and the one live at c (the last record
//   at or below c, if it is a put); tombstones at or below c go, as in etcd, so a range at c
//   still works and a watch from c misses a delete at c (etcd does too).
//
// Data structures and costs (n keys, v records in all, k keys in a range):
// - `entries`: keys sorted by unsigned bytes. Lookup O(log n); creating a key splices the
//   array, O(n) — fine for the store sizes a Raft group holds in memory (the service bounds
//   the store with its quota on sizeBytes()). A range at revision r costs O(log n + k log v).
// - `log`: every record kept, in (revision, sub) order, shared with the entries, for
//   eventsSince() (O(log v + events)) and hash() (O(v)). compact() is O(v).
// - `leases`: lease id -> keys attached now; keysWithLease is O(k log k) for the k keys of the lease.

import { Packr } from 'msgpackr';
import { assert, unreachable } from '../stdx/assert.js';

export type Bytes = Uint8Array;

export interface KeyValue {
  readonly key: Bytes;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly value: Bytes;
  readonly lease: number;
}

export type SortOrder = 'none' | 'ascend' | 'descend';
export type SortTarget = 'key' | 'version' | 'create' | 'mod' | 'value';

export interface RangeRequest {
  readonly key: Bytes;
  readonly rangeEnd: Bytes;
  readonly limit: number;
  readonly revision: number;
  readonly sortOrder: SortOrder;
  readonly sortTarget: SortTarget;
  readonly keysOnly: boolean;
  readonly countOnly: boolean;
  readonly minModRevision: number;
  readonly maxModRevision: number;
  readonly minCreateRevision: number;
  readonly maxCreateRevision: number;
}

export interface RangeResult {
  readonly kvs: KeyValue[];
  readonly more: boolean;
  readonly count: number;
}

export interface PutRequest {
  readonly key: Bytes;
  readonly value: Bytes;
  readonly lease: number;
  readonly prevKv: boolean;
  readonly ignoreValue: boolean;
  readonly ignoreLease: boolean;
}

export interface PutResult {
  readonly prevKv: KeyValue | undefined;
}

export interface DeleteRangeRequest {
  readonly key: Bytes;
  readonly rangeEnd: Bytes;
  readonly prevKv: boolean;
}

export interface DeleteRangeResult {
  readonly deleted: number;
  readonly prevKvs: KeyValue[];
}

export type CompareResult = 'equal' | 'greater' | 'less' | 'not_equal';
export type CompareTarget = 'version' | 'create' | 'mod' | 'value' | 'lease';

export interface Compare {
  readonly result: CompareResult;
  readonly target: CompareTarget;
  readonly key: Bytes;
  readonly rangeEnd: Bytes;
  /** a number for version/create/mod/lease, bytes for value */
  readonly operand: number | Bytes;
}

export type RequestOp = { readonly range: RangeRequest } | { readonly put: PutRequest } | { readonly deleteRange: DeleteRangeRequest } | { readonly txn: TxnRequest };
export type ResponseOp = { readonly range: RangeResult } | { readonly put: PutResult } | { readonly deleteRange: DeleteRangeResult } | { readonly txn: TxnResult };

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly RequestOp[];
  readonly failure: readonly RequestOp[];
}

export interface TxnResult {
  readonly succeeded: boolean;
  readonly responses: ResponseOp[];
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly kv: KeyValue;
  readonly prevKv: KeyValue | undefined;
}

export type MvccErrorCode = 'compacted' | 'future-revision' | 'duplicate-key' | 'key-not-found' | 'too-many-ops';

/** etcd's error texts, word for word: clients match on them. */
const errorMessages: Readonly<Record<MvccErrorCode, string>> = {
  compacted: 'etcdserver: mvcc: required revision has been compacted',
  'future-revision': 'etcdserver: mvcc: required revision is a future revision',
  'duplicate-key': 'etcdserver: duplicate key given in txn request',
  'key-not-found': 'etcdserver: key not found',
  'too-many-ops': 'etcdserver: too many operations in txn request',
};

/** An operating error with etcd's exact message (STYLE.md 9). */
export class MvccError extends Error {
  override name = 'MvccError';
  constructor(readonly code: MvccErrorCode) {
    super(errorMessages[code]);
  }
}

/** The outcome of one write (a Put, DeleteRange or Txn log entry). */
export interface WriteOutcome<R> {
  readonly result: R;
  /** Events of this write, in order, all at `revision` */
  readonly events: WatchEvent[];
  /** The store's revision after the write (unchanged if nothing changed) */
  readonly revision: number;
}

/** etcd's default --max-txn-ops: the most compares, or ops in one branch, of a txn. */
export const txnOpsMax = 128;

/** The first field of a snapshot: bumped when the layout changes. */
const snapshotFormat = 1;

/** Per record, a rough share of index and bookkeeping, for sizeBytes(). */
const recordOverheadBytes = 48;

const emptyBytes: Bytes = new Uint8Array(0);

/** Plain mode: arrays only, no msgpackr records, so every member decodes alike. */
const packr = new Packr({ useRecords: false });

/**
 * One change of one key: a put (kv set) or a tombstone (kv undefined).
 * Invariant: kv === undefined || kv.modRevision === main.
 */
interface Rec {
  readonly main: number;
  readonly sub: number;
  readonly key: Bytes;
  readonly kv: KeyValue | undefined;
}

/** Invariant: recs is non-empty, strictly increasing in (main, sub); recs[0] is a put. */
interface Entry {
  readonly key: Bytes;
  recs: Rec[];
}

/** One write transaction in progress. Invariant: sub = number of changes so far. */
interface Write {
  readonly main: number;
  sub: number;
  readonly firstLog: number;
}

function compareBytes(a: Bytes, b: Bytes): number {
  return Buffer.compare(a, b);
}

function bytesEqual(a: Bytes, b: Bytes): boolean {
  return Buffer.compare(a, b) === 0;
}

/** A byte-exact map key for a key. */
function keyId(key: Bytes): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

function isFromKey(rangeEnd: Bytes): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

function compareRec(a: { main: number; sub: number }, b: { main: number; sub: number }): number {
  return a.main !== b.main ? a.main - b.main : a.sub - b.sub;
}

/** The last record at or below `revision`, or undefined. */
function recAt(entry: Entry, revision: number): Rec | undefined {
  const recs = entry.recs;
  let low = 0;
  let high = recs.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (recs[middle]!.main <= revision) low = middle + 1;
    else high = middle;
  }
  return low === 0 ? undefined : recs[low - 1];
}

/** The key's value at `revision`: undefined if it did not exist then. */
function kvAt(entry: Entry, revision: number): KeyValue | undefined {
  return recAt(entry, revision)?.kv;
}

function checkInteger(value: number, what: string): void {
  assert(Number.isSafeInteger(value), `${what} must be a safe integer, got ${value}`);
}

function zeroKv(key: Bytes): KeyValue {
  return { key, createRevision: 0, modRevision: 0, version: 0, value: emptyBytes, lease: 0 };
}

export class MvccStore {
  /** Invariant: sorted by key (unsigned bytes), keys distinct. */
  private entries: Entry[] = [];
  /** Invariant: every record of every entry, strictly increasing in (main, sub). */
  private log: Rec[] = [];
  /** Invariant: lease -> the keys whose current value carries it (never lease 0, never an empty map). */
  private readonly leases = new Map<number, Map<string, Bytes>>();
  /** Invariant: >= 1; >= the main revision of every record. */
  private currentRevision = 1;
  /** -1 until the first compaction (etcd's compactMainRev). Invariant: compacted <= currentRevision. */
  private compacted = -1;
  private bytesHeld = 0;

  /** The current revision: 1 in a fresh store (a fresh etcd's header revision is 1). */
  get revision(): number {
    return this.currentRevision;
  }

  /** The revision of the last compaction; -1 if there was none (as etcd's compactMainRev). */
  get compactRevision(): number {
    return this.compacted;
  }

  // ---- Reads -------------------------------------------------------------------------------

  range(request: RangeRequest): RangeResult {
    this.checkReadRevision(request.revision);
    return this.rangeAt(request, this.currentRevision);
  }

  /** etcd's rangeKeys checks: a future revision, then a compacted one (a range at the compact revision works). */
  private checkReadRevision(revision: number): void {
    checkInteger(revision, 'revision');
    if (revision > this.currentRevision) throw new MvccError('future-revision');
    if (revision > 0 && revision < this.compacted) throw new MvccError('compacted');
  }

  /**
   * etcdserver/apply.go Range, at `current` (the revision a txn's earlier writes made).
   * count is the number of keys in the range at that revision, before the min/max filters and
   * the limit (etcd counts in mvcc, then prunes); more says the filtered list exceeded limit.
   */
  private rangeAt(request: RangeRequest, current: number): RangeResult {
    checkInteger(request.limit, 'limit');
    const revision = request.revision > 0 ? request.revision : current;
    const all = this.kvsInRange(request.key, request.rangeEnd, revision);
    if (request.countOnly) return { kvs: [], more: false, count: all.length };
    let kvs = all.filter((kv) => keepByRevisionFilters(request, kv));
    kvs = sortKvs(kvs, request.sortOrder, request.sortTarget);
    let more = false;
    if (request.limit > 0 && kvs.length > request.limit) {
      kvs = kvs.slice(0, request.limit);
      more = true;
    }
    if (request.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: emptyBytes }));
    return { kvs, more, count: all.length };
  }

  /** The live values in [key, rangeEnd) at `revision`, in key order. */
  private kvsInRange(key: Bytes, rangeEnd: Bytes, revision: number): KeyValue[] {
    const kvs: KeyValue[] = [];
    const [first, end] = this.entrySpan(key, rangeEnd);
    for (let i = first; i < end; i++) {
      const kv = kvAt(this.entries[i]!, revision);
      if (kv !== undefined) kvs.push(kv);
    }
    return kvs;
  }

  /** Indices [first, end) of the entries in [key, rangeEnd): empty rangeEnd = key only, "\0" = every key >= key. */
  private entrySpan(key: Bytes, rangeEnd: Bytes): [number, number] {
    const first = this.lowerBound(key);
    if (rangeEnd.length === 0) {
      const found = first < this.entries.length && bytesEqual(this.entries[first]!.key, key);
      return [first, found ? first + 1 : first];
    }
    if (isFromKey(rangeEnd)) return [first, this.entries.length];
    if (compareBytes(rangeEnd, key) <= 0) return [first, first];
    return [first, this.lowerBound(rangeEnd)];
  }

  /** The index of the first entry whose key is >= key. */
  private lowerBound(key: Bytes): number {
    let low = 0;
    let high = this.entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareBytes(this.entries[middle]!.key, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private findEntry(key: Bytes): Entry | undefined {
    const at = this.lowerBound(key);
    const entry = this.entries[at];
    return entry !== undefined && bytesEqual(entry.key, key) ? entry : undefined;
  }

  // ---- Writes ------------------------------------------------------------------------------

  put(request: PutRequest): WriteOutcome<PutResult> {
    if ((request.ignoreValue || request.ignoreLease) && this.findLive(request.key) === undefined) throw new MvccError('key-not-found');
    const write = this.beginWrite();
    const result = this.putIn(write, request);
    return this.endWrite(write, result);
  }

  deleteRange(request: DeleteRangeRequest): WriteOutcome<DeleteRangeResult> {
    const write = this.beginWrite();
    const result = this.deleteIn(write, request);
    return this.endWrite(write, result);
  }

  txn(request: TxnRequest): WriteOutcome<TxnResult> {
    // The checks etcd makes at the gRPC edge (v3rpc/key.go), on both branches...
    checkTxnShape(request, txnOpsMax);
    checkIntervals(request.success);
    checkIntervals(request.failure);
    // ...and the ones it makes when applying (apply.go Txn), on the chosen path, all before any change.
    const path = this.comparePath(request);
    this.checkPath(request, path);
    const write = this.beginWrite();
    const cursor = { at: 0 };
    const result = this.txnIn(write, request, path, cursor);
    assert(cursor.at === path.length, 'the txn path is used up');
    return this.endWrite(write, result);
  }

  /**
   * The Range, Put and DeleteRange ops a txn would run, in order (nested txns followed by the
   * branch their compares pick, all compares seeing the state now): the etcd service checks
   * the leases of the puts among them before applying (apply.go checkRequestPut).
   */
  opsOnTxnPath(request: TxnRequest): RequestOp[] {
    return opsOnPath(request, this.comparePath(request));
  }

  /**
   * Deletes each live key of `keys` in ONE write (one revision, one event each, in the given
   * order), as etcd's lessor Revoke deletes a lease's keys in one transaction; no op limit.
   */
  deleteKeys(keys: readonly Bytes[]): WriteOutcome<DeleteRangeResult> {
    const write = this.beginWrite();
    let deleted = 0;
    for (const key of keys) deleted += this.deleteIn(write, { key, rangeEnd: emptyBytes, prevKv: false }).deleted;
    return this.endWrite(write, { deleted, prevKvs: [] });
  }

  private beginWrite(): Write {
    return { main: this.currentRevision + 1, sub: 0, firstLog: this.log.length };
  }

  private endWrite<R>(write: Write, result: R): WriteOutcome<R> {
    if (write.sub === 0) return { result, events: [], revision: this.currentRevision };
    this.currentRevision = write.main;
    const events = this.log.slice(write.firstLog).map((rec) => this.eventOf(rec));
    assert(events.length === write.sub, 'one event per change');
    return { result, events, revision: this.currentRevision };
  }

  /** What a write sees: the state before it, plus its own earlier changes. */
  private readRevision(write: Write): number {
    return write.sub > 0 ? write.main : write.main - 1;
  }

  private findLive(key: Bytes): KeyValue | undefined {
    const entry = this.findEntry(key);
    return entry === undefined ? undefined : kvAt(entry, this.currentRevision);
  }

  private putIn(write: Write, request: PutRequest): PutResult {
    checkInteger(request.lease, 'lease');
    let entry = this.findEntry(request.key);
    const previous = entry === undefined ? undefined : kvAt(entry, this.readRevision(write));
    // Checked before the write began: a txn's own deletes cannot remove the key first (checkIntervals).
    assert(!(request.ignoreValue || request.ignoreLease) || previous !== undefined, 'ignore_value/ignore_lease put of a live key');
    if (entry === undefined) entry = this.createEntry(request.key);
    const kv: KeyValue = {
      key: entry.key,
      createRevision: previous?.createRevision ?? write.main,
      modRevision: write.main,
      version: (previous?.version ?? 0) + 1,
      value: request.ignoreValue ? previous!.value : Uint8Array.from(request.value),
      lease: request.ignoreLease ? previous!.lease : request.lease,
    };
    this.append(write, entry, kv);
    if (previous !== undefined) this.detachLease(previous);
    this.attachLease(kv);
    return { prevKv: request.prevKv ? previous : undefined };
  }

  private deleteIn(write: Write, request: DeleteRangeRequest): DeleteRangeResult {
    const [first, end] = this.entrySpan(request.key, request.rangeEnd);
    const readRevision = this.readRevision(write);
    const victims: KeyValue[] = [];
    const doomed: Entry[] = [];
    for (let i = first; i < end; i++) {
      const entry = this.entries[i]!;
      const kv = kvAt(entry, readRevision);
      if (kv === undefined) continue;
      victims.push(kv);
      doomed.push(entry);
    }
    for (let i = 0; i < doomed.length; i++) {
      this.append(write, doomed[i]!, undefined);
      this.detachLease(victims[i]!);
    }
    return { deleted: victims.length, prevKvs: request.prevKv ? victims : [] };
  }

  private createEntry(key: Bytes): Entry {
    const at = this.lowerBound(key);
    const entry: Entry = { key: Uint8Array.from(key), recs: [] };
    this.entries.splice(at, 0, entry);
    return entry;
  }

  private append(write: Write, entry: Entry, kv: KeyValue | undefined): void {
    const rec: Rec = { main: write.main, sub: write.sub, key: entry.key, kv };
    write.sub++;
    entry.recs.push(rec);
    this.log.push(rec);
    this.bytesHeld += recBytes(rec);
  }

  private attachLease(kv: KeyValue): void {
    if (kv.lease === 0) return;
    let keys = this.leases.get(kv.lease);
    if (keys === undefined) {
      keys = new Map();
      this.leases.set(kv.lease, keys);
    }
    keys.set(keyId(kv.key), kv.key);
  }

  private detachLease(kv: KeyValue): void {
    if (kv.lease === 0) return;
    const keys = this.leases.get(kv.lease);
    assert(keys?.delete(keyId(kv.key)) === true, 'a key with a lease is attached to it');
    if (keys!.size === 0) this.leases.delete(kv.lease);
  }

  // ---- Transactions ------------------------------------------------------------------------

  /**
   * The outcome of every compare on the path the txn will take, in pre-order (etcd's txnPath):
   * all compares, nested ones included, see the state before the txn (apply.go compareToPath).
   */
  private comparePath(request: TxnRequest): boolean[] {
    const path: boolean[] = [];
    const visit = (txn: TxnRequest): void => {
      const succeeded = txn.compare.every((compare) => this.evaluate(compare));
      path.push(succeeded);
      for (const op of succeeded ? txn.success : txn.failure) if ('txn' in op) visit(op.txn);
    };
    visit(request); // depth is bounded: checkTxnShape shrinks the op budget at every level
    return path;
  }

  /** apply.go applyCompare: every key in the range must satisfy it; no key compares as zero values, except that a value compare fails. */
  private evaluate(compare: Compare): boolean {
    const kvs = this.kvsInRange(compare.key, compare.rangeEnd, this.currentRevision);
    if (kvs.length === 0) return compare.target === 'value' ? false : compareKv(compare, zeroKv(compare.key));
    return kvs.every((kv) => compareKv(compare, kv));
  }

  /** apply.go checkRequests: ignore_value/ignore_lease puts need the key (checkRequestPut), then range revisions (checkRequestRange). */
  private checkPath(request: TxnRequest, path: readonly boolean[]): void {
    const ops = opsOnPath(request, path);
    for (const op of ops) {
      if ('put' in op && (op.put.ignoreValue || op.put.ignoreLease) && this.findLive(op.put.key) === undefined) throw new MvccError('key-not-found');
    }
    for (const op of ops) {
      if (!('range' in op)) continue;
      checkInteger(op.range.revision, 'revision');
      if (op.range.revision === 0) continue;
      if (op.range.revision > this.currentRevision) throw new MvccError('future-revision');
      if (op.range.revision < this.compacted) throw new MvccError('compacted');
    }
  }

  private txnIn(write: Write, request: TxnRequest, path: readonly boolean[], cursor: { at: number }): TxnResult {
    const succeeded = path[cursor.at++]!;
    const responses: ResponseOp[] = [];
    for (const op of succeeded ? request.success : request.failure) {
      if ('range' in op) responses.push({ range: this.rangeAt(op.range, this.readRevision(write)) });
      else if ('put' in op) responses.push({ put: this.putIn(write, op.put) });
      else if ('deleteRange' in op) responses.push({ deleteRange: this.deleteIn(write, op.deleteRange) });
      else responses.push({ txn: this.txnIn(write, op.txn, path, cursor) });
    }
    return { succeeded, responses };
  }

  // ---- Compaction, watches, leases ---------------------------------------------------------

  compact(revision: number): void {
    checkInteger(revision, 'revision');
    if (revision <= this.compacted) throw new MvccError('compacted');
    if (revision > this.currentRevision) throw new MvccError('future-revision');
    this.compacted = revision;
    const dropped = new Set<Rec>();
    const kept: Entry[] = [];
    for (const entry of this.entries) {
      const live = recAt(entry, revision);
      const recs: Rec[] = [];
      for (const rec of entry.recs) {
        if (rec.main > revision || (rec === live && rec.kv !== undefined)) recs.push(rec);
        else dropped.add(rec);
      }
      if (recs.length === 0) continue;
      entry.recs = recs;
      kept.push(entry);
    }
    this.entries = kept;
    this.log = this.log.filter((rec) => !dropped.has(rec));
    for (const rec of dropped) this.bytesHeld -= recBytes(rec);
  }

  /** Events with mod revision > `after`, for keys in [key, rangeEnd) (rangeEnd empty: key only; "\0": every key >= key), in revision order; 'compacted' if after+1 < compactRevision. */
  eventsSince(after: number, key: Bytes, rangeEnd: Bytes): WatchEvent[] | 'compacted' {
    checkInteger(after, 'after');
    // etcd cancels a watcher with minRev < compactMainRev (watcher_group.go chooseAll): a
    // watch from the compact revision itself is served, from the records kept at it.
    if (after + 1 < this.compacted) return 'compacted';
    let low = 0;
    let high = this.log.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.log[middle]!.main <= after) low = middle + 1;
      else high = middle;
    }
    const events: WatchEvent[] = [];
    for (let i = low; i < this.log.length; i++) {
      const rec = this.log[i]!;
      if (inRange(rec.key, key, rangeEnd)) events.push(this.eventOf(rec));
    }
    return events;
  }

  /**
   * A change as a watch event. A delete's kv holds only the key and the mod revision
   * (watchable_store_txn.go). prevKv is what v3rpc/watch.go adds for prev_kv: the key's value
   * at the revision before, except for a create event (create == mod) or when that revision
   * is compacted.
   */
  private eventOf(rec: Rec): WatchEvent {
    const kv = rec.kv ?? { ...zeroKv(rec.key), modRevision: rec.main };
    const create = rec.kv !== undefined && rec.kv.createRevision === rec.main;
    let prevKv: KeyValue | undefined;
    if (!create && rec.main - 1 >= this.compacted) {
      const entry = this.findEntry(rec.key);
      assert(entry !== undefined, 'a logged record has its entry');
      prevKv = kvAt(entry, rec.main - 1);
    }
    return { type: rec.kv === undefined ? 'delete' : 'put', kv, prevKv };
  }

  /** Keys currently attached to `lease` (for lease revoke/expiry later), in key order. */
  keysWithLease(lease: number): Bytes[] {
    const keys = [...(this.leases.get(lease)?.values() ?? [])];
    return keys.sort(compareBytes);
  }

  // ---- Hash and size -----------------------------------------------------------------------

  /**
   * etcd's HashKV (mvcc/kvstore.go HashByRev), bit for bit: CRC-32C over "key", then, in
   * revision order, each kept record's bolt key (revision bytes, 't' for a tombstone) and its
   * protobuf KeyValue, up to `revision` (0: current); records at or below the compact revision
   * count only if live at `revision`. Throws compacted (revision <= compactRevision) or future-revision.
   */
  hash(revision: number): number {
    checkInteger(revision, 'revision');
    if (revision > 0 && revision <= this.compacted) throw new MvccError('compacted');
    if (revision > this.currentRevision) throw new MvccError('future-revision');
    const upper = revision === 0 ? this.currentRevision : revision;
    const keep = new Set<Rec>();
    for (const entry of this.entries) {
      const live = recAt(entry, upper);
      if (live?.kv !== undefined) keep.add(live);
    }
    let crc = crc32cUpdate(0xffffffff, Buffer.from('key'));
    for (const rec of this.log) {
      if (rec.main > upper) break;
      if (rec.main <= this.compacted && keep.size > 0 && !keep.has(rec)) continue;
      crc = crc32cUpdate(crc, revisionBytes(rec));
      crc = crc32cUpdate(crc, marshalKeyValue(rec.kv ?? zeroKv(rec.key)));
    }
    return (crc ^ 0xffffffff) >>> 0;
  }

  /** Approximate bytes held (for Maintenance.Status db size): keys and values of every kept record plus a fixed overhead each. */
  sizeBytes(): number {
    return this.bytesHeld;
  }

  // ---- Snapshots ---------------------------------------------------------------------------

  /**
   * The whole store, history included:
   *
   *   [format, revision, compactRevision, [key, [main, sub, createRevision, version, value | null, lease, ...], ...]]
   *
   * with value null for a tombstone (whose create, version and lease are 0). Leases and the
   * log are rebuilt from the records.
   */
  snapshot(): Uint8Array {
    const keys: unknown[] = [];
    for (const entry of this.entries) {
      const recs: unknown[] = [];
      for (const rec of entry.recs) {
        const kv = rec.kv;
        recs.push(rec.main, rec.sub, kv?.createRevision ?? 0, kv?.version ?? 0, kv === undefined ? null : kv.value, kv?.lease ?? 0);
      }
      keys.push(entry.key, recs);
    }
    // A copy: msgpackr's result is a view into its reusable buffer.
    return Uint8Array.from(packr.pack([snapshotFormat, this.currentRevision, this.compacted, keys]));
  }

  /** A store from snapshot() bytes; throws an Error saying what is wrong with malformed data. */
  static restore(data: Uint8Array): MvccStore {
    const { revision, compacted, entries } = decodeSnapshot(data);
    const store = new MvccStore();
    store.install(revision, compacted, entries);
    return store;
  }

  /** Used by restore only: installs decoded, validated state and rebuilds the log and the leases. */
  private install(revision: number, compacted: number, entries: Entry[]): void {
    this.currentRevision = revision;
    this.compacted = compacted;
    this.entries = entries;
    this.log = entries.flatMap((entry) => entry.recs).sort(compareRec);
    for (let i = 1; i < this.log.length; i++) {
      if (compareRec(this.log[i - 1]!, this.log[i]!) >= 0) throw snapshotError(`two records at revision ${this.log[i]!.main}.${this.log[i]!.sub}`);
    }
    for (const rec of this.log) this.bytesHeld += recBytes(rec);
    for (const entry of entries) {
      const kv = kvAt(entry, revision);
      if (kv !== undefined) this.attachLease(kv);
    }
  }
}

// ---- Range helpers ---------------------------------------------------------------------------

function inRange(candidate: Bytes, key: Bytes, rangeEnd: Bytes): boolean {
  if (rangeEnd.length === 0) return bytesEqual(candidate, key);
  if (compareBytes(candidate, key) < 0) return false;
  return isFromKey(rangeEnd) || compareBytes(candidate, rangeEnd) < 0;
}

/** apply.go's pruneKVs on the min/max revision filters (0: no bound). */
function keepByRevisionFilters(request: RangeRequest, kv: KeyValue): boolean {
  if (request.maxModRevision !== 0 && kv.modRevision > request.maxModRevision) return false;
  if (request.minModRevision !== 0 && kv.modRevision < request.minModRevision) return false;
  if (request.maxCreateRevision !== 0 && kv.createRevision > request.maxCreateRevision) return false;
  if (request.minCreateRevision !== 0 && kv.createRevision < request.minCreateRevision) return false;
  return true;
}

/**
 * apply.go's sort: a target other than key with order none sorts ascending (key order is the
 * natural order). Ties keep key order: Array.prototype.sort is stable, as Go's sort.Sort is
 * for up to 12 items (insertion sort); etcd's order of ties among more is Go's pdqsort's.
 */
function sortKvs(kvs: KeyValue[], order: SortOrder, target: SortTarget): KeyValue[] {
  const effective: SortOrder = order === 'none' && target !== 'key' ? 'ascend' : order;
  if (effective === 'none') return kvs;
  const sign = effective === 'ascend' ? 1 : -1;
  const by = sortKey(target);
  return [...kvs].sort((a, b) => sign * by(a, b));
}

function sortKey(target: SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case 'key':
      return (a, b) => compareBytes(a.key, b.key);
    case 'version':
      return (a, b) => a.version - b.version;
    case 'create':
      return (a, b) => a.createRevision - b.createRevision;
    case 'mod':
      return (a, b) => a.modRevision - b.modRevision;
    case 'value':
      return (a, b) => compareBytes(a.value, b.value);
    default:
      return unreachable(target, 'sort target');
  }
}

// ---- Txn helpers -----------------------------------------------------------------------------

function compareKv(compare: Compare, kv: KeyValue): boolean {
  let order: number;
  if (compare.target === 'value') {
    assert(compare.operand instanceof Uint8Array, 'a value compare has a bytes operand');
    order = compareBytes(kv.value, compare.operand);
  } else {
    assert(typeof compare.operand === 'number', `a ${compare.target} compare has a number operand`);
    order = Math.sign(targetNumber(compare.target, kv) - compare.operand);
  }
  switch (compare.result) {
    case 'equal':
      return order === 0;
    case 'not_equal':
      return order !== 0;
    case 'greater':
      return order > 0;
    case 'less':
      return order < 0;
    default:
      return unreachable(compare.result, 'compare result');
  }
}

function targetNumber(target: Exclude<CompareTarget, 'value'>, kv: KeyValue): number {
  switch (target) {
    case 'version':
      return kv.version;
    case 'create':
      return kv.createRevision;
    case 'mod':
      return kv.modRevision;
    case 'lease':
      return kv.lease;
    default:
      return unreachable(target, 'compare target');
  }
}

/** The non-txn ops on the chosen path, in order (nested txns followed by their own choice). */
function opsOnPath(request: TxnRequest, path: readonly boolean[]): RequestOp[] {
  const ops: RequestOp[] = [];
  let at = 0;
  const visit = (txn: TxnRequest): void => {
    const succeeded = path[at++]!;
    for (const op of succeeded ? txn.success : txn.failure) {
      if ('txn' in op) visit(op.txn);
      else ops.push(op);
    }
  };
  visit(request);
  return ops;
}

/**
 * v3rpc/key.go checkTxnRequest: at most `opsMax` compares and at most `opsMax` ops per branch;
 * a nested txn gets what its parent left (opsMax minus the parent's largest count), which
 * also bounds the nesting depth. An op that is none of the four is etcd's "key not found".
 */
function checkTxnShape(request: TxnRequest, opsMax: number): void {
  const count = Math.max(request.compare.length, request.success.length, request.failure.length);
  if (count > opsMax) throw new MvccError('too-many-ops');
  for (const op of [...request.success, ...request.failure]) {
    const kinds = ['range', 'put', 'deleteRange', 'txn'].filter((kind) => typeof op === 'object' && op !== null && kind in op);
    if (kinds.length !== 1) throw new MvccError('key-not-found');
    if ('txn' in op) checkTxnShape(op.txn, opsMax - count);
  }
}

interface Intervals {
  /** Put keys -> whether any of those puts has ignore_value or ignore_lease. */
  readonly puts: Map<string, boolean>;
  readonly deletes: DeleteRangeRequest[];
}

/**
 * v3rpc/key.go checkIntervals: a put may not hit a key another put of the txn writes, nor a
 * deleted range, within the rules etcd applies (then/else of one nested txn may put the
 * same key; a put in a nested txn is not checked against a delete in a later sibling).
 *
 * etcd builds a delete with range_end "\0" as the interval [key, "\0"), which holds no key,
 * so `del --from-key a` and `put b` in one txn pass (checked against etcd 3.4.23). We keep
 * that, except for a put with ignore_value or ignore_lease: etcd panics applying it when the
 * delete ran first, and we refuse it as a duplicate key instead.
 */
function checkIntervals(ops: readonly RequestOp[]): Intervals {
  const deletes: DeleteRangeRequest[] = [];
  for (const op of ops) if ('deleteRange' in op) deletes.push(op.deleteRange);
  const puts = new Map<string, boolean>();
  const hits = (id: string, ignore: boolean): boolean => deletes.some((d) => deleteHits(d, Buffer.from(id, 'latin1'), ignore));
  for (const op of ops) {
    if (!('txn' in op)) continue;
    const then = checkIntervals(op.txn.success);
    const otherwise = checkIntervals(op.txn.failure);
    for (const [id, ignore] of then.puts) {
      if (puts.has(id) || hits(id, ignore)) throw new MvccError('duplicate-key');
      puts.set(id, ignore);
    }
    for (const [id, ignore] of otherwise.puts) {
      if (puts.has(id) && !then.puts.has(id)) throw new MvccError('duplicate-key');
      if (hits(id, ignore)) throw new MvccError('duplicate-key');
      puts.set(id, ignore || puts.get(id) === true);
    }
    deletes.push(...then.deletes, ...otherwise.deletes);
  }
  for (const op of ops) {
    if (!('put' in op)) continue;
    const id = keyId(op.put.key);
    const ignore = op.put.ignoreValue || op.put.ignoreLease;
    if (puts.has(id) || hits(id, ignore)) throw new MvccError('duplicate-key');
    puts.set(id, ignore);
  }
  return { puts, deletes };
}

function deleteHits(deletion: DeleteRangeRequest, key: Bytes, ignorePut: boolean): boolean {
  if (deletion.rangeEnd.length === 0) return bytesEqual(deletion.key, key);
  if (compareBytes(deletion.key, key) > 0) return false;
  if (isFromKey(deletion.rangeEnd)) return ignorePut;
  return compareBytes(key, deletion.rangeEnd) < 0;
}

// ---- Hash helpers ----------------------------------------------------------------------------

function recBytes(rec: Rec): number {
  return rec.key.length + (rec.kv?.value.length ?? 0) + recordOverheadBytes;
}

/** CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the table etcd's HashKV uses. */
const crc32cTable: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** Feeds `data` into a running CRC-32C state (start with 0xffffffff, finish with ^ 0xffffffff). */
export function crc32cUpdate(state: number, data: Uint8Array): number {
  let crc = state >>> 0;
  for (let i = 0; i < data.length; i++) crc = crc32cTable[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

/** etcd's bolt key of a record: main and sub as big-endian 64-bit, joined by '_', and 't' for a tombstone. */
function revisionBytes(rec: Rec): Uint8Array {
  const bytes = Buffer.alloc(rec.kv === undefined ? 18 : 17);
  bytes.writeBigUInt64BE(BigInt(rec.main), 0);
  bytes[8] = 0x5f;
  bytes.writeBigUInt64BE(BigInt(rec.sub), 9);
  if (rec.kv === undefined) bytes[17] = 0x74;
  return bytes;
}

/** mvccpb.KeyValue in protobuf, as gogoproto writes it: fields in order, zero values left out. */
function marshalKeyValue(kv: KeyValue): Uint8Array {
  const parts: number[] = [];
  const varint = (value: bigint): void => {
    let rest = BigInt.asUintN(64, value);
    while (rest >= 0x80n) {
      parts.push(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    parts.push(Number(rest));
  };
  const bytesField = (tag: number, value: Bytes): void => {
    if (value.length === 0) return;
    parts.push(tag);
    varint(BigInt(value.length));
    for (const byte of value) parts.push(byte);
  };
  const intField = (tag: number, value: number): void => {
    if (value === 0) return;
    parts.push(tag);
    varint(BigInt(value));
  };
  bytesField(0x0a, kv.key);
  intField(0x10, kv.createRevision);
  intField(0x18, kv.modRevision);
  intField(0x20, kv.version);
  bytesField(0x2a, kv.value);
  intField(0x30, kv.lease);
  return Uint8Array.from(parts);
}

// ---- Snapshot decoding (STYLE.md 6: every field checked) -------------------------------------

function snapshotError(detail: string): Error {
  return new Error(`malformed etcd MVCC snapshot: ${detail}`);
}

function integerField(value: unknown, what: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw snapshotError(`${what} is not an integer >= ${min}: ${String(value)}`);
  return value;
}

function bytesField(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw snapshotError(`${what} is not bytes`);
  return Uint8Array.from(value);
}

function arrayField(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw snapshotError(`${what} is not an array`);
  return value;
}

function decodeSnapshot(data: Uint8Array): { revision: number; compacted: number; entries: Entry[] } {
  let raw: unknown;
  try {
    raw = packr.unpack(data);
  } catch (error) {
    throw snapshotError(`not MessagePack (${error instanceof Error ? error.message : String(error)})`);
  }
  const top = arrayField(raw, 'the snapshot');
  if (top.length !== 4) throw snapshotError(`expected 4 fields, got ${top.length}`);
  if (top[0] !== snapshotFormat) throw snapshotError(`unknown format ${String(top[0])}`);
  const revision = integerField(top[1], 'revision', 1);
  const compacted = integerField(top[2], 'compact revision', -1);
  if (compacted > revision) throw snapshotError(`compact revision ${compacted} is above revision ${revision}`);
  const flat = arrayField(top[3], 'the key list');
  if (flat.length % 2 !== 0) throw snapshotError('the key list has an odd length');
  const entries: Entry[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const key = bytesField(flat[i], `key ${i / 2}`);
    const previous = entries[entries.length - 1];
    if (previous !== undefined && compareBytes(previous.key, key) >= 0) throw snapshotError(`keys out of order at key ${i / 2}`);
    entries.push({ key, recs: decodeRecs(key, arrayField(flat[i + 1], `records of key ${i / 2}`), revision, compacted) });
  }
  return { revision, compacted, entries };
}

const recFieldCount = 6;

/** One key's records: in order, starting with a put, consistent generations, at most one at or below the compact revision. */
function decodeRecs(key: Bytes, flat: unknown[], revision: number, compacted: number): Rec[] {
  if (flat.length === 0 || flat.length % recFieldCount !== 0) throw snapshotError(`a key has ${flat.length} record fields`);
  const recs: Rec[] = [];
  for (let i = 0; i < flat.length; i += recFieldCount) {
    const what = `record ${i / recFieldCount} of a key`;
    const main = integerField(flat[i], `${what}: revision`, 2);
    const sub = integerField(flat[i + 1], `${what}: sub-revision`, 0);
    const createRevision = integerField(flat[i + 2], `${what}: create revision`, 0);
    const version = integerField(flat[i + 3], `${what}: version`, 0);
    const value = flat[i + 4];
    const lease = integerField(flat[i + 5], `${what}: lease`, Number.MIN_SAFE_INTEGER);
    if (main > revision) throw snapshotError(`${what} is at ${main}, above the revision ${revision}`);
    const last = recs[recs.length - 1];
    if (last !== undefined && compareRec(last, { main, sub }) >= 0) throw snapshotError(`${what} is out of order`);
    if (last !== undefined && main <= compacted) throw snapshotError(`${what}: two records at or below the compact revision`);
    if (value === null) {
      if (last?.kv === undefined || createRevision !== 0 || version !== 0 || lease !== 0) throw snapshotError(`${what}: a tombstone must follow a put and carry zeros`);
      recs.push({ main, sub, key, kv: undefined });
      continue;
    }
    const kv: KeyValue = { key, createRevision, modRevision: main, version, value: bytesField(value, `${what}: value`), lease };
    checkGeneration(last, kv, what);
    recs.push({ main, sub, key, kv });
  }
  return recs;
}

function checkGeneration(last: Rec | undefined, kv: KeyValue, what: string): void {
  if (kv.version < 1 || kv.createRevision < 2 || kv.createRevision > kv.modRevision) throw snapshotError(`${what}: bad version or create revision`);
  if (last === undefined) return; // the first kept record may be anywhere in its generation
  const fresh = last.kv === undefined;
  const expectedVersion = fresh ? 1 : last.kv!.version + 1;
  const expectedCreate = fresh ? kv.modRevision : last.kv!.createRevision;
  if (kv.version !== expectedVersion || kv.createRevision !== expectedCreate) throw snapshotError(`${what}: version ${kv.version}/create ${kv.createRevision} break the generation`);
}
