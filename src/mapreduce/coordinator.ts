// The coordinator: hands out map tasks, then reduce tasks once every map task is done, and
// re-issues a task whose worker went away or did not finish within the lease. It runs no
// user code and touches no files; it is a synchronous state machine behind the transport.
// The transport calls serve(), which holds a getTask that would have to wait until a task
// may be ready for it, so an idle worker starts the next task the moment one exists
// instead of after a polling delay (the map→reduce barrier, a requeued task).
//
// A task's life:
//
//   idle ──assign──▶ running ──taskDone──▶ done
//    ▲                  │
//    └── lease expired, worker disconnected, taskFailed (failures < taskFailuresMax)
//
// A late taskDone from a worker whose lease was taken away is accepted: its output was
// renamed into place complete, so it is as good as the newer attempt's (the lab's rule of
// atomic outputs makes duplicate executions harmless).

import type { Clock } from '../io/clock.js';
import { assert, unreachable } from '../stdx/assert.js';
import { JobFailedError } from './errors.js';
import { type Request, type Response, type TaskReply, protocolLimits } from './protocol.js';
import type { TaskKind } from './types.js';

/** The transport's name for one connection; leases are tied to it. */
export type PeerId = number;

export interface CoordinatorConfig {
  /** The application spec handed to workers (a built-in name or an absolute module path). */
  app: string;
  /** Input files, one map task each, as workers will open them (and map will see them). */
  inputs: readonly string[];
  /** Sizes of the inputs in bytes, for progress; optional. */
  inputBytes?: readonly number[];
  reduceCount: number;
  /** Absolute path of the shared job directory. */
  workDir: string;
  /** A running task not reported within this time is given to another worker (lab: 10 s). */
  taskTimeoutMs: number;
  /** A task that fails this many times stops the job with its error. */
  taskFailuresMax: number;
  /**
   * How long serve() holds a getTask that has nothing to hand out before answering "wait"
   * (then the worker asks again at once); handle() answers "wait" at once and tells the
   * worker to wait this long. Leases are checked this often while workers wait.
   */
  waitPollMs: number;
}

export const coordinatorDefaults = {
  reduceCount: 10,
  taskTimeoutMs: 10_000,
  taskFailuresMax: 3,
  waitPollMs: 50,
} as const;

export type Phase = 'map' | 'reduce' | 'done' | 'failed';

export interface JobProgress {
  phase: Phase;
  mapDone: number;
  mapTotal: number;
  reduceDone: number;
  reduceTotal: number;
  inputBytesDone: number;
  inputBytesTotal: number;
  /** Pairs emitted by map functions. */
  mapRecords: number;
  /** Lines written by reduce tasks. */
  outputRecords: number;
  /** Times a task went back to idle (lease expired, worker gone, task failed). */
  tasksRetried: number;
  workersSeen: number;
  elapsedMs: number;
  /** From the start until the last map task was done (so far, while in the map phase). */
  mapPhaseMs: number;
  /** Time getTask calls were held by serve() with nothing to hand out, summed over workers. */
  workersWaitedMs: number;
}

export type JobResult = { ok: true; progress: JobProgress } | { ok: false; error: JobFailedError; progress: JobProgress };

/** A getTask held by serve() until a task may be ready for it. */
interface Waiter {
  readonly peer: PeerId;
  /** Ends the hold: `retry` is false when the peer is gone and nobody reads the answer. */
  wake(retry: boolean): void;
}

/** serve() re-tries a held getTask at most this many times before answering "wait". */
const WAIT_ROUNDS_MAX = 64;

interface Task {
  readonly kind: TaskKind;
  readonly id: number;
  state: 'idle' | 'running' | 'done';
  /** Invariant: set exactly when state is 'running'. */
  lease: { peer: PeerId; workerId: number; startMs: number } | null;
  failures: number;
}

export class Coordinator {
  readonly finished: Promise<JobResult>;
  private resolveFinished!: (result: JobResult) => void;
  private phase: Phase = 'map';
  private readonly mapTasks: Task[];
  private readonly reduceTasks: Task[];
  /** Tasks of the current phase waiting for a worker, oldest first; may hold stale entries. */
  private idle: Task[] = [];
  private idleHead = 0;
  private readonly running = new Set<Task>();
  /** Invariant: at most one per in-flight getTask, which the transport bounds. */
  private readonly waiters = new Set<Waiter>();
  private doneCount = 0;
  private workerCount = 0;
  private readonly startMs: number;
  /** Set when the map phase ends. */
  private mapPhaseMs: number | null = null;
  private stats = { inputBytesDone: 0, mapRecords: 0, outputRecords: 0, tasksRetried: 0, workersWaitedMs: 0 };

  constructor(
    private readonly config: CoordinatorConfig,
    private readonly clock: Clock,
  ) {
    assert(config.inputs.length >= 1, 'a job needs at least one input');
    assert(config.inputs.length <= protocolLimits.tasksMax, 'too many inputs');
    assert(config.reduceCount >= 1 && config.reduceCount <= protocolLimits.tasksMax, 'reduceCount out of range');
    assert(config.taskFailuresMax >= 1, 'taskFailuresMax must be positive');
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    this.mapTasks = config.inputs.map((_, id) => newTask('map', id));
    this.reduceTasks = Array.from({ length: config.reduceCount }, (_, id) => newTask('reduce', id));
    this.idle = [...this.mapTasks];
    this.startMs = clock.nowMs();
  }

  handle(peer: PeerId, request: Request): Response {
    switch (request.type) {
      case 'hello':
        return this.stepHello();
      case 'getTask':
        return this.stepGetTask(peer, request.workerId);
      case 'taskDone':
        this.stepTaskDone(request.kind, request.taskId, request.records, request.bytesIn);
        return { type: 'ok' };
      case 'taskFailed':
        this.stepTaskFailed(request.kind, request.taskId, request.message);
        return { type: 'ok' };
      case 'workerFailed':
        this.fail(`worker ${request.workerId} could not start: ${request.message}`);
        return { type: 'ok' };
      default:
        return unreachable(request, 'request');
    }
  }

  /**
   * handle(), except that a getTask with nothing to hand out is held until something that
   * may give it a task happens (a task goes back to idle, the phase or the job ends), and
   * at most waitPollMs, after which leases are checked again. Only if there is still
   * nothing is it answered "wait", with no delay: the worker has waited here already.
   */
  async serve(peer: PeerId, request: Request): Promise<Response> {
    let response = this.handle(peer, request);
    if (response.type !== 'wait') return response;
    const deadlineMs = this.clock.nowMs() + this.config.waitPollMs;
    // Several workers may be woken for one task; the losers wait again, until the deadline.
    for (let round = 0; response.type === 'wait' && round < WAIT_ROUNDS_MAX; round++) {
      const remainingMs = deadlineMs - this.clock.nowMs();
      if (remainingMs <= 0) break;
      const parkedMs = this.clock.nowMs();
      const retry = await this.park(peer, remainingMs);
      this.stats.workersWaitedMs += this.clock.nowMs() - parkedMs;
      if (!retry) return response; // The worker is gone: assign it nothing.
      response = this.handle(peer, request);
    }
    return response.type === 'wait' ? { type: 'wait', delayMs: 0 } : response;
  }

  /** The connection `peer` closed: its worker is gone, so its tasks go back to idle. */
  disconnected(peer: PeerId): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.peer === peer) waiter.wake(false);
    }
    for (const task of [...this.running]) {
      if (task.lease!.peer === peer) this.requeue(task);
    }
  }

  progress(): JobProgress {
    const count = (tasks: Task[]) => tasks.filter((task) => task.state === 'done').length;
    const inputBytes = this.config.inputBytes ?? [];
    return {
      phase: this.phase,
      mapDone: count(this.mapTasks),
      mapTotal: this.mapTasks.length,
      reduceDone: count(this.reduceTasks),
      reduceTotal: this.reduceTasks.length,
      inputBytesTotal: inputBytes.reduce((sum, bytes) => sum + bytes, 0),
      ...this.stats,
      workersSeen: this.workerCount,
      elapsedMs: this.clock.nowMs() - this.startMs,
      mapPhaseMs: this.mapPhaseMs ?? this.clock.nowMs() - this.startMs,
    };
  }

  private stepHello(): Response {
    this.workerCount += 1;
    const { app, reduceCount, workDir } = this.config;
    return { type: 'welcome', workerId: this.workerCount, app, reduceCount, workDir };
  }

  private stepGetTask(peer: PeerId, workerId: number): TaskReply {
    if (this.phase === 'done') return { type: 'exit', outcome: 'done' };
    if (this.phase === 'failed') return { type: 'exit', outcome: 'failed' };
    this.expireLeases();
    const task = this.takeIdle();
    if (task === undefined) return { type: 'wait', delayMs: this.config.waitPollMs };
    task.state = 'running';
    task.lease = { peer, workerId, startMs: this.clock.nowMs() };
    this.running.add(task);
    if (task.kind === 'map') {
      return { type: 'map', taskId: task.id, file: this.config.inputs[task.id]!, reduceCount: this.config.reduceCount };
    }
    return { type: 'reduce', taskId: task.id, mapCount: this.mapTasks.length };
  }

  private stepTaskDone(kind: TaskKind, taskId: number, records: number, bytesIn: number): void {
    const task = this.findTask(kind, taskId);
    if (task === undefined || task.state === 'done') return; // A duplicate execution's report.
    if (task.state === 'running') this.running.delete(task);
    task.state = 'done';
    task.lease = null;
    this.doneCount += 1;
    if (kind === 'map') {
      this.stats.mapRecords += records;
      this.stats.inputBytesDone += bytesIn;
    } else {
      this.stats.outputRecords += records;
    }
    this.maybeAdvancePhase();
  }

  private stepTaskFailed(kind: TaskKind, taskId: number, message: string): void {
    const task = this.findTask(kind, taskId);
    if (task === undefined || task.state === 'done') return;
    task.failures += 1;
    if (task.failures >= this.config.taskFailuresMax) {
      const input = kind === 'map' ? ` (input "${this.config.inputs[taskId]}")` : '';
      this.fail(`${kind} task ${taskId}${input} failed ${task.failures} times; last error: ${message}`);
      return;
    }
    if (task.state === 'running') this.requeue(task);
  }

  private maybeAdvancePhase(): void {
    if (this.phase === 'map' && this.doneCount === this.mapTasks.length) {
      this.phase = 'reduce';
      this.mapPhaseMs = this.clock.nowMs() - this.startMs;
      this.idle = [...this.reduceTasks];
      this.idleHead = 0;
      this.wakeWaiters();
    } else if (this.phase === 'reduce' && this.doneCount === this.mapTasks.length + this.reduceTasks.length) {
      this.phase = 'done';
      this.resolveFinished({ ok: true, progress: this.progress() });
      this.wakeWaiters();
    }
  }

  private fail(message: string): void {
    if (this.phase === 'done' || this.phase === 'failed') return;
    this.phase = 'failed';
    this.resolveFinished({ ok: false, error: new JobFailedError(message), progress: this.progress() });
    this.wakeWaiters();
  }

  /** Running tasks of a worker that has been silent for longer than the lease go back to idle. */
  private expireLeases(): void {
    const now = this.clock.nowMs();
    for (const task of [...this.running]) {
      if (now - task.lease!.startMs >= this.config.taskTimeoutMs) this.requeue(task);
    }
  }

  private requeue(task: Task): void {
    assert(task.state === 'running', 'only a running task is requeued');
    this.running.delete(task);
    task.state = 'idle';
    task.lease = null;
    this.stats.tasksRetried += 1;
    if (task.kind === (this.phase === 'map' ? 'map' : 'reduce')) {
      this.idle.push(task);
      this.wakeWaiters();
    }
  }

  /** Holds a getTask of `peer` until wakeWaiters(), its disconnection, or `timeoutMs`. */
  private park(peer: PeerId, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        peer,
        wake: (retry) => {
          if (!this.waiters.delete(waiter)) return; // Woken already.
          timer.cancel();
          resolve(retry);
        },
      };
      this.waiters.add(waiter);
      const timer = this.clock.setTimer(timeoutMs, () => waiter.wake(true));
    });
  }

  /** Something changed that may give a held getTask a task or an exit: let them all retry. */
  private wakeWaiters(): void {
    for (const waiter of [...this.waiters]) waiter.wake(true);
  }

  private takeIdle(): Task | undefined {
    while (this.idleHead < this.idle.length) {
      const task = this.idle[this.idleHead]!;
      this.idleHead += 1;
      if (task.state === 'idle') return task;
    }
    // Everything before idleHead has been handed out; drop it so the queue stays bounded
    // by the number of idle tasks.
    this.idle = [];
    this.idleHead = 0;
    return undefined;
  }

  private findTask(kind: TaskKind, taskId: number): Task | undefined {
    return kind === 'map' ? this.mapTasks[taskId] : this.reduceTasks[taskId];
  }
}

function newTask(kind: TaskKind, id: number): Task {
  return { kind, id, state: 'idle', lease: null, failures: 0 };
}
