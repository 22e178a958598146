// Shared by the MapReduce tests: where things are, processes that are always cleaned up,
// and the lab's "sort mr-out* | grep ." comparison.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { repositoryRoot } from '../repo.js';
import { flotillaCommand } from '../../src/platform/spawn.js';
import { compareKeys } from '../../src/mapreduce/types.js';

const here = dirname(fileURLToPath(import.meta.url));
const sourceExtension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

export { repositoryRoot };

/** ../shared/data/gutenberg beside the repository, or its copy in test/fixtures. */
export const gutenbergDir = ((): string => {
  const shared = join(repositoryRoot(), '..', 'shared', 'data', 'gutenberg');
  return existsSync(shared) ? shared : join(repositoryRoot(), 'test', 'fixtures', 'gutenberg');
})();

export async function gutenbergFiles(): Promise<string[]> {
  const names = (await readdir(gutenbergDir)).filter((name) => /^pg-.*\.txt$/.test(name)).sort();
  if (names.length !== 8) throw new Error(`expected 8 pg-*.txt files in ${gutenbergDir}, found ${names.length}`);
  return names.map((name) => join(gutenbergDir, name));
}

/** Absolute path of a test application, in the same layout (src .ts or dist .js) as this file. */
export function testApp(name: string): string {
  return join(here, 'apps', `${name}${sourceExtension}`);
}

/** A fresh directory, removed after the test. */
export async function scratchDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-mr-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Flotilla processes of one test. Every process is killed (SIGKILL) when the test ends,
 * passed or failed, before its directory is removed.
 */
export class Procs {
  private readonly all: Proc[] = [];

  constructor(t: TestContext) {
    t.after(() => this.killAll());
  }

  start(args: readonly string[], cwd: string): Proc {
    const { command, args: prefix } = flotillaCommand();
    const child = spawn(command, [...prefix, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc: Proc = { child, stdout: '', stderr: '', exited: undefined! };
    child.stdout!.on('data', (chunk: Buffer) => (proc.stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (proc.stderr += chunk.toString()));
    proc.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.all.push(proc);
    return proc;
  }

  /** Starts a coordinator and resolves with its HOST:PORT once it listens. */
  async coordinator(args: readonly string[], cwd: string): Promise<{ proc: Proc; address: string }> {
    const proc = this.start(['mr', 'coordinator', ...args], cwd);
    const address = await new Promise<string>((resolve, reject) => {
      const onData = (): void => {
        const match = /coordinator listening on (\S+)/.exec(proc.stdout);
        if (match !== null) {
          proc.child.stdout!.off('data', onData);
          resolve(match[1]!);
        }
      };
      proc.child.stdout!.on('data', onData);
      void proc.exited.then((status) => reject(new Error(`coordinator exited (${status.code}) before listening: ${proc.stderr}`)));
    });
    return { proc, address };
  }

  worker(address: string, cwd: string): Proc {
    return this.start(['mr', 'worker', '--coordinator', address], cwd);
  }

  private async killAll(): Promise<void> {
    for (const proc of this.all) {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
    }
    await Promise.all(this.all.map((proc) => proc.exited));
  }
}

/** The lab's `sort mr-out* | grep .`: every non-empty line of every mr-out-N, in byte order. */
export async function mergedOutput(dir: string): Promise<string> {
  const names = (await readdir(dir)).filter((name) => /^mr-out-\d+$/.test(name));
  if (names.length === 0) throw new Error(`no mr-out-N files in ${dir}`);
  const lines: string[] = [];
  for (const name of names) {
    for (const line of (await readFile(join(dir, name), 'utf8')).split('\n')) if (line.length > 0) lines.push(line);
  }
  return lines.sort(compareKeys).join('\n');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- Expected outputs computed here, from the input alone ----------------------------------
//
// The jobs' outputs are checked against what this code computes from the input files, not
// against another run of the implementation (its sequential runner shares the application
// code and the output path, so a bug in them would be in both). Nothing here comes from
// src/mapreduce: words are found with a regular expression, and lines are sorted by their
// UTF-8 bytes (the lab's `LC_ALL=C sort`) with Buffer.compare.

/** `lines` in UTF-8 byte order. */
export function byteSorted(lines: readonly string[]): string[] {
  return lines
    .map((line) => ({ line, bytes: Buffer.from(line) }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map(({ line }) => line);
}

/** mergedOutput(dir), re-sorted by byteSorted: the output as compared with an expectation. */
export async function sortedOutput(dir: string): Promise<string> {
  return byteSorted((await mergedOutput(dir)).split('\n')).join('\n');
}

export interface ExpectedOutputs {
  /** The wc job's output lines, `word count`, in byte order, joined by '\n'. */
  wordCount: string;
  /** The indexer job's output lines, `word n file1,file2,…` (files in byte order). */
  index: string;
  /** Distinct words of all inputs together: wc's output lines. */
  distinctWords: number;
  /** The distinct words of each input, summed: the records wc's map emits (it combines per document). */
  distinctWordsPerInput: number;
  /** The inputs' total size in bytes. */
  inputBytes: number;
}

/** What the wc and indexer applications must output for `inputs` (paths, as given to the job). */
export async function expectedOutputs(inputs: readonly string[]): Promise<ExpectedOutputs> {
  const counts = new Map<string, number>();
  const files = new Map<string, string[]>();
  let distinctWordsPerInput = 0;
  let inputBytes = 0;
  for (const input of inputs) {
    const bytes = await readFile(input);
    inputBytes += bytes.length;
    // A word is a maximal run of letters (the lab's unicode.IsLetter); anything else separates.
    const words = bytes.toString('utf8').match(/\p{L}+/gu) ?? [];
    for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
    const distinct = new Set(words);
    distinctWordsPerInput += distinct.size;
    for (const word of distinct) {
      const names = files.get(word);
      if (names === undefined) files.set(word, [input]);
      else names.push(input);
    }
  }
  return {
    wordCount: byteSorted([...counts].map(([word, count]) => `${word} ${count}`)).join('\n'),
    index: byteSorted([...files].map(([word, names]) => `${word} ${names.length} ${byteSorted(names).join(',')}`)).join('\n'),
    distinctWords: counts.size,
    distinctWordsPerInput,
    inputBytes,
  };
}
