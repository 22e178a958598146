// Runs the `flotilla` command as a user does, for the CLI tests: a real process with
// standard input, output and error as pipes, its output read in full (as bytes), its exit
// code, and how long it took. Every process is killed if it outlives its time limit, and
// killAllCommands() (in after()) kills whatever is left, also when a test fails.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { flotillaCommand } from '../../src/platform/spawn.js';

export interface CommandRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
  readonly elapsedMs: number;
}

export interface RunOptions {
  /** Written to the command's standard input, which is then closed (default: no input, closed). */
  readonly stdin?: Buffer | string;
  readonly cwd?: string;
  /** Killed (and the run rejected) after this long. */
  readonly timeoutMs?: number;
  /** Leaves standard output unread this long, so the pipe fills as under a slow reader. */
  readonly readDelayMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

const running = new Set<ChildProcess>();

/** Runs `flotilla ...args` the way the tests build it (the compiled CLI, or the sources under tsx). */
export function runFlotilla(args: readonly string[], options: RunOptions = {}): Promise<CommandRun> {
  const { command, args: prefix } = flotillaCommand();
  return runCommand(command, [...prefix, ...args], options);
}

export function runCommand(command: string, args: readonly string[], options: RunOptions = {}): Promise<CommandRun> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const startMs = Date.now();
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  if (options.readDelayMs !== undefined) {
    child.stdout.pause();
    setTimeout(() => child.stdout.resume(), options.readDelayMs);
  }
  // The command may exit before reading all of it (a refused value): not the test's error.
  child.stdin.on('error', () => {});
  child.stdin.end(options.stdin ?? '');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${[command, ...args].join(' ')} did not finish within ${timeoutMs} ms; stderr: ${Buffer.concat(stderr).toString('utf8')}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      running.delete(child);
      reject(error);
    });
    // 'close', not 'exit': every byte of stdout and stderr has been read by then.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8'), elapsedMs: Date.now() - startMs });
    });
  });
}

/** Kills every command still running (for after()). */
export function killAllCommands(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** A value of `bytes` printable ASCII bytes (so that `kv get` prints it as is), different per seed. */
export function printableValue(bytes: number, seed = 1): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let state = seed >>> 0 || 1;
  const chars = new Array<string>(bytes);
  for (let i = 0; i < bytes; i++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    chars[i] = alphabet[(state >>> 16) % alphabet.length]!;
  }
  return chars.join('');
}

/** Every file under `dir` but the lock and the log: its size, mtime and content hash. */
export async function fingerprint(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop()!;
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.name !== 'LOCK' && entry.name !== 'server.log') {
        const info = await stat(path);
        const hash = createHash('sha256')
          .update(await readFile(path))
          .digest('hex');
        files.set(relative(dir, path), `${info.size} ${info.mtimeMs} ${hash}`);
      }
    }
  }
  return files;
}

/** The fingerprint once it has not changed for a second (the live member is idle). */
export async function stableFingerprint(dir: string): Promise<Map<string, string>> {
  let last = await fingerprint(dir);
  for (let attempt = 0; attempt < 30; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const now = await fingerprint(dir);
    if (JSON.stringify([...now]) === JSON.stringify([...last])) return now;
    last = now;
  }
  throw new Error('the data directory kept changing for 30 s');
}

/** The pid on a lock file's first line (a second line may hold the process's start time). */
export async function lockPid(file: string): Promise<number> {
  return Number((await readFile(file, 'utf8')).split('\n')[0]);
}
