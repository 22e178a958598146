// A worker: asks the coordinator for tasks until told to exit, runs each against the shared
// job directory, and reports the outcome. User code (the application) runs only here.
//
// Exit rule (the lab's): a worker exits when the coordinator says the job is over, or when
// the coordinator cannot be reached after the first contact — the coordinator exits once
// the job is done, so an unreachable coordinator means there is nothing left to do.

import type { Clock } from '../io/clock.js';
import type { Disk } from '../io/disk.js';
import { AssertionFailure } from '../stdx/assert.js';
import { describeError } from './errors.js';
import { type CoordinatorLink, type Request, type Response, type TaskReply, type Welcome, clampMessage } from './protocol.js';
import { type TaskEnv, type TaskStats, runMapTask, runReduceTask } from './tasks.js';
import type { MapReduceApp } from './types.js';

export interface WorkerEnv {
  link: CoordinatorLink;
  clock: Clock;
  /** Loads the application named by the coordinator (or by the worker's own --app). */
  loadApp(spec: string): Promise<MapReduceApp>;
  /** Opens the shared job directory named by the coordinator. */
  openWorkDisk(workDir: string): Disk;
  /** Where input paths are resolved. */
  inputDisk: Disk;
  /** Overrides the application spec sent by the coordinator. */
  appOverride?: string;
  /** Called after each task, for logs. */
  onTask?(event: WorkerTaskEvent): void;
}

export interface WorkerTaskEvent {
  kind: 'map' | 'reduce';
  taskId: number;
  ok: boolean;
  message?: string;
}

export type WorkerOutcome =
  /** The coordinator said the job is done. */
  | { type: 'done'; tasks: number }
  /** The coordinator said the job failed (another task's error stopped it). */
  | { type: 'job-failed'; tasks: number }
  /** The coordinator went away after the first contact: the job is over (lab rule). */
  | { type: 'coordinator-gone'; tasks: number }
  /** The coordinator could not be reached at all. */
  | { type: 'unreachable'; message: string }
  /** The application did not load; the coordinator has been told. */
  | { type: 'app-failed'; message: string };

class LinkDown extends Error {}

export async function runWorker(env: WorkerEnv): Promise<WorkerOutcome> {
  let welcome: Welcome;
  try {
    const reply = await call(env, { type: 'hello' });
    if (reply.type !== 'welcome') return { type: 'unreachable', message: `unexpected reply ${reply.type} to hello` };
    welcome = reply;
  } catch (error) {
    return { type: 'unreachable', message: describeError(error) };
  }
  let app: MapReduceApp;
  try {
    app = await env.loadApp(env.appOverride ?? welcome.app);
  } catch (error) {
    const message = clampMessage(describeError(error));
    await call(env, { type: 'workerFailed', workerId: welcome.workerId, message }).catch(() => undefined);
    return { type: 'app-failed', message };
  }
  return runTasks(env, welcome, app);
}

async function runTasks(env: WorkerEnv, welcome: Welcome, app: MapReduceApp): Promise<WorkerOutcome> {
  const workerId = welcome.workerId;
  let temporaryCount = 0;
  const taskEnv: TaskEnv = {
    app,
    workDisk: env.openWorkDisk(welcome.workDir),
    inputDisk: env.inputDisk,
    temporaryName: () => `.mr-tmp-w${workerId}-${++temporaryCount}`,
  };
  let tasks = 0;
  try {
    // Bounded by the job: the coordinator answers exit once every task is done or the job
    // has failed, and a lost coordinator throws LinkDown.
    for (;;) {
      const reply = await call(env, { type: 'getTask', workerId });
      const task = asTaskReply(reply);
      if (task.type === 'exit') return { type: task.outcome === 'done' ? 'done' : 'job-failed', tasks };
      if (task.type === 'wait') {
        await sleep(env.clock, task.delayMs);
        continue;
      }
      await runOneTask(env, taskEnv, workerId, task);
      tasks += 1;
    }
  } catch (error) {
    if (error instanceof LinkDown) return { type: 'coordinator-gone', tasks };
    throw error;
  }
}

async function runOneTask(env: WorkerEnv, taskEnv: TaskEnv, workerId: number, task: TaskReply & { type: 'map' | 'reduce' }): Promise<void> {
  let stats: TaskStats;
  try {
    stats = task.type === 'map' ? await runMapTask(taskEnv, task.taskId, task.file, task.reduceCount) : await runReduceTask(taskEnv, task.taskId, task.mapCount);
  } catch (error) {
    if (error instanceof AssertionFailure) throw error;
    const message = clampMessage(describeError(error));
    env.onTask?.({ kind: task.type, taskId: task.taskId, ok: false, message });
    await call(env, { type: 'taskFailed', workerId, kind: task.type, taskId: task.taskId, message });
    return;
  }
  env.onTask?.({ kind: task.type, taskId: task.taskId, ok: true });
  await call(env, { type: 'taskDone', workerId, kind: task.type, taskId: task.taskId, ...stats });
}

async function call(env: WorkerEnv, request: Request): Promise<Response> {
  try {
    return await env.link.call(request);
  } catch (error) {
    throw new LinkDown(describeError(error));
  }
}

function asTaskReply(reply: Response): TaskReply {
  if (reply.type === 'welcome' || reply.type === 'ok') throw new LinkDown(`unexpected reply ${reply.type} to getTask`);
  return reply;
}

function sleep(clock: Clock, delayMs: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(delayMs, resolve));
}
