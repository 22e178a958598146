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
