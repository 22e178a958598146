// Testing the tests (STYLE.md 18): deliberately broken replica groups (ShardKvUnsafe) must
// be caught by the checks the lab tests run, while the real service passes the same
// scenario:
// - noDedupTransfer: a shard moves without the session table. A clerk whose replies are all
//   lost retries an Append that ran at the old owner; after the shard moved, the retry runs
//   again at the new owner. The lab's value check and the linearizability check both see it.
// - serveBeforeArrival: a group serves a shard it gained before the data arrived. With the
//   old owner down, a Get that must wait returns "" instead.
// - noGarbageCollection: old owners keep (in memory and snapshots) every shard they handed
//   off. TestChallenge1Delete's bound on the total state fails.
// - completeOnFirstPage: a shard moved in pages (pullBytesMax) is served after its first
//   page, and the keys of later pages never arrive. TestJoinLeave5B with a key per page
//   reads them back and fails.
// - noServeDuringMigration: a group serves nothing while any shard it gained is still
//   pulling. TestChallenge2Unaffected and TestChallenge2Partial never finish (the 120 s
//   limit of virtual time).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ShardKvUnsafe } from '../../src/shardkv/index.js';
import { TestFailure } from '../../src/testbed/raft-cluster.js';
import type { ShardKvCluster } from '../../src/testbed/shardkv-cluster.js';
import { runShardKvTest } from './lab.js';
import { labScenario } from './scenarios.js';

const seeds = [1, 2, 3];

/** Key "k" is on shard 7 ('k' is 107): group 100 has it alone, and hands it to 101 when 101 joins. */
async function retriedAppendAcrossMove(cfg: ShardKvCluster): Promise<string> {
  const ck = cfg.makeClient();
  await cfg.join(0);
  await cfg.put(ck, 'k', 'a', 0);
  cfg.loseReplies(ck, true);
  const append = cfg.go(cfg.append(ck, 'k', 'b', 0));
  // The Append ran at 100; its replies are lost, so the clerk keeps retrying it.
  const ran = await cfg.scheduler.waitFor(() => cfg.machine(0)?.machine.valueOf('k') === 'ab', 5000);
  assert.ok(ran, 'the append ran at group 100');
  await cfg.join(1);
  const moved = await cfg.scheduler.waitFor(() => {
    const state = cfg.machine(1)?.machine.shardState(7);
    return state === 'serving' || state === 'gc';
  }, 10_000);
  assert.ok(moved, 'shard 7 moved to group 101');
  await cfg.sleep(1000); // the clerk's retries reach 101
  cfg.loseReplies(ck, false);
  await cfg.scheduler.waitOn(append);
  await cfg.check(ck, 'k', 'ab');
  return 'the retried append ran once';
}

/** Group 100 holds every key and goes down; 101 joins and gains half of the shards, which it can never pull. */
async function getWhileDataMissing(cfg: ShardKvCluster): Promise<string> {
  const ck = cfg.makeClient();
  await cfg.join(0);
  for (let i = 0; i < 10; i++) await cfg.put(ck, String(i), `v${i}`, 0);
  cfg.shutdownGroup(0);
  await cfg.join(1);
  const config = await cfg.query();
  const key = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'].find((k) => config.shards[k.charCodeAt(0) % 10] === cfg.gid(1))!;
  let got: string | undefined;
  void cfg.go(cfg.get(cfg.makeClient(), key, 1).then((value) => (got = value)));
  await cfg.sleep(3000);
  if (got !== undefined) throw new TestFailure(`Get(${key}) completed with ${JSON.stringify(got)} while its shard's data was on a group that is down`);
  await cfg.startGroup(0);
  const done = await cfg.scheduler.waitFor(() => got !== undefined, 10_000);
  assert.ok(done, 'the Get completed once group 100 was back');
  if (got !== `v${key}`) throw new TestFailure(`Get(${key}): expected v${key}, received ${JSON.stringify(got)}`);
  return `Get(${key}) waited for the data`;
}

async function outcome(name: string, body: (cfg: ShardKvCluster) => Promise<unknown>, unsafe: ShardKvUnsafe | undefined, seed: number, options = {}): Promise<string> {
  try {
    await runShardKvTest(name, { maxraftstate: -1, ...options, ...(unsafe === undefined ? {} : { unsafe }) }, body, { seed });
    return 'passed';
  } catch (error) {
    return (error as Error).message;
  }
}

test('a retried append after its shard moved runs once; without the session table in the transfer it runs twice', async () => {
  for (const seed of seeds) {
    assert.equal(await outcome('retried append', retriedAppendAcrossMove, undefined, seed), 'passed', `seed ${seed}`);
    const broken = await outcome('retried append', retriedAppendAcrossMove, { noDedupTransfer: true }, seed);
    assert.match(broken, /Get\(k\): expected:\nab\nreceived:\nabb/, `seed ${seed}`);
  }
});

test('a Get waits for its shard to arrive; serving a shard before its data arrives is caught', async () => {
  for (const seed of seeds) {
    assert.equal(await outcome('missing data', getWhileDataMissing, undefined, seed), 'passed', `seed ${seed}`);
    const broken = await outcome('missing data', getWhileDataMissing, { serveBeforeArrival: true }, seed);
    assert.match(broken, /completed with "" while its shard's data was on a group that is down/, `seed ${seed}`);
  }
});

test('TestChallenge1Delete catches a group that never deletes the shards it handed off', async () => {
  const scenario = labScenario('TestChallenge1Delete');
  const broken = await outcome(scenario.name, scenario.body, { noGarbageCollection: true }, 1, scenario.options);
  assert.match(broken, /snapshot \+ persisted Raft state are too big: \d+ > 117000/);
  assert.equal(await outcome(scenario.name, scenario.body, undefined, 1, scenario.options), 'passed');
});

/** Thirty keys on shard 7 ('k…') move from 100 to 101 a key per page while a clerk appends to them; all are read back. */
async function shardInPages(cfg: ShardKvCluster): Promise<string> {
  const ck = cfg.makeClient();
  await cfg.join(0);
  const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
  for (const key of keys) await cfg.put(ck, key, `${key}=`, 0);
  await cfg.join(1);
  await cfg.move(7, 1);
  // The clerk's appends start while the shard is still moving.
  for (const key of keys) await cfg.append(ck, key, 'x', 0);
  for (const key of keys) await cfg.check(ck, key, `${key}=x`);
  const pulls = cfg.machine(1)?.machine.shardState(7);
  return `shard 7 ${pulls ?? 'gone'}`;
}

test('a shard moved a key per page arrives whole; completing it on its first page is caught', async () => {
  for (const seed of seeds) {
    assert.match(await outcome('shard in pages', shardInPages, undefined, seed, { pullBytesMax: 1 }), /^passed$/, `seed ${seed}`);
    const broken = await outcome('shard in pages', shardInPages, { completeOnFirstPage: true }, seed, { pullBytesMax: 1 });
    assert.match(broken, /Get\(k\d+\)|expected|k\d+/, `seed ${seed}`);
  }
});

for (const name of ['TestChallenge2Unaffected', 'TestChallenge2Partial']) {
  test(`${name} catches a group that serves nothing while a shard is still moving`, async () => {
    const scenario = labScenario(name);
    const broken = await outcome(scenario.name, scenario.body, { noServeDuringMigration: true }, 1, scenario.options);
    assert.match(broken, /test took longer than 120 seconds of virtual time/);
    assert.equal(await outcome(scenario.name, scenario.body, undefined, 1, scenario.options), 'passed');
  });
}
