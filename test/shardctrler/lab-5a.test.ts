// The 6.824 shard controller tests (lab 5A in 2024, 4A before; shardctrler/test_test.go) on
// the simulator in virtual time, with the lab's names, parts and bounds (scenarios.ts).

import { shardTest } from './lab.js';
import { testBasic, testMinimalAgain, testMulti } from './scenarios.js';

shardTest('TestBasic', {}, testBasic);
shardTest('TestMulti', {}, testMulti);
shardTest('TestMinimalAgain', {}, testMinimalAgain);

// Not a lab test: the lab's controller never snapshots. The same TestBasic with a snapshot
// at every 1000 bytes of Raft state, so the historical queries after each restart are
// answered from restored snapshots (every configuration must be in them).
shardTest('TestBasic, snapshotting at 1000 bytes of Raft state', { maxraftstate: 1000 }, testBasic);

// Not lab tests either: the same tests on an unreliable network (10% of Raft messages, clerk
// requests and replies lost, delays and reordering), so clerks retry Joins, Leaves and Moves
// whose replies were lost, and only exactly-once sessions keep the tests passing.
shardTest('TestBasic, unreliable network', { unreliable: true }, testBasic);
shardTest('TestMulti, unreliable network', { unreliable: true }, testMulti);
