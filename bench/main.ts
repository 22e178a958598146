// `npm run bench -- NAME [args]` runs bench/NAME.ts; with no name, every benchmark but the
// ones run only on request (ON_REQUEST).
// Each benchmark exports `run(args: string[]): Promise<void>` and prints its own table,
// always as ratios against a baseline measured in the same run (STYLE.md 19).

import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';

interface Benchmark {
  run(args: string[]): Promise<void>;
}

/** Modules here that are not benchmarks. */
const HELPERS = new Set(['main.ts', 'common.ts']);
/**
 * Benchmarks run only when named: `versus` takes about ten minutes and needs ZooKeeper and
 * etcd installed (bench/README.md); `shards` starts clusters of up to a hundred groups and
 * takes about five.
 */
const ON_REQUEST = new Set(['versus', 'shards']);

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((name) => name.endsWith('.ts') && !HELPERS.has(name) && !name.startsWith('_'))
  .map((name) => name.slice(0, -3))
  .sort();

const [name, ...args] = process.argv.slice(2);
const selected = name === undefined ? available.filter((bench) => !ON_REQUEST.has(bench)) : [name];
for (const bench of selected) {
  if (!available.includes(bench)) {
    console.error(`unknown benchmark "${bench}"; available: ${available.join(', ')}`);
    process.exit(2);
  }
  console.log(`\n== ${bench} ==`);
  const module = (await import(`./${bench}.ts`)) as Benchmark;
  await module.run(args);
}
