// The 6.824 sharded key/value tests (lab 5B and both challenges, 2024 names; shardkv/
// test_test.go; docs/6824-tests.md §7.3) on the simulator in virtual time: a controller of
// three servers and three groups of three (gids 100, 101, 102), with the lab's scenarios,
// maxraftstate values, networks and bounds (scenarios.ts). Every history is checked for
// linearizability.

import { shardKvTest } from './lab.js';
import { labScenarios } from './scenarios.js';

for (const scenario of labScenarios) shardKvTest(scenario.name, scenario.options, scenario.body);

// Shards moved a key per page (each page its own log entry; the last completes the shard):
// the same scenarios and checks.
for (const name of ['TestJoinLeave5B', 'TestSnapshot5B', 'TestConcurrent1_5B', 'TestUnreliable2_5B']) {
  const scenario = labScenarios.find((s) => s.name === name)!;
  shardKvTest(`${name} (a key per page)`, { ...scenario.options, pullBytesMax: 1 }, scenario.body);
}
