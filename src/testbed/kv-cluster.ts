// The 6.824 kvraft tester (kvraft/config.go; docs/6824-tests.md §5.2) rebuilt on the
// simulator: n servers, each a KvService (RaftNode + Replica + KvStateMachine) on
// in-memory Persister-like storage, Raft messages on sim/network.ts, and clerks reaching
// the servers through labrpc's Call (kv-rpc.ts), so that partitions separate clerks from
// servers as in the lab. Crash and restart with the Persister's copy semantics,
// partition(), make_partition(), makeClient(to), ConnectClient/DisconnectClient, LogSize()
// and SnapshotSize(), and a history of every logged clerk call for the linearizability
// checker. Everything runs on virtual time.

import { Prng } from '../stdx/prng.js';
import { type NodeId, nodeId } from '../stdx/types.js';
import { Scheduler, type YieldToHost } from '../sim/scheduler.js';
import { SimNetwork } from '../sim/network.js';
import { type RaftConfig, defaultTiming } from '../raft/config.js';
import { decodeMessage, encodeMessage } from '../raft/codec.js';
import { isRequest, type Message } from '../raft/messages.js';
import { MemoryStorage } from '../runtime/memory-storage.js';
import { KvService, type KvReadMode, type KvResponse } from '../kv/service.js';
import type { KvUnsafe } from '../kv/state-machine.js';
import { check, kvModel, type CheckResult, type KvInput, type KvOutput, type KvValue, type Operation } from '../lincheck/index.js';
import { Clerk, type ClerkArgs, type ClerkReply } from './kv-clerk.js';
import { ClerkNetwork } from './kv-rpc.js';
import { SafetyChecker } from './safety.js';
import { highestTermLeader, TestFailure } from './raft-cluster.js';

/** The tester's electionTimeout: its sleeps assume a new leader within this. */
export const electionTimeoutMs = 1000;
/** The lab's linearizabilityCheckTimeout (real time; 'unknown' passes). */
export const linearizabilityCheckTimeoutMs = 1000;
export const tickMs = 100;
/**
 * Virtual CPU time a server spends on each clerk request, one request at a time. Virtual
 * time makes computation free, so without a cost the clerks' throughput grows with their
 * number without bound (20 clerks made 70,000 calls in one test); the lab's servers are
 * bounded by their CPUs. 4 ms (250 requests a second per server) keeps the histories at
 * the lab's scale and a sequential call well inside TestSpeed's 33.3 ms.
 */
export const serverRequestCostMs = 4;

export type KvOperation = Operation<KvInput, KvOutput>;

export interface KvClusterOptions {
  readonly seed: number;
  readonly yieldToHost: YieldToHost;
  readonly unreliable?: boolean;
  /** The lab's maxraftstate: snapshot at this many bytes of Raft state; -1: never. */
  readonly maxraftstate?: number;
  /** Test-only broken variants of the service (STYLE.md 18). */
  readonly readMode?: KvReadMode;
  readonly unsafe?: KvUnsafe;
  readonly raft?: Partial<Pick<RaftConfig, 'checkQuorum' | 'readMode'>>;
  /** Overrides serverRequestCostMs. */
  readonly requestCostMs?: number;
}

export class KvCluster {
  readonly scheduler: Scheduler;
  readonly raftNetwork: SimNetwork<Message>;
  readonly clerkNetwork: ClerkNetwork<ClerkArgs, ClerkReply>;
  readonly checker = new SafetyChecker();
  readonly n: number;
  readonly maxraftstate: number;
  readonly services: (KvService | undefined)[];
  /** Each server's Persister; a crash replaces it with a copy (the zombie keeps the old). */
  readonly storages: MemoryStorage[];
  /** Every logged clerk call (the lab's opLog). */
  readonly history: KvOperation[] = [];
  readonly prng: Prng;
  private readonly nodePrng: Prng;
  private readonly clerkPrng: Prng;
  private readonly ids: NodeId[];
  /** links[i][j]: server i's endpoint to server j is enabled. */
  private readonly links: boolean[][];
  private readonly clerks: Clerk[] = [];
  private readonly options: KvClusterOptions;
  /** The first failure of a server or of a background task (go()): the run's verdict. */
  private failure: Error | undefined;
  /** Set by cleanup(): the servers are stopped and the simulation is over. */
  private closed = false;
  /** Snapshots taken by server incarnations that have stopped. */
  private snapshotsOfStopped = 0;

  constructor(n: number, options: KvClusterOptions) {
    this.n = n;
    this.options = options;
    this.maxraftstate = options.maxraftstate ?? -1;
    const root = new Prng(options.seed);
    this.prng = root.fork();
    this.nodePrng = root.fork();
    this.clerkPrng = root.fork();
    this.scheduler = new Scheduler(options.yieldToHost);
    this.raftNetwork = new SimNetwork(this.scheduler, root.fork(), { encode: encodeMessage, decode: decodeMessage, isRequest });
    this.clerkNetwork = new ClerkNetwork(this.scheduler, root.fork(), n);
    this.setUnreliable(options.unreliable === true);
    this.ids = Array.from({ length: n }, (_, i) => nodeId(i + 1));
    this.services = new Array<KvService | undefined>(n).fill(undefined);
    this.storages = Array.from({ length: n }, () => new MemoryStorage());
    this.links = Array.from({ length: n }, () => new Array<boolean>(n).fill(false));
  }

  all(): number[] {
    return Array.from({ length: this.n }, (_, i) => i);
  }

  /** make_config: start every server and connect everyone. */
  async startAll(): Promise<void> {
    for (let i = 0; i < this.n; i++) await this.startServer(i);
    this.connectAll();
  }

  setUnreliable(unreliable: boolean): void {
    this.raftNetwork.reliable = !unreliable;
    this.clerkNetwork.reliable = !unreliable;
  }

  sleep(ms: number): Promise<void> {
    return this.scheduler.sleep(ms);
  }

  nowMs(): number {
    return this.scheduler.nowMs;
  }

  // ---- Servers: ShutdownServer, StartServer -------------------------------------------------

  /** Isolates server i, deletes it from the network, copies its Persister, kills it. */
  shutdownServer(i: number): void {
    this.disconnect(i, this.all());
    this.clerkNetwork.deleteServer(i);
    this.raftNetwork.detach(this.ids[i]!);
    this.storages[i] = this.storages[i]!.copy();
    this.snapshotsOfStopped += this.services[i]?.replica.snapshotsTaken ?? 0;
    this.services[i]?.stop();
    this.services[i] = undefined;
  }

  /** Snapshots every server incarnation of this cluster took. */
  snapshotsTaken(): number {
    return this.services.reduce((sum, service) => sum + (service?.replica.snapshotsTaken ?? 0), this.snapshotsOfStopped);
  }

  /** Starts server i from (a copy of) its Persister. Its links stay as they were: call connect. */
  async startServer(i: number): Promise<void> {
    if (this.services[i] !== undefined) this.shutdownServer(i);
    this.storages[i] = this.storages[i]!.copy();
    const id = this.ids[i]!;
    const service = await KvService.open({
      config: { ...defaultTiming, noopOnElection: true, ...this.options.raft, id, voters: this.ids },
      prng: this.nodePrng.fork(),
      clock: this.scheduler.clock(),
      tickMs,
      transport: { send: (to, message) => this.raftNetwork.send(id, to, message) },
      storage: this.storages[i]!,
      raftStateBytesMax: this.maxraftstate,
      readMode: this.options.readMode ?? 'read-index',
      ...(this.options.unsafe === undefined ? {} : { unsafe: this.options.unsafe }),
      observer: (node, ready) => this.checker.observe(node, ready),
      onFatal: (error) => this.fail(new TestFailure(`server ${i} failed: ${String(error)}`)),
    });
    this.services[i] = service;
    this.raftNetwork.attach(id, (message) => service.replica.raft.receive(message));
    this.raftNetwork.connect(id);
    this.applyLinks(i);
    const cpu = { busyUntilMs: 0 };
    this.clerkNetwork.addServer(i, (args) => this.serve(service, cpu, args));
  }

  /** The RPC handler: a clerk's call, after its turn on the server's CPU, as a KV request. */
  private async serve(service: KvService, cpu: { busyUntilMs: number }, args: ClerkArgs): Promise<ClerkReply> {
    const startMs = Math.max(this.nowMs(), cpu.busyUntilMs);
    cpu.busyUntilMs = startMs + (this.options.requestCostMs ?? serverRequestCostMs);
    await new Promise<void>((resolve) => this.scheduler.at(cpu.busyUntilMs, resolve));
    const session = args.client === 0 ? undefined : { client: args.client, seq: args.seq, ack: args.ack };
    const value = Buffer.from(args.value, 'utf8');
    const op = args.op === 'get' ? { kind: 'get' as const, key: args.key } : { kind: args.op, key: args.key, value };
    return clerkReply(await service.handle({ op, ...(session === undefined ? {} : { session }) }));
  }

  // ---- Links: connect, disconnect, partition -------------------------------------------------

  /** Enables the endpoints between i and each of `to`, both ways. */
  connect(i: number, to: readonly number[]): void {
    for (const j of to) this.setLink(i, j, true);
  }

  disconnect(i: number, from: readonly number[]): void {
    for (const j of from) this.setLink(i, j, false);
  }

  connectAll(): void {
    for (let i = 0; i < this.n; i++) this.connect(i, this.all());
  }

  /** Links within each side, none across. */
  partition(p1: readonly number[], p2: readonly number[]): void {
    for (const i of p1) {
      this.disconnect(i, p2);
      this.connect(i, p1);
    }
    for (const i of p2) {
      this.disconnect(i, p1);
      this.connect(i, p2);
    }
  }

  /** make_partition: a majority without the leader, a minority with the leader last. */
  async makePartition(): Promise<[number[], number[]]> {
    const leader = await this.waitForLeader();
    const others = this.all().filter((i) => i !== leader);
    const majority = Math.floor(this.n / 2) + 1;
    return [others.slice(0, majority), [...others.slice(majority), leader]];
  }

  private setLink(i: number, j: number, on: boolean): void {
    this.links[i]![j] = on;
    this.links[j]![i] = on;
    this.raftNetwork.setBlocked(this.ids[i]!, this.ids[j]!, !on);
    this.raftNetwork.setBlocked(this.ids[j]!, this.ids[i]!, !on);
  }

  private applyLinks(i: number): void {
    for (let j = 0; j < this.n; j++) this.setLink(i, j, this.links[i]![j]!);
  }

  // ---- Clerks ----------------------------------------------------------------------------

  /** makeClient(to): a clerk with its own endpoints to every server, shuffled; only `to` enabled. */
  makeClient(to: readonly number[]): Clerk {
    const id = this.clerks.length;
    const order = this.all();
    for (let k = order.length - 1; k > 0; k--) {
      const r = this.clerkPrng.int(k + 1);
      [order[k], order[r]] = [order[r]!, order[k]!];
    }
    const clerk = new Clerk(id, order, this.clerkNetwork, this.scheduler, this.clerkPrng.fork());
    this.clerks.push(clerk);
    this.connectClient(clerk, to);
    return clerk;
  }

  connectClient(clerk: Clerk, to: readonly number[]): void {
    for (const j of to) this.clerkNetwork.enable(clerk.id, j, true);
  }

  disconnectClient(clerk: Clerk, from: readonly number[]): void {
    for (const j of from) this.clerkNetwork.enable(clerk.id, j, false);
  }

  deleteClient(clerk: Clerk): void {
    this.disconnectClient(clerk, this.all());
  }

  /** While `lost`, the clerk's requests reach the servers and run, but every reply is lost: it retries. */
  loseReplies(clerk: Clerk, lost: boolean): void {
    this.clerkNetwork.loseReplies(clerk.id, lost);
  }

  /** The lab's Get(cfg, ck, key, log, cli): a clerk call, logged when `client` is given. */
  async get(clerk: Clerk, key: string, client = -1): Promise<string> {
    const callTime = this.scheduler.stampMs();
    const value = await clerk.get(key);
    this.log(client, { kind: 'get', key }, value, callTime);
    return value;
  }

  async put(clerk: Clerk, key: string, value: string, client = -1): Promise<void> {
    const callTime = this.scheduler.stampMs();
    await clerk.put(key, value);
    this.log(client, { kind: 'put', key, value }, '', callTime);
  }

  async append(clerk: Clerk, key: string, value: string, client = -1): Promise<void> {
    const callTime = this.scheduler.stampMs();
    await clerk.append(key, value);
    this.log(client, { kind: 'append', key, value }, '', callTime);
  }

  /** check(cfg, t, ck, key, value): a logged Get that must return `value`. */
  async check(clerk: Clerk, key: string, value: string): Promise<void> {
    const got = await this.get(clerk, key);
    if (got !== value) throw new TestFailure(`Get(${key}): expected:\n${value}\nreceived:\n${got}`);
  }

  /**
   * Every call is logged here, with client -1 too: the lab passes a nil log in some tests, but
   * checking more history costs little and can only find more.
   */
  private log(client: number, input: KvInput, output: KvOutput, callTime: number): void {
    this.history.push({ clientId: client, input, output, callTime, returnTime: this.scheduler.stampMs() });
  }

  // ---- Observations ------------------------------------------------------------------------

  /** The server that leads the highest term among those that think they lead; -1 if none. */
  leader(): number {
    return highestTermLeader(this.services.map((service) => service?.replica.raft.status()));
  }

  async waitForLeader(): Promise<number> {
    const found = await this.scheduler.waitFor(() => this.leader() >= 0, 10 * electionTimeoutMs);
    if (!found) throw new TestFailure('no leader within 10 s');
    return this.leader();
  }

  /** LogSize(): the largest persisted Raft state over all servers. */
  logSize(): number {
    return Math.max(...this.storages.map((storage) => storage.sizeBytes()));
  }

  /** SnapshotSize(): the largest snapshot over all servers. */
  snapshotSize(): number {
    return Math.max(...this.storages.map((storage) => storage.snapshotBytes()));
  }

  /** Clerk RPCs sent (labrpc's total). */
  rpcTotal(): number {
    return this.clerkNetwork.rpcTotal;
  }

  /** Checks the whole history with the lab's KV model within `budgetMs` of `nowMs` (real time). */
  checkLinearizable(nowMs: () => number, budgetMs = linearizabilityCheckTimeoutMs, cacheBytesMax?: number): CheckResult<KvValue, KvInput, KvOutput> {
    return check(kvModel(), this.history, { timeBudgetMs: budgetMs, nowMs, ...(cacheBytesMax === undefined ? {} : { cacheBytesMax }) });
  }

  /** Fails the test on a server failure, a failed background task or a Raft safety violation. */
  checkErrors(): void {
    if (this.failure !== undefined) throw this.failure;
    const violation = this.checker.firstViolation();
    if (violation !== undefined) throw new TestFailure(`safety violation: ${violation}`);
  }

  // ---- Background tasks and the end of a run -------------------------------------------------
  //
  // A test runs clients, a partitioner, calls it does not wait for at once, as the lab runs
  // goroutines. A rejected promise nobody awaits yet would be an unhandled rejection: Node's
  // test runner marks the test failed at once and moves on while the test's body and its
  // cluster keep running in the background, and a client retrying against stopped servers
  // keeps the process alive. So every background task goes through go(): its failure is
  // recorded and fails the run at once — every sleeper of the scheduler (the test's body
  // among them) is rejected with that error, so the test fails with the task's own message.

  /** Runs `task` in the background: if it rejects, the run fails with its error at once. */
  go<T>(task: Promise<T>): Promise<T> {
    task.catch((error: unknown) => this.fail(error instanceof Error ? error : new TestFailure(String(error))));
    return task;
  }

  /** Records the run's first failure and ends the simulation with it (no-op once cleaned up). */
  private fail(error: Error): void {
    if (this.closed || this.failure !== undefined) return;
    this.failure = error;
    this.scheduler.failAt(this.scheduler.nowMs, () => error);
  }

  /**
   * Stops every server and ends the simulation: whatever still waits on this cluster's
   * scheduler (a client of a test that failed, a call to a stopped server) is rejected at its
   * next step instead of running on. Idempotent, and never throws, so that a `finally` that
   * calls it keeps the test's own error; call checkErrors() for the verdict.
   */
  cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    for (let i = 0; i < this.n; i++) {
      this.services[i]?.stop();
      this.services[i] = undefined;
      this.clerkNetwork.deleteServer(i);
    }
    this.scheduler.failAt(this.scheduler.nowMs, () => new TestFailure('the cluster was cleaned up: the test is over'));
  }

  describe(): string {
    const lines = [`t=${this.nowMs()}ms`];
    for (let i = 0; i < this.n; i++) {
      const service = this.services[i];
      if (service === undefined) {
        lines.push(`  ${i}: down`);
        continue;
      }
      const s = service.replica.raft.status();
      const linked = this.links[i]!.map((on, j) => (on ? String(j) : '-')).join('');
      lines.push(
        `  ${i}: ${s.role} term=${s.term} last=${s.lastIndex} commit=${s.commit} applied=${s.applied} links=${linked} raftstate=${this.storages[i]!.sizeBytes()}B snapshot=${this.storages[i]!.snapshotBytes()}B`,
      );
    }
    return lines.join('\n');
  }
}

function clerkReply(response: KvResponse): ClerkReply {
  if (!response.ok) return { err: response.code === 'not-leader' ? 'ErrWrongLeader' : 'ErrRetry', value: response.message };
  const result = response.result;
  switch (result.kind) {
    case 'value':
      return { err: 'OK', value: result.value === null ? '' : Buffer.from(result.value).toString('utf8') };
    case 'written':
      return { err: 'OK', value: '' };
    case 'error':
      return { err: 'ErrFatal', value: `${result.code}: ${result.message}` };
    case 'deleted':
    case 'cas':
    case 'scan':
      return { err: 'ErrFatal', value: `a lab clerk never asks for ${result.kind}` };
    default:
      return result satisfies never;
  }
}
