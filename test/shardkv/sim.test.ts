// The randomized simulation of the sharded key/value service (src/testbed/shardkv-sim.ts):
// a block of seeds must pass, a seed must replay bit for bit, and deliberately broken
// groups must be caught (STYLE.md 17, 18).
//
//   SHARD_SIM_SEEDS=500 node --test dist/test/shardkv/sim.test.js   a longer sweep (from a random start;
//                                                                   SHARD_SIM_SEED_START=1 pins it)
//   npm run flotilla -- sim-shards --seed N                         replays one seed

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { runShardSimulation, type ShardSimOptions } from '../../src/testbed/shardkv-sim.js';
import { yieldToHost } from '../../src/platform/host.js';
import { killAllCommands, runFlotilla } from '../cli/helpers.js';

after(killAllCommands);

const seedCount = Number(process.env['SHARD_SIM_SEEDS'] ?? 20);
// A fresh block of seeds every run (SHARD_SIM_SEED_START=N pins it).
const seedStart = Number(process.env['SHARD_SIM_SEED_START'] ?? 1 + randomInt(2 ** 31));

test(`the sharded simulation passes ${seedCount} seeds from ${seedStart}`, async (t) => {
  const failures: string[] = [];
  let ops = 0;
  let configs = 0;
  const started = performance.now();
  for (let seed = seedStart; seed < seedStart + seedCount; seed++) {
    const result = await runShardSimulation({ seed, yieldToHost });
    ops += result.ops;
    configs += result.configs;
    if (!result.ok) failures.push(`seed ${seed} [${result.settings}]: ${result.failure}\n  replay: flotilla sim-shards --seed ${seed}`);
  }
  t.diagnostic(`${seedCount} seeds in ${((performance.now() - started) / 1000).toFixed(1)} s: ${ops} clerk calls returned, ${configs} configurations`);
  assert.deepEqual(failures, []);
  // Enough happened to mean something: calls, and configuration changes under them.
  assert.ok(ops > seedCount * 50, `the runs completed too few clerk calls (${ops})`);
  assert.ok(configs > seedCount * 3, `the runs made too few configurations (${configs})`);
});

test('a seed replays exactly: same trace hash twice, different seeds differ', async () => {
  const hashes = new Set<string>();
  for (const seed of [3, 17, 99]) {
    const first = await runShardSimulation({ seed, yieldToHost });
    const second = await runShardSimulation({ seed, yieldToHost });
    assert.equal(second.traceHash, first.traceHash, `seed ${seed} is not deterministic`);
    assert.equal(second.ops, first.ops);
    hashes.add(first.traceHash);
  }
  assert.equal(hashes.size, 3);
});

/** Runs seeds 1..limit and returns the first that reports a violation, with its failure. */
async function firstFailingSeed(limit: number, options: Omit<ShardSimOptions, 'seed' | 'yieldToHost'>): Promise<{ seed: number; failure: string } | undefined> {
  for (let seed = 1; seed <= limit; seed++) {
    const result = await runShardSimulation({ seed, yieldToHost, ...options });
    if (!result.ok) return { seed, failure: result.failure! };
  }
  return undefined;
}

test('the simulation catches a group serving a shard before its data arrived', async () => {
  const found = await firstFailingSeed(20, { unsafe: { serveBeforeArrival: true } });
  assert.ok(found !== undefined, 'no violation in 20 seeds');
  assert.match(found.failure, /not linearizable/);
});

test('the simulation catches a shard moved without its session table', async () => {
  const found = await firstFailingSeed(20, { unsafe: { noDedupTransfer: true }, settings: { unreliable: true } });
  assert.ok(found !== undefined, 'no violation in 20 seeds');
  assert.match(found.failure, /not linearizable/);
});

test('flotilla sim-shards runs and replays seeds, reports a planted bug with its replay command, and refuses bad options', { timeout: 120_000 }, async () => {
  const one = await runFlotilla(['sim-shards', '--seed', '3'], { timeoutMs: 60_000 });
  assert.equal(one.code, 0, one.stderr.toString());
  const expected = await runShardSimulation({ seed: 3, yieldToHost });
  assert.match(one.stdout.toString(), new RegExp(`^seed 3 ok: .*; trace ${expected.traceHash}\\n1 passed, 0 failed \\(1 seeds in [\\d.]+ s\\)\\n$`));

  const broken = await firstFailingSeed(20, { unsafe: { serveBeforeArrival: true } });
  assert.ok(broken !== undefined);
  const failed = await runFlotilla(['sim-shards', '--seed', String(broken.seed), '--unsafe', 'serve-before-arrival'], { timeoutMs: 60_000 });
  assert.equal(failed.code, 1);
  assert.match(
    failed.stdout.toString(),
    new RegExp(`seed ${broken.seed} FAILED: [^]*not linearizable[^]*replay: flotilla sim-shards --seed ${broken.seed} --unsafe serve-before-arrival\\n0 passed, 1 failed`),
  );

  const bad = await runFlotilla(['sim-shards', '--seed', '1', '--unsafe', 'nope']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr.toString(), /error: option '--unsafe <variant>' argument 'nope' is invalid\. Allowed choices are serve-before-arrival, no-dedup-transfer\./);
  const negative = await runFlotilla(['sim-shards', '--seeds', '-2']);
  assert.notEqual(negative.code, 0);
  assert.match(negative.stderr.toString(), /error: option '--seeds <n>' argument '-2' is invalid\. a non-negative integer/);
});
