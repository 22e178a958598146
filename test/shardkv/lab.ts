// Shared set-up for the 6.824 sharded key/value tests (lab 5B; docs/6824-tests.md §7): each
// test builds a controller and three groups of three on a fresh seed (SEED=N replays one,
// SEED=fixed uses the name-derived seed; see ../raft/lab.ts), runs within the lab's 120 s
// of virtual time and a real-time timeout, checks the whole history with the
// linearizability checker (the lab checks only TestUnreliable3's; checking every history
// costs little and can only find more; 'unknown' passes, as in the lab), and always
// cleans up (ShardKvCluster.cleanup), so a failed test leaves nothing running.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { yieldToHost } from '../../src/platform/host.js';
import { describeResult, kvModel } from '../../src/lincheck/index.js';
import { ShardKvCluster, type ShardKvClusterOptions, shardKvCheckTimeoutMs } from '../../src/testbed/shardkv-cluster.js';
import { labRealTimeoutMs, limitVirtualTime, seedFor } from '../raft/lab.js';

export type ShardKvTestOptions = Omit<ShardKvClusterOptions, 'seed' | 'yieldToHost'>;

export function shardKvTest(name: string, options: ShardKvTestOptions, body: (cfg: ShardKvCluster) => Promise<unknown>): void {
  test(name, { timeout: labRealTimeoutMs }, async (t) => {
    const line = await runShardKvTest(name, options, body, { signal: t.signal });
    t.diagnostic(line);
  });
}

/** One test's run on its own cluster: its summary line, or what the test fails with. */
export async function runShardKvTest(
  name: string,
  options: ShardKvTestOptions,
  body: (cfg: ShardKvCluster) => Promise<unknown>,
  hooks: { readonly signal?: AbortSignal; readonly seed?: number; readonly noLinearizabilityCheck?: boolean } = {},
): Promise<string> {
  const seed = hooks.seed ?? seedFor(name);
  const cfg = new ShardKvCluster({ ...options, seed, yieldToHost });
  limitVirtualTime(cfg.scheduler);
  hooks.signal?.addEventListener('abort', () => cfg.cleanup(), { once: true });
  const realStart = performance.now();
  try {
    await cfg.startAll();
    const summary = await body(cfg);
    cfg.checkErrors();
    let verdict = 'skipped';
    if (hooks.noLinearizabilityCheck !== true) {
      const result = cfg.checkLinearizable(() => performance.now(), shardKvCheckTimeoutMs);
      assert.notEqual(result.verdict, 'illegal', `history is not linearizable:\n${describeResult(kvModel(), result)}`);
      verdict = result.verdict;
    }
    return `${name}: seed ${seed}; ${(performance.now() - realStart).toFixed(0)} ms real, ${(cfg.nowMs() / 1000).toFixed(1)} s virtual; ${cfg.history.length} ops, ${cfg.kvNetwork.rpcTotal} clerk RPCs, ${cfg.peerNetwork.rpcTotal} peer RPCs, ${cfg.raftNetwork.rpcTotal} Raft RPCs; linearizability ${verdict}${typeof summary === 'string' ? `; ${summary}` : ''}`;
  } catch (error) {
    (error as Error).message += ` (${name}, seed ${seed}; replay with SEED=${seed})\n${cfg.describe()}`;
    throw error;
  } finally {
    cfg.cleanup();
  }
}

const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** The lab's randstring(n), from the run's seeded PRNG. */
export function randstring(cfg: ShardKvCluster, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += letters[cfg.prng.int(letters.length)];
  return s;
}
