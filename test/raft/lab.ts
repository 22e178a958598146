// Shared set-up for the 6.824 Raft tests. Each run draws a fresh seed per test, so CI
// explores new schedules every time; the seed is printed when the test passes and named in
// the failure when it fails. SEED=N replays one; SEED=fixed uses each test's own fixed seed
// (derived from its name), the schedules the suite ran before seeds were drawn.
//
// Every test has the lab's limit (config.go's checkTimeout: 120 s) in virtual time — the
// run fails the moment virtual time passes it, so a stuck test ends too — and a real-time
// timeout on the node:test test, for a hang the virtual clock cannot see.

import { test } from 'node:test';
import { randomInt } from 'node:crypto';
import { RaftCluster, TestFailure, type ClusterOptions } from '../../src/testbed/raft-cluster.js';
import { yieldToHost } from '../../src/platform/host.js';
import type { Scheduler } from '../../src/sim/scheduler.js';

/** The lab's per-test limit, in virtual time. */
export const labTimeLimitMs = 120_000;
/** The real-time limit on one lab test; they take well under a few seconds each. */
export const labRealTimeoutMs = 60_000;

/** The seed derived from a test's name: the same every run. */
export function fixedSeedFor(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** SEED=N, SEED=fixed, or a fresh random seed. */
export function seedFor(name: string): number {
  const fromEnv = process.env['SEED'];
  if (fromEnv === 'fixed') return fixedSeedFor(name);
  if (fromEnv !== undefined) {
    const seed = Number(fromEnv);
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`SEED=${fromEnv}: not a seed (a non-negative integer, or 'fixed')`);
    return seed;
  }
  return randomInt(2 ** 32);
}

/** Fails the cluster's run once virtual time passes the lab's limit. */
export function limitVirtualTime(scheduler: Scheduler): void {
  scheduler.failAt(labTimeLimitMs, () => new TestFailure(`test took longer than ${labTimeLimitMs / 1000} seconds of virtual time`));
}

export type LabTestOptions = Omit<ClusterOptions, 'seed' | 'yieldToHost'>;

export function labTest(name: string, servers: number, options: LabTestOptions, body: (cluster: RaftCluster) => Promise<void>): void {
  test(name, { timeout: labRealTimeoutMs }, async (t) => {
    await runLabTest(name, servers, options, body, (line) => t.diagnostic(line));
  });
}

/** One lab test's run: throws what the test would fail with. */
export async function runLabTest(name: string, servers: number, options: LabTestOptions, body: (cluster: RaftCluster) => Promise<void>, log: (line: string) => void = () => {}): Promise<void> {
  const seed = seedFor(name);
  const cluster = new RaftCluster(servers, { ...options, seed, yieldToHost });
  limitVirtualTime(cluster.scheduler);
  try {
    await cluster.startAll();
    await body(cluster);
    cluster.checkErrors();
    // The lab's "Passed" line: time, peers, RPCs, bytes, commands committed.
    const seconds = (cluster.scheduler.nowMs / 1000).toFixed(1);
    log(`Passed -- ${seconds} s virtual, ${servers} peers, ${cluster.rpcTotal()} RPCs, ${cluster.bytesTotal()} bytes, ${cluster.highestApplied()} commands; seed ${seed}`);
  } catch (error) {
    (error as Error).message += ` (${name}, seed ${seed}; replay with SEED=${seed})`;
    throw error;
  } finally {
    cluster.cleanup();
  }
}
