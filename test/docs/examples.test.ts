// The examples the docs show, run as a user runs them: the `flotilla` command (compiled, or
// the sources under tsx) from the repository root, on the files that ship in examples/ and
// test/fixtures/. Each command must appear verbatim in examples/README.md and give the exit
// status and verdict written there, so neither the files nor the doc can rot. Also checked:
// no doc points outside the clone (at a `shared` folder that only some machines have), and
// the layer table of docs/ARCHITECTURE.md names exactly the modules under src/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { spawnFlotilla } from '../../src/platform/spawn.js';
import { parseLayerTable } from '../arch/layers.js';
import { repositoryRoot } from '../repo.js';

const root = repositoryRoot();
const examplesReadme = readFileSync(join(root, 'examples', 'README.md'), 'utf8');
const CLI_TIMEOUT_MS = 60_000;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `flotilla ...args` in the repository root, with a deadline. */
async function flotilla(args: readonly string[]): Promise<Run> {
  const child = spawnFlotilla(args, { cwd: root, output: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.process.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.process.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  // 'close' comes after the output streams ended, so nothing printed is missed.
  const closed = new Promise<number | null>((resolve) => child.process.once('close', (code) => resolve(code)));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`flotilla ${args.join(' ')} took more than ${CLI_TIMEOUT_MS} ms`));
    }, CLI_TIMEOUT_MS);
  });
  try {
    const code = await Promise.race([closed, deadline]);
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

function assertShown(command: string): void {
  assert.ok(examplesReadme.includes(command), `examples/README.md does not show: ${command}`);
}

interface LincheckCase {
  readonly args: readonly string[];
  readonly exit: number;
  readonly firstLine: RegExp;
}

const lincheckCases: readonly LincheckCase[] = [
  { args: ['lincheck', '--model', 'kv', 'examples/kv-history.jsonl'], exit: 0, firstLine: /^linearizable: 9 operations, 2 partition/ },
  { args: ['lincheck', '--model', 'kv', 'examples/kv-history-stale-read.jsonl'], exit: 1, firstLine: /^NOT linearizable: 10 operations/ },
  { args: ['lincheck', '--format', 'jepsen-kv', 'test/fixtures/porcupine-data/kv/c01-ok.txt'], exit: 0, firstLine: /^linearizable/ },
  { args: ['lincheck', '--format', 'jepsen-kv', 'test/fixtures/porcupine-data/kv/c01-bad.txt'], exit: 1, firstLine: /^NOT linearizable/ },
  { args: ['lincheck', '--format', 'jepsen-etcd', 'test/fixtures/porcupine-data/jepsen/etcd_070.log'], exit: 1, firstLine: /^NOT linearizable/ },
  {
    args: ['lincheck', '--format', 'jepsen-kv', '--no-partition', '--timeout-ms', '100', 'test/fixtures/porcupine-data/kv/c10-ok.txt'],
    exit: 2,
    firstLine: /^unknown/,
  },
];

for (const { args, exit, firstLine } of lincheckCases) {
  test(`flotilla ${args.join(' ')} exits ${exit}`, { timeout: CLI_TIMEOUT_MS + 5_000 }, async () => {
    assertShown(`flotilla ${args.join(' ')}`);
    const run = await flotilla(args);
    assert.equal(run.code, exit, `${run.stdout}${run.stderr}`);
    assert.match(run.stdout.split('\n')[0]!, firstLine);
  });
}

test('the stale read is named, and --html draws the history', { timeout: CLI_TIMEOUT_MS + 5_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-docs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assertShown('flotilla lincheck --model kv examples/kv-history-stale-read.jsonl --html ');
  const html = join(dir, 'stale-read.html');
  const run = await flotilla(['lincheck', '--model', 'kv', 'examples/kv-history-stale-read.jsonl', '--html', html]);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stdout, /partition "a" is not linearizable/);
  assert.match(run.stdout, /Stuck at the return of #6 client 2 \[50, 52\] get\("a"\) -> "xy"/);
  assert.match(readFileSync(html, 'utf8'), /<html/i);
});

test('a history with a bad line, or no model, is bad input (exit 3)', { timeout: CLI_TIMEOUT_MS + 5_000 }, async () => {
  const noModel = await flotilla(['lincheck', 'examples/kv-history.jsonl']);
  assert.equal(noModel.code, 3);
  assert.match(noModel.stderr, /--model is required/);
  const wrongModel = await flotilla(['lincheck', '--model', 'register', 'examples/kv-history.jsonl']);
  assert.equal(wrongModel.code, 3);
  assert.match(wrongModel.stderr, /kv-history\.jsonl:1: "op" must be "read" or "write"/);
});

test('flotilla mr run on the shipped Gutenberg texts equals mr seq', { timeout: 3 * CLI_TIMEOUT_MS }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-docs-mr-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assertShown('flotilla mr run --app wc --out /tmp/wc test/fixtures/gutenberg/pg-*.txt');
  assertShown('flotilla mr seq --app wc --out /tmp/wc-seq test/fixtures/gutenberg/pg-*.txt');
  // The shell would expand the glob; here the test does, in the shell's (sorted) order.
  const inputs = readdirSync(join(root, 'test', 'fixtures', 'gutenberg'))
    .filter((name) => /^pg-.*\.txt$/.test(name))
    .sort()
    .map((name) => `test/fixtures/gutenberg/${name}`);
  assert.equal(inputs.length, 8);
  const run = await flotilla(['mr', 'run', '--app', 'wc', '--out', join(dir, 'wc'), ...inputs]);
  assert.equal(run.code, 0, run.stderr);
  const seq = await flotilla(['mr', 'seq', '--app', 'wc', '--out', join(dir, 'wc-seq'), ...inputs]);
  assert.equal(seq.code, 0, seq.stderr);
  const outputs = readdirSync(join(dir, 'wc')).filter((name) => /^mr-out-\d+$/.test(name));
  assert.equal(outputs.length, 10, 'ten reduce tasks by default');
  // `cat mr-out-* | LC_ALL=C sort`: byte order, which is code-unit order for these ASCII lines.
  const merged = outputs.flatMap((name) => readFileSync(join(dir, 'wc', name), 'utf8').split('\n')).filter((line) => line !== '');
  merged.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const reference = readFileSync(join(dir, 'wc-seq', 'mr-out-0'), 'utf8');
  assert.equal(`${merged.join('\n')}\n`, reference);
  assert.equal(merged.length, 22_107);
  assert.ok(merged.includes('A 509') && merged.includes('the 29748'));
});

// ---- the docs themselves ----

const skippedDirs = new Set(['node_modules', 'dist', '.git', 'data', 'scratch', '.sim-failures']);

function filesUnder(dir: string, accept: (name: string) => boolean): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (skippedDirs.has(name) || name.startsWith('dist-')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...filesUnder(path, accept));
    else if (accept(name)) found.push(path);
  }
  return found;
}

// Built from pieces so that this file does not match itself.
const outsideClone = new RegExp(['\\.\\./shared/', '(?:^|[\\s(`])/?shared/(?:reference|data|linearizability)/', '\\breference/[\\w-]+\\.md'].join('|'));

test('no doc points at files outside the clone', () => {
  const offenders: string[] = [];
  for (const file of filesUnder(root, (name) => name.endsWith('.md'))) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (outsideClone.test(line)) offenders.push(`${relative(root, file)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(offenders, []);
});

test('no source comment cites a reference document that does not ship', () => {
  const citation = new RegExp(['\\breference/[\\w-]+\\.md', 'shared/reference/'].join('|'));
  const offenders: string[] = [];
  for (const top of ['src', 'test', 'bench']) {
    for (const file of filesUnder(join(root, top), (name) => name.endsWith('.ts'))) {
      if (relative(root, file).startsWith(join('test', 'docs'))) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (citation.test(line)) offenders.push(`${relative(root, file)}:${i + 1}: ${line.trim()}`);
        });
    }
  }
  assert.deepEqual(offenders, []);
});

test('relative links and doc paths in the docs lead to files that exist', () => {
  const docs = [
    join(root, 'README.md'),
    ...filesUnder(join(root, 'docs'), (name) => name.endsWith('.md')),
    ...filesUnder(join(root, 'src'), (name) => name === 'README.md'),
    ...filesUnder(join(root, 'examples'), (name) => name.endsWith('.md')),
    join(root, 'test', 'fixtures', 'README.md'),
  ].filter((file) => existsSync(file));
  const missing: string[] = [];
  for (const file of docs) {
    const text = readFileSync(file, 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/i.test(target!)) continue;
      if (!existsSync(join(dirname(file), target!))) missing.push(`${relative(root, file)}: link ${target}`);
    }
    // Inline `docs/…`, `examples/…` and `test/fixtures/…` paths are relative to the root.
    for (const [, path] of text.matchAll(/`((?:docs|examples|test\/fixtures)\/[\w./-]+)`/g)) {
      if (!existsSync(join(root, path!))) missing.push(`${relative(root, file)}: path ${path}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('the layer table of docs/ARCHITECTURE.md names exactly the modules under src/', () => {
  const table = parseLayerTable(readFileSync(join(root, 'docs', 'ARCHITECTURE.md'), 'utf8'));
  const modules = readdirSync(join(root, 'src'))
    .filter((name) => statSync(join(root, 'src', name)).isDirectory())
    .sort();
  assert.deepEqual([...table.keys()].sort(), modules);
  for (const [module, allowed] of table) {
    for (const name of allowed) assert.ok(modules.includes(name), `${module} may import "${name}", which is not a module`);
  }
});
