// CRAQ chains on the simulator: the real CraqNode and CraqHost (and, with `durable`, the
// real WAL on a simulated disk) over src/sim's scheduler and network, with a simulated
// coordination service standing in for ZooKeeper:
//
//   - nodes heartbeat the coordinator every heartbeatMs; each answer carries the chain's
//     configuration and renews the node's lease to (send time + sessionTimeoutMs / 2);
//   - a node not heard from for sessionTimeoutMs is dropped from the chain (its session
//     expired), and a new node is appended at the tail; each change is a new epoch.
//
// Clients are simulated too: each operation takes 1–3 ms each way, writes go to the head
// of the configuration the client last learned, reads to a random node it knows of
// (including, in the zombie fault, a node the coordinator no longer lists). Every
// operation is stamped with Scheduler.stampMs() for the linearizability checker.

import { check, kvModel, type KvInput, type KvOutput, type Operation } from '../../src/lincheck/index.js';
import { CraqHost, memoryStorage, type CraqStorage } from '../../src/craq/host.js';
import { CraqNode, type RecoveredState } from '../../src/craq/node.js';
import { CraqWal } from '../../src/craq/wal.js';
import { decodePeerMessage } from '../../src/craq/codec.js';
import type { ChainConfig, ClientReply, ClientRequest, PeerMessage, ReadMode } from '../../src/craq/types.js';
import { Scheduler, type YieldToHost } from '../../src/sim/scheduler.js';
import { SimNetwork } from '../../src/sim/network.js';
import { SimDisk } from '../../src/sim/disk.js';
import { Prng } from '../../src/stdx/prng.js';
import { nodeId, type NodeId } from '../../src/stdx/types.js';

const COORDINATOR = nodeId(0);

type SimMessage =
  | { readonly kind: 'peer'; readonly message: PeerMessage }
  | { readonly kind: 'heartbeat'; readonly from: NodeId; readonly sentMs: number }
  | { readonly kind: 'config'; readonly config: ChainConfig; readonly sentMs: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const codec = {
  encode: (message: SimMessage) => encoder.encode(JSON.stringify(message)),
  decode: (bytes: Uint8Array): SimMessage => {
    const value = JSON.parse(decoder.decode(bytes)) as SimMessage;
    return value.kind === 'peer' ? { kind: 'peer', message: decodePeerMessage(value.message) } : value;
  },
  // Acks and query replies are the "responses" that long reordering delays.
  isRequest: (message: SimMessage) => !(message.kind === 'peer' && (message.message.type === 'ack' || message.message.type === 'query-reply')),
};

export interface ChainSimOptions {
  readonly seed: number;
  readonly yieldToHost: YieldToHost;
  /** Nodes in the chain at the start (3–5). */
  readonly chainLength: number;
  readonly keys: number;
  readonly clients: number;
  /** Virtual milliseconds of the fault phase; the healed phase follows. */
  readonly faultMs: number;
  readonly healedMs: number;
  /** Fraction of client operations that are writes. */
  readonly writeFraction: number;
  readonly unreliable: boolean;
  readonly longReordering: boolean;
  readonly duplicates: boolean;
  /** Crash (and later restart) nodes during the fault phase. */
  readonly crashes: boolean;
  /** Cut a node off from the coordinator only, so it lives on as a zombie. */
  readonly zombies: boolean;
  /** Restarted nodes recover from a WAL on a simulated disk (else they start empty). */
  readonly durable: boolean;
  readonly plantedDirtyReadBug: boolean;
  /** Real milliseconds the checker may spend (each seed). */
  readonly checkBudgetMs: number;
  readonly nowMs: () => number;
}

export const chainSimDefaults: Omit<ChainSimOptions, 'seed' | 'yieldToHost' | 'nowMs'> = {
  chainLength: 3,
  keys: 3,
  clients: 6,
  faultMs: 4_000,
  healedMs: 2_000,
  writeFraction: 0.4,
  unreliable: true,
  longReordering: false,
  duplicates: true,
  crashes: true,
  zombies: false,
  durable: true,
  plantedDirtyReadBug: false,
  checkBudgetMs: 20_000,
};

export interface ChainSimStats {
  operations: number;
  writesOk: number;
  readsOk: number;
  dirtyReads: number;
  unknown: number;
  crashes: number;
  restarts: number;
  zombies: number;
  epochs: number;
  boundedReads: number;
}

export interface ChainSimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failure: string | undefined;
  readonly verdict: 'ok' | 'illegal' | 'unknown';
  readonly stats: ChainSimStats;
  readonly traceHash: number;
  readonly settings: string;
}

const TICK_MS = 10;
const HEARTBEAT_MS = 20;
const SESSION_TIMEOUT_MS = 200;
const CLIENT_TIMEOUT_MS = 1_000;

interface SimNode {
  readonly id: NodeId;
  readonly slot: number;
  readonly host: CraqHost;
  readonly storage: CraqStorage;
  alive: boolean;
  heartbeatTimer: { cancel(): void } | undefined;
}

class Coordinator {
  config: ChainConfig = { epoch: 0, members: [] };
  private readonly lastHeardMs = new Map<NodeId, number>();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly network: SimNetwork<SimMessage>,
    private readonly onEpoch: () => void,
  ) {
    network.attach(COORDINATOR, (message) => this.receive(message));
    network.connect(COORDINATOR);
    this.sweep();
  }

  private receive(message: SimMessage): void {
    if (message.kind !== 'heartbeat') return;
    this.lastHeardMs.set(message.from, this.scheduler.nowMs);
    if (!this.config.members.includes(message.from) && !this.expired.has(message.from)) {
      // A new session: append at the tail (a node's id is its session; an expired one never comes back).
      this.change([...this.config.members, message.from]);
    }
    if (this.config.members.includes(message.from)) this.network.send(COORDINATOR, message.from, { kind: 'config', config: this.config, sentMs: message.sentMs });
  }

  private readonly expired = new Set<NodeId>();

  private sweep(): void {
    const now = this.scheduler.nowMs;
    const alive = this.config.members.filter((id) => now - (this.lastHeardMs.get(id) ?? now) <= SESSION_TIMEOUT_MS);
    for (const id of this.config.members) if (!alive.includes(id)) this.expired.add(id);
    if (alive.length !== this.config.members.length) this.change(alive);
    this.scheduler.after(5, () => this.sweep());
  }

  private change(members: NodeId[]): void {
    this.config = { epoch: this.config.epoch + 1, members };
    this.onEpoch();
  }
}

export async function runChainSimulation(partial: Partial<ChainSimOptions> & Pick<ChainSimOptions, 'seed' | 'yieldToHost' | 'nowMs'>): Promise<ChainSimResult> {
  const options: ChainSimOptions = { ...chainSimDefaults, ...partial };
  const sim = new ChainSim(options);
  return sim.run();
}

class ChainSim {
  readonly scheduler: Scheduler;
  readonly prng: Prng;
  readonly network: SimNetwork<SimMessage>;
  readonly coordinator: Coordinator;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly disks = new Map<number, SimDisk>();
  readonly history: Operation<KvInput, KvOutput>[] = [];
  readonly stats: ChainSimStats = { operations: 0, writesOk: 0, readsOk: 0, dirtyReads: 0, unknown: 0, crashes: 0, restarts: 0, zombies: 0, epochs: 0, boundedReads: 0 };
  private nextNodeId = 1;
  private nextValue = 1;
  private faultsOn = true;
  private failure: string | undefined;

  constructor(readonly options: ChainSimOptions) {
    this.scheduler = new Scheduler(options.yieldToHost);
    this.prng = new Prng(options.seed);
    this.network = new SimNetwork<SimMessage>(this.scheduler, this.prng.fork(), codec);
    this.network.sentSurvivesCrash = true;
    this.coordinator = new Coordinator(this.scheduler, this.network, () => this.stats.epochs++);
  }

  describeSettings(): string {
    const o = this.options;
    return `chain ${o.chainLength}, ${o.unreliable ? 'unreliable' : 'reliable'}${o.longReordering ? ', long reordering' : ''}${o.duplicates ? ', duplicates' : ''}${o.crashes ? ', crashes' : ''}${o.zombies ? ', zombies' : ''}${o.durable ? ', WAL' : ''}${o.plantedDirtyReadBug ? ', PLANTED BUG' : ''}`;
  }

  async run(): Promise<ChainSimResult> {
    for (let slot = 0; slot < this.options.chainLength; slot++) await this.startNode(slot);
    const clients = Array.from({ length: this.options.clients }, (_, k) => this.client(k));
    const nemesis = this.nemesis();
    await this.scheduler.sleep(this.options.faultMs);
    this.heal();
    await this.scheduler.sleep(this.options.healedMs);
    this.faultsOn = false;
    await this.scheduler.waitOn(Promise.all([...clients, nemesis]));
    await this.finalReads();
    for (const node of this.nodes.values()) {
      const error = node.host.failed();
      if (error !== undefined && this.failure === undefined) this.failure = `node ${node.id} failed: ${error instanceof Error ? error.stack : String(error)}`;
    }
    for (const node of this.nodes.values()) if (node.alive) this.stopNode(node);
    return this.verdict();
  }

  private verdict(): ChainSimResult {
    const result = check(kvModel(), this.history, { timeBudgetMs: this.options.checkBudgetMs, nowMs: this.options.nowMs });
    let failure = this.failure;
    if (failure === undefined && result.verdict === 'illegal') {
      const partition = result.partitions[result.failingPartition!]!;
      failure = `history of key ${partition.key} is not linearizable (${partition.operations.length} operations)`;
    }
    if (failure === undefined && this.stats.writesOk === 0) failure = 'no write succeeded';
    return {
      seed: this.options.seed,
      ok: failure === undefined,
      failure,
      verdict: result.verdict,
      stats: this.stats,
      traceHash: this.network.traceHash,
      settings: this.describeSettings(),
    };
  }

  // ---- Nodes -------------------------------------------------------------------------

  private async startNode(slot: number): Promise<void> {
    const id = nodeId(this.nextNodeId++);
    let storage: CraqStorage = memoryStorage;
    let recovered: RecoveredState | undefined;
    if (this.options.durable) {
      let disk = this.disks.get(slot);
      if (disk === undefined) {
        disk = new SimDisk(this.scheduler, this.prng.fork());
        this.disks.set(slot, disk);
      }
      const opened = await this.scheduler.waitOn(CraqWal.open(disk, `node-${slot}`, { snapshotEveryWrites: 200 }));
      storage = opened.storage;
      recovered = opened.recovered;
    }
    const core = new CraqNode(id, { plantedDirtyReadBug: this.options.plantedDirtyReadBug }, recovered);
    const host = new CraqHost(core, {
      clock: this.scheduler.clock(),
      storage,
      tickMs: TICK_MS,
      transport: { send: (to, message) => this.network.send(id, to, { kind: 'peer', message }) },
    });
    const node: SimNode = { id, slot, host, storage, alive: true, heartbeatTimer: undefined };
    this.nodes.set(id, node);
    this.network.attach(id, (message) => {
      if (message.kind === 'peer') host.receive(message.message);
      else if (message.kind === 'config') {
        host.setLease(message.sentMs + SESSION_TIMEOUT_MS / 2);
        host.setConfig(message.config);
      }
    });
    this.network.connect(id);
    host.start();
    this.heartbeat(node);
  }

  private heartbeat(node: SimNode): void {
    if (!node.alive) return;
    this.network.send(node.id, COORDINATOR, { kind: 'heartbeat', from: node.id, sentMs: this.scheduler.nowMs });
    node.heartbeatTimer = this.scheduler.after(HEARTBEAT_MS, () => this.heartbeat(node));
  }

  private stopNode(node: SimNode): void {
    node.alive = false;
    node.heartbeatTimer?.cancel();
    node.host.stop();
    this.network.detach(node.id);
  }

  private liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((node) => node.alive).sort((a, b) => a.id - b.id);
  }

  // ---- Faults ------------------------------------------------------------------------

  private async nemesis(): Promise<void> {
    this.network.reliable = !this.options.unreliable;
    this.network.longReordering = this.options.longReordering;
    this.network.duplicateProbability = this.options.duplicates ? 0.05 : 0;
    const deadline = this.options.faultMs;
    while (this.scheduler.nowMs < deadline) {
      await this.scheduler.sleep(300 + this.prng.int(500));
      if (this.scheduler.nowMs >= deadline) break;
      const live = this.liveNodes().filter((node) => this.coordinator.config.members.includes(node.id));
      if (this.options.crashes && live.length >= 2 && this.prng.chance(0.6)) await this.crashAndRestart(live);
      else if (this.options.zombies && live.length >= 3) await this.zombie(live);
    }
  }

  /** Crashes the head, a middle node or the tail, and restarts it (a new session) later. */
  private async crashAndRestart(live: SimNode[]): Promise<void> {
    const members = this.coordinator.config.members;
    const choice = this.prng.int(3);
    const targetId = choice === 0 ? members[0] : choice === 1 ? members[Math.floor(members.length / 2)] : members.at(-1);
    const node = live.find((candidate) => candidate.id === targetId) ?? this.prng.pick(live);
    this.stopNode(node);
    this.disks.get(node.slot)?.crash();
    this.stats.crashes++;
    await this.scheduler.sleep(SESSION_TIMEOUT_MS + this.prng.int(400));
    if (this.liveNodes().length < 5) {
      await this.startNode(node.slot);
      this.stats.restarts++;
    }
  }

  /** Cuts a node off from the coordinator until it is dropped, then lets it back. */
  private async zombie(live: SimNode[]): Promise<void> {
    const node = this.prng.pick(live);
    this.network.setBlocked(node.id, COORDINATOR, true);
    this.network.setBlocked(COORDINATOR, node.id, true);
    this.stats.zombies++;
    await this.scheduler.sleep(SESSION_TIMEOUT_MS * 2 + this.prng.int(300));
    this.network.setBlocked(node.id, COORDINATOR, false);
    this.network.setBlocked(COORDINATOR, node.id, false);
    // Its session is gone: like a ZooKeeper client after expiry, it must start afresh.
    this.stopNode(node);
    this.disks.get(node.slot)?.crash();
    if (this.liveNodes().length < 5) await this.startNode(node.slot);
  }

  private heal(): void {
    this.network.reliable = true;
    this.network.longReordering = false;
    this.network.duplicateProbability = 0;
    this.network.clearBlocks();
  }

  // ---- Clients -----------------------------------------------------------------------

  private async client(clientId: number): Promise<void> {
    const prng = this.prng.fork();
    while (this.faultsOn) {
      const key = `k${prng.int(this.options.keys)}`;
      if (prng.chance(this.options.writeFraction)) await this.clientWrite(clientId, prng, key);
      else if (prng.chance(0.1)) await this.clientBoundedRead(prng, key);
      else await this.clientRead(clientId, prng, key);
      await this.scheduler.sleep(prng.int(20));
    }
  }

  private async call(prng: Prng, node: SimNode | undefined, request: ClientRequest): Promise<ClientReply | undefined> {
    await this.scheduler.sleep(1 + prng.int(3));
    if (node === undefined || !node.alive) return { type: 'error', code: 'not-serving', message: 'no such node' };
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = this.scheduler.after(CLIENT_TIMEOUT_MS, () => resolve(undefined));
    });
    const reply = await Promise.race([node.host.request(request), timeout]);
    timer?.cancel();
    if (reply === undefined) return undefined;
    await this.scheduler.sleep(1 + prng.int(3));
    return reply;
  }

  private async clientWrite(clientId: number, prng: Prng, key: string): Promise<void> {
    const value = `v${this.nextValue++}`;
    const head = this.nodes.get(this.coordinator.config.members[0] ?? nodeId(-1));
    const callTime = this.scheduler.stampMs();
    const reply = await this.call(prng, head, { type: 'write', key, value });
    const returnTime = this.scheduler.stampMs();
    this.stats.operations++;
    if (reply?.type === 'write') {
      this.stats.writesOk++;
      this.history.push({ clientId, input: { kind: 'put', key, value }, output: '', callTime, returnTime });
    } else if (reply === undefined || (reply.type === 'error' && reply.code === 'unknown')) {
      this.stats.unknown++;
      this.history.push({ clientId, input: { kind: 'put', key, value }, output: undefined, callTime, returnTime: undefined });
    }
    // Any other refusal is certain to have had no effect: not part of the history.
  }

  /** Reads from a random node: usually one in the chain, sometimes any live one (a zombie). */
  private pickReadNode(prng: Prng): SimNode | undefined {
    const members = this.coordinator.config.members;
    if (members.length === 0) return undefined;
    if (prng.chance(0.2)) {
      const live = this.liveNodes();
      return live.length === 0 ? undefined : prng.pick(live);
    }
    return this.nodes.get(prng.pick(members));
  }

  private async clientRead(clientId: number, prng: Prng, key: string, node = this.pickReadNode(prng)): Promise<boolean> {
    const callTime = this.scheduler.stampMs();
    const reply = await this.call(prng, node, { type: 'read', key, mode: { kind: 'strong' } });
    const returnTime = this.scheduler.stampMs();
    this.stats.operations++;
    if (reply?.type !== 'read') return false;
    this.stats.readsOk++;
    if (!reply.clean) this.stats.dirtyReads++;
    this.history.push({ clientId, input: { kind: 'get', key }, output: reply.value ?? '', callTime, returnTime });
    return true;
  }

  /**
   * A bounded read must never be more than versionsMax versions ahead of what is
   * committed: checked against the newest version any node knows to be committed.
   */
  private async clientBoundedRead(prng: Prng, key: string): Promise<void> {
    const mode: ReadMode = { kind: 'bounded', versionsMax: prng.int(3) };
    const node = this.pickReadNode(prng);
    const reply = await this.call(prng, node, { type: 'read', key, mode });
    if (reply?.type !== 'read' || mode.kind !== 'bounded') return;
    this.stats.boundedReads++;
    const committed = Math.max(0, ...[...this.nodes.values()].map((other) => other.host.node.describeKey(key).clean));
    if (reply.version > committed + mode.versionsMax && this.failure === undefined) {
      this.failure = `a bounded read (at most ${mode.versionsMax} versions ahead) of ${key} returned version ${reply.version}, but only ${committed} is committed`;
    }
  }

  /** After the healed phase, every key is read from every node in the chain. */
  private async finalReads(): Promise<void> {
    const prng = this.prng.fork();
    const ok = await this.scheduler.waitFor(() => this.liveNodes().every((node) => node.host.node.serving()), 5_000);
    if (!ok) {
      this.failure ??= `the chain did not recover after the faults: ${JSON.stringify(this.liveNodes().map((node) => node.host.node.status()))}`;
      return;
    }
    for (const id of this.coordinator.config.members) {
      for (let k = 0; k < this.options.keys; k++) {
        const done = await this.clientRead(1000, prng, `k${k}`, this.nodes.get(id));
        if (!done) this.failure ??= `node ${id} could not answer a read of k${k} after the faults healed`;
      }
    }
  }
}
