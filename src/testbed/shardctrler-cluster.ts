// The 6.824 shard controller tester (shardctrler/config.go and the check helpers of
// shardctrler/test_test.go, lab 4A/5A) rebuilt on the simulator: n controller servers, each a
// ShardCtrlerService (RaftNode + Replica + ShardCtrlerStateMachine) on in-memory
// Persister-like storage, Raft messages on sim/network.ts, and clerks reaching the servers
// through labrpc's Call (kv-rpc.ts). ShutdownServer and StartServer with the Persister's copy
// semantics, Leader(), and the lab's check(groups) and check_same_config(c1, c2). A reliable
// network, as in the lab; everything runs on virtual time.

import { Prng } from '../stdx/prng.js';
import { type NodeId, nodeId } from '../stdx/types.js';
import { Scheduler, type YieldToHost } from '../sim/scheduler.js';
import { SimNetwork } from '../sim/network.js';
import { defaultTiming } from '../raft/config.js';
import { decodeMessage, encodeMessage } from '../raft/codec.js';
import { isRequest, type Message } from '../raft/messages.js';
import { MemoryStorage } from '../runtime/memory-storage.js';
import {
  configToArray,
  describeConfig,
  type Gid,
  type ShardConfig,
  ShardCtrlerService,
  type ShardCtrlerResponse,
  type ShardCtrlerUnsafe,
  type ShardOp,
  shardCount,
  sortedGids,
} from '../shardctrler/index.js';
import { ClerkNetwork } from './kv-rpc.js';
import { ShardClerk, type ShardClerkArgs, type ShardClerkReply } from './shardctrler-clerk.js';
import { SafetyChecker } from './safety.js';
import { highestTermLeader, TestFailure } from './raft-cluster.js';

export const shardCtrlerTickMs = 100;
/** The tester's election timeout: a new leader within this, usually. */
export const shardCtrlerElectionTimeoutMs = 1000;
/** Virtual CPU time a server spends on each clerk request, one at a time (as kv-cluster.ts). */
export const shardCtrlerRequestCostMs = 4;

export interface ShardCtrlerClusterOptions {
  readonly seed: number;
  readonly yieldToHost: YieldToHost;
  /** Snapshot at this many bytes of Raft state; -1 (the lab's controller): never. */
  readonly maxraftstate?: number;
  /** Test-only broken variants of the state machine (STYLE.md 18). */
  readonly unsafe?: ShardCtrlerUnsafe;
  /** Not the lab's (its controller tests run reliable): loss, delay and reordering on both networks. */
  readonly unreliable?: boolean;
}

export class ShardCtrlerCluster {
  readonly scheduler: Scheduler;
  readonly raftNetwork: SimNetwork<Message>;
  readonly clerkNetwork: ClerkNetwork<ShardClerkArgs, ShardClerkReply>;
  readonly checker = new SafetyChecker();
  readonly n: number;
  readonly services: (ShardCtrlerService | undefined)[];
  /** Each server's Persister; a shutdown replaces it with a copy. */
  readonly storages: MemoryStorage[];
  private readonly nodePrng: Prng;
  private readonly clerkPrng: Prng;
  private readonly ids: NodeId[];
  /** links[i][j]: server i's endpoint to server j is enabled. */
  private readonly links: boolean[][];
  private clerkCount = 0;
  private readonly options: ShardCtrlerClusterOptions;
  /** The first failure of a server or of a background task (go()): the run's verdict. */
  private failure: Error | undefined;
  private closed = false;

  constructor(n: number, options: ShardCtrlerClusterOptions) {
    this.n = n;
    this.options = options;
    const root = new Prng(options.seed);
    this.nodePrng = root.fork();
    this.clerkPrng = root.fork();
    this.scheduler = new Scheduler(options.yieldToHost);
    this.raftNetwork = new SimNetwork(this.scheduler, root.fork(), { encode: encodeMessage, decode: decodeMessage, isRequest });
    this.clerkNetwork = new ClerkNetwork(this.scheduler, root.fork(), n);
    this.raftNetwork.reliable = options.unreliable !== true;
    this.clerkNetwork.reliable = options.unreliable !== true;
    this.ids = Array.from({ length: n }, (_, i) => nodeId(i + 1));
    this.services = new Array<ShardCtrlerService | undefined>(n).fill(undefined);
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
    this.services[i]?.stop();
    this.services[i] = undefined;
  }

  /** Starts server i from (a copy of) its Persister. Its links stay as they were: call connect. */
  async startServer(i: number): Promise<void> {
    if (this.services[i] !== undefined) this.shutdownServer(i);
    this.storages[i] = this.storages[i]!.copy();
    const id = this.ids[i]!;
    const service = await ShardCtrlerService.open({
      config: { ...defaultTiming, noopOnElection: true, id, voters: this.ids },
      prng: this.nodePrng.fork(),
      clock: this.scheduler.clock(),
      tickMs: shardCtrlerTickMs,
      transport: { send: (to, message) => this.raftNetwork.send(id, to, message) },
      storage: this.storages[i]!,
      raftStateBytesMax: this.options.maxraftstate ?? -1,
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

  /** The RPC handler: a clerk's call, after its turn on the server's CPU. Validates the arguments (STYLE.md 6). */
  private async serve(service: ShardCtrlerService, cpu: { busyUntilMs: number }, args: ShardClerkArgs): Promise<ShardClerkReply> {
    const startMs = Math.max(this.nowMs(), cpu.busyUntilMs);
    cpu.busyUntilMs = startMs + shardCtrlerRequestCostMs;
    await new Promise<void>((resolve) => this.scheduler.at(cpu.busyUntilMs, resolve));
    if (args.op === 'query') return clerkReply(await service.handle({ kind: 'query', num: args.num }));
    const op = opOf(args);
    if (typeof op === 'string') return { err: 'ErrFatal', config: null, num: 0, message: op };
    const session = args.client === 0 ? {} : { session: { client: args.client, seq: args.seq, ack: args.ack } };
    return clerkReply(await service.handle({ kind: 'command', op, ...session }));
  }

  // ---- Links --------------------------------------------------------------------------------

  connect(i: number, to: readonly number[]): void {
    for (const j of to) this.setLink(i, j, true);
  }

  disconnect(i: number, from: readonly number[]): void {
    for (const j of from) this.setLink(i, j, false);
  }

  connectAll(): void {
    for (let i = 0; i < this.n; i++)
      if (this.services[i] !== undefined)
        this.connect(
          i,
          this.all().filter((j) => this.services[j] !== undefined),
        );
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

  // ---- Clerks -------------------------------------------------------------------------------

  /** makeClient(): a clerk with endpoints to every server, in its own shuffled order, all enabled. */
  makeClient(): ShardClerk {
    const id = this.clerkCount++;
    const order = this.all();
    for (let k = order.length - 1; k > 0; k--) {
      const r = this.clerkPrng.int(k + 1);
      [order[k], order[r]] = [order[r]!, order[k]!];
    }
    for (const j of order) this.clerkNetwork.enable(id, j, true);
    return new ShardClerk(id, order, this.clerkNetwork, this.scheduler, this.clerkPrng.fork());
  }

  // ---- Observations -------------------------------------------------------------------------

  /** Leader(): the server that leads the highest term among those that think they lead; -1 if none. */
  leader(): number {
    return highestTermLeader(this.services.map((service) => service?.replica.raft.status()));
  }

  /** Fails the test on a server failure, a failed background task or a Raft safety violation. */
  checkErrors(): void {
    if (this.failure !== undefined) throw this.failure;
    const violation = this.checker.firstViolation();
    if (violation !== undefined) throw new TestFailure(`safety violation: ${violation}`);
  }

  /** Every live server's latest configuration, for a check that the replicas agree. */
  latestConfigs(): ShardConfig[] {
    return this.services.flatMap((service) => (service === undefined ? [] : [service.machine.latest]));
  }

  // ---- Background tasks and the end of a run (as KvCluster) ---------------------------------

  /** Runs `task` in the background: if it rejects, the run fails with its error at once. */
  go<T>(task: Promise<T>): Promise<T> {
    task.catch((error: unknown) => this.fail(error instanceof Error ? error : new TestFailure(String(error))));
    return task;
  }

  private fail(error: Error): void {
    if (this.closed || this.failure !== undefined) return;
    this.failure = error;
    this.scheduler.failAt(this.scheduler.nowMs, () => error);
  }

  /** Stops every server and ends the simulation. Idempotent; never throws. */
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
      lines.push(`  ${i}: ${s.role} term=${s.term} commit=${s.commit} applied=${s.applied} ${describeConfig(service.machine.latest)}`);
    }
    return lines.join('\n');
  }
}

/** The clerk's arguments as a command, or why they are malformed. */
function opOf(args: ShardClerkArgs): ShardOp | string {
  switch (args.op) {
    case 'join': {
      const flat: unknown = args.groups;
      if (!Array.isArray(flat) || flat.length % 2 !== 0) return 'join: groups are not [gid, servers] pairs';
      const groups: Array<[Gid, string[]]> = [];
      for (let i = 0; i < flat.length; i += 2) {
        const servers: unknown = flat[i + 1];
        if (typeof flat[i] !== 'number' || !Array.isArray(servers)) return 'join: groups are not [gid, servers] pairs';
        groups.push([flat[i] as number, servers as string[]]);
      }
      return { kind: 'join', groups };
    }
    case 'leave':
      return Array.isArray(args.gids) ? { kind: 'leave', gids: args.gids } : 'leave: gids are not a list';
    case 'move':
      return { kind: 'move', shard: args.shard, gid: args.gid };
    default:
      return `unknown call ${String(args.op)}`;
  }
}

function clerkReply(response: ShardCtrlerResponse): ShardClerkReply {
  if (!response.ok) return { err: response.code === 'not-leader' ? 'ErrWrongLeader' : response.code === 'invalid' ? 'ErrFatal' : 'ErrRetry', config: null, num: 0, message: response.message };
  if (response.kind === 'query') return { err: 'OK', config: configToArray(response.config), num: response.config.num, message: '' };
  const result = response.result;
  if (result.kind === 'error') return { err: 'ErrFatal', config: null, num: 0, message: `${result.code}: ${result.message}` };
  return { err: 'OK', config: null, num: result.num, message: '' };
}

// ---- The lab's checks (shardctrler/test_test.go) ----------------------------------------------

/**
 * check(groups): Query(-1) holds exactly `groups`; with any group, every shard is on one of
 * them; and the shard counts per group differ by at most one. Returns the configuration.
 */
export async function checkGroups(ck: ShardClerk, groups: readonly Gid[]): Promise<ShardConfig> {
  const c = await ck.query(-1);
  const expected = [...groups].sort((a, b) => a - b);
  const got = sortedGids(c.groups);
  if (got.length !== expected.length || got.some((gid, i) => gid !== expected[i])) {
    throw new TestFailure(`wanted ${expected.length} groups [${expected.join(',')}], got [${got.join(',')}] in ${describeConfig(c)}`);
  }
  if (groups.length > 0) {
    for (let shard = 0; shard < shardCount; shard++) {
      if (!c.groups.has(c.shards[shard]!)) throw new TestFailure(`shard ${shard} -> invalid group ${c.shards[shard]} in ${describeConfig(c)}`);
    }
  }
  const counts = new Map<Gid, number>(got.map((gid) => [gid, 0]));
  for (const gid of c.shards) if (counts.has(gid)) counts.set(gid, counts.get(gid)! + 1);
  const values = [...counts.values()];
  if (values.length > 0 && Math.max(...values) > Math.min(...values) + 1) {
    throw new TestFailure(`max ${Math.max(...values)} too much larger than min ${Math.min(...values)} in ${describeConfig(c)}`);
  }
  return c;
}

/** check_same_config(c1, c2): Num, the shards, the group count and every server list in order. */
export function checkSameConfig(c1: ShardConfig, c2: ShardConfig): void {
  const same =
    c1.num === c2.num &&
    c1.shards.every((gid, shard) => gid === c2.shards[shard]) &&
    c1.groups.size === c2.groups.size &&
    [...c1.groups].every(([gid, servers]) => {
      const other = c2.groups.get(gid);
      return other !== undefined && other.length === servers.length && servers.every((server, k) => server === other[k]);
    });
  if (!same) throw new TestFailure(`configurations differ:\n  ${describeConfig(c1)}\n  ${describeConfig(c2)}`);
}
