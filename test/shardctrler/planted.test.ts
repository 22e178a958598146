// Test the tests (STYLE.md 18): each planted bug of the shard controller's state machine
// (ShardCtrlerUnsafe) is caught by the lab's checks on the simulator, on any seed, and the
// same scenarios pass with the correct controller.
//
//   bug                 | what it does                                  | caught by
//   --------------------+-----------------------------------------------+---------------------------------
//   moveEverything      | rebalances from scratch (balanced, not        | TestMinimalAgain's changed-shard
//                       | minimal)                                      | checks; TestBasic's minimal transfers
//   unsortedRebalance   | breaks ties in the group Map's insertion      | the replicas-agree check: a server
//                       | order, which a snapshot restore changes       | restored from a snapshot diverges
//   noDuplicateDetection| ignores sessions: a retried Join runs again   | the clerk's Join is refused
//                       |                                               | (group-exists) instead of answered

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestFailure } from '../../src/testbed/raft-cluster.js';
import { checkSameConfig, type ShardCtrlerCluster } from '../../src/testbed/shardctrler-cluster.js';
import { runShardTest } from './lab.js';
import { testBasic, testMinimalAgain } from './scenarios.js';

test('planted moveEverything: TestMinimalAgain fails (a join moves shards that needed not move)', async () => {
  await assert.rejects(runShardTest('TestMinimalAgain', { unsafe: { moveEverything: true } }, testMinimalAgain), (error: Error) => {
    assert.ok(error instanceof TestFailure, String(error));
    assert.match(error.message, /join of gid 3 moved shard|changed \d+ shards/);
    return true;
  });
});

test('planted moveEverything: TestBasic fails at "Minimal transfers after joins"', async () => {
  const parts: string[] = [];
  await assert.rejects(
    runShardTest('TestBasic', { unsafe: { moveEverything: true } }, testBasic, {
      step: async (name, body) => {
        parts.push(name);
        await body();
      },
    }),
    /minimal transfers \(afterJoins\)/,
  );
  assert.equal(parts.at(-1), 'Minimal transfers after joins');
});

/**
 * Joins two groups in one call with the higher gid first, restarts server 0 from its own
 * snapshot (which lists the groups by gid), joins a third group, and checks that every
 * server holds the same latest configuration. The tie between the first two groups (5
 * shards each) decides who keeps 4 shards after the third joins.
 */
async function restartBetweenJoins(cfg: ShardCtrlerCluster): Promise<void> {
  const ck = cfg.makeClient();
  await ck.join(
    new Map([
      [3, ['c']],
      [1, ['a']],
    ]),
  );
  await cfg.sleep(1000);
  if (cfg.storages[0]!.snapshotBytes() === 0) throw new Error('server 0 took no snapshot: the scenario tests nothing');
  cfg.shutdownServer(0);
  await cfg.startServer(0);
  cfg.connectAll();
  await cfg.sleep(1000);
  await ck.join(new Map([[2, ['b']]]));
  await cfg.sleep(1000);
  const latest = cfg.latestConfigs();
  assert.equal(latest.length, 3);
  for (const config of latest.slice(1)) checkSameConfig(latest[0]!, config);
}

test('a server restored from its snapshot computes the same configurations as the others', async () => {
  await runShardTest('restart between joins', { maxraftstate: 1 }, restartBetweenJoins);
});

test('planted unsortedRebalance: the restored server diverges, and the replicas-agree check catches it', async () => {
  await assert.rejects(runShardTest('restart between joins', { maxraftstate: 1, unsafe: { unsortedRebalance: true } }, restartBetweenJoins), /configurations differ/);
});

/** A Join whose replies are lost for a while, so the clerk retries it after it applied. */
async function retriedJoin(cfg: ShardCtrlerCluster): Promise<void> {
  const ck = cfg.makeClient();
  await ck.query(-1); // a leader is elected
  cfg.clerkNetwork.loseReplies(ck.id, true);
  const join = cfg.go(ck.join(new Map([[1, ['a']]])));
  const applied = await cfg.scheduler.waitFor(() => cfg.latestConfigs().some((c) => c.num >= 1), 5000);
  if (!applied) throw new Error('the Join did not apply within 5 s: the scenario tests nothing');
  await cfg.sleep(500); // the clerk retries in the meantime
  cfg.clerkNetwork.loseReplies(ck.id, false);
  assert.equal(await cfg.scheduler.waitOn(join), 1, 'the retried Join answers with the configuration it made');
  assert.equal((await ck.query(-1)).num, 1, 'and made only that one');
}

test('a Join retried after its reply was lost applies once', async () => {
  await runShardTest('retried join', {}, retriedJoin);
});

test('planted noDuplicateDetection: the retried Join runs again and is refused', async () => {
  await assert.rejects(runShardTest('retried join', { unsafe: { noDuplicateDetection: true } }, retriedJoin), /group-exists: group 1 has already joined/);
});

test('a seed replays exactly: TestBasic twice on one seed ends at the same virtual time, RPC counts and configuration', async () => {
  const first = await runShardTest('TestBasic', {}, testBasic, { seed: 7 });
  const second = await runShardTest('TestBasic', {}, testBasic, { seed: 7 });
  assert.equal(second, first);
});
