// The 6.824 kvraft 4B tests (2024 names; docs/6824-tests.md §5.4): snapshots at
// maxraftstate = 1000 bytes, with the lab's byte bounds — Raft state <= 8 x maxraftstate,
// KV snapshot <= 500 bytes — on the simulator in virtual time; every logged history is
// checked for linearizability.

import assert from 'node:assert/strict';
import { kvTest, kvVerdictsTest } from './lab.js';
import { genericTest, genericTestSpeed, genericTitle, maxSnapshotStateBytes, type GenericParams } from '../../src/testbed/kv-generic.js';
import { electionTimeoutMs } from '../../src/testbed/kv-cluster.js';
import { TestFailure } from '../../src/testbed/raft-cluster.js';

const maxraftstate = 1000;

function generic(name: string, nservers: number, params: GenericParams): void {
  kvTest(name, nservers, { unreliable: params.unreliable, maxraftstate: params.maxraftstate }, async (cfg) => {
    const report = await genericTest(cfg, params);
    const snapshots = cfg.snapshotsTaken();
    return `${genericTitle(params, nservers, '4B')}; max LogSize ${report.logSizeMax} B (bound ${8 * maxraftstate}), max snapshot ${report.snapshotSizeMax} B, ${snapshots} snapshots taken`;
  });
}

function checkLogSize(logSize: number): void {
  if (logSize > 8 * maxraftstate) throw new TestFailure(`logs were not trimmed (${logSize} > 8*${maxraftstate})`);
}

kvTest('TestSnapshotRPC4B', 3, { maxraftstate }, async (cfg) => {
  const ck = cfg.makeClient(cfg.all());
  await cfg.put(ck, 'a', 'A');
  await cfg.check(ck, 'a', 'A');
  // A bunch of puts into the majority partition.
  cfg.partition([0, 1], [2]);
  const ck1 = cfg.makeClient([0, 1]);
  for (let i = 0; i < 50; i++) await cfg.put(ck1, String(i), String(i));
  await cfg.sleep(electionTimeoutMs);
  await cfg.put(ck1, 'b', 'B');
  // The majority must have thrown away most of its log, though server 2 lags.
  const trimmed = cfg.logSize();
  checkLogSize(trimmed);
  // A group that needs the lagging server, so that it has to catch up.
  const snapsBefore = cfg.raftNetwork.rpcCount(cfg.services[2]!.replica.raft.id);
  cfg.partition([0, 2], [1]);
  const ck2 = cfg.makeClient([0, 2]);
  await cfg.put(ck2, 'c', 'C');
  await cfg.put(ck2, 'd', 'D');
  await cfg.check(ck2, 'a', 'A');
  await cfg.check(ck2, 'b', 'B');
  await cfg.check(ck2, '1', '1');
  await cfg.check(ck2, '49', '49');
  assert.ok(cfg.services[2]!.machine.appliedIndex > 50, 'server 2 caught up');
  // Now everybody.
  cfg.partition([0, 1, 2], []);
  await cfg.put(ck, 'e', 'E');
  await cfg.check(ck, 'c', 'C');
  await cfg.check(ck, 'e', 'E');
  await cfg.check(ck, '1', '1');
  checkLogSize(cfg.logSize());
  return `LogSize after 50 puts ${trimmed} B (bound ${8 * maxraftstate}); server 2 received ${cfg.raftNetwork.rpcCount(cfg.services[2]!.replica.raft.id) - snapsBefore} Raft RPCs to catch up`;
});

kvTest('TestSnapshotSize4B', 3, { maxraftstate }, async (cfg) => {
  const ck = cfg.makeClient(cfg.all());
  for (let i = 0; i < 200; i++) {
    await cfg.put(ck, 'x', '0');
    await cfg.check(ck, 'x', '0');
    await cfg.put(ck, 'x', '1');
    await cfg.check(ck, 'x', '1');
  }
  const logSize = cfg.logSize();
  checkLogSize(logSize);
  const snapshotSize = cfg.snapshotSize();
  if (snapshotSize > maxSnapshotStateBytes) throw new TestFailure(`snapshot too large (${snapshotSize} > ${maxSnapshotStateBytes})`);
  assert.ok(snapshotSize > 0, 'snapshots were taken');
  return `LogSize ${logSize} B (bound ${8 * maxraftstate}); SnapshotSize ${snapshotSize} B (bound ${maxSnapshotStateBytes})`;
});

kvTest('TestSpeed4B', 3, { maxraftstate }, async (cfg) => {
  const report = await genericTestSpeed(cfg);
  return `${report.ops} appends in ${report.totalMs} ms virtual: ${report.msPerOp.toFixed(2)} ms/op (bound 33.33); LogSize ${cfg.logSize()} B`;
});

const base: GenericParams = { nclients: 1, unreliable: false, crash: true, partitions: false, maxraftstate, randomkeys: false };

generic('TestSnapshotRecover4B', 5, base);
generic('TestSnapshotRecoverManyClients4B', 5, { ...base, nclients: 20 });
generic('TestSnapshotUnreliable4B', 5, { ...base, nclients: 5, unreliable: true, crash: false });
generic('TestSnapshotUnreliableRecover4B', 5, { ...base, nclients: 5, unreliable: true });
generic('TestSnapshotUnreliableRecoverConcurrentPartition4B', 5, { ...base, nclients: 5, unreliable: true, partitions: true });
generic('TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable4B', 7, { ...base, nclients: 15, unreliable: true, partitions: true, randomkeys: true });

kvVerdictsTest();
