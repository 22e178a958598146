// 6.824 Raft part C (2024 naming 3C): persistence, Figure 8, unreliable networks, churn.
// Scenarios and bounds from docs/6824-tests.md §4.5, on virtual time.

import assert from 'node:assert/strict';
import { labTest } from './lab.js';
import { electionTimeoutMs, type RaftCluster } from '../../src/testbed/raft-cluster.js';

labTest('TestPersist13C', 3, {}, async (cfg) => {
  await cfg.one(11, 3, true);
  for (let i = 0; i < 3; i++) await cfg.start1(i);
  for (let i = 0; i < 3; i++) {
    cfg.disconnect(i);
    cfg.connect(i);
  }
  await cfg.one(12, 3, true);
  const leader1 = await cfg.checkOneLeader();
  cfg.disconnect(leader1);
  await cfg.start1(leader1);
  cfg.connect(leader1);
  await cfg.one(13, 3, true);
  const leader2 = await cfg.checkOneLeader();
  cfg.disconnect(leader2);
  await cfg.one(14, 2, true);
  await cfg.start1(leader2);
  cfg.connect(leader2);
  await cfg.wait(4, 3, -1); // leader2 must catch up
  const i3 = ((await cfg.checkOneLeader()) + 1) % 3;
  cfg.disconnect(i3);
  await cfg.one(15, 2, true);
  await cfg.start1(i3);
  cfg.connect(i3);
  await cfg.one(16, 3, true);
});

labTest('TestPersist23C', 5, {}, async (cfg) => {
  let index = 1;
  for (let iteration = 0; iteration < 5; iteration++) {
    await cfg.one(10 + index, 5, true);
    index++;
    const leader1 = await cfg.checkOneLeader();
    cfg.disconnect((leader1 + 1) % 5);
    cfg.disconnect((leader1 + 2) % 5);
    await cfg.one(10 + index, 3, true);
    index++;
    cfg.disconnect((leader1 + 0) % 5);
    cfg.disconnect((leader1 + 3) % 5);
    cfg.disconnect((leader1 + 4) % 5);
    await cfg.start1((leader1 + 1) % 5);
    await cfg.start1((leader1 + 2) % 5);
    cfg.connect((leader1 + 1) % 5);
    cfg.connect((leader1 + 2) % 5);
    await cfg.sleep(electionTimeoutMs);
    await cfg.start1((leader1 + 3) % 5);
    cfg.connect((leader1 + 3) % 5);
    await cfg.one(10 + index, 3, true);
    index++;
    cfg.connect((leader1 + 4) % 5);
    cfg.connect((leader1 + 0) % 5);
  }
  await cfg.one(1000, 5, true);
});

labTest('TestPersist33C', 3, {}, async (cfg) => {
  await cfg.one(101, 3, true);
  const leader = await cfg.checkOneLeader();
  cfg.disconnect((leader + 2) % 3);
  await cfg.one(102, 2, true);
  cfg.crash1((leader + 0) % 3);
  cfg.crash1((leader + 1) % 3);
  cfg.connect((leader + 2) % 3);
  await cfg.start1((leader + 0) % 3);
  cfg.connect((leader + 0) % 3);
  await cfg.one(103, 2, true);
  await cfg.start1((leader + 1) % 3);
  cfg.connect((leader + 1) % 3);
  await cfg.one(104, 3, true);
});

/** The Figure 8 sleep: 10% of the time up to half an election timeout, else 0–12 ms. */
function figure8Sleep(cfg: RaftCluster): Promise<void> {
  const ms = cfg.prng.int(1000) < 100 ? cfg.prng.int(electionTimeoutMs / 2) : cfg.prng.int(13);
  return cfg.sleep(ms);
}

labTest('TestFigure83C', 5, {}, async (cfg) => {
  const servers = 5;
  await cfg.one(cfg.randomCommand(), 1, true);
  let nup = servers;
  const up = new Array<boolean>(servers).fill(true);
  for (let iteration = 0; iteration < 1000; iteration++) {
    let leader = -1;
    for (let i = 0; i < servers; i++) {
      if (up[i] && cfg.start(i, cfg.randomCommand()).isLeader) leader = i;
    }
    await figure8Sleep(cfg);
    if (leader !== -1) {
      cfg.crash1(leader);
      up[leader] = false;
      nup--;
    }
    if (nup < 3) {
      const s = cfg.prng.int(servers);
      if (!up[s]) {
        await cfg.start1(s);
        cfg.connect(s);
        up[s] = true;
        nup++;
      }
    }
  }
  for (let i = 0; i < servers; i++) {
    if (!up[i]) {
      await cfg.start1(i);
      cfg.connect(i);
    }
  }
  await cfg.one(cfg.randomCommand(), servers, true);
});

labTest('TestUnreliableAgree3C', 5, { unreliable: true }, async (cfg) => {
  const workers: Promise<unknown>[] = [];
  for (let iteration = 1; iteration < 50; iteration++) {
    for (let j = 0; j < 4; j++) workers.push(cfg.one(100 * iteration + j, 1, true));
    await cfg.one(iteration, 1, true);
  }
  cfg.setReliable(true);
  await Promise.all(workers);
  await cfg.one(100, 5, true);
});

labTest('TestFigure8Unreliable3C', 5, { unreliable: true }, async (cfg) => {
  const servers = 5;
  await cfg.one(cfg.prng.int(10000), 1, true);
  let nup = servers;
  for (let iteration = 0; iteration < 1000; iteration++) {
    if (iteration === 200) cfg.setLongReordering(true);
    let leader = -1;
    for (let i = 0; i < servers; i++) {
      if (cfg.start(i, cfg.prng.int(10000)).isLeader && cfg.isConnected(i)) leader = i;
    }
    await figure8Sleep(cfg);
    if (leader !== -1 && cfg.prng.int(1000) < 500) {
      cfg.disconnect(leader);
      nup--;
    }
    if (nup < 3) {
      const s = cfg.prng.int(servers);
      if (!cfg.isConnected(s)) {
        cfg.connect(s);
        nup++;
      }
    }
  }
  for (let i = 0; i < servers; i++) if (!cfg.isConnected(i)) cfg.connect(i);
  await cfg.one(cfg.prng.int(10000), servers, true);
});

async function churn(cfg: RaftCluster): Promise<void> {
  const servers = 5;
  let stop = false;
  const client = async (me: number): Promise<number[]> => {
    const values: number[] = [];
    while (!stop) {
      const x = cfg.randomCommand();
      let index = -1;
      let ok = false;
      for (let i = 0; i < servers; i++) {
        const result = cfg.start(i, x);
        if (result.isLeader) {
          ok = true;
          index = result.index;
        }
      }
      if (ok) {
        for (const delay of [10, 20, 50, 100, 200]) {
          const { count, command } = cfg.nCommitted(index);
          if (count > 0) {
            if (command === x) values.push(x);
            break;
          }
          await cfg.sleep(delay);
        }
      } else {
        await cfg.sleep(79 + me * 17);
      }
    }
    return values;
  };
  const clients = [0, 1, 2].map((me) => client(me));
  for (let iteration = 0; iteration < 20; iteration++) {
    if (cfg.prng.int(1000) < 200) cfg.disconnect(cfg.prng.int(servers));
    if (cfg.prng.int(1000) < 500) {
      const i = cfg.prng.int(servers);
      if (cfg.nodes[i] === undefined) await cfg.start1(i);
      cfg.connect(i);
    }
    if (cfg.prng.int(1000) < 200) {
      const i = cfg.prng.int(servers);
      if (cfg.nodes[i] !== undefined) cfg.crash1(i);
    }
    await cfg.sleep((electionTimeoutMs * 7) / 10);
  }
  await cfg.sleep(electionTimeoutMs);
  cfg.setReliable(true);
  for (let i = 0; i < servers; i++) {
    if (cfg.nodes[i] === undefined) await cfg.start1(i);
    cfg.connect(i);
  }
  stop = true;
  const values = (await Promise.all(clients)).flat();
  await cfg.sleep(electionTimeoutMs);
  const lastIndex = await cfg.one(cfg.randomCommand(), servers, true);
  const really: unknown[] = [];
  for (let index = 1; index <= lastIndex; index++) {
    const command = await cfg.wait(index, servers, -1);
    assert.equal(typeof command, 'number', 'not an int');
    really.push(command);
  }
  const reallySet = new Set(really);
  for (const v of values) assert.ok(reallySet.has(v), `didn't find a value ${v}`);
}

labTest('TestReliableChurn3C', 5, {}, churn);
labTest('TestUnreliableChurn3C', 5, { unreliable: true }, churn);
