// 6.824 Raft part A (2024 naming 3A): leader election. Scenarios and bounds from
// docs/6824-tests.md §4.3, on virtual time.

import assert from 'node:assert/strict';
import { labTest } from './lab.js';
import { electionTimeoutMs } from '../../src/testbed/raft-cluster.js';

labTest('TestInitialElection3A', 3, {}, async (cfg) => {
  await cfg.checkOneLeader();
  await cfg.sleep(50);
  const term1 = cfg.checkTerms();
  assert.ok(term1 >= 1, `term is ${term1}, but should be at least 1`);
  await cfg.sleep(2 * electionTimeoutMs);
  const term2 = cfg.checkTerms();
  // The lab only warns when the term changes without failures; so do we.
  if (term1 !== term2) console.warn('warning: term changed even though there were no failures');
  await cfg.checkOneLeader();
});

labTest('TestReElection3A', 3, {}, async (cfg) => {
  const leader1 = await cfg.checkOneLeader();
  cfg.disconnect(leader1);
  await cfg.checkOneLeader();
  cfg.connect(leader1);
  const leader2 = await cfg.checkOneLeader();
  cfg.disconnect(leader2);
  cfg.disconnect((leader2 + 1) % 3);
  await cfg.sleep(2 * electionTimeoutMs);
  cfg.checkNoLeader();
  cfg.connect((leader2 + 1) % 3);
  await cfg.checkOneLeader();
  cfg.connect(leader2);
  await cfg.checkOneLeader();
});

labTest('TestManyElections3A', 7, {}, async (cfg) => {
  await cfg.checkOneLeader();
  for (let iteration = 0; iteration < 9; iteration++) {
    const i1 = cfg.prng.int(7);
    const i2 = cfg.prng.int(7);
    const i3 = cfg.prng.int(7);
    cfg.disconnect(i1);
    cfg.disconnect(i2);
    cfg.disconnect(i3);
    // Either the old leader is still connected, or the remaining four (or more) elect one.
    await cfg.checkOneLeader();
    cfg.connect(i1);
    cfg.connect(i2);
    cfg.connect(i3);
  }
  await cfg.checkOneLeader();
});
