// Randomized simulation of a whole Raft cluster (DESIGN.md §6, STYLE.md 17). A seed fixes
// everything: the cluster size, the fault settings, the nemesis schedule, client timing and
// every message delay. Two phases:
//   fault phase   clients propose while a nemesis crashes and restarts nodes, cuts links
//                 (both ways or one way), partitions the cluster, and the network drops,
//                 delays, duplicates and reorders messages
//   healed phase  everything restarts and reconnects on a reliable network; the cluster
//                 must then commit a new entry on every node, and every value a client saw
//                 committed must still be in the log
// The safety checker watches every Ready of every node throughout.

import { Prng } from '../stdx/prng.js';
import type { YieldToHost } from '../sim/scheduler.js';
import type { RaftConfig } from '../raft/config.js';
import { RaftCluster, TestFailure } from './raft-cluster.js';

/** Virtual length of the fault phase. Leader hunting needs longer: each round waits out an election. */
export const faultPhaseMsDefault = 8000;
export const huntingPhaseMs = 30_000;

export interface SimOptions {
  readonly seed: number;
  readonly yieldToHost: YieldToHost;
  readonly unsafe?: RaftConfig['unsafe'];
  readonly faultPhaseMs?: number;
  /** Fixes some of the fault settings instead of drawing them from the seed. */
  readonly settings?: Partial<FaultSettings>;
}

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failure: string | undefined;
  /** Equal for equal runs: the network's delivery hash combined with the event count. */
  readonly traceHash: string;
  readonly settings: string;
  readonly committed: number;
  readonly virtualMs: number;
}

export interface FaultSettings {
  servers: number;
  unreliable: boolean;
  longReordering: boolean;
  duplicateProbability: number;
  /** Mean milliseconds between nemesis actions. */
  nemesisIntervalMs: number;
  crashes: boolean;
  oneWay: boolean;
  /**
   * Figure 8 style (Raft §5.4.2): crash whoever leads, every few milliseconds, restarting
   * nodes whenever fewer than a majority are up. This is the schedule that exposes a
   * leader committing an earlier term's entry by counting replicas.
   */
  leaderHunting: boolean;
}

function drawSettings(prng: Prng): FaultSettings {
  return {
    servers: prng.pick([3, 5, 5]),
    unreliable: prng.chance(0.5),
    longReordering: prng.chance(0.2),
    duplicateProbability: prng.chance(0.3) ? 0.05 + prng.nextFloat() * 0.15 : 0,
    nemesisIntervalMs: prng.pick([500, 1000, 2000]),
    crashes: prng.chance(0.7),
    oneWay: prng.chance(0.5),
    leaderHunting: prng.chance(0.25),
  };
}

function describeSettings(s: FaultSettings): string {
  const parts = [`servers=${s.servers}`, s.unreliable ? 'unreliable' : 'reliable'];
  if (s.longReordering) parts.push('long-reordering');
  if (s.duplicateProbability > 0) parts.push(`duplicates=${s.duplicateProbability.toFixed(2)}`);
  parts.push(`nemesis=${s.nemesisIntervalMs}ms`);
  if (s.crashes) parts.push('crashes');
  if (s.oneWay) parts.push('one-way-partitions');
  if (s.leaderHunting) parts.push('leader-hunting');
  return parts.join(' ');
}

export async function runSimulation(options: SimOptions): Promise<SimResult> {
  const prng = new Prng(options.seed);
  const settings = { ...drawSettings(prng.fork()), ...options.settings };
  const cluster = new RaftCluster(settings.servers, {
    seed: prng.nextUint32(),
    unreliable: settings.unreliable,
    yieldToHost: options.yieldToHost,
    ...(options.unsafe ? { unsafe: options.unsafe } : {}),
  });
  let failure: string | undefined;
  let committed = 0;
  try {
    await cluster.startAll();
    cluster.network.longReordering = settings.longReordering;
    cluster.network.duplicateProbability = settings.duplicateProbability;
    const faultPhaseMs = options.faultPhaseMs ?? (settings.leaderHunting ? huntingPhaseMs : faultPhaseMsDefault);
    const acknowledged = await faultPhase(cluster, settings, prng.fork(), faultPhaseMs);
    committed = await healedPhase(cluster, acknowledged);
  } catch (error) {
    if (!(error instanceof TestFailure) && !(error instanceof Error && error.name === 'AssertionFailure')) throw error;
    failure = error.message;
  } finally {
    for (let i = 0; i < cluster.n; i++) cluster.crash1(i);
  }
  failure ??= cluster.checker.firstViolation();
  const hash = (cluster.network.traceHash ^ Math.imul(cluster.scheduler.eventCount, 0x9e3779b1)) >>> 0;
  return {
    seed: options.seed,
    ok: failure === undefined,
    failure,
    traceHash: hash.toString(16).padStart(8, '0'),
    settings: describeSettings(settings),
    committed,
    virtualMs: cluster.scheduler.nowMs,
  };
}

/** Runs clients and the nemesis together; returns the values clients saw committed. */
async function faultPhase(cluster: RaftCluster, settings: FaultSettings, prng: Prng, durationMs: number): Promise<number[]> {
  const end = cluster.scheduler.nowMs + durationMs;
  const acknowledged: number[] = [];
  const client = async (): Promise<void> => {
    while (cluster.scheduler.nowMs < end) {
      const value = cluster.randomCommand();
      let index = -1;
      for (let i = 0; i < cluster.n; i++) {
        const result = cluster.start(i, value);
        if (result.isLeader) index = result.index;
      }
      await cluster.sleep(50 + prng.int(150));
      if (index > 0 && cluster.nCommitted(index).command === value) acknowledged.push(value);
      cluster.checkErrors();
    }
  };
  const nemesis = async (): Promise<void> => {
    while (cluster.scheduler.nowMs < end) {
      await cluster.sleep(prng.int(2 * settings.nemesisIntervalMs));
      await nemesisStep(cluster, settings, prng);
      cluster.checkErrors();
    }
  };
  const hunter = async (): Promise<void> => {
    while (cluster.scheduler.nowMs < end) {
      await huntLeader(cluster, prng);
      cluster.checkErrors();
    }
  };
  // The hunter proposes on its own: it needs quiet spells in which a new leader holds only
  // entries of earlier terms.
  const tasks = settings.leaderHunting ? [hunter()] : [client(), client(), nemesis()];
  await Promise.all(tasks);
  return acknowledged;
}

async function nemesisStep(cluster: RaftCluster, settings: FaultSettings, prng: Prng): Promise<void> {
  const i = prng.int(cluster.n);
  const action = prng.int(6);
  switch (action) {
    case 0:
      if (settings.crashes && cluster.nodes[i] !== undefined) cluster.crash1(i);
      return;
    case 1:
      if (cluster.nodes[i] === undefined) await cluster.start1(i);
      cluster.connect(i);
      return;
    case 2:
      cluster.disconnect(i);
      return;
    case 3:
      if (settings.oneWay) {
        const j = prng.int(cluster.n);
        if (j !== i) cluster.network.setBlocked(cluster.nodeId(i), cluster.nodeId(j), true);
      }
      return;
    case 4:
      cluster.network.clearBlocks();
      for (let k = 0; k < cluster.n; k++) if (cluster.nodes[k] !== undefined) cluster.connect(k);
      return;
    default:
      partition(cluster, prng);
      return;
  }
}

/** One Figure 8 round: propose everywhere, wait briefly, crash the leader, keep a majority up. */
async function huntLeader(cluster: RaftCluster, prng: Prng): Promise<void> {
  let leader = -1;
  const propose = prng.chance(0.5);
  for (let i = 0; i < cluster.n; i++) {
    if (cluster.nodes[i] === undefined) continue;
    if (propose ? cluster.start(i, cluster.randomCommand()).isLeader : cluster.getState(i).isLeader) leader = i;
  }
  // Often no time at all: the leader dies with its new entries unsent, leaving the
  // divergent logs Figure 8 is made of.
  await cluster.sleep(prng.chance(0.3) ? 0 : prng.chance(0.1) ? prng.int(500) : prng.int(13));
  if (leader !== -1 && cluster.nodes[leader] !== undefined) cluster.crash1(leader);
  const up = cluster.nodes.filter((node) => node !== undefined).length;
  if (up < Math.floor(cluster.n / 2) + 1) {
    const i = prng.int(cluster.n);
    if (cluster.nodes[i] === undefined) {
      await cluster.start1(i);
      cluster.connect(i);
    }
  }
}

/** Splits the cluster in two random halves with every cross link blocked. */
function partition(cluster: RaftCluster, prng: Prng): void {
  cluster.network.clearBlocks();
  const side = Array.from({ length: cluster.n }, () => prng.chance(0.5));
  for (let a = 0; a < cluster.n; a++) {
    for (let b = 0; b < cluster.n; b++) {
      if (side[a] !== side[b]) cluster.network.setBlocked(cluster.nodeId(a), cluster.nodeId(b), true);
    }
  }
}

async function healedPhase(cluster: RaftCluster, acknowledged: readonly number[]): Promise<number> {
  cluster.network.clearBlocks();
  cluster.network.reliable = true;
  cluster.network.longReordering = false;
  cluster.network.duplicateProbability = 0;
  for (let i = 0; i < cluster.n; i++) {
    if (cluster.nodes[i] === undefined) await cluster.start1(i);
    cluster.connect(i);
  }
  // Liveness once healed: a new entry commits on every node, within one()'s 10 s.
  const lastIndex = await cluster.one(cluster.randomCommand(), cluster.n, true);
  const log = new Set<unknown>();
  for (let index = 1; index <= lastIndex; index++) log.add(cluster.nCommitted(index).command);
  for (const value of acknowledged) {
    if (!log.has(value)) throw new TestFailure(`acknowledged value ${value} is missing from the final log`);
  }
  cluster.checkErrors();
  return lastIndex;
}
