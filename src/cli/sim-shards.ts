// `flotilla sim-shards`: randomized simulation runs of the sharded key/value service by seed
// (src/testbed/shardkv-sim.ts).

import { type Command, InvalidArgumentError, Option } from 'commander';
import { runShardSimulation, type ShardSimResult } from '../testbed/shardkv-sim.js';
import type { ShardKvUnsafe } from '../shardkv/index.js';
import { realClock } from '../platform/clock.js';
import { yieldToHost } from '../platform/host.js';
import { setExitCode, writeOut } from '../platform/process.js';

const unsafeVariants: Record<string, ShardKvUnsafe> = {
  'serve-before-arrival': { serveBeforeArrival: true },
  'no-dedup-transfer': { noDedupTransfer: true },
};

export function registerSimShards(program: Command): void {
  program
    .command('sim-shards')
    .description('run the randomized simulation of the sharded key/value service')
    .addOption(new Option('--seed <n>', 'run (or replay) one seed').argParser(parseInteger).conflicts(['seeds', 'start']))
    .option('--seeds <n>', 'run this many seeds (default 100)', parseInteger)
    .option('--start <n>', 'first seed of a --seeds run', parseInteger, 1)
    .addOption(new Option('--unsafe <variant>', 'a deliberately broken replica group').choices(Object.keys(unsafeVariants)))
    .option('-v, --verbose', 'print every seed')
    .action(async (options: { seed?: number; seeds?: number; start: number; unsafe?: string; verbose?: boolean }) => {
      const unsafe = options.unsafe === undefined ? undefined : unsafeVariants[options.unsafe];
      const seeds = options.seed !== undefined ? [options.seed] : range(options.start, options.seeds ?? 100);
      const started = realClock.nowMs();
      let failed = 0;
      for (const seed of seeds) {
        const result = await runShardSimulation({ seed, yieldToHost, ...(unsafe ? { unsafe } : {}) });
        if (!result.ok) failed++;
        if (!result.ok || options.verbose === true || seeds.length === 1) writeOut(formatResult(result, options.unsafe));
      }
      const seconds = ((realClock.nowMs() - started) / 1000).toFixed(1);
      writeOut(`${seeds.length - failed} passed, ${failed} failed (${seeds.length} seeds in ${seconds} s)\n`);
      if (failed > 0) setExitCode(1);
    });
}

function formatResult(result: ShardSimResult, unsafe: string | undefined): string {
  const head = `seed ${result.seed} ${result.ok ? 'ok' : 'FAILED'}: ${result.settings}; ${result.ops} clerk calls, ${result.configs} configurations in ${result.virtualMs} virtual ms; trace ${result.traceHash}\n`;
  if (result.ok) return head;
  const replay = `flotilla sim-shards --seed ${result.seed}${unsafe === undefined ? '' : ` --unsafe ${unsafe}`}`;
  return `${head}  ${result.failure}\n  replay: ${replay}\n`;
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

function parseInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('a non-negative integer');
  return n;
}
