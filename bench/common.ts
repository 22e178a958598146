// Pieces shared by the benchmarks that drive real servers (zk.ts, versus.ts): a ZooKeeper
// client as promises, a closed-loop load generator that records latencies and the client's
// own CPU time, the machine's load, and guarded child processes that cannot outlive the
// benchmark. Not a benchmark itself (main.ts skips it).

import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import zookeeper from 'node-zookeeper-client';

// ---------------------------------------------------------------------------------------
// Statistics.

/** The value below which `p` percent of `sorted` lies (nearest rank); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The median of `values`, ignoring NaN; NaN when nothing is left. */
export function median(values: readonly number[]): number {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------
// The machine.

export const coreCount = availableParallelism();

export function describeLoad(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

/**
 * The share of all cores that was busy during the next `ms` milliseconds (from /proc/stat),
 * or undefined where there is no /proc. Sampled while the benchmark's own servers idle, it
 * is the load of everything else on the machine, which the load average mixes with ours.
 */
export async function sampleBusyFraction(ms = 1000): Promise<number | undefined> {
  const read = async (): Promise<{ busy: number; total: number } | undefined> => {
    const text = await readFile('/proc/stat', 'utf8').catch(() => undefined);
    const fields = text?.split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number);
    if (fields === undefined || fields.length < 5) return undefined;
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = fields[3]! + fields[4]!; // idle + iowait
    return { busy: total - idle, total };
  };
  const before = await read();
  await sleep(ms);
  const after = await read();
  if (before === undefined || after === undefined || after.total === before.total) return undefined;
  return (after.busy - before.busy) / (after.total - before.total);
}

// ---------------------------------------------------------------------------------------
// Load generation.

export interface LoadResult {
  readonly ops: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** CPU time (user + system) of this whole process per successful operation: what the client costs. */
  readonly clientCpuUsPerOp: number;
  /** The first error's message, if any, so that a run full of errors says why. */
  readonly firstError?: string;
}

/**
 * `streams` loops each keep one request outstanding for `seconds` (a closed loop): stream
 * `s` runs op(s, i) for i = s, s + streams, ... Latency is measured per request.
 */
export async function closedLoop(streams: number, seconds: number, op: (stream: number, i: number) => Promise<unknown>): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: streams }, async (_, stream) => {
      for (let i = stream; performance.now() < end; i += streams) {
        const t0 = performance.now();
        try {
          await op(stream, i);
          latencies.push(performance.now() - t0);
        } catch (error) {
          errors++;
          firstError ??= String((error as Error).message ?? error);
          // A failing target must not turn the loop into a busy spin.
          await sleep(10);
        }
      }
    }),
  );
  const elapsedSeconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  const ops = latencies.length;
  return {
    ops,
    opsPerSecond: ops / elapsedSeconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    errors,
    clientCpuUsPerOp: ops === 0 ? Number.NaN : (cpu.user + cpu.system) / ops,
    ...(firstError === undefined ? {} : { firstError }),
  };
}

// ---------------------------------------------------------------------------------------
// ZooKeeper's protocol through node-zookeeper-client.

export function connectZk(connectString: string, options: { sessionTimeoutMs?: number; timeoutMs?: number } = {}): Promise<zookeeper.Client> {
  const client = zookeeper.createClient(connectString, { sessionTimeout: options.sessionTimeoutMs ?? 10_000 });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`no ZooKeeper connection to ${connectString}`));
    }, options.timeoutMs ?? 15_000);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.connect();
  });
}

export function zkCreate(client: zookeeper.Client, path: string, value: Buffer, options: { existsOk?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    client.create(path, value, zookeeper.ACL.OPEN_ACL_UNSAFE, zookeeper.CreateMode.PERSISTENT, (error) => {
      if (error && !(options.existsOk === true && error.getCode() === zookeeper.Exception.NODE_EXISTS)) reject(error);
      else resolve();
    });
  });
}

export function zkSetData(client: zookeeper.Client, path: string, value: Buffer): Promise<void> {
  return new Promise((resolve, reject) => client.setData(path, value, -1, (error) => (error ? reject(error) : resolve())));
}

export function zkGetData(client: zookeeper.Client, path: string): Promise<void> {
  return new Promise((resolve, reject) => client.getData(path, undefined, (error) => (error ? reject(error) : resolve())));
}

// ---------------------------------------------------------------------------------------
// Guarded child processes.

/**
 * `sh -c GUARD_SCRIPT guard DIR command args…` starts the command in the background, reports
 * its pid on fd 3 and waits for it. A watcher holds a copy of our pipe to the shell's stdin:
 * when it reaches end of file — we exited, however, even by SIGKILL — the watcher kills the
 * command and the shell removes DIR. So the command gets the signals we send to its own pid
 * (SIGKILL, SIGSTOP, SIGCONT: the shell does not stand in between), and it never outlives
 * us. The shell writes nowhere after the start (its reader may be gone; SIGPIPE would stop
 * the clean-up). A stopped command keeps the shell waiting: without job control, `wait`
 * returns only when the command has exited. Once it has, the watcher is stopped, so it can
 * never kill a process that reused the pid.
 */
const GUARD_SCRIPT = `
dir=$1
shift
exec 5<&0 0</dev/null
"$@" 3>&- 5<&- &
child=$!
echo "$child" >&3
exec 3>&-
( cat <&5 >/dev/null; : >"$dir/.orphaned"; kill -KILL "$child" ) >/dev/null 2>&1 &
watcher=$!
exec 5<&- 1>/dev/null 2>&1
trap '' PIPE
while :; do
  wait "$child"
  status=$?
  kill -0 "$child" 2>/dev/null || break
done
kill "$watcher" 2>/dev/null
if [ -e "$dir/.orphaned" ]; then rm -rf "$dir"; fi
exit "$status"
`;

const OUTPUT_LINES_MAX = 60;

export interface GuardedExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface GuardedProcess {
  /** The command's own pid (not the guarding shell's). */
  readonly pid: number;
  /** Resolves when the guarding shell has exited, i.e. after the command. */
  readonly exited: Promise<GuardedExit>;
  isRunning(): boolean;
  /** Signals the command itself: SIGKILL, SIGSTOP, SIGCONT, SIGTERM. */
  signal(signal: NodeJS.Signals): void;
  /** Kills the command, its guard and watcher, and waits for the guard to exit. */
  stop(): Promise<void>;
  /** The last lines the command printed, for error messages. */
  describeOutput(): string;
}

/** Guards not yet exited; killed by the process 'exit' hook if still there. */
const guards = new Set<ChildProcess>();
/** Directories to remove in the 'exit' hook (the clusters' temporary data). */
const exitDirectories = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const guard of guards) killGroup(guard, 'SIGKILL');
    for (const dir of exitDirectories) rmSync(dir, { recursive: true, force: true });
  });
}

/** Removes `dir` when this process exits, if nothing has removed it before. */
export function removeOnExit(dir: string): void {
  installExitHook();
  exitDirectories.add(dir);
}

function killGroup(guard: ChildProcess, signal: NodeJS.Signals): void {
  if (guard.pid === undefined) return;
  try {
    process.kill(-guard.pid, signal); // detached: the guard leads its own process group
  } catch {
    // Already gone.
  }
}

/** Starts `command args` under a guard; `dir` is removed if the guard finds itself orphaned. */
export async function spawnGuarded(command: string, args: readonly string[], options: { dir: string; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<GuardedProcess> {
  installExitHook();
  const guard = spawn('/bin/sh', ['-c', GUARD_SCRIPT, 'guard', options.dir, command, ...args], {
    cwd: options.cwd ?? options.dir,
    env: options.env ?? process.env,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
  });
  guards.add(guard);
  guard.stdin?.on('error', () => {});
  const output: string[] = [];
  for (const stream of [guard.stdout, guard.stderr]) {
    if (stream === null) continue;
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
      output.push(line);
      if (output.length > OUTPUT_LINES_MAX) output.shift();
    });
  }
  let running = true;
  const exited = new Promise<GuardedExit>((resolve) => {
    guard.once('exit', (code, signal) => {
      running = false;
      guards.delete(guard);
      resolve({ code, signal });
    });
    guard.once('error', () => {
      running = false;
      guards.delete(guard);
      resolve({ code: 127, signal: null });
    });
  });
  const pid = await readPid(guard, exited);
  return {
    pid,
    exited,
    isRunning: () => running,
    signal: (signal) => {
      if (!running) return;
      try {
        process.kill(pid, signal);
      } catch {
        // Exited in between.
      }
    },
    stop: async () => {
      if (running) killGroup(guard, 'SIGKILL');
      await exited;
      guard.stdin?.end();
    },
    describeOutput: () => output.join('\n'),
  };
}

function readPid(guard: ChildProcess, exited: Promise<GuardedExit>): Promise<number> {
  const channel = guard.stdio[3] as NodeJS.ReadableStream | null | undefined;
  if (channel === null || channel === undefined) throw new Error('guard has no pid channel');
  return new Promise((resolve, reject) => {
    let text = '';
    channel.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const pid = Number(text.split('\n')[0]);
      if (text.includes('\n') && Number.isInteger(pid) && pid > 0) resolve(pid);
    });
    void exited.then((exit) => reject(new Error(`guarded process exited before it started (code ${exit.code}, signal ${exit.signal})`)));
  });
}
