// The 6.824 sharded key/value tests (lab 5B and both challenges, 2024 names; shardkv/
// test_test.go; docs/6824-tests.md §7.3) as scenarios on ShardKvCluster: the lab's
// scenarios, maxraftstate values, networks and bounds. lab-5b.test.ts runs each one;
// planted.test.ts runs some against deliberately broken groups.

import { key2shard } from '../../src/shardkv/index.js';
import { TestFailure } from '../../src/testbed/raft-cluster.js';
import type { ShardKvCluster } from '../../src/testbed/shardkv-cluster.js';
import type { ShardKvClerk } from '../../src/testbed/shardkv-clerk.js';
import { randstring, type ShardKvTestOptions } from './lab.js';

export interface LabScenario {
  readonly name: string;
  readonly options: ShardKvTestOptions;
  readonly body: (cfg: ShardKvCluster) => Promise<unknown>;
}

/** Every lab test, in the lab's order. */
export const labScenarios: LabScenario[] = [];

function lab(name: string, options: ShardKvTestOptions, body: LabScenario['body']): void {
  labScenarios.push({ name, options, body });
}

/** The scenario of the lab test `name`. */
export function labScenario(name: string): LabScenario {
  const found = labScenarios.find((scenario) => scenario.name === name);
  if (found === undefined) throw new Error(`no lab test ${name}`);
  return found;
}

/** Keys "0".."n-1" with random values of `length` characters, Put by `ck`. */
async function putKeys(cfg: ShardKvCluster, ck: ShardKvClerk, n: number, length: number): Promise<{ ka: string[]; va: string[] }> {
  const ka: string[] = [];
  const va: string[] = [];
  for (let i = 0; i < n; i++) {
    ka.push(String(i));
    va.push(randstring(cfg, length));
    await cfg.put(ck, ka[i]!, va[i]!, 0);
  }
  return { ka, va };
}

async function checkAll(cfg: ShardKvCluster, ck: ShardKvClerk, ka: string[], va: string[], count = ka.length): Promise<void> {
  for (let i = 0; i < count; i++) await cfg.check(ck, ka[i]!, va[i]!);
}

async function checkAndAppend(cfg: ShardKvCluster, ck: ShardKvClerk, ka: string[], va: string[]): Promise<void> {
  for (let i = 0; i < ka.length; i++) {
    await cfg.check(ck, ka[i]!, va[i]!);
    const x = randstring(cfg, 5);
    await cfg.append(ck, ka[i]!, x, 0);
    va[i] += x;
  }
}

/**
 * One appender client per key until stop() (TestConcurrent*, TestUnreliable2): each appends
 * `length` random characters, then sleeps `sleepMs` (none when 0), and records the value.
 */
function appenders(cfg: ShardKvCluster, ka: string[], va: string[], length: number, sleepMs: number): { stop: () => Promise<void> } {
  let done = false;
  const tasks = ka.map((key, i) =>
    cfg.go(
      (async () => {
        const ck = cfg.makeClient();
        while (!done) {
          const x = randstring(cfg, length);
          await cfg.append(ck, key, x, i + 1);
          va[i] += x;
          if (sleepMs > 0) await cfg.sleep(sleepMs);
        }
      })(),
    ),
  );
  return {
    stop: async () => {
      done = true;
      await cfg.scheduler.waitOn(Promise.all(tasks));
    },
  };
}

lab('TestStaticShards5A', { maxraftstate: -1 }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0);
  await cfg.join(1);
  const { ka, va } = await putKeys(cfg, ck, 10, 20);
  await checkAll(cfg, ck, ka, va);
  // Make sure the data really is sharded: with one group down, only its shards' Gets stall.
  cfg.shutdownGroup(1);
  cfg.checkLogs(); // forbids snapshots
  let ndone = 0;
  for (let i = 0; i < ka.length; i++) {
    const ck1 = cfg.makeClient(); // one call per client
    void cfg.go(
      cfg.get(ck1, ka[i]!, 100 + i).then((v) => {
        if (v !== va[i]) throw new TestFailure(`Get(${ka[i]}): expected:\n${va[i]}\nreceived:\n${v}`);
        ndone++;
      }),
    );
  }
  // Count completions until 2 s pass without one.
  for (let last = -1; last !== ndone; ) {
    last = ndone;
    await cfg.sleep(2000);
  }
  const completed = ndone;
  if (completed !== 5) throw new TestFailure(`expected 5 completions with one shard dead; got ${completed}`);
  await cfg.startGroup(1);
  await checkAll(cfg, ck, ka, va);
  return `${completed} of 10 Gets completed with group 101 down`;
});

lab('TestRejection5A', { maxraftstate: -1 }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0);
  await cfg.join(1);
  const { ka, va } = await putKeys(cfg, ck, 10, 20);
  await checkAll(cfg, ck, ka, va);
  // A second controller on which only group 100 has joined: it thinks 100 owns every shard.
  const ctrler2 = await cfg.startCtrlerService();
  await cfg.joinOn(ctrler2, 0);
  let ndone = 0;
  for (let i = 0; i < ka.length; i++) {
    const ck1 = cfg.makeClient(ctrler2); // one call per client
    void cfg.go(
      cfg.get(ck1, ka[i]!, 100 + i).then((v) => {
        if (v === '') throw new TestFailure(`Get(${ka[i]}) returned empty; server should have rejected the request due to wrong shard`);
        if (v !== va[i]) throw new TestFailure(`Get(${ka[i]}): expected:\n${va[i]}\nreceived:\n${v}`);
        ndone++;
      }),
    );
  }
  // Count completions until 2 s pass without one: only group 100's shards may answer.
  for (let last = -1; last !== ndone; ) {
    last = ndone;
    await cfg.sleep(2000);
  }
  if (ndone !== 5) throw new TestFailure(`expected 5 completions with one shard dead; got ${ndone}`);
  return `${ndone} of 10 Gets completed through a controller that sends every key to group 100`;
});

lab('TestJoinLeave5B', { maxraftstate: -1 }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0);
  const { ka, va } = await putKeys(cfg, ck, 10, 5);
  await checkAll(cfg, ck, ka, va);
  await cfg.join(1);
  await checkAndAppend(cfg, ck, ka, va);
  await cfg.leave(0);
  await checkAndAppend(cfg, ck, ka, va);
  await cfg.sleep(1000);
  cfg.checkLogs();
  cfg.shutdownGroup(0);
  await checkAll(cfg, ck, ka, va);
});

lab('TestSnapshot5B', { maxraftstate: 1000 }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0);
  const { ka, va } = await putKeys(cfg, ck, 30, 20);
  await checkAll(cfg, ck, ka, va);
  await cfg.join(1);
  await cfg.join(2);
  await cfg.leave(0);
  await checkAndAppend(cfg, ck, ka, va);
  await cfg.leave(1);
  await cfg.join(0);
  await checkAndAppend(cfg, ck, ka, va);
  await cfg.sleep(1000);
  await checkAll(cfg, ck, ka, va);
  await cfg.sleep(1000);
  cfg.checkLogs();
  for (let gi = 0; gi < 3; gi++) cfg.shutdownGroup(gi);
  for (let gi = 0; gi < 3; gi++) await cfg.startGroup(gi);
  await checkAll(cfg, ck, ka, va);
});

lab('TestMissChange5B', { maxraftstate: 1000 }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0);
  const { ka, va } = await putKeys(cfg, ck, 10, 20);
  await checkAll(cfg, ck, ka, va);
  await cfg.join(1);
  for (let gi = 0; gi < 3; gi++) cfg.shutdownServer(gi, 0);
  await cfg.join(2);
  await cfg.leave(1);
  await cfg.leave(0);
  await checkAndAppend(cfg, ck, ka, va);
  await cfg.join(1);
  await checkAndAppend(cfg, ck, ka, va);
  for (let gi = 0; gi < 3; gi++) await cfg.startServer(gi, 0);
  await checkAndAppend(cfg, ck, ka, va);
  await cfg.sleep(2000);
  for (let gi = 0; gi < 3; gi++) cfg.shutdownServer(gi, 1);
  await cfg.join(0);
  await cfg.leave(2);
  await checkAndAppend(cfg, ck, ka, va);
  for (let gi = 0; gi < 3; gi++) await cfg.startServer(gi, 1);
  await checkAll(cfg, ck, ka, va);
});

lab('TestConcurrent1_5B', { maxraftstate: 100 }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0);
  const { ka, va } = await putKeys(cfg, ck, 10, 5);
  const clients = appenders(cfg, ka, va, 5, 10);
  await cfg.sleep(150);
  await cfg.join(1);
  await cfg.sleep(500);
  await cfg.join(2);
  await cfg.sleep(500);
  await cfg.leave(0);
  cfg.shutdownGroup(0);
  await cfg.sleep(100);
  cfg.shutdownGroup(1);
  await cfg.sleep(100);
  cfg.shutdownGroup(2);
  await cfg.leave(2);
  await cfg.sleep(100);
  for (let gi = 0; gi < 3; gi++) await cfg.startGroup(gi);
  await cfg.sleep(100);
  await cfg.join(0);
  await cfg.leave(1);
  await cfg.sleep(500);
  await cfg.join(1);
  await cfg.sleep(1000);
  await clients.stop();
  await checkAll(cfg, ck, ka, va);
});

// This tests the various sources from which a re-starting group might need to fetch shard contents.
lab('TestConcurrent2_5B', { maxraftstate: -1 }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(1);
  await cfg.join(0);
  await cfg.join(2);
  const { ka, va } = await putKeys(cfg, ck, 10, 1);
  const clients = appenders(cfg, ka, va, 1, 50);
  await cfg.leave(0);
  await cfg.leave(2);
  await cfg.sleep(3000);
  await cfg.join(0);
  await cfg.join(2);
  await cfg.leave(1);
  await cfg.sleep(3000);
  await cfg.join(1);
  await cfg.leave(0);
  await cfg.leave(2);
  await cfg.sleep(3000);
  cfg.shutdownGroup(1);
  cfg.shutdownGroup(2);
  await cfg.sleep(1000);
  await cfg.startGroup(1);
  await cfg.startGroup(2);
  await cfg.sleep(2000);
  await clients.stop();
  await checkAll(cfg, ck, ka, va);
});

lab('TestConcurrent3_5B', { maxraftstate: 300 }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0);
  const { ka, va } = await putKeys(cfg, ck, 10, 1);
  const clients = appenders(cfg, ka, va, 1, 0);
  const t0 = cfg.nowMs();
  let rounds = 0;
  while (cfg.nowMs() - t0 < 12_000) {
    await cfg.join(2);
    await cfg.join(1);
    await cfg.sleep(cfg.prng.int(900));
    for (let gi = 0; gi < 3; gi++) cfg.shutdownGroup(gi);
    for (let gi = 0; gi < 3; gi++) await cfg.startGroup(gi);
    await cfg.sleep(cfg.prng.int(900));
    await cfg.leave(1);
    await cfg.leave(2);
    await cfg.sleep(cfg.prng.int(900));
    rounds++;
  }
  await cfg.sleep(2000);
  await clients.stop();
  await checkAll(cfg, ck, ka, va);
  return `${rounds} rounds of join, restart-all and leave`;
});

lab('TestUnreliable1_5B', { maxraftstate: 100, unreliable: true }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0);
  const { ka, va } = await putKeys(cfg, ck, 10, 5);
  await cfg.join(1);
  await cfg.join(2);
  await cfg.leave(0);
  for (let ii = 0; ii < 20; ii++) {
    const i = ii % 10;
    await cfg.check(ck, ka[i]!, va[i]!);
    const x = randstring(cfg, 5);
    await cfg.append(ck, ka[i]!, x, 0);
    va[i] += x;
  }
  await cfg.join(0);
  await cfg.leave(1);
  for (let ii = 0; ii < 20; ii++) await cfg.check(ck, ka[ii % 10]!, va[ii % 10]!);
});

/** Unreliable2's and Unreliable3's schedule of configuration changes while clients run. */
async function unreliableSchedule(cfg: ShardKvCluster): Promise<void> {
  await cfg.sleep(150);
  await cfg.join(1);
  await cfg.sleep(500);
  await cfg.join(2);
  await cfg.sleep(500);
  await cfg.leave(0);
  await cfg.sleep(500);
  await cfg.leave(1);
  await cfg.sleep(500);
  await cfg.join(1);
  await cfg.join(0);
  await cfg.sleep(2000);
}

lab('TestUnreliable2_5B', { maxraftstate: 100, unreliable: true }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0);
  const { ka, va } = await putKeys(cfg, ck, 10, 5);
  const clients = appenders(cfg, ka, va, 5, 0);
  await unreliableSchedule(cfg);
  cfg.setUnreliable(false);
  await clients.stop();
  await checkAll(cfg, ck, ka, va);
});

lab('TestUnreliable3_5B', { maxraftstate: 100, unreliable: true }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0);
  const { ka } = await putKeys(cfg, ck, 10, 5);
  let done = false;
  const tasks = ka.map((_, i) =>
    cfg.go(
      (async () => {
        const ck1 = cfg.makeClient();
        while (!done) {
          const key = ka[cfg.prng.int(ka.length)]!;
          const nv = randstring(cfg, 5);
          if (cfg.prng.int(1000) < 500) await cfg.append(ck1, key, nv, i + 1);
          else if (cfg.prng.int(1000) < 100) await cfg.put(ck1, key, nv, i + 1);
          else await cfg.get(ck1, key, i + 1);
        }
      })(),
    ),
  );
  await unreliableSchedule(cfg);
  done = true;
  cfg.setUnreliable(false);
  await cfg.scheduler.waitOn(Promise.all(tasks));
  // The porcupine check (KvModel, 1 s) runs on every test's history in lab.ts.
  return `${cfg.history.length} operations by 10 clients on random keys`;
});

// Challenge 1: groups delete the shards they no longer own, so the total state stays bounded.
lab('TestChallenge1Delete', { maxraftstate: 1 }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0);
  // 30,000 bytes of total values.
  const n = 30;
  const { ka, va } = await putKeys(cfg, ck, n, 1000);
  await checkAll(cfg, ck, ka, va, 3);
  for (let iters = 0; iters < 2; iters++) {
    await cfg.join(1);
    await cfg.leave(0);
    await cfg.join(2);
    await cfg.sleep(3000);
    await checkAll(cfg, ck, ka, va, 3);
    await cfg.leave(1);
    await cfg.join(0);
    await cfg.leave(2);
    await cfg.sleep(3000);
    await checkAll(cfg, ck, ka, va, 3);
  }
  await cfg.join(1);
  await cfg.join(2);
  for (let k = 0; k < 3; k++) {
    await cfg.sleep(1000);
    await checkAll(cfg, ck, ka, va, 3);
  }
  const total = cfg.totalStateBytes();
  // 27 keys should be stored once; 3 keys should also be stored in client dup tables;
  // everything on 3 replicas; plus slop.
  const expected = 3 * ((n - 3) * 1000 + 2 * 3 * 1000 + 6000);
  if (total > expected) throw new TestFailure(`snapshot + persisted Raft state are too big: ${total} > ${expected}`);
  await checkAll(cfg, ck, ka, va);
  return `total state ${total} B (bound ${expected})`;
});

// Challenge 2: a group serves the shards it owns and that are not moving during a
// configuration change whose other shards cannot move (their old owner is down).
lab('TestChallenge2Unaffected', { maxraftstate: 100, unreliable: true }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.join(0); // JOIN 100
  const n = 10;
  const ka = Array.from({ length: n }, (_, i) => String(i));
  const va = ka.map(() => '100');
  for (let i = 0; i < n; i++) await cfg.put(ck, ka[i]!, va[i]!, 0);
  await cfg.join(1); // JOIN 101
  // QUERY to find the shards now owned by 101.
  const c = await cfg.query();
  const owned = c.shards.map((gid) => gid === cfg.gid(1));
  // Wait for the migration to the new group to complete.
  await cfg.sleep(1000);
  for (let i = 0; i < n; i++) {
    if (owned[key2shard(ka[i]!)]) {
      va[i] = '101';
      await cfg.put(ck, ka[i]!, va[i]!, 0);
    }
  }
  // KILL 100, then LEAVE 100: 101 will not get 100's shards, but must keep serving its own.
  cfg.shutdownGroup(0);
  await cfg.leave(0);
  await cfg.sleep(1000);
  let served = 0;
  for (let i = 0; i < n; i++) {
    if (!owned[key2shard(ka[i]!)]) continue;
    await cfg.check(ck, ka[i]!, va[i]!);
    await cfg.put(ck, ka[i]!, `${va[i]}-1`, 0);
    await cfg.check(ck, ka[i]!, `${va[i]}-1`);
    served++;
  }
  return `${served} keys served by 101 while 100's shards could not move`;
});

// Challenge 2: a group serves each shard as soon as it has arrived, before the configuration
// change is complete (the other shards' old owner is down).
lab('TestChallenge2Partial', { maxraftstate: 100, unreliable: true }, async (cfg) => {
  const ck = cfg.makeClient();
  await cfg.joinm([0, 1, 2]); // JOIN 100 + 101 + 102
  await cfg.sleep(1000);
  const n = 10;
  const ka = Array.from({ length: n }, (_, i) => String(i));
  const va = ka.map(() => '100');
  for (let i = 0; i < n; i++) await cfg.put(ck, ka[i]!, va[i]!, 0);
  // QUERY to find the shards owned by 102.
  const c = await cfg.query();
  const owned = c.shards.map((gid) => gid === cfg.gid(2));
  // KILL 100, then LEAVE 100 + 102: 101 can get 102's shards, never 100's.
  cfg.shutdownGroup(0);
  await cfg.leavem([0, 2]);
  await cfg.sleep(1000);
  let served = 0;
  for (let i = 0; i < n; i++) {
    if (!owned[key2shard(ka[i]!)]) continue;
    await cfg.check(ck, ka[i]!, va[i]!);
    await cfg.put(ck, ka[i]!, `${va[i]}-2`, 0);
    await cfg.check(ck, ka[i]!, `${va[i]}-2`);
    served++;
  }
  return `${served} keys of 102's shards served by 101 while 100's could not move`;
});
