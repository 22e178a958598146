// `npm run bench -- mr [--mb N]`: word count over a generated corpus (at least 200 MB,
// built from the Gutenberg texts) with 1, 2 and 4 workers, against the sequential
// reference and against `LC_ALL=C tr -cs 'A-Za-z' '\n' | sort | uniq -c` on the same
// input, in the same run. Every variant runs as its own OS process and is timed from
// start to exit, so process start-up is included. Results are checked against each other.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { flotillaCommand } from '../src/platform/spawn.js';

const CORPUS_MB_MIN = 200;
const REDUCE_TASKS = 10;
const benchDir = import.meta.dirname ?? new URL('.', import.meta.url).pathname;
const sharedGutenberg = join(benchDir, '..', '..', 'shared', 'data', 'gutenberg');
const gutenbergDir = existsSync(sharedGutenberg) ? sharedGutenberg : join(benchDir, '..', 'test', 'fixtures', 'gutenberg');

interface Row {
  name: string;
  seconds: number;
  /** User + system CPU seconds of the variant's processes. */
  cpuSeconds: number;
  /** The variant's own summary line (flotilla variants), for where the time went. */
  summary?: string;
}

export async function run(args: string[]): Promise<void> {
  const megabytes = Math.max(CORPUS_MB_MIN, Number(args[args.indexOf('--mb') + 1] ?? CORPUS_MB_MIN) || CORPUS_MB_MIN);
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-bench-mr-'));
  try {
    const inputs = await makeCorpus(dir, megabytes);
    // Other work on the machine slows the parallel variants most; say how busy it was.
    const loadBefore = describeLoad();
    const rows: Row[] = [];
    const shellOut = join(dir, 'shell.txt');
    rows.push(await time('shell: tr, sort, uniq -c', `cat ${inputs.map(quote).join(' ')} | LC_ALL=C tr -cs 'A-Za-z' '\\n' | sort | uniq -c > ${quote(shellOut)}`));
    const expected = await shellCounts(shellOut);
    rows.push(await timeFlotilla('flotilla mr seq', ['mr', 'seq', '--app', 'wc', '--out', join(dir, 'seq'), ...inputs], join(dir, 'seq'), expected));
    for (const workers of [1, 2, 4]) {
      const out = join(dir, `run-${workers}`);
      const args = ['mr', 'run', '--app', 'wc', '--reduce', String(REDUCE_TASKS), '--workers', String(workers), '--out', out, ...inputs];
      rows.push(await timeFlotilla(`flotilla mr run, ${workers} worker${workers > 1 ? 's' : ''}`, args, out, expected));
    }
    printTable(rows);
    console.log(`load average (1, 5, 15 min) before: ${loadBefore}; after: ${describeLoad()}`);
    for (const row of rows) if (row.summary !== undefined) console.log(`${row.name}: ${row.summary}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Files of about 3.2 MB, each the eight Gutenberg books in a rotated order. */
async function makeCorpus(dir: string, megabytes: number): Promise<string[]> {
  const names = (await readdir(gutenbergDir)).filter((name) => /^pg-.*\.txt$/.test(name)).sort();
  const books = await Promise.all(names.map((name) => readFile(join(gutenbergDir, name))));
  const inputs: string[] = [];
  let total = 0;
  for (let i = 0; total < megabytes * 1024 * 1024; i++) {
    const file = join(dir, `input-${String(i).padStart(3, '0')}.txt`);
    const rotated = [...books.slice(i % books.length), ...books.slice(0, i % books.length)];
    const data = Buffer.concat(rotated);
    await writeFile(file, data);
    inputs.push(file);
    total += data.length;
  }
  console.log(`corpus: ${inputs.length} files, ${(total / 1024 / 1024).toFixed(1)} MiB in ${dir}`);
  return inputs;
}

/**
 * Runs `script` under bash's `time`, which also reports the CPU seconds of every process it
 * waited for: on a shared machine the CPU column is the steadier measure of work done.
 */
function time(name: string, script: string): Promise<Row> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `TIMEFORMAT='cpu-seconds %U %S'; time { ${script} ; } > /dev/null`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const cpu = /cpu-seconds ([\d.]+) ([\d.]+)/.exec(stderr);
      if (code !== 0 || cpu === null) reject(new Error(`${name} exited with code ${code}: ${stderr}`));
      else resolve({ name, seconds: (performance.now() - start) / 1000, cpuSeconds: Number(cpu[1]) + Number(cpu[2]) });
    });
  });
}

async function timeFlotilla(name: string, args: string[], out: string, expected: Map<string, number>): Promise<Row> {
  const { command, args: prefix } = flotillaCommand();
  const summaryFile = `${out}.summary`;
  const row = await time(name, `${[command, ...prefix, ...args].map(quote).join(' ')} > ${quote(summaryFile)}`);
  await checkCounts(name, out, expected);
  const summary = (await readFile(summaryFile, 'utf8')).trim().replace(/ -> .*| \(.*?mr-out-\*\)/g, '');
  return { ...row, summary };
}

function describeLoad(): string {
  return loadavg()
    .map((load) => load.toFixed(2))
    .join(', ');
}

/** The shell pipeline's `   count word` lines, without the empty word tr emits first. */
async function shellCounts(path: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    const match = /^\s*(\d+) ([A-Za-z]+)$/.exec(line);
    if (match !== null) counts.set(match[2]!, Number(match[1]));
  }
  return counts;
}

async function checkCounts(name: string, out: string, expected: Map<string, number>): Promise<void> {
  let lines = 0;
  for (const file of (await readdir(out)).filter((entry) => entry.startsWith('mr-out-'))) {
    for (const line of (await readFile(join(out, file), 'utf8')).split('\n')) {
      if (line === '') continue;
      const [word, count] = line.split(' ');
      if (expected.get(word!) !== Number(count)) throw new Error(`${name}: "${line}" differs from the shell pipeline (${expected.get(word!)})`);
      lines += 1;
    }
  }
  if (lines !== expected.size) throw new Error(`${name}: ${lines} words, the shell pipeline found ${expected.size}`);
}

function printTable(rows: Row[]): void {
  const oneWorker = rows.find((row) => row.name.endsWith(', 1 worker'))!.seconds;
  const shell = rows[0]!.seconds;
  console.log(`\n| variant | seconds | CPU seconds | speed-up vs 1 worker | speed-up vs shell |`);
  console.log(`|---|---:|---:|---:|---:|`);
  for (const row of rows) {
    const cells = [row.seconds.toFixed(2), row.cpuSeconds.toFixed(2), `${(oneWorker / row.seconds).toFixed(2)}x`, `${(shell / row.seconds).toFixed(2)}x`];
    console.log(`| ${row.name} | ${cells.join(' | ')} |`);
  }
  console.log('\nAll variants agree on every word count.');
}

function quote(path: string): string {
  return `'${path.replace(/'/g, `'\\''`)}'`;
}
