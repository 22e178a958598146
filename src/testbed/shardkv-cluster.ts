// The 6.824 sharded key/value tester (shardkv/config.go, lab 5B; docs/6824-tests.md §7.2)
// rebuilt on the simulator: a controller service of 3 servers and `ngroups` replica groups
// (gids 100, 101, ...) of n servers each, on one simulated network. Each group server is a
// ShardKvService (RaftNode + Replica + ShardKvStateMachine) on in-memory Persister-like
// storage; each controller server a ShardCtrlerService. Three call networks in labrpc's
// style (kv-rpc.ts): clerks and group servers to the controller, clerks to group servers,
// group servers to each other (pulls and deletions); Raft messages on sim/network.ts.
// join/leave (one group or several in one call), ShutdownServer/StartServer and
// ShutdownGroup/StartGroup with the Persister's copy semantics, checklogs(), the
// unreliable network, and a history of every clerk call for the linearizability checker.

import { Prng } from '../stdx/prng.js';
import { type NodeId, nodeId } from '../stdx/types.js';
import { Scheduler, type YieldToHost } from '../sim/scheduler.js';
import { SimNetwork } from '../sim/network.js';
import { defaultTiming } from '../raft/config.js';
import { decodeMessage, encodeMessage } from '../raft/codec.js';
import { isRequest, type Message } from '../raft/messages.js';
import { MemoryStorage } from '../runtime/memory-storage.js';
import { configFromArray, configToArray, type Gid, type ShardConfig, ShardCtrlerService, type ShardCtrlerResponse } from '../shardctrler/index.js';
import { type PeerArgs, type PeerReply, type ShardKvReply, type ShardKvRequest, ShardKvService, type ShardKvUnsafe } from '../shardkv/index.js';
import { check, kvModel, type CheckResult, type KvInput, type KvOutput, type KvValue, type Operation } from '../lincheck/index.js';
import { ClerkNetwork } from './kv-rpc.js';
import { ShardClerk, type ShardClerkArgs, type ShardClerkReply } from './shardctrler-clerk.js';
import { ShardKvClerk } from './shardkv-clerk.js';
import { SafetyChecker } from './safety.js';
import { highestTermLeader, TestFailure } from './raft-cluster.js';

export const shardKvTickMs = 100;
/** The controller's servers (the lab's nctrlers). */
export const ctrlerServerCount = 3;
/** A group server's controller query that takes longer than this is abandoned (see startServer). */
export const ctrlerQueryDeadlineMs = 300;
/** Controller services one cluster can start (TestRejection5A uses two). */
export const ctrlerServicesMax = 2;
/** The first group's gid; group gi has gid firstGid + gi (the lab's 100, 101, 102). */
export const firstGid = 100;
/** Virtual CPU time a server spends on each clerk or peer request, one at a time (as kv-cluster.ts). */
export const shardKvRequestCostMs = 4;
/** The lab's linearizabilityCheckTimeout (real time; 'unknown' passes). */
export const shardKvCheckTimeoutMs = 1000;

export interface ShardKvClusterOptions {
  readonly seed: number;
  readonly yieldToHost: YieldToHost;
  /** The lab's maxraftstate for the group servers; -1: never snapshot. */
  readonly maxraftstate: number;
  readonly unreliable?: boolean;
  /** Replica groups (the lab's 3) and servers per group (the lab's 3). */
  readonly ngroups?: number;
  readonly n?: number;
  /** Test-only broken variants of the group state machine (STYLE.md 18). */
  readonly unsafe?: ShardKvUnsafe;
  /** The groups' pull page size (ShardKvServiceOptions.pullBytesMax); default the service's. */
  readonly pullBytesMax?: number;
}

export type ShardKvOperation = Operation<KvInput, KvOutput>;

interface GroupServer {
  service: ShardKvService | undefined;
  storage: MemoryStorage;
  /** This incarnation's caller number on the controller network (its own controller clerk endpoints). */
  ctrlCaller: number;
  /** Snapshots taken by stopped incarnations. */
}

export class ShardKvCluster {
  readonly scheduler: Scheduler;
  readonly raftNetwork: SimNetwork<Message>;
  readonly ctrlNetwork: ClerkNetwork<ShardClerkArgs, ShardClerkReply>;
  readonly kvNetwork: ClerkNetwork<ShardKvRequest, ShardKvReply>;
  readonly peerNetwork: ClerkNetwork<PeerArgs, PeerReply>;
  /** Raft's safety properties, checked per Raft group: each controller service's, each replica group's. */
  readonly ctrlerCheckers: SafetyChecker[] = [];
  readonly groupCheckers: SafetyChecker[];
  readonly ngroups: number;
  readonly n: number;
  readonly maxraftstate: number;
  readonly ctrlers: (ShardCtrlerService | undefined)[] = [];
  readonly groups: GroupServer[][];
  /** Every clerk call (the lab's opLog; logged for every call, as kv-cluster.ts does). */
  readonly history: ShardKvOperation[] = [];
  readonly prng: Prng;
  private readonly nodePrng: Prng;
  private readonly clerkPrng: Prng;
  private readonly serverIndex = new Map<string, number>();
  private ctrlCallers = 0;
  private ctrlerServices = 0;
  private kvClerks = 0;
  private readonly options: ShardKvClusterOptions;
  private failure: Error | undefined;
  private closed = false;
  /** The tester's own controller clerk (join, leave, query). */
  private mck: ShardClerk | undefined;

  constructor(options: ShardKvClusterOptions) {
    this.options = options;
    this.ngroups = options.ngroups ?? 3;
    this.n = options.n ?? 3;
    this.maxraftstate = options.maxraftstate;
    const root = new Prng(options.seed);
    this.prng = root.fork();
    this.nodePrng = root.fork();
    this.clerkPrng = root.fork();
    this.scheduler = new Scheduler(options.yieldToHost);
    this.raftNetwork = new SimNetwork(this.scheduler, root.fork(), { encode: encodeMessage, decode: decodeMessage, isRequest });
    this.ctrlNetwork = new ClerkNetwork(this.scheduler, root.fork(), ctrlerServicesMax * ctrlerServerCount);
    this.kvNetwork = new ClerkNetwork(this.scheduler, root.fork(), this.ngroups * this.n);
    this.peerNetwork = new ClerkNetwork(this.scheduler, root.fork(), this.ngroups * this.n);
    this.setUnreliable(options.unreliable === true);
    this.groupCheckers = Array.from({ length: this.ngroups }, () => new SafetyChecker());
    this.groups = Array.from({ length: this.ngroups }, () => Array.from({ length: this.n }, () => ({ service: undefined, storage: new MemoryStorage(), ctrlCaller: -1 })));
    for (let gi = 0; gi < this.ngroups; gi++) for (let i = 0; i < this.n; i++) this.serverIndex.set(this.serverName(gi, i), gi * this.n + i);
    // Group servers call each other from their own number, to every server.
    for (let a = 0; a < this.ngroups * this.n; a++) for (let b = 0; b < this.ngroups * this.n; b++) this.peerNetwork.enable(a, b, true);
  }

  setUnreliable(unreliable: boolean): void {
    for (const network of [this.raftNetwork, this.ctrlNetwork, this.kvNetwork, this.peerNetwork]) network.reliable = !unreliable;
  }

  gid(gi: number): Gid {
    return firstGid + gi;
  }

  serverName(gi: number, i: number): string {
    return `server-${this.gid(gi)}-${i}`;
  }

  sleep(ms: number): Promise<void> {
    return this.scheduler.sleep(ms);
  }

  nowMs(): number {
    return this.scheduler.nowMs;
  }

  /** make_config: the controller's servers and every group's, all connected. */
  async startAll(): Promise<void> {
    this.mck = this.makeCtrlerClerk(await this.startCtrlerService());
    for (let gi = 0; gi < this.ngroups; gi++) await this.startGroup(gi);
  }

  /**
   * StartCtrlerService(): a controller service of its own (three servers, its own Raft
   * group); returns its number (0 is the one the groups poll). TestRejection5A starts a
   * second one that the groups know nothing of.
   */
  async startCtrlerService(): Promise<number> {
    const k = this.ctrlerServices++;
    if (k >= ctrlerServicesMax) throw new TestFailure(`at most ${ctrlerServicesMax} controller services`);
    const checker = new SafetyChecker();
    this.ctrlerCheckers.push(checker);
    const ids = Array.from({ length: ctrlerServerCount }, (_, i) => nodeId(k * ctrlerServerCount + i + 1));
    for (let i = 0; i < ctrlerServerCount; i++) {
      const id = ids[i]!;
      const service = await ShardCtrlerService.open({
        config: { ...defaultTiming, noopOnElection: true, id, voters: ids },
        prng: this.nodePrng.fork(),
        clock: this.scheduler.clock(),
        tickMs: shardKvTickMs,
        transport: { send: (to, message) => this.raftNetwork.send(id, to, message) },
        storage: new MemoryStorage(),
        observer: (node, ready) => checker.observe(node, ready),
        onFatal: (error) => this.fail(new TestFailure(`controller ${k} server ${i} failed: ${String(error)}`)),
      });
      this.ctrlers.push(service);
      this.raftNetwork.attach(id, (message) => service.replica.raft.receive(message));
      this.raftNetwork.connect(id);
      const cpu = { busyUntilMs: 0 };
      this.ctrlNetwork.addServer(k * ctrlerServerCount + i, async (args) => {
        await this.spend(cpu);
        return ctrlerReply(await ctrlerHandle(service, args));
      });
    }
    return k;
  }

  /** join(gi) on controller service `ctl` (not 0: the groups poll 0 only). */
  joinOn(ctl: number, gi: number): Promise<number> {
    return this.makeCtrlerClerk(ctl).join(new Map([[this.gid(gi), this.groupServers(gi)]]));
  }

  private async spend(cpu: { busyUntilMs: number }): Promise<void> {
    cpu.busyUntilMs = Math.max(this.nowMs(), cpu.busyUntilMs) + shardKvRequestCostMs;
    await new Promise<void>((resolve) => this.scheduler.at(cpu.busyUntilMs, resolve));
  }

  /** Server i of group gi on the Raft network. */
  raftId(gi: number, i: number): NodeId {
    return nodeId(100 + gi * this.n + i);
  }

  private makeCtrlerClerk(ctl: number): ShardClerk {
    const id = this.ctrlCallers++;
    const order = Array.from({ length: ctrlerServerCount }, (_, i) => ctl * ctrlerServerCount + i);
    for (const j of order) this.ctrlNetwork.enable(id, j, true);
    return new ShardClerk(id, order, this.ctrlNetwork, this.scheduler, this.clerkPrng.fork());
  }

  // ---- Group servers: ShutdownServer, StartServer, ShutdownGroup, StartGroup ---------------

  /** Deletes server i of group gi from every network, copies its Persister, kills it. */
  shutdownServer(gi: number, i: number): void {
    const server = this.groups[gi]![i]!;
    const index = gi * this.n + i;
    this.kvNetwork.deleteServer(index);
    this.peerNetwork.deleteServer(index);
    for (let c = 0; c < ctrlerServerCount; c++) this.ctrlNetwork.enable(server.ctrlCaller, c, false);
    this.raftNetwork.detach(this.raftId(gi, i));
    server.storage = server.storage.copy();
    server.service?.stop();
    server.service = undefined;
  }

  async startServer(gi: number, i: number): Promise<void> {
    const server = this.groups[gi]![i]!;
    if (server.service !== undefined) this.shutdownServer(gi, i);
    server.storage = server.storage.copy();
    const index = gi * this.n + i;
    const id = this.raftId(gi, i);
    const voters = Array.from({ length: this.n }, (_, k) => this.raftId(gi, k));
    const caller = this.ctrlCallers++;
    for (let c = 0; c < ctrlerServerCount; c++) this.ctrlNetwork.enable(caller, c, true);
    server.ctrlCaller = caller;
    let nextCtrler = 0;
    const service = await ShardKvService.open({
      gid: this.gid(gi),
      config: { ...defaultTiming, noopOnElection: true, id, voters },
      prng: this.nodePrng.fork(),
      clock: this.scheduler.clock(),
      tickMs: shardKvTickMs,
      transport: { send: (to, message) => this.raftNetwork.send(id, to, message) },
      storage: server.storage,
      raftStateBytesMax: this.maxraftstate,
      ...(this.options.unsafe === undefined ? {} : { unsafe: this.options.unsafe }),
      ...(this.options.pullBytesMax === undefined ? {} : { pullBytesMax: this.options.pullBytesMax }),
      observer: (node, ready) => this.groupCheckers[gi]!.observe(node, ready),
      onFatal: (error) => this.fail(new TestFailure(`server ${this.serverName(gi, i)} failed: ${String(error)}`)),
      // One attempt per poll, at the controller server that answered last: a stopped
      // server's poll ends with it instead of retrying forever as a clerk would. A query that
      // is not answered within ctrlerQueryDeadlineMs (a follower's read whose forwarding was
      // lost waits out the controller's 1 s timeout) counts as failed: try the next server.
      queryConfig: async (num) => {
        const call = this.ctrlNetwork.call(caller, nextCtrler, { ...blankCtrlerArgs, op: 'query', num });
        const reply = await Promise.race([call, new Promise<undefined>((resolve) => this.scheduler.after(ctrlerQueryDeadlineMs, () => resolve(undefined)))]);
        if (reply === undefined || reply.err !== 'OK') {
          nextCtrler = (nextCtrler + 1) % ctrlerServerCount;
          return undefined;
        }
        return configFromArray(reply.config);
      },
      callPeer: async (name, args) => {
        const to = this.serverIndex.get(name);
        return to === undefined ? undefined : this.peerNetwork.call(index, to, args);
      },
    });
    server.service = service;
    this.raftNetwork.attach(id, (message) => service.replica.raft.receive(message));
    this.raftNetwork.connect(id);
    const cpu = { busyUntilMs: 0 };
    this.kvNetwork.addServer(index, async (args) => {
      await this.spend(cpu);
      return service.handle(args);
    });
    this.peerNetwork.addServer(index, async (args) => {
      await this.spend(cpu);
      return service.handlePeer(args);
    });
  }

  shutdownGroup(gi: number): void {
    for (let i = 0; i < this.n; i++) this.shutdownServer(gi, i);
  }

  async startGroup(gi: number): Promise<void> {
    for (let i = 0; i < this.n; i++) await this.startServer(gi, i);
  }

  // ---- The controller: join, leave, query ---------------------------------------------------

  private groupServers(gi: number): string[] {
    return Array.from({ length: this.n }, (_, i) => this.serverName(gi, i));
  }

  join(gi: number): Promise<number> {
    return this.joinm([gi]);
  }

  joinm(gis: readonly number[]): Promise<number> {
    return this.ctrlerClerk().join(new Map(gis.map((gi) => [this.gid(gi), this.groupServers(gi)])));
  }

  leave(gi: number): Promise<number> {
    return this.leavem([gi]);
  }

  leavem(gis: readonly number[]): Promise<number> {
    return this.ctrlerClerk().leave(gis.map((gi) => this.gid(gi)));
  }

  /** Move(shard, gid of group gi) through the tester's controller clerk. */
  move(shard: number, gi: number): Promise<number> {
    return this.ctrlerClerk().move(shard, this.gid(gi));
  }

  query(num = -1): Promise<ShardConfig> {
    return this.ctrlerClerk().query(num);
  }

  private ctrlerClerk(): ShardClerk {
    if (this.mck === undefined) throw new TestFailure('startAll() first');
    return this.mck;
  }

  // ---- Clerks ----------------------------------------------------------------------------

  /** makeClient(ctl): a clerk that learns configurations from controller service `ctl`. */
  makeClient(ctl = 0): ShardKvClerk {
    const id = this.kvClerks++;
    for (let s = 0; s < this.ngroups * this.n; s++) this.kvNetwork.enable(id, s, true);
    return new ShardKvClerk(id, this.makeCtrlerClerk(ctl), this.kvNetwork, (name) => this.serverIndex.get(name), this.scheduler, this.clerkPrng.fork());
  }

  /** While `lost`, the clerk's requests reach the servers and run, but every reply is lost: it retries. */
  loseReplies(clerk: ShardKvClerk, lost: boolean): void {
    this.kvNetwork.loseReplies(clerk.id, lost);
  }

  async get(clerk: ShardKvClerk, key: string, client = -1): Promise<string> {
    const callTime = this.scheduler.stampMs();
    const value = await clerk.get(key);
    this.log(client, { kind: 'get', key }, value, callTime);
    return value;
  }

  async put(clerk: ShardKvClerk, key: string, value: string, client = -1): Promise<void> {
    const callTime = this.scheduler.stampMs();
    await clerk.put(key, value);
    this.log(client, { kind: 'put', key, value }, '', callTime);
  }

  async append(clerk: ShardKvClerk, key: string, value: string, client = -1): Promise<void> {
    const callTime = this.scheduler.stampMs();
    await clerk.append(key, value);
    this.log(client, { kind: 'append', key, value }, '', callTime);
  }

  /** check(t, ck, key, value): a Get that must return `value`. */
  async check(clerk: ShardKvClerk, key: string, value: string): Promise<void> {
    const got = await this.get(clerk, key);
    if (got !== value) throw new TestFailure(`Get(${key}): expected:\n${value}\nreceived:\n${got}`);
  }

  private log(client: number, input: KvInput, output: KvOutput, callTime: number): void {
    this.history.push({ clientId: client, input, output, callTime, returnTime: this.scheduler.stampMs() });
  }

  checkLinearizable(nowMs: () => number, budgetMs = shardKvCheckTimeoutMs): CheckResult<KvValue, KvInput, KvOutput> {
    return check(kvModel(), this.history, { timeBudgetMs: budgetMs, nowMs });
  }

  // ---- Observations -------------------------------------------------------------------------

  /** checklogs(): Raft state <= 8 × maxraftstate with snapshots; no snapshot without. */
  checkLogs(): void {
    for (let gi = 0; gi < this.ngroups; gi++) {
      for (let i = 0; i < this.n; i++) {
        const storage = this.groups[gi]![i]!.storage;
        const raft = storage.sizeBytes();
        const snap = storage.snapshotBytes();
        if (this.maxraftstate >= 0 && raft > 8 * this.maxraftstate) {
          throw new TestFailure(`persister.RaftStateSize() ${raft}, but maxraftstate ${this.maxraftstate} (${this.serverName(gi, i)})`);
        }
        if (this.maxraftstate < 0 && snap > 0) throw new TestFailure(`maxraftstate is -1, but snapshot is non-empty (${this.serverName(gi, i)}: ${snap} B)`);
      }
    }
  }

  /** Raft state plus snapshot bytes over every group server (TestChallenge1Delete's total). */
  totalStateBytes(): number {
    let total = 0;
    for (const group of this.groups) for (const server of group) total += server.storage.sizeBytes() + server.storage.snapshotBytes();
    return total;
  }

  /** The leader of group gi (highest term among those that think they lead); -1 if none. */
  leader(gi: number): number {
    return highestTermLeader(this.groups[gi]!.map((server) => server.service?.replica.raft.status()));
  }

  /** Group gi's leader's service, or its first live server's. */
  machine(gi: number): ShardKvService | undefined {
    const leader = this.leader(gi);
    const live = this.groups[gi]!.find((server) => server.service !== undefined)?.service;
    return leader < 0 ? live : (this.groups[gi]![leader]!.service ?? live);
  }

  checkErrors(): void {
    if (this.failure !== undefined) throw this.failure;
    for (const [k, checker] of this.ctrlerCheckers.entries()) {
      const violation = checker.firstViolation();
      if (violation !== undefined) throw new TestFailure(`safety violation in controller service ${k}: ${violation}`);
    }
    for (const [gi, checker] of this.groupCheckers.entries()) {
      const violation = checker.firstViolation();
      if (violation !== undefined) throw new TestFailure(`safety violation in group ${this.gid(gi)}: ${violation}`);
    }
  }

  // ---- Background tasks and the end of a run (as KvCluster) ---------------------------------

  go<T>(task: Promise<T>): Promise<T> {
    task.catch((error: unknown) => this.fail(error instanceof Error ? error : new TestFailure(String(error))));
    return task;
  }

  private fail(error: Error): void {
    if (this.closed || this.failure !== undefined) return;
    this.failure = error;
    this.scheduler.failAt(this.scheduler.nowMs, () => error);
  }

  cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    for (const service of this.ctrlers) service?.stop();
    for (let i = 0; i < ctrlerServicesMax * ctrlerServerCount; i++) this.ctrlNetwork.deleteServer(i);
    for (let gi = 0; gi < this.ngroups; gi++) {
      for (let i = 0; i < this.n; i++) {
        this.groups[gi]![i]!.service?.stop();
        this.groups[gi]![i]!.service = undefined;
        this.kvNetwork.deleteServer(gi * this.n + i);
        this.peerNetwork.deleteServer(gi * this.n + i);
      }
    }
    this.scheduler.failAt(this.scheduler.nowMs, () => new TestFailure('the cluster was cleaned up: the test is over'));
  }

  describe(): string {
    const lines = [`t=${this.nowMs()}ms`];
    for (let gi = 0; gi < this.ngroups; gi++) {
      for (let i = 0; i < this.n; i++) {
        const server = this.groups[gi]![i]!;
        const service = server.service;
        if (service === undefined) {
          lines.push(`  ${this.serverName(gi, i)}: down`);
          continue;
        }
        const s = service.replica.raft.status();
        lines.push(
          `  ${this.serverName(gi, i)}: ${s.role} term=${s.term} applied=${s.applied} raft=${server.storage.sizeBytes()}B snap=${server.storage.snapshotBytes()}B ${service.machine.describe()}`,
        );
      }
    }
    return lines.join('\n');
  }
}

const blankCtrlerArgs: ShardClerkArgs = { op: 'query', groups: [], gids: [], shard: 0, gid: 0, num: -1, client: 0, seq: 0, ack: 0 };

/** The controller's RPC handler (as shardctrler-cluster.ts's, for the calls this tester makes). */
async function ctrlerHandle(service: ShardCtrlerService, args: ShardClerkArgs): Promise<ShardCtrlerResponse | string> {
  const session = args.client === 0 ? {} : { session: { client: args.client, seq: args.seq, ack: args.ack } };
  switch (args.op) {
    case 'query':
      return service.handle({ kind: 'query', num: args.num });
    case 'join': {
      const flat: unknown = args.groups;
      if (!Array.isArray(flat) || flat.length % 2 !== 0) return 'join: groups are not [gid, servers] pairs';
      const groups: Array<[Gid, string[]]> = [];
      for (let i = 0; i < flat.length; i += 2) {
        const servers: unknown = flat[i + 1];
        if (typeof flat[i] !== 'number' || !Array.isArray(servers)) return 'join: groups are not [gid, servers] pairs';
        groups.push([flat[i] as number, servers as string[]]);
      }
      return service.handle({ kind: 'command', op: { kind: 'join', groups }, ...session });
    }
    case 'leave':
      return Array.isArray(args.gids) ? service.handle({ kind: 'command', op: { kind: 'leave', gids: args.gids }, ...session }) : 'leave: gids are not a list';
    case 'move':
      return service.handle({ kind: 'command', op: { kind: 'move', shard: args.shard, gid: args.gid }, ...session });
    default:
      return `unknown call ${String(args.op)}`;
  }
}

function ctrlerReply(response: ShardCtrlerResponse | string): ShardClerkReply {
  if (typeof response === 'string') return { err: 'ErrFatal', config: null, num: 0, message: response };
  if (!response.ok) return { err: response.code === 'not-leader' ? 'ErrWrongLeader' : response.code === 'invalid' ? 'ErrFatal' : 'ErrRetry', config: null, num: 0, message: response.message };
  if (response.kind === 'query') return { err: 'OK', config: configToArray(response.config), num: response.config.num, message: '' };
  const result = response.result;
  if (result.kind === 'error') return { err: 'ErrFatal', config: null, num: 0, message: `${result.code}: ${result.message}` };
  return { err: 'OK', config: null, num: result.num, message: '' };
}
