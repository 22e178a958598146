// Testing the tests (STYLE.md 18): a deliberately broken KV service — a member that
// believes it leads answers Get from its local state without ReadIndex — must be reported
// not linearizable by the same check the lab tests run, while the real service, in the
// same scenario, is linearizable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvCluster, type KvClusterOptions } from '../../src/testbed/kv-cluster.js';
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
    const staleGet = cfg.get(stale, 'k', 2);
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
