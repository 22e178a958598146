// Shared set-up for the 6.824 Raft tests: each test builds a cluster on a fixed seed
// (derived from its name; override with SEED=N) and always cleans up.

import { test } from 'node:test';
import { RaftCluster, type ClusterOptions } from '../../src/testbed/raft-cluster.js';
import { yieldToHost } from '../../src/platform/host.js';

export function seedFor(name: string): number {
  const fromEnv = process.env['SEED'];
  if (fromEnv !== undefined) return Number(fromEnv);
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function labTest(
  name: string,
  servers: number,
  options: Omit<ClusterOptions, 'seed' | 'yieldToHost'>,
  body: (cluster: RaftCluster) => Promise<void>,
): void {
  test(name, async (t) => {
    const seed = seedFor(name);
    const cluster = new RaftCluster(servers, { ...options, seed, yieldToHost });
    try {
      await cluster.startAll();
      await body(cluster);
      cluster.checkErrors();
      // The lab's "Passed" line: time, peers, RPCs, bytes, commands committed.
      const seconds = (cluster.scheduler.nowMs / 1000).toFixed(1);
      t.diagnostic(`Passed -- ${seconds} s virtual, ${servers} peers, ${cluster.rpcTotal()} RPCs, ${cluster.bytesTotal()} bytes, ${cluster.highestApplied()} commands; seed ${seed}`);
    } catch (error) {
      (error as Error).message += ` (seed ${seed}; replay with SEED=${seed})`;
      throw error;
    } finally {
      cluster.cleanup();
    }
  });
}
