// `flotilla sim` (and `npm run sim`): randomized simulation runs by seed.

import type { Command } from 'commander';
import { runSimulation, type SimResult } from '../testbed/raft-sim.js';
import { realClock } from '../platform/clock.js';
import { yieldToHost } from '../platform/host.js';
import { setExitCode, writeOut } from '../platform/process.js';
import { writeTextFile } from '../platform/files.js';
import { renderReplayHtml } from '../testbed/replay-html.js';

const unsafeVariants = {
  'vote-without-log-check': { grantVoteWithoutLogCheck: true },
  'commit-previous-term': { commitPreviousTermByCounting: true },
  'forget-vote': { forgetVote: true },
  'read-without-confirmation': { readWithoutConfirmation: true },
  'keep-conflicting-suffix': { keepConflictingSuffix: true },
  'small-quorum': { smallQuorum: true },
  'apply-twice': { applyTwice: true },
  'no-tick-catch-up': { noTickCatchUp: true },
} as const;

export function registerSim(program: Command): void {
  program
    .command('sim')
    .description('run the randomized Raft simulation')
    .option('--seed <n>', 'run (or replay) one seed', parseInteger)
    .option('--seeds <n>', 'run this many seeds', parseInteger)
    .option('--start <n>', 'first seed of a --seeds run', parseInteger, 1)
    .option('--unsafe <variant>', `a deliberately broken Raft: ${Object.keys(unsafeVariants).join(', ')}`)
    .option('-v, --verbose', 'print every seed')
    .option('--html <file>', 'with --seed: write a step-by-step replay of the run to this HTML file (open it in a browser)')
    .action(async (options: { seed?: number; seeds?: number; start: number; unsafe?: string; verbose?: boolean; html?: string }) => {
      if (options.html !== undefined && options.seed === undefined) throw new Error('--html replays one run: give it a --seed');
      let unsafe: (typeof unsafeVariants)[keyof typeof unsafeVariants] | undefined;
      if (options.unsafe !== undefined) {
        if (!(options.unsafe in unsafeVariants)) throw new Error(`unknown --unsafe variant "${options.unsafe}"`);
        unsafe = unsafeVariants[options.unsafe as keyof typeof unsafeVariants];
      }
      const seeds = options.seed !== undefined ? [options.seed] : range(options.start, options.seeds ?? 100);
      const started = realClock.nowMs();
      let failed = 0;
      for (const seed of seeds) {
        const result = await runSimulation({ seed, yieldToHost, ...(unsafe ? { unsafe } : {}), record: options.html !== undefined });
        if (!result.ok) failed++;
        if (options.html !== undefined && result.recording !== undefined) {
          writeTextFile(options.html, renderReplayHtml(result.recording));
          writeOut(`replay of seed ${seed} (${result.recording.events.length} steps) written to ${options.html}\n`);
        }
        if (!result.ok || options.verbose === true || seeds.length === 1) writeOut(formatResult(result, options.unsafe));
      }
      const seconds = ((realClock.nowMs() - started) / 1000).toFixed(1);
      writeOut(`${seeds.length - failed} passed, ${failed} failed (${seeds.length} seeds in ${seconds} s)\n`);
      if (failed > 0) setExitCode(1);
    });
}

function formatResult(result: SimResult, unsafe: string | undefined): string {
  const head = `seed ${result.seed} ${result.ok ? 'ok' : 'FAILED'}: ${result.settings}; committed ${result.committed} in ${result.virtualMs} virtual ms; trace ${result.traceHash}\n`;
  if (result.ok) return head;
  const replay = `npm run sim -- --seed ${result.seed}${unsafe === undefined ? '' : ` --unsafe ${unsafe}`}`;
  return `${head}  ${result.failure}\n  replay: ${replay}\n`;
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

function parseInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${value}`);
  return n;
}
