// 6.824 Raft part D (2024 naming 3D): log compaction and InstallSnapshot. Scenarios and
// bounds from docs/6824-tests.md §4.6: the tester snapshots after every tenth entry,
// and each server's persisted Raft state must stay under 2000 bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labRealTimeoutMs, labTest, runLabTest } from './lab.js';
import { maxLogSizeBytes, type RaftCluster } from '../../src/testbed/raft-cluster.js';

/** snapcommon(disconnect, reliable, crash): 30 rounds on three servers. */
async function snapcommon(cfg: RaftCluster, disconnect: boolean, crash: boolean): Promise<void> {
  const iters = 30;
  await cfg.one(cfg.randomCommand(), 3, true);
  let leader1 = await cfg.checkOneLeader();
  for (let i = 0; i < iters; i++) {
    let victim = (leader1 + 1) % 3;
    let sender = leader1;
    if (i % 3 === 1) {
      sender = (leader1 + 1) % 3;
      victim = leader1;
    }
    if (disconnect) {
      cfg.disconnect(victim);
      await cfg.one(cfg.randomCommand(), 2, true);
    }
    if (crash) {
      cfg.crash1(victim);
      await cfg.one(cfg.randomCommand(), 2, true);
    }
    // Enough entries for a snapshot, whether or not the sender still leads.
    const nn = 5 + cfg.prng.int(10);
    for (let k = 0; k < nn; k++) cfg.start(sender, cfg.randomCommand());
    if (!disconnect && !crash) await cfg.one(cfg.randomCommand(), 3, true);
    else await cfg.one(cfg.randomCommand(), 2, true);
    assert.ok(cfg.logSize() < maxLogSizeBytes, `log size too large: ${cfg.logSize()} bytes`);
    if (disconnect) {
      // The victim may need InstallSnapshot to catch up.
      cfg.connect(victim);
      await cfg.one(cfg.randomCommand(), 3, true);
      leader1 = await cfg.checkOneLeader();
    }
    if (crash) {
      await cfg.start1(victim);
      cfg.connect(victim);
      await cfg.one(cfg.randomCommand(), 3, true);
      leader1 = await cfg.checkOneLeader();
    }
  }
}

labTest('TestSnapshotBasic3D', 3, { snapshot: true }, (cfg) => snapcommon(cfg, false, false));
labTest('TestSnapshotInstall3D', 3, { snapshot: true }, async (cfg) => {
  await snapcommon(cfg, true, false);
  assert.ok((cfg.sentByType.get('Snap') ?? 0) > 0, 'no InstallSnapshot was needed: the test did not test it');
});
labTest('TestSnapshotInstallUnreliable3D', 3, { snapshot: true, unreliable: true }, async (cfg) => {
  await snapcommon(cfg, true, false);
  assert.ok((cfg.sentByType.get('Snap') ?? 0) > 0, 'no InstallSnapshot was needed: the test did not test it');
});
labTest('TestSnapshotInstallCrash3D', 3, { snapshot: true }, (cfg) => snapcommon(cfg, false, true));

// An entry handed to the service twice (the same command at the same index) agrees with
// every other server and follows its predecessor, so only the exact lastApplied + 1 rule
// catches it.
test('planted bug: applying an entry twice fails the snapshot tests', { timeout: labRealTimeoutMs }, async () => {
  await assert.rejects(
    runLabTest('TestSnapshotBasic3D', 3, { snapshot: true, unsafe: { applyTwice: true } }, (cfg) => snapcommon(cfg, false, false)),
    /apply out of order, expected index \d+, got \d+/,
  );
});
labTest('TestSnapshotInstallUnCrash3D', 3, { snapshot: true, unreliable: true }, (cfg) => snapcommon(cfg, false, true));

async function crashAndRestartAll(cfg: RaftCluster): Promise<void> {
  for (let i = 0; i < 3; i++) cfg.crash1(i);
  for (let i = 0; i < 3; i++) {
    await cfg.start1(i);
    cfg.connect(i);
  }
}

labTest('TestSnapshotAllCrash3D', 3, { snapshot: true }, async (cfg) => {
  await cfg.one(cfg.randomCommand(), 3, true);
  for (let i = 0; i < 5; i++) {
    const nn = 5 + cfg.prng.int(10);
    for (let k = 0; k < nn; k++) await cfg.one(cfg.randomCommand(), 3, true);
    const index1 = await cfg.one(cfg.randomCommand(), 3, true);
    await crashAndRestartAll(cfg);
    const index2 = await cfg.one(cfg.randomCommand(), 3, true);
    assert.ok(index2 >= index1 + 1, `index decreased from ${index1} to ${index2}`);
  }
});

labTest('TestSnapshotInit3D', 3, { snapshot: true }, async (cfg) => {
  await cfg.one(cfg.randomCommand(), 3, true);
  // Enough entries that a snapshot exists.
  for (let i = 0; i < 11; i++) await cfg.one(cfg.randomCommand(), 3, true);
  await crashAndRestartAll(cfg);
  // A persist after the restart must keep the snapshot.
  await cfg.one(cfg.randomCommand(), 3, true);
  await crashAndRestartAll(cfg);
  await cfg.one(cfg.randomCommand(), 3, true);
});
