// Shared set-up for the 6.824 kvraft tests: each test builds a cluster on a fixed seed
// (derived from its name; SEED=N overrides it), checks every logged history with the
// linearizability checker, and always cleans up.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvCluster, type KvClusterOptions, linearizabilityCheckTimeoutMs } from '../../src/testbed/kv-cluster.js';
import { yieldToHost } from '../../src/platform/host.js';
import { describeResult, kvModel } from '../../src/lincheck/index.js';
import { seedFor } from '../raft/lab.js';

export interface KvTestOptions extends Omit<KvClusterOptions, 'seed' | 'yieldToHost'> {
  /** Skip the linearizability check (the planted-bug tests check it themselves). */
  readonly noLinearizabilityCheck?: boolean;
  /** Bound the checker's memory (a history whose search explodes then ends 'unknown'). */
  readonly linearizabilityCacheBytesMax?: number;
}

export function kvTest(name: string, servers: number, options: KvTestOptions, body: (cfg: KvCluster) => Promise<string | void>): void {
  test(name, async (t) => {
    const seed = seedFor(name);
    const cfg = new KvCluster(servers, { ...options, seed, yieldToHost });
    const realStart = performance.now();
    try {
      await cfg.startAll();
      const summary = await body(cfg);
      cfg.checkErrors();
      const verdict = options.noLinearizabilityCheck === true ? 'skipped' : checkHistory(cfg, options.linearizabilityCacheBytesMax);
      t.diagnostic(`${name}: seed ${seed}; ${(performance.now() - realStart).toFixed(0)} ms real, ${(cfg.nowMs() / 1000).toFixed(1)} s virtual; ${cfg.history.length} ops, ${cfg.rpcTotal()} clerk RPCs, ${cfg.raftNetwork.rpcTotal} Raft RPCs, ${(cfg.raftNetwork.bytesTotal / 1e6).toFixed(1)} MB Raft; linearizability ${verdict}${summary ? `; ${summary}` : ''}`);
    } catch (error) {
      (error as Error).message += ` (seed ${seed}; replay with SEED=${seed})`;
      throw error;
    } finally {
      cfg.cleanup();
    }
  });
}

/** The lab's porcupine check: 'illegal' fails, 'unknown' (out of time) passes. */
export function checkHistory(cfg: KvCluster, cacheBytesMax?: number): string {
  const result = cfg.checkLinearizable(() => performance.now(), linearizabilityCheckTimeoutMs, cacheBytesMax);
  assert.notEqual(result.verdict, 'illegal', `history is not linearizable:\n${describeResult(kvModel(), result)}`);
  return result.verdict;
}
