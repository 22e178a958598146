// Testing the tests (STYLE.md 18): deliberately broken KV services must be caught by the
// checks the lab tests run, deterministically, while the real service passes the same
// scenario:
// - a member that believes it leads answers Get from its local state without ReadIndex
//   (readMode 'unsafe-leader-local'): the linearizability check;
// - duplicate detection off (unsafe.noDuplicateDetection) and sessions left out of the
//   snapshot (unsafe.sessionsNotInSnapshot): a retried write applies twice, which the lab's
//   value check (cfg.check) and the linearizability check both see. The scenario
//   (testbed/kv-planted.ts) loses the replies to one clerk so that it retries a write that
//   applied, and for the snapshot bug restarts every server from a snapshot taken after it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvCluster, type KvClusterOptions } from '../../src/testbed/kv-cluster.js';
import { retriedValue, retriedWrite, type RetriedWriteReport } from '../../src/testbed/kv-planted.js';
import { TestFailure } from '../../src/testbed/raft-cluster.js';
import type { KvUnsafe } from '../../src/kv/state-machine.js';
import { yieldToHost } from '../../src/platform/host.js';

function verdictOf(cfg: KvCluster): string {
  return cfg.checkLinearizable(() => performance.now(), 10_000).verdict;
}

/**
 * Five servers; the leader is cut off from the other four (check-quorum off, so it keeps
 * believing it leads: the window check-quorum only narrows), which elect a new leader and
 * write "b"; then a clerk that reaches only the old leader reads. After 2 s everything heals.
 */
async function staleLeaderScenario(readMode: KvClusterOptions['readMode']): Promise<{ verdict: string; staleGet: string; elapsedMs: number }> {
  const cfg = new KvCluster(5, { seed: 7, yieldToHost, readMode, raft: { checkQuorum: false } });
  try {
    await cfg.startAll();
    const ck = cfg.makeClient(cfg.all());
    await cfg.put(ck, 'k', 'a', 0);
    // Strictly after: a call at the instant another returns counts as concurrent with it.
    await cfg.sleep(1);
    const oldLeader = await cfg.waitForLeader();
    const others = cfg.all().filter((i) => i !== oldLeader);
    cfg.partition(others, [oldLeader]);
    await cfg.put(cfg.makeClient(others), 'k', 'b', 1);
    assert.equal(cfg.services[oldLeader]!.replica.raft.status().role, 'leader', 'the cut-off leader still believes it leads');
    await cfg.sleep(1);
    const stale = cfg.makeClient([oldLeader]);
    const start = cfg.nowMs();
    const staleGet = cfg.go(cfg.get(stale, 'k', 2));
    await cfg.sleep(2000);
    cfg.connectAll();
    cfg.connectClient(stale, cfg.all());
    const value = await cfg.scheduler.waitOn(staleGet);
    const elapsedMs = cfg.history.find((op) => op.clientId === 2)!.returnTime! - start;
    cfg.checkErrors();
    return { verdict: verdictOf(cfg), staleGet: value, elapsedMs };
  } finally {
    cfg.cleanup();
  }
}

test('ReadIndex: a cut-off leader does not answer Get until healed; the history is linearizable', async () => {
  const { verdict, staleGet, elapsedMs } = await staleLeaderScenario('read-index');
  assert.equal(staleGet, 'b');
  assert.ok(elapsedMs >= 2000, `answered only after the heal (${elapsedMs} ms)`);
  assert.equal(verdict, 'ok');
});

test('planted bug: Get from local state on a stale leader is reported not linearizable', async () => {
  const { verdict, staleGet } = await staleLeaderScenario('unsafe-leader-local');
  assert.equal(staleGet, 'a', 'the broken service served the old value');
  assert.equal(verdict, 'illegal');
});

/** The lab's snapshot threshold (4B): every server snapshots within a few dozen puts. */
const maxraftstate = 1000;

/** The retried-write scenario on 3 servers; the value read back and the history's verdict. */
async function retriedWriteScenario(unsafe: KvUnsafe | undefined, restartFromSnapshot: boolean, seed = 23): Promise<RetriedWriteReport & { verdict: string }> {
  const cfg = new KvCluster(3, { seed, yieldToHost, maxraftstate: restartFromSnapshot ? maxraftstate : -1, ...(unsafe === undefined ? {} : { unsafe }) });
  try {
    await cfg.startAll();
    const report = await retriedWrite(cfg, { restartFromSnapshot });
    cfg.checkErrors();
    return { ...report, verdict: verdictOf(cfg) };
  } finally {
    cfg.cleanup();
  }
}

/** The lab's check(cfg, ck, key, value) on the value read back: it throws exactly when the write ran more than once. */
function labValueCheck(value: string): void {
  if (value !== retriedValue) throw new TestFailure(`Get(k): expected:\n${retriedValue}\nreceived:\n${value}`);
}

test('a retried write applies once: without restarts, and after every server restarted from a snapshot taken after it', async () => {
  for (const restartFromSnapshot of [false, true]) {
    const { value, verdict, retryingClerkRpcs } = await retriedWriteScenario(undefined, restartFromSnapshot);
    assert.ok(retryingClerkRpcs > 3, `the clerk retried (${retryingClerkRpcs} RPCs)`);
    assert.doesNotThrow(() => labValueCheck(value));
    assert.equal(verdict, 'ok', `restartFromSnapshot ${restartFromSnapshot}`);
  }
});

test('planted bug: duplicate detection off — a retried append applies again; the value check and the linearizability check fail', async () => {
  const { value, verdict } = await retriedWriteScenario({ noDuplicateDetection: true }, false);
  assert.match(value, /^x(x)+$/, 'the retries appended again');
  assert.throws(() => labValueCheck(value), TestFailure);
  assert.equal(verdict, 'illegal');
});

test('planted bug: sessions left out of the snapshot — after a restore the retried append applies again; both checks fail', async () => {
  const { value, verdict } = await retriedWriteScenario({ sessionsNotInSnapshot: true }, true);
  assert.equal(value, 'xx', 'applied once before the snapshot and once more after the restore');
  assert.throws(() => labValueCheck(value), TestFailure);
  assert.equal(verdict, 'illegal');
  // Without a restore from a snapshot, the same switch changes nothing: the sessions are in memory.
  const unrestored = await retriedWriteScenario({ sessionsNotInSnapshot: true }, false);
  assert.equal(unrestored.value, retriedValue);
  assert.equal(unrestored.verdict, 'ok');
});
