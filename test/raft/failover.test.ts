// A follower that sees its connection to the leader close (a killed process's sockets are
// reset by the kernel) campaigns within a tick or two instead of the election timeout
// (RaftCore.peerUnreachable). These run it on the simulator, with the safety checkers on,
// over many seeds: the fast path must elect sooner, and a false alarm must not disrupt a
// live leader.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftCluster } from '../../src/testbed/raft-cluster.js';
import { yieldToHost } from '../../src/platform/host.js';

const seeds = Array.from({ length: 20 }, (_, k) => 500 + k);

/** Virtual ms from the leader's crash until another server leads. */
async function electionAfterCrash(seed: number, reported: boolean): Promise<number> {
  const cluster = new RaftCluster(3, { seed, yieldToHost });
  try {
    await cluster.startAll();
    await cluster.one(1, 3, true);
    const leader = await cluster.checkOneLeader();
    const crashedAt = cluster.scheduler.nowMs;
    cluster.crash1(leader);
    if (reported) cluster.reportConnectionsClosed(leader);
    const elected = await cluster.scheduler.waitFor(() => cluster.currentLeader() >= 0 && cluster.currentLeader() !== leader, 10_000, 1);
    assert.ok(elected, 'no new leader within 10 s');
    const electedAfterMs = cluster.scheduler.nowMs - crashedAt;
    await cluster.one(2, 2, true);
    cluster.checkErrors();
    return electedAfterMs;
  } finally {
    cluster.cleanup();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

test('a leader whose connections close is replaced within a few ticks, not an election timeout', async (t) => {
  const fast: number[] = [];
  const slow: number[] = [];
  for (const seed of seeds) {
    fast.push(await electionAfterCrash(seed, true));
    slow.push(await electionAfterCrash(seed, false));
  }
  t.diagnostic(`new leader after the crash, virtual ms: reported median ${median(fast)} max ${Math.max(...fast)}; silent median ${median(slow)} max ${Math.max(...slow)}`);
  // Tick 100 ms: one or two ticks to campaign, plus the odd split vote.
  assert.ok(median(fast) <= 300, `median ${median(fast)} ms with the connections reported closed`);
  assert.ok(median(slow) >= 1000, `median ${median(slow)} ms for a silent crash: the election timeout should apply`);
});

test('a false alarm at one follower does not unseat a live leader', async () => {
  for (const seed of seeds) {
    const cluster = new RaftCluster(3, { seed, yieldToHost });
    try {
      await cluster.startAll();
      await cluster.one(1, 3, true);
      const leader = await cluster.checkOneLeader();
      const term = cluster.getState(leader).term;
      const follower = (leader + 1) % 3;
      cluster.nodes[follower]!.peerUnreachable(cluster.nodeId(leader));
      await cluster.sleep(3000);
      assert.equal(cluster.currentLeader(), leader, `seed ${seed}: the leader changed`);
      assert.equal(cluster.getState(leader).term, term, `seed ${seed}: the term moved`);
      await cluster.one(2, 3, true);
      cluster.checkErrors();
    } finally {
      cluster.cleanup();
    }
  }
});

test('a false alarm at every follower may change the leader but never breaks safety', async () => {
  for (const seed of seeds) {
    const cluster = new RaftCluster(5, { seed, yieldToHost });
    try {
      await cluster.startAll();
      await cluster.one(1, 5, true);
      const leader = await cluster.checkOneLeader();
      cluster.reportConnectionsClosed(leader);
      for (let k = 0; k < 5; k++) await cluster.one(10 + k, 5, true);
      await cluster.checkOneLeader();
      cluster.checkErrors();
    } finally {
      cluster.cleanup();
    }
  }
});
