// `flotilla mr ...`: MapReduce from the command line.
//
//   mr run --app wc --reduce 10 --workers 4 --out DIR FILES...   coordinator + local workers
//   mr coordinator --app wc --out DIR [--host H] [--port P] FILES...
//   mr worker --coordinator HOST:PORT                           (the app comes from the coordinator)
//   mr seq --app wc --out DIR FILES...                          the sequential reference
//
// This file wires real I/O (platform/) to the coordinator and worker logic (mapreduce/).

import { resolve as resolvePath } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import type { Clock } from '../io/clock.js';
import { unreachable } from '../stdx/assert.js';
import {
  Coordinator,
  type CoordinatorConfig,
  coordinatorDefaults,
  decodeRequest,
  decodeResponse,
  builtinApps,
  isBuiltinApp,
  JobFailedError,
  type JobProgress,
  type JobResult,
  loadApp,
  type Request,
  type Response,
  runSequential,
  runWorker,
  type WorkerOutcome,
} from '../mapreduce/index.js';
import { realClock } from '../platform/clock.js';
import { FsDisk } from '../platform/fs-disk.js';
import { exit, isTerminal, onSignal, writeErr, writeOut } from '../platform/process.js';
import { connectRpc, type RpcClient, type RpcServer, startRpcServer } from '../platform/rpc.js';
import { type ChildHandle, spawnFlotillaEntry } from '../platform/spawn.js';

const cliLimits = {
  workersMax: 256,
  reduceCountMax: 100_000,
  /** After the job, how long the coordinator stays up so that workers hear "exit". */
  exitGraceMs: 1_000,
  /** After the job, how long `mr run` waits for its workers before killing them. */
  workerExitWaitMs: 5_000,
  progressRefreshMs: 200,
} as const;

interface JobOptions {
  app: string;
  reduce: number;
  out: string;
  taskTimeout: number;
  taskFailuresMax: number;
  keepIntermediate?: boolean;
}

export function registerMapReduce(program: Command): void {
  const mr = program.command('mr').description('MapReduce: a coordinator and workers as separate processes');
  jobOptions(mr.command('run').description('run a job with a coordinator and local worker processes'))
    .option('--workers <n>', 'local worker processes', integer('--workers', 1, cliLimits.workersMax), 4)
    .action((files: string[], options: JobOptions & { workers: number }) => runCommand(files, options));
  jobOptions(mr.command('coordinator').description('run a coordinator; workers connect to it'))
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', integer('--port', 0, 65535), 0)
    .action((files: string[], options: JobOptions & { host: string; port: number }) => coordinatorCommand(files, options));
  mr.command('worker')
    .description('run a worker until the job is done')
    .requiredOption('--coordinator <host:port>', 'the coordinator address')
    .option('--app <app>', 'override the application the coordinator names')
    .option('--verbose', 'log every task to stderr')
    .action((options: { coordinator: string; app?: string; verbose?: boolean }) => workerCommand(options));
  mr.command('seq')
    .description('the sequential reference: writes DIR/mr-out-0')
    .requiredOption('--app <app>', `application: ${builtinApps.join(', ')} or a module path`)
    .requiredOption('--out <dir>', 'output directory')
    .argument('<files...>', 'input files')
    .action((files: string[], options: { app: string; out: string }) => seqCommand(files, options));
}

function jobOptions(command: Command): Command {
  return command
    .requiredOption('--app <app>', `application: ${builtinApps.join(', ')}, or a module path`)
    .requiredOption('--out <dir>', 'output directory (also holds intermediate files)')
    .option('--reduce <n>', 'reduce tasks', integer('--reduce', 1, cliLimits.reduceCountMax), coordinatorDefaults.reduceCount)
    .option('--task-timeout <ms>', 'give a task to another worker after this long', integer('--task-timeout', 1, 3_600_000), coordinatorDefaults.taskTimeoutMs)
    .option('--task-failures-max <n>', 'stop the job when one task fails this often', integer('--task-failures-max', 1, 1000), coordinatorDefaults.taskFailuresMax)
    .option('--keep-intermediate', 'keep the mr-X-Y intermediate files')
    .argument('<files...>', 'input files, one map task each');
}

function integer(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!/^\d+$/.test(value) || parsed < min || parsed > max) throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]`);
    return parsed;
  };
}

// ---- mr run ---------------------------------------------------------------------------

async function runCommand(files: string[], options: JobOptions & { workers: number }): Promise<void> {
  const config = await prepareJob(files, options);
  const job = await startCoordinator(config, { host: '127.0.0.1', port: 0 });
  const workers = new LocalWorkers(`127.0.0.1:${job.server.port}`, options.workers, job.coordinator);
  onSignal('SIGINT', () => abort(workers, 130));
  onSignal('SIGTERM', () => abort(workers, 143));
  writeErr(`mr: ${describeJob(config)}, ${options.workers} workers\n`);
  const progress = startProgress(job.coordinator, realClock);
  const result = await Promise.race([job.coordinator.finished, workers.allGone()]);
  progress.stop();
  await job.finish(options.keepIntermediate === true);
  await workers.stop();
  finishJob(result, config);
}

function abort(workers: LocalWorkers, code: number): void {
  workers.killAll();
  exit(code);
}

/**
 * The local worker processes of `mr run`. A worker that dies before the job is done is
 * replaced, a bounded number of times; when none is left the job fails instead of hanging.
 */
class LocalWorkers {
  private readonly alive = new Set<ChildHandle>();
  private restartsLeft: number;
  private jobOver = false;
  private resolveGone!: (result: JobResult) => void;
  private readonly gone = new Promise<JobResult>((resolve) => (this.resolveGone = resolve));

  constructor(
    private readonly address: string,
    count: number,
    private readonly coordinator: Coordinator,
  ) {
    this.restartsLeft = 2 * count;
    for (let i = 0; i < count; i++) this.startOne();
  }

  allGone(): Promise<JobResult> {
    return this.gone;
  }

  private startOne(): void {
    // The same worker as `flotilla mr worker`, started without the rest of the CLI.
    const child = spawnFlotillaEntry(import.meta.url, 'localWorkerMain', [this.address], { output: 'inherit' });
    this.alive.add(child);
    void child.exited.then((status) => {
      this.alive.delete(child);
      // Workers exit (with 1) when they hear that the job failed; that needs no replacement.
      const phase = this.coordinator.progress().phase;
      if (this.jobOver || phase === 'done' || phase === 'failed') return;
      if (status.code !== 0 && this.restartsLeft > 0) {
        this.restartsLeft -= 1;
        this.startOne();
      } else if (this.alive.size === 0) {
        this.coordinatorGiveUp(`every worker exited before the job finished (last exit: code ${status.code}, signal ${status.signal})`);
      }
    });
  }

  private coordinatorGiveUp(message: string): void {
    // The coordinator's own verdict takes precedence: workers also exit right after the
    // job finished or failed, and that is not a new error. Wait for it a little.
    realClock.setTimer(cliLimits.exitGraceMs, () => {
      const progress = this.coordinator.progress();
      if (progress.phase === 'done' || progress.phase === 'failed') return;
      this.resolveGone({ ok: false, error: new JobFailedError(message), progress });
    });
  }

  async stop(): Promise<void> {
    this.jobOver = true;
    const all = [...this.alive];
    const timer = realClock.setTimer(cliLimits.workerExitWaitMs, () => {
      for (const child of all) child.kill('SIGKILL');
    });
    await Promise.all(all.map((child) => child.exited));
    timer.cancel();
  }

  killAll(): void {
    this.jobOver = true;
    for (const child of this.alive) child.kill('SIGKILL');
  }
}

// ---- mr coordinator -------------------------------------------------------------------

async function coordinatorCommand(files: string[], options: JobOptions & { host: string; port: number }): Promise<void> {
  const config = await prepareJob(files, options);
  const job = await startCoordinator(config, { host: options.host, port: options.port });
  // The first line of stdout is the address, for scripts and tests that chose port 0.
  writeOut(`coordinator listening on ${job.server.host}:${job.server.port}\n`);
  writeErr(`mr: ${describeJob(config)}\n`);
  const progress = startProgress(job.coordinator, realClock);
  const result = await job.coordinator.finished;
  progress.stop();
  await job.finish(options.keepIntermediate === true);
  finishJob(result, config);
}

interface RunningJob {
  coordinator: Coordinator;
  server: RpcServer;
  /** Lets workers hear "exit", closes the server, removes intermediate files. */
  finish(keepIntermediate: boolean): Promise<void>;
}

async function startCoordinator(config: CoordinatorConfig, listen: { host: string; port: number }): Promise<RunningJob> {
  const coordinator = new Coordinator(config, realClock);
  const server = await startRpcServer<Request, Response>({
    ...listen,
    decodeRequest,
    handle: (peer, request) => coordinator.serve(peer, request),
    onDisconnect: (peer) => coordinator.disconnected(peer),
    log: (message) => writeErr(`mr coordinator: ${message}\n`),
  });
  const finish = async (keepIntermediate: boolean): Promise<void> => {
    await waitUntil(realClock, () => server.connectionCount() === 0, cliLimits.exitGraceMs);
    await server.close();
    if (!keepIntermediate) await removeIntermediate(new FsDisk(config.workDir));
  };
  return { coordinator, server, finish };
}

async function removeIntermediate(disk: FsDisk): Promise<void> {
  for (const name of await disk.list('')) {
    if (/^mr-\d+-\d+$/.test(name) || name.startsWith('.mr-tmp-')) await disk.remove(name);
  }
}

function waitUntil(clock: Clock, condition: () => boolean, timeoutMs: number): Promise<void> {
  const pollMs = 20;
  const deadline = clock.nowMs() + timeoutMs;
  return new Promise((resolve) => {
    const check = (): void => {
      if (condition() || clock.nowMs() >= deadline) resolve();
      else clock.setTimer(pollMs, check);
    };
    check();
  });
}

// ---- mr worker ------------------------------------------------------------------------

/** The entry point of the local workers `mr run` starts: `[coordinator address]`. */
export async function localWorkerMain(args: string[]): Promise<void> {
  if (args.length !== 1) fail(`a local worker takes the coordinator address only, not ${JSON.stringify(args)}`);
  await workerCommand({ coordinator: args[0]! });
}

async function workerCommand(options: { coordinator: string; app?: string; verbose?: boolean }): Promise<void> {
  const { host, port } = parseAddress(options.coordinator);
  let link: RpcClient<Request, Response>;
  try {
    link = await connectRpc<Request, Response>({ host, port, decodeResponse });
  } catch (error) {
    writeErr(`mr worker: cannot reach the coordinator at ${options.coordinator}: ${(error as Error).message}\n`);
    exit(1);
  }
  const outcome = await runWorker({
    link,
    clock: realClock,
    loadApp,
    openWorkDisk: (dir) => new FsDisk(dir),
    inputDisk: new FsDisk('/'),
    ...(options.app === undefined ? {} : { appOverride: normalizeApp(options.app) }),
    onTask: (event) => {
      if (!event.ok) writeErr(`mr worker: ${event.kind} task ${event.taskId} failed: ${event.message}\n`);
      else if (options.verbose === true) writeErr(`mr worker: ${event.kind} task ${event.taskId} done\n`);
    },
  });
  link.close();
  exit(reportWorkerOutcome(outcome));
}

function reportWorkerOutcome(outcome: WorkerOutcome): number {
  switch (outcome.type) {
    case 'done':
    case 'coordinator-gone':
      return 0;
    case 'job-failed':
      writeErr('mr worker: the job failed; see the coordinator for the error\n');
      return 1;
    case 'unreachable':
      writeErr(`mr worker: no answer from the coordinator: ${outcome.message}\n`);
      return 1;
    case 'app-failed':
      writeErr(`mr worker: ${outcome.message}\n`);
      return 1;
    default:
      return unreachable(outcome, 'worker outcome');
  }
}

function parseAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    writeErr(`mr worker: --coordinator must be HOST:PORT, not "${address}"\n`);
    exit(2);
  }
  return { host: address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port };
}

// ---- mr seq ---------------------------------------------------------------------------

async function seqCommand(files: string[], options: { app: string; out: string }): Promise<void> {
  const out = resolvePath(options.out);
  const inputs = files.map((file) => resolvePath(file));
  const startMs = realClock.nowMs();
  try {
    const spec = normalizeApp(options.app);
    if (spec.startsWith('/') && !(await new FsDisk('/').exists(spec.slice(1)))) fail(unknownApp(options.app, spec));
    const app = await loadApp(spec);
    const outDisk = new FsDisk(out);
    await outDisk.mkdirp('');
    const stats = await runSequential({ app, inputs, inputDisk: new FsDisk('/'), outDisk });
    const seconds = (realClock.nowMs() - startMs) / 1000;
    writeOut(`mr seq: ${inputs.length} inputs, ${formatBytes(stats.inputBytes)}, ${stats.mapRecords} records, ${stats.outputRecords} output lines in ${seconds.toFixed(2)} s -> ${out}/mr-out-0\n`);
  } catch (error) {
    writeErr(`mr seq: ${(error as Error).message}\n`);
    exit(1);
  }
  exit(0);
}

// ---- shared ---------------------------------------------------------------------------

/**
 * Resolves paths, checks that the application module and every input exist (a typo fails
 * at once; anything that goes wrong later fails the task, named), builds the configuration.
 */
async function prepareJob(files: string[], options: JobOptions): Promise<CoordinatorConfig> {
  const inputs = files.map((file) => resolvePath(file));
  const app = normalizeApp(options.app);
  // Absolute paths on a disk rooted at '/': disk paths are relative, so the '/' goes.
  const root = new FsDisk('/');
  if (app.startsWith('/') && !(await root.exists(app.slice(1)))) fail(unknownApp(options.app, app));
  for (const input of inputs) {
    if (!(await root.exists(input.slice(1)))) fail(`cannot read input file "${input}": ENOENT: no such file or directory`);
  }
  const workDir = resolvePath(options.out);
  await new FsDisk(workDir).mkdirp('');
  return {
    app,
    inputs,
    reduceCount: options.reduce,
    workDir,
    taskTimeoutMs: options.taskTimeout,
    taskFailuresMax: options.taskFailuresMax,
    waitPollMs: coordinatorDefaults.waitPollMs,
  };
}

/** For an --app that is neither a built-in nor a file: what there is instead. */
function unknownApp(given: string, resolved: string): string {
  const builtins = `the built-in applications are ${builtinApps.join(', ')}`;
  // A bare word was meant as a built-in; anything with a slash or an extension, as a file.
  if (/^[\w-]+$/.test(given)) return `unknown application "${given}": ${builtins}; anything else must be the path of a module exporting map and reduce`;
  return `application module not found: ${resolved} (${builtins})`;
}

/** A built-in name stays; anything else is a module path, made absolute for the workers. */
function normalizeApp(app: string): string {
  if (isBuiltinApp(app) || app.startsWith('file:')) return app;
  return resolvePath(app);
}

function fail(message: string): never {
  writeErr(`mr: ${message}\n`);
  exit(2);
}

function finishJob(result: JobResult, config: CoordinatorConfig): void {
  const p = result.progress;
  const seconds = (p.elapsedMs / 1000).toFixed(2);
  if (!result.ok) {
    writeErr(`mr: job failed after ${seconds} s: ${result.error.message}\n`);
    exit(1);
  }
  writeOut(
    `mr: done in ${seconds} s: ${formatBytes(p.inputBytesDone)} in ${p.mapTotal} map tasks, ${p.mapRecords} map records, ` +
      `${p.outputRecords} output lines in ${p.reduceTotal} files (${config.workDir}/mr-out-*), ${p.tasksRetried} tasks retried, ${p.workersSeen} worker${p.workersSeen === 1 ? '' : 's'}; ` +
      `map phase ${(p.mapPhaseMs / 1000).toFixed(2)} s, workers waited for tasks ${(p.workersWaitedMs / 1000).toFixed(2)} s\n`,
  );
  exit(0);
}

function describeJob(config: CoordinatorConfig): string {
  return `${config.app} on ${config.inputs.length} inputs, ${config.reduceCount} reduce tasks`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** A bar per phase on a terminal (tasks done of total, bytes, elapsed); nothing otherwise. */
function startProgress(coordinator: Coordinator, clock: Clock): { stop(): void } {
  if (!isTerminal()) return { stop: () => undefined };
  const bars = new cliProgress.MultiBar(
    { format: ' {phase} |{bar}| {value}/{total} tasks | {bytes} | {elapsed}s | retried {retried}', hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  const snapshot = coordinator.progress();
  const mapBar = bars.create(snapshot.mapTotal, 0, payload('map   ', snapshot));
  const reduceBar = bars.create(snapshot.reduceTotal, 0, payload('reduce', snapshot));
  let timer = clock.setTimer(0, refresh);
  function refresh(): void {
    const now = coordinator.progress();
    mapBar.update(now.mapDone, payload('map   ', now));
    reduceBar.update(now.reduceDone, payload('reduce', now));
    timer = clock.setTimer(cliLimits.progressRefreshMs, refresh);
  }
  return {
    stop: () => {
      timer.cancel();
      const now = coordinator.progress();
      mapBar.update(now.mapDone, payload('map   ', now));
      reduceBar.update(now.reduceDone, payload('reduce', now));
      bars.stop();
    },
  };
}

function payload(phase: string, progress: JobProgress): Record<string, string | number> {
  const bytes = phase.startsWith('map') ? `${formatBytes(progress.inputBytesDone)} read` : `${progress.outputRecords} lines`;
  return { phase, bytes, elapsed: (progress.elapsedMs / 1000).toFixed(1), retried: progress.tasksRetried };
}
