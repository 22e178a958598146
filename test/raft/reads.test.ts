// Linearizable reads on the simulator: ReadIndex never serves a stale leader's state, and
// the linearizability checker catches a leader that serves reads without confirming it
// still leads (a deliberately broken variant, STYLE.md 18).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftCluster } from '../../src/testbed/raft-cluster.js';
import { yieldToHost } from '../../src/platform/host.js';
import { check, registerModel, type Operation, type RegisterInput, type RegisterOutput } from '../../src/lincheck/index.js';

type RegisterOperation = Operation<RegisterInput, RegisterOutput>;

/**
 * Five servers; the leader is cut off from the other four, which elect a new leader and
 * commit a new value; then a client reads from the old leader. Check-quorum is off so that
 * the old leader keeps believing it leads (the window check-quorum only narrows).
 */
async function staleLeaderScenario(unsafeReads: boolean): Promise<{ history: RegisterOperation[]; staleRead: number | undefined }> {
  const cluster = new RaftCluster(5, {
    seed: 42,
    yieldToHost,
    raft: { noopOnElection: true, checkQuorum: false },
    ...(unsafeReads ? { unsafe: { readWithoutConfirmation: true } } : {}),
  });
  const history: RegisterOperation[] = [];
  const write = async (client: number, value: number, servers: number) => {
    const callTime = cluster.scheduler.stampMs();
    await cluster.one(value, servers, true);
    history.push({ clientId: client, input: { kind: 'write', value }, output: 0, callTime, returnTime: cluster.scheduler.stampMs() });
  };
  const read = async (client: number, server: number) => {
    const callTime = cluster.scheduler.stampMs();
    const value = await cluster.read(server, 1000);
    if (value !== undefined) history.push({ clientId: client, input: { kind: 'read' }, output: value, callTime, returnTime: cluster.scheduler.stampMs() });
    return value;
  };
  try {
    await cluster.startAll();
    const oldLeader = await cluster.checkOneLeader();
    await write(1, 10, 5);
    cluster.disconnect(oldLeader);
    await write(1, 20, 4);
    assert.ok(cluster.getState(oldLeader).isLeader, 'the cut-off leader still believes it leads');
    // Strictly after the write returned (equal times count as concurrent).
    await cluster.sleep(1);
    const staleRead = await read(2, oldLeader);
    await read(3, (oldLeader + 1) % 5);
    cluster.checkErrors();
    return { history, staleRead };
  } finally {
    cluster.cleanup();
  }
}

test('ReadIndex: a cut-off leader never serves a read, and the history is linearizable', async () => {
  const { history, staleRead } = await staleLeaderScenario(false);
  assert.equal(staleRead, undefined, 'the stale leader served a read without a quorum');
  assert.equal(check(registerModel(0), history).verdict, 'ok');
});

test('the checker catches reads served without leadership confirmation', async () => {
  const { history, staleRead } = await staleLeaderScenario(true);
  assert.equal(staleRead, 10, 'the broken variant should have served the old value');
  assert.equal(check(registerModel(0), history).verdict, 'illegal');
});
