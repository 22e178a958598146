// The transactional checkers (src/txncheck) on hand-made histories with one known anomaly
// each, and on histories of a small model of a transactional store (strict two-phase locking
// with buffered writes; Spanner-style timestamps with TrueTime and commit wait for lock-free
// snapshot reads) run by a seeded scheduler: the correct store's histories pass, and each
// planted bug — read locks released before commit, commit wait off under a clock skew larger
// than the uncertainty — is caught. The checker is trusted only because of the second half.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkBank, checkListAppend, type MicroOp, type Txn } from '../../src/txncheck/index.js';
import { Prng } from '../../src/stdx/prng.js';

let nextId = 0;
function txn(process: number, invokeMs: number, completeMs: number, mops: MicroOp[], status: Txn['status'] = 'ok'): Txn {
  return { id: ++nextId, process, invokeMs, completeMs, status, mops };
}
const a = (key: string, value: number): MicroOp => ({ f: 'append', key, value });
const r = (key: string, ...value: number[]): MicroOp => ({ f: 'r', key, value });
const types = (history: Txn[]) => checkListAppend(history).anomalies.map((x) => x.type);

test('a serial history is valid', () => {
  const h = [txn(1, 0, 1, [a('x', 1), r('y')]), txn(2, 2, 3, [r('x', 1), a('y', 1)]), txn(1, 4, 5, [r('x', 1), r('y', 1), a('x', 2)]), txn(2, 6, 7, [r('x', 1, 2)])];
  const result = checkListAppend(h);
  assert.equal(result.valid, true, JSON.stringify(result.anomalies));
});

test("write skew (the reference's worked example) is G2-item", () => {
  // T1 appends 1 to x; T2 reads x=[1], appends 7 to y; T3 reads y=[], appends 2 to x; T4 reads both. T2 and T3 overlap.
  const h = [txn(1, 0, 1, [a('x', 1)]), txn(2, 2, 10, [r('x', 1), a('y', 7)]), txn(3, 2, 10, [r('y'), a('x', 2)]), txn(4, 11, 12, [r('x', 1, 2), r('y', 7)])];
  assert.deepEqual(types(h), ['G2-item']);
});

test('read skew is G-single; with the reader after the writer in real time it is still G-single', () => {
  // T1 appends to x and y; T2 sees T1's x but not its y.
  const h = [txn(1, 0, 5, [a('x', 1), a('y', 1)]), txn(2, 1, 6, [r('x', 1), r('y')])];
  assert.deepEqual(types(h), ['G-single']);
});

test('a stale read after a completed write is G-single-realtime only (serializable, not strictly)', () => {
  const h = [txn(1, 0, 1, [a('x', 1)]), txn(2, 2, 3, [r('x')])];
  assert.deepEqual(types(h), ['G-single-realtime']);
  // Concurrent, the same read is fine.
  assert.deepEqual(types([txn(1, 0, 3, [a('x', 1)]), txn(2, 1, 2, [r('x')])]), []);
});

test('aborted reads, intermediate reads, lost updates, incompatible orders, duplicates and internal inconsistency are named', () => {
  assert.ok(types([txn(1, 0, 1, [a('x', 1)], 'fail'), txn(2, 2, 3, [r('x', 1)])]).includes('G1a'));
  assert.ok(types([txn(1, 0, 5, [a('x', 1), a('x', 2)]), txn(2, 1, 2, [r('x', 1)])]).includes('G1b'));
  assert.ok(types([txn(1, 0, 5, [r('x'), a('x', 1)]), txn(2, 0, 5, [r('x'), a('x', 2)]), txn(3, 6, 7, [r('x', 1, 2)])]).includes('lost-update'));
  assert.ok(types([txn(1, 0, 1, [a('x', 1)]), txn(2, 0, 1, [a('x', 2)]), txn(3, 2, 3, [r('x', 1, 2)]), txn(4, 2, 3, [r('x', 2, 1)])]).includes('incompatible-order'));
  assert.ok(types([txn(1, 0, 1, [a('x', 1)]), txn(2, 2, 3, [r('x', 1, 1)])]).includes('duplicate-elements'));
  assert.ok(types([txn(1, 0, 1, [a('x', 1)]), txn(2, 2, 3, [r('x', 1), a('x', 2), r('x', 1)])]).includes('internal'));
  assert.ok(types([txn(1, 0, 1, [a('x', 1)]), txn(2, 2, 3, [r('x', 1, 9)])]).includes('garbage-read'));
  // A write cycle: T1 and T2 each append after the other on different keys.
  assert.ok(types([txn(1, 0, 5, [a('x', 1), a('y', 2)]), txn(2, 0, 5, [a('x', 2), a('y', 1)]), txn(3, 6, 7, [r('x', 1, 2), r('y', 1, 2)])]).includes('G0'));
});

test('the bank checker sees a changed total and a negative balance', () => {
  const accounts = ['a', 'b'];
  assert.equal(
    checkBank(
      [
        {
          txn: 1,
          balances: new Map([
            ['a', 60],
            ['b', 40],
          ]),
        },
      ],
      accounts,
      100,
    ).valid,
    true,
  );
  assert.equal(
    checkBank(
      [
        {
          txn: 1,
          balances: new Map([
            ['a', 60],
            ['b', 50],
          ]),
        },
      ],
      accounts,
      100,
    ).valid,
    false,
  );
  assert.equal(
    checkBank(
      [
        {
          txn: 1,
          balances: new Map([
            ['a', 110],
            ['b', -10],
          ]),
        },
      ],
      accounts,
      100,
    ).valid,
    false,
  );
  assert.equal(checkBank([{ txn: 1, balances: new Map([['a', 100]]) }], accounts, 100).valid, false);
});

// ---- A model of a transactional store, run by a seeded scheduler ----

interface ModelOptions {
  readonly seed: number;
  /** Release a shared lock as soon as the read is done (planted: not strict 2PL). */
  readonly releaseReadLocksEarly?: boolean;
  /** Read-only transactions read lock-free at TT.now().latest of their node, Spanner-style. */
  readonly snapshotReads?: boolean;
  /** Each node's clock offset from true time (ms); TrueTime's uncertainty is epsilonMs. */
  readonly skewMs?: readonly number[];
  readonly epsilonMs?: number;
  /** Acknowledge a commit only once TT.after(commitTs) on the committing node (Spanner's commit wait). */
  readonly commitWait?: boolean;
}

/**
 * Clients on nodes run transactions of 1–4 micro-ops over 5 keys, one micro-op per scheduler
 * step (each step takes 1–3 ms of true time). Read-write transactions take shared locks to
 * read and exclusive locks to append (no-wait: a conflict aborts the transaction), buffer
 * their appends, and at commit install them as versions stamped with the commit timestamp
 * (TT.now().latest on the node, above every version of the keys), then release every lock.
 * Read-only transactions (with snapshotReads) take no locks: they pick TT.now().latest, wait
 * until TT.after(it), and read the versions at or below it.
 */
function runModel(options: ModelOptions): Txn[] {
  const prng = new Prng(options.seed);
  const epsilon = options.epsilonMs ?? 5;
  const skews = options.skewMs ?? [0, 0, 0];
  const versions = new Map<string, Array<{ ts: number; list: number[] }>>();
  const latest = (key: string) => versions.get(key)?.at(-1) ?? { ts: 0, list: [] };
  const locks = new Map<string, { shared: Set<number>; exclusive: number | undefined }>();
  const lockOf = (key: string) => {
    let lock = locks.get(key);
    if (lock === undefined) {
      lock = { shared: new Set(), exclusive: undefined };
      locks.set(key, lock);
    }
    return lock;
  };
  const history: Txn[] = [];
  let now = 0;
  let counter = 0;
  const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
  type Running = {
    id: number;
    node: number;
    invoke: number;
    mops: MicroOp[];
    plan: Array<{ f: 'r' | 'append'; key: string }>;
    buffered: Map<string, number[]>;
    readOnly: boolean;
    readTs: number;
    ackAt: number | undefined;
    commitTs: number;
  };
  const clients: Array<Running | undefined> = [undefined, undefined, undefined, undefined];
  const clock = (node: number) => now + skews[node % skews.length]!;
  const release = (t: Running) => {
    for (const lock of locks.values()) {
      lock.shared.delete(t.id);
      if (lock.exclusive === t.id) lock.exclusive = undefined;
    }
  };
  for (let step = 0; step < 1500; step++) {
    now += 1 + prng.int(3);
    const c = prng.int(clients.length);
    let t = clients[c];
    if (t === undefined) {
      const readOnly = options.snapshotReads === true && prng.chance(0.4);
      const plan = Array.from({ length: 1 + prng.int(4) }, () => ({ f: readOnly || prng.chance(0.5) ? ('r' as const) : ('append' as const), key: keys[prng.int(keys.length)]! }));
      t = { id: ++counter, node: c % 3, invoke: now, mops: [], plan, buffered: new Map(), readOnly, readTs: 0, ackAt: undefined, commitTs: 0 };
      if (readOnly) t.readTs = clock(t.node) + epsilon; // TT.now().latest
      clients[c] = t;
      continue;
    }
    if (t.ackAt !== undefined) {
      // Committed; waiting out commit wait on the node's clock before answering.
      if (clock(t.node) - epsilon <= t.commitTs) continue;
      history.push({ id: t.id, process: c, invokeMs: t.invoke, completeMs: now, status: 'ok', mops: t.mops });
      clients[c] = undefined;
      continue;
    }
    if (t.readOnly) {
      if (clock(t.node) - epsilon <= t.readTs) continue; // wait until TT.after(readTs): no later commit can be below it
      for (const op of t.plan) {
        const list = [...((versions.get(op.key) ?? []).filter((v) => v.ts <= t.readTs).at(-1)?.list ?? [])];
        t.mops.push({ f: 'r', key: op.key, value: list });
      }
      history.push({ id: t.id, process: c, invokeMs: t.invoke, completeMs: now, status: 'ok', mops: t.mops });
      clients[c] = undefined;
      continue;
    }
    const op = t.plan[t.mops.length];
    if (op === undefined) {
      // Commit: install the buffered appends at one timestamp, then release every lock.
      let ts = clock(t.node) + epsilon;
      for (const key of t.buffered.keys()) ts = Math.max(ts, latest(key).ts + 1);
      for (const [key, values] of t.buffered) {
        const list = versions.get(key) ?? [];
        list.push({ ts, list: [...latest(key).list, ...values] });
        versions.set(key, list);
      }
      release(t);
      t.commitTs = ts;
      if (options.commitWait === true) t.ackAt = now;
      else {
        history.push({ id: t.id, process: c, invokeMs: t.invoke, completeMs: now, status: 'ok', mops: t.mops });
        clients[c] = undefined;
      }
      continue;
    }
    const lock = lockOf(op.key);
    const conflict = op.f === 'r' ? lock.exclusive !== undefined && lock.exclusive !== t.id : (lock.exclusive !== undefined && lock.exclusive !== t.id) || [...lock.shared].some((id) => id !== t.id);
    if (conflict) {
      release(t);
      history.push({ id: t.id, process: c, invokeMs: t.invoke, completeMs: now, status: 'fail', mops: t.mops });
      clients[c] = undefined;
      continue;
    }
    if (op.f === 'r') {
      if (lock.exclusive !== t.id) lock.shared.add(t.id);
      t.mops.push({ f: 'r', key: op.key, value: [...latest(op.key).list, ...(t.buffered.get(op.key) ?? [])] });
      if (options.releaseReadLocksEarly === true && lock.exclusive !== t.id) lock.shared.delete(t.id);
    } else {
      lock.shared.delete(t.id);
      lock.exclusive = t.id;
      const value = ++counter * 10 + 1; // unique per key (unique overall)
      t.buffered.set(op.key, [...(t.buffered.get(op.key) ?? []), value]);
      t.mops.push({ f: 'append', key: op.key, value });
    }
  }
  // Transactions still running (or waiting out commit wait) when the run ends: outcome unknown.
  for (const [c, t] of clients.entries()) if (t !== undefined) history.push({ id: t.id, process: c, invokeMs: t.invoke, completeMs: now, status: 'info', mops: t.mops });
  return history;
}

test('the model store with strict 2PL gives strictly serializable histories (60 seeds)', () => {
  for (let seed = 1; seed <= 60; seed++) {
    const result = checkListAppend(runModel({ seed }));
    assert.equal(result.valid, true, `seed ${seed}: ${JSON.stringify(result.anomalies.slice(0, 2))}`);
    assert.ok(result.stats.edges > 50, 'the history has dependencies to check');
  }
});

test('planted: read locks released before commit are caught (G-single or G2-item) within 20 seeds', () => {
  const caught: string[] = [];
  for (let seed = 1; seed <= 20 && caught.length === 0; seed++) {
    const result = checkListAppend(runModel({ seed, releaseReadLocksEarly: true }));
    caught.push(...result.anomalies.map((x) => x.type).filter((type) => /^(G-single|G2-item|lost-update)/.test(type)));
  }
  assert.ok(caught.length > 0, 'no anomaly found');
});

test('Spanner-style snapshot reads: with commit wait and skew within the uncertainty the histories pass; without commit wait under a larger skew a real-time anomaly is caught', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const result = checkListAppend(runModel({ seed, snapshotReads: true, skewMs: [0, 4, -4], epsilonMs: 5, commitWait: true }));
    assert.equal(result.valid, true, `seed ${seed}: ${JSON.stringify(result.anomalies.slice(0, 2))}`);
  }
  const found: string[] = [];
  for (let seed = 1; seed <= 30 && found.length === 0; seed++) {
    const result = checkListAppend(runModel({ seed, snapshotReads: true, skewMs: [15, 0, -15], epsilonMs: 5, commitWait: false }));
    found.push(...result.anomalies.map((x) => x.type));
  }
  assert.ok(
    found.some((type) => type.endsWith('-realtime')),
    `expected a real-time anomaly, found ${found.join(', ') || 'nothing'}`,
  );
});
