// Shared set-up for the 6.824 kvraft tests: each test builds a cluster on a fresh seed
// (SEED=N replays one, SEED=fixed uses the name-derived seeds; see ../raft/lab.ts), runs
// within the lab's 120 s of virtual time and a real-time timeout, checks every logged
// history with the linearizability checker, and always cleans up: when the test ends, fails
// or times out, the cluster's servers stop and its simulation ends (KvCluster.cleanup), so a
// failed test leaves nothing running behind it.
//
// The lab lets a history whose check runs out of time ('unknown') pass. So does each test
// here, but every file ends with kvVerdictsTest(), which fails when more than half of the
// file's histories were unknown: a run that decided almost nothing has not passed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvCluster, type KvClusterOptions, linearizabilityCheckTimeoutMs } from '../../src/testbed/kv-cluster.js';
import { yieldToHost } from '../../src/platform/host.js';
import { describeResult, kvModel } from '../../src/lincheck/index.js';
import { labRealTimeoutMs, limitVirtualTime, seedFor } from '../raft/lab.js';

export interface KvTestOptions extends Omit<KvClusterOptions, 'seed' | 'yieldToHost'> {
  /** Skip the linearizability check (the planted-bug tests check it themselves). */
  readonly noLinearizabilityCheck?: boolean;
  /** Bound the checker's memory (a history whose search explodes then ends 'unknown'). */
  readonly linearizabilityCacheBytesMax?: number;
}

/** The verdicts of this file's histories so far. */
const verdicts = { ok: 0, unknown: 0 };

export function kvTest(name: string, servers: number, options: KvTestOptions, body: (cfg: KvCluster) => Promise<unknown>): void {
  test(name, { timeout: labRealTimeoutMs }, async (t) => {
    const seed = seedFor(name);
    const cfg = new KvCluster(servers, { ...options, seed, yieldToHost });
    limitVirtualTime(cfg.scheduler);
    // A real-time timeout ends the test but not its body: stop the cluster under it too.
    t.signal.addEventListener('abort', () => cfg.cleanup(), { once: true });
    const realStart = performance.now();
    try {
      await cfg.startAll();
      const summary = await body(cfg);
      cfg.checkErrors();
      const verdict = options.noLinearizabilityCheck === true ? 'skipped' : checkHistory(cfg, options.linearizabilityCacheBytesMax);
      t.diagnostic(
        `${name}: seed ${seed}; ${(performance.now() - realStart).toFixed(0)} ms real, ${(cfg.nowMs() / 1000).toFixed(1)} s virtual; ${cfg.history.length} ops, ${cfg.rpcTotal()} clerk RPCs, ${cfg.raftNetwork.rpcTotal} Raft RPCs, ${(cfg.raftNetwork.bytesTotal / 1e6).toFixed(1)} MB Raft; linearizability ${verdict}${summary ? `; ${summary}` : ''}`,
      );
    } catch (error) {
      (error as Error).message += ` (${name}, seed ${seed}; replay with SEED=${seed})`;
      throw error;
    } finally {
      cfg.cleanup();
    }
  });
}

/** The lab's porcupine check: 'illegal' fails, 'unknown' (out of time) passes but is counted. */
export function checkHistory(cfg: KvCluster, cacheBytesMax?: number): string {
  const result = cfg.checkLinearizable(() => performance.now(), linearizabilityCheckTimeoutMs, cacheBytesMax);
  assert.notEqual(result.verdict, 'illegal', `history is not linearizable:\n${describeResult(kvModel(), result)}`);
  if (result.verdict === 'unknown') verdicts.unknown++;
  else verdicts.ok++;
  return result.verdict;
}

/** Register last in a file: fails if most of the file's checked histories were 'unknown'. */
export function kvVerdictsTest(): void {
  test('most histories were decided (ok), not unknown', (t) => {
    const checked = verdicts.ok + verdicts.unknown;
    t.diagnostic(`${checked} histories checked: ${verdicts.ok} ok, ${verdicts.unknown} unknown`);
    assert.ok(checked > 0, 'no history was checked');
    assert.ok(verdicts.unknown * 2 <= checked, `${verdicts.unknown} of ${checked} histories ended 'unknown': the checker decided too little for the run to count as passed`);
  });
}
