// Shared set-up for the 6.824 shard controller tests (lab 4A/5A): each test builds a
// three-server controller on a fresh seed (SEED=N replays one, SEED=fixed uses the
// name-derived seed; see ../raft/lab.ts), runs within the lab's 120 s of virtual time and a
// real-time timeout, and always cleans up (ShardCtrlerCluster.cleanup), so a failed test
// leaves nothing running. At the end every live server must hold the same latest
// configuration: the replicas never diverged.

import { test } from 'node:test';
import { yieldToHost } from '../../src/platform/host.js';
import { describeConfig } from '../../src/shardctrler/index.js';
import { checkSameConfig, ShardCtrlerCluster, type ShardCtrlerClusterOptions } from '../../src/testbed/shardctrler-cluster.js';
import { labRealTimeoutMs, limitVirtualTime, seedFor } from '../raft/lab.js';

/** The lab's controller: three servers. */
export const ctrlerServers = 3;

/** Runs one named part of a test (the lab's subtests) and reports whether it passed. */
export type Step = (name: string, body: () => Promise<void>) => Promise<void>;

export type ShardTestOptions = Omit<ShardCtrlerClusterOptions, 'seed' | 'yieldToHost'>;

export function shardTest(name: string, options: ShardTestOptions, body: (cfg: ShardCtrlerCluster, step: Step) => Promise<void>): void {
  test(name, { timeout: labRealTimeoutMs }, async (t) => {
    // Each part runs as a node:test subtest; a failed part ends the test (the later parts
    // build on its state), with the part's own error.
    const step: Step = async (part, partBody) => {
      let failure: unknown;
      await t.test(part, async () => {
        try {
          await partBody();
        } catch (error) {
          failure = error;
          throw error;
        }
      });
      if (failure !== undefined) throw failure;
    };
    await runShardTest(name, options, body, { step, log: (line) => t.diagnostic(line), signal: t.signal });
  });
}

/** One test's run on its own cluster: throws what the test would fail with. */
export async function runShardTest(
  name: string,
  options: ShardTestOptions,
  body: (cfg: ShardCtrlerCluster, step: Step) => Promise<void>,
  hooks: { readonly step?: Step; readonly log?: (line: string) => void; readonly signal?: AbortSignal; readonly seed?: number } = {},
): Promise<string> {
  const step: Step = hooks.step ?? ((_part, partBody) => partBody());
  const log = hooks.log ?? (() => {});
  const seed = hooks.seed ?? seedFor(name);
  const cfg = new ShardCtrlerCluster(ctrlerServers, { ...options, seed, yieldToHost });
  limitVirtualTime(cfg.scheduler);
  // A real-time timeout ends the test but not its body: stop the cluster under it too.
  hooks.signal?.addEventListener('abort', () => cfg.cleanup(), { once: true });
  const realStart = performance.now();
  try {
    await cfg.startAll();
    await body(cfg, step);
    cfg.checkErrors();
    // Every live replica has applied the same configurations (give followers time to apply).
    await cfg.sleep(1000);
    const latest = cfg.latestConfigs();
    for (const config of latest.slice(1)) checkSameConfig(latest[0]!, config);
    // What a replay of the seed must reproduce exactly.
    const outcome = `${cfg.nowMs()} ms virtual; ${cfg.clerkNetwork.rpcTotal} clerk RPCs; ${cfg.raftNetwork.rpcTotal} Raft RPCs; snapshot ${Math.max(...cfg.storages.map((s) => s.snapshotBytes()))} B; ${describeConfig(latest[0]!)}`;
    log(`${name}: seed ${seed}; ${(performance.now() - realStart).toFixed(0)} ms real; ${outcome}`);
    return outcome;
  } catch (error) {
    (error as Error).message += ` (${name}, seed ${seed}; replay with SEED=${seed})`;
    throw error;
  } finally {
    cfg.cleanup();
  }
}
