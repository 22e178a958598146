// Randomized simulation of a whole Raft cluster (DESIGN.md §6, STYLE.md 17). A seed fixes
// everything: the cluster size, the fault settings, the nemesis schedule, client timing,
// membership changes, snapshot points and every message delay. Two phases:
//   fault phase   clients write and read while a nemesis crashes and restarts nodes, cuts
//                 links (both ways or one way), partitions the cluster, and the network
//                 drops, delays, duplicates and reorders messages; some seeds also pause
//                 servers (SIGSTOP-like, mostly the leader), crash a voter just before it
//                 answers a second candidate of a term, run without check-quorum, or use
//                 short election timeouts (split votes); an operator grows, shrinks or
//                 replaces members one server at a time; nodes snapshot
//   healed phase  everything restarts and reconnects on a reliable network; the cluster
//                 must then commit a new entry on every voter, and every value a client saw
//                 committed must still be in the log
// The safety checker watches every Ready of every node throughout, and the clients' reads
// and writes are checked for linearizability against a register at the end.

import { Prng } from '../stdx/prng.js';
import type { NodeId } from '../stdx/types.js';
import type { YieldToHost } from '../sim/scheduler.js';
import type { RaftConfig } from '../raft/config.js';
import { check, registerModel, type Operation, type RegisterInput, type RegisterOutput } from '../lincheck/index.js';
import { RaftCluster, TestFailure, electionTimeoutMs } from './raft-cluster.js';
import { type Recording, SimRecorder } from './sim-recorder.js';

/** Virtual length of the fault phase. Leader hunting needs longer: each round waits out an election. */
export const faultPhaseMsDefault = 8000;
export const huntingPhaseMs = 30_000;
/** Server slots: room to grow three voters to five and still replace one. */
const slotCount = 6;
const readTimeoutMs = 1000;

export interface SimOptions {
  readonly seed: number;
  readonly yieldToHost: YieldToHost;
  readonly unsafe?: RaftConfig['unsafe'];
  readonly faultPhaseMs?: number;
  /** Fixes some of the fault settings instead of drawing them from the seed. */
  readonly settings?: Partial<FaultSettings>;
  /** Record the run for a replay (`flotilla sim --seed N --html FILE`). */
  readonly record?: boolean;
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
  readonly reads: number;
  /** Pauses that ran to their end (0 unless the pause fault is on). */
  readonly pauses: number;
  /** The run step by step, if options.record. */
  readonly recording?: Recording;
}

export interface FaultSettings {
  /** Voters at the start; the other slots start empty, outside the configuration. */
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
  /** Snapshot after every this many entries (0: never). */
  snapshotEvery: number;
  snapshotChunkBytes: number;
  /** Grow, shrink and replace members during the fault phase. */
  membership: boolean;
  readMode: 'safe' | 'lease';
  /** Leaders step down without a quorum's recent contact (always on with lease reads). */
  checkQuorum: boolean;
  /** Saves take up to this many virtual ms (0: instant): crashes then hit writes in flight. */
  saveDelayMsMax: number;
  /**
   * The nemesis also pauses servers (mostly the leader) for 0.3–3 s, as SIGSTOP or a
   * long GC would: a leader that wakes up deposed must not serve anything stale.
   */
  pauses: boolean;
  /**
   * A voter asked for its vote by a second candidate of the term it already voted in
   * crashes and restarts just before it answers: its vote then exists only on disk.
   */
  voteCrashes: boolean;
  /**
   * Ticks of the election timeout (randomized in [n, 2n)). Short ones make elections
   * frequent and split votes common: two candidates of one term, each asking every voter.
   */
  electionTicks: number;
}

function drawSettings(prng: Prng): FaultSettings {
  const readMode = prng.chance(0.3) ? 'lease' : 'safe';
  const voteCrashes = prng.chance(0.4);
  return {
    servers: prng.pick([3, 5, 5]),
    unreliable: prng.chance(0.5),
    longReordering: prng.chance(0.2),
    duplicateProbability: prng.chance(0.3) ? 0.05 + prng.nextFloat() * 0.15 : 0,
    nemesisIntervalMs: prng.pick([500, 1000, 2000]),
    crashes: prng.chance(0.7),
    oneWay: prng.chance(0.5),
    leaderHunting: prng.chance(0.25),
    snapshotEvery: prng.chance(0.6) ? prng.range(5, 30) : 0,
    snapshotChunkBytes: prng.pick([16, 64, 1024, 1 << 20]),
    membership: prng.chance(0.4),
    readMode,
    checkQuorum: readMode === 'lease' || prng.chance(0.4),
    saveDelayMsMax: prng.chance(0.5) ? prng.range(1, 8) : 0,
    pauses: prng.chance(0.6),
    voteCrashes,
    electionTicks: voteCrashes || prng.chance(0.2) ? 4 : 10,
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
  if (s.snapshotEvery > 0) parts.push(`snapshot-every=${s.snapshotEvery} chunk=${s.snapshotChunkBytes}`);
  if (s.membership) parts.push('membership');
  parts.push(`reads=${s.readMode}`);
  if (!s.checkQuorum) parts.push('no-check-quorum');
  if (s.saveDelayMsMax > 0) parts.push(`slow-saves<=${s.saveDelayMsMax}ms`);
  if (s.pauses) parts.push('pauses');
  if (s.voteCrashes) parts.push('vote-crashes');
  if (s.electionTicks !== 10) parts.push(`election-ticks=${s.electionTicks}`);
  return parts.join(' ');
}

/** The clients' history: writes and reads of one register. */
class History {
  readonly writes: { value: number; callMs: number; client: number }[] = [];
  readonly reads: Operation<RegisterInput, RegisterOutput>[] = [];
  readonly acknowledged: number[] = [];
}

export async function runSimulation(options: SimOptions): Promise<SimResult> {
  const prng = new Prng(options.seed);
  const drawn = { ...drawSettings(prng.fork()), ...options.settings };
  const settings = drawn.leaderHunting ? { ...drawn, membership: false } : drawn;
  // The recorder reads the cluster's virtual clock, which exists only once the cluster does.
  let now = () => 0;
  const recorder = options.record === true ? new SimRecorder(() => now()) : undefined;
  const cluster = new RaftCluster(slotCount, {
    ...(recorder === undefined ? {} : { recorder }),
    seed: prng.nextUint32(),
    unreliable: settings.unreliable,
    yieldToHost: options.yieldToHost,
    bootstrapVoters: settings.servers,
    snapshot: settings.snapshotEvery > 0,
    snapshotEvery: Math.max(1, settings.snapshotEvery),
    saveDelayMsMax: settings.saveDelayMsMax,
    // A no-op on election lets reads proceed at once, but it would also commit a new
    // leader's older entries legitimately, hiding the bugs that leader hunting looks for.
    raft: {
      snapshotChunkBytes: settings.snapshotChunkBytes,
      readMode: settings.readMode,
      checkQuorum: settings.checkQuorum,
      electionTicks: settings.electionTicks,
      noopOnElection: !settings.leaderHunting,
    },
    ...(options.unsafe ? { unsafe: options.unsafe } : {}),
  });
  now = () => cluster.scheduler.nowMs;
  const history = new History();
  let failure: string | undefined;
  let committed = 0;
  try {
    await cluster.startAll();
    cluster.network.longReordering = settings.longReordering;
    cluster.network.duplicateProbability = settings.duplicateProbability;
    cluster.network.sentSurvivesCrash = true;
    if (settings.voteCrashes) crashBeforeSecondVotes(cluster);
    const faultPhaseMs = options.faultPhaseMs ?? (settings.leaderHunting ? huntingPhaseMs : faultPhaseMsDefault);
    await faultPhase(cluster, settings, prng.fork(), faultPhaseMs, history);
    committed = await healedPhase(cluster, history);
    checkLinearizable(cluster, history);
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
    reads: history.reads.length,
    pauses: cluster.pausesCompleted,
    ...(recorder === undefined ? {} : { recording: recorder.finish(options.seed, slotCount, describeSettings(settings), failure) }),
  };
}

/** Runs clients, readers, the nemesis and the operator together until `durationMs` passes. */
async function faultPhase(cluster: RaftCluster, settings: FaultSettings, prng: Prng, durationMs: number, history: History): Promise<void> {
  const end = cluster.scheduler.nowMs + durationMs;
  const running = () => cluster.scheduler.nowMs < end;
  const tasks = settings.leaderHunting
    ? // The hunter proposes on its own: it needs quiet spells in which a new leader holds
      // only entries of earlier terms.
      [loop(running, () => huntLeader(cluster, settings.servers, prng))]
    : [
        loop(running, () => writeOnce(cluster, prng, history, 0)),
        loop(running, () => writeOnce(cluster, prng, history, 1)),
        loop(running, () => readOnce(cluster, prng, history, 2)),
        loop(running, () => readOnce(cluster, prng, history, 3)),
        loop(running, () => nemesisStep(cluster, settings, prng)),
        ...(settings.pauses ? [loop(running, () => pauseStep(cluster, prng))] : []),
        ...(settings.membership ? [loop(running, () => operatorStep(cluster, prng)), loop(running, () => adminRequest(cluster, prng))] : []),
      ];
  await Promise.all(tasks);
}

async function loop(running: () => boolean, body: () => Promise<void>): Promise<void> {
  while (running()) await body();
}

async function writeOnce(cluster: RaftCluster, prng: Prng, history: History, client: number): Promise<void> {
  const value = 1 + cluster.randomCommand();
  history.writes.push({ value, callMs: cluster.scheduler.stampMs(), client });
  let index = -1;
  for (let i = 0; i < cluster.n; i++) {
    const result = cluster.start(i, value);
    if (result.isLeader) index = result.index;
  }
  await cluster.sleep(50 + prng.int(150));
  if (index > 0 && cluster.nCommitted(index).command === value) history.acknowledged.push(value);
  cluster.checkErrors();
}

async function readOnce(cluster: RaftCluster, prng: Prng, history: History, client: number): Promise<void> {
  // Half the reads go where a client would send them: to a server that believes it leads
  // (a deposed one too, until it learns).
  const leaders = Array.from({ length: cluster.n }, (_, k) => k).filter((k) => cluster.nodes[k]?.status().role === 'leader');
  const i = leaders.length > 0 && prng.chance(0.5) ? prng.pick(leaders) : prng.int(cluster.n);
  const callTime = cluster.scheduler.stampMs();
  const value = await cluster.read(i, readTimeoutMs);
  if (value !== undefined) {
    history.reads.push({ clientId: client, input: { kind: 'read' }, output: value, callTime, returnTime: cluster.scheduler.stampMs() });
  }
  await cluster.sleep(prng.int(100));
}

async function nemesisStep(cluster: RaftCluster, settings: FaultSettings, prng: Prng): Promise<void> {
  await cluster.sleep(prng.int(2 * settings.nemesisIntervalMs));
  const i = prng.int(cluster.n);
  const action = prng.int(6);
  switch (action) {
    case 0:
      if (settings.crashes && cluster.nodes[i] !== undefined) cluster.crash1(i);
      break;
    case 1:
      if (cluster.nodes[i] === undefined) await cluster.start1(i);
      cluster.connect(i);
      break;
    case 2:
      cluster.disconnect(i);
      break;
    case 3:
      if (settings.oneWay) {
        const j = prng.int(cluster.n);
        if (j !== i) cluster.network.setBlocked(cluster.nodeId(i), cluster.nodeId(j), true);
      }
      break;
    case 4:
      cluster.network.clearBlocks();
      for (let k = 0; k < cluster.n; k++) if (cluster.nodes[k] !== undefined) cluster.connect(k);
      break;
    default:
      partition(cluster, prng);
      break;
  }
  cluster.checkErrors();
}

/**
 * Until the fault phase ends: a voter that already voted in a term and is asked again by
 * another candidate of that term (a split vote) crashes, restarts, and then gets the request.
 */
function crashBeforeSecondVotes(cluster: RaftCluster): void {
  cluster.interceptVoteRequest = (i, message) => {
    const core = cluster.nodes[i]?.core;
    // A follower only: crashing a candidate would end its candidacy and the split vote with it.
    if (core === undefined || core.role !== 'follower' || core.term !== message.term || core.vote === 0 || core.vote === message.from) return false;
    const connected = cluster.isConnected(i);
    void cluster.start1(i).then(() => {
      if (connected) cluster.connect(i);
      cluster.nodes[i]?.receive(message);
    });
    return true;
  };
}

/**
 * One membership step, as an operator would take it through the current leader: grow
 * (add a learner; promote it once it has caught up), shrink, or replace (grow now, shrink
 * later). Between three and five voters; one change at a time (the core refuses more).
 */
async function operatorStep(cluster: RaftCluster, prng: Prng): Promise<void> {
  await cluster.sleep(500 + prng.int(1500));
  const leader = cluster.currentLeader();
  if (leader === -1) return;
  const node = cluster.nodes[leader]!;
  const { voters, learners } = node.core.membership;
  const caughtUp = learners.find((id) => (node.core.matchOf(id) ?? 0) >= node.core.log.committed);
  if (caughtUp !== undefined) {
    node.proposeConfChange({ type: 'promote', node: caughtUp });
  } else if (learners.length > 0) {
    return; // a learner is still catching up
  } else if (voters.length < 5 && (voters.length === 3 || prng.chance(0.5))) {
    const outsiders = Array.from({ length: cluster.n }, (_, i) => cluster.nodeId(i)).filter((id) => !voters.includes(id));
    if (outsiders.length > 0) node.proposeConfChange({ type: 'add-learner', node: prng.pick(outsiders) });
  } else {
    const removable = voters.filter((id: NodeId) => id !== node.core.id || prng.chance(0.3));
    if (removable.length > 0) node.proposeConfChange({ type: 'remove', node: prng.pick(removable) });
  }
  cluster.checkErrors();
}

/** Learners further behind than this are not promoted (the admin API's rule). */
const promoteLagEntriesMax = 100;

/**
 * One membership request the way the admin API handles it (server/membership.ts), running
 * beside operatorStep so two requests often race: it arrives at a random member, which
 * forwards it once to the leader it knows; the leader refuses a promotion of a learner
 * that never answered or lags, and a leader asked to remove itself hands leadership to
 * its most caught-up voter first, which then removes it. One time in five the leader
 * crashes right after proposing, and comes back a moment later.
 */
async function adminRequest(cluster: RaftCluster, prng: Prng): Promise<void> {
  await cluster.sleep(300 + prng.int(1500));
  const entry = cluster.nodes[prng.int(cluster.n)];
  if (entry === undefined) return;
  const leaderId = entry.status().role === 'leader' ? entry.id : entry.status().leader;
  const at = leaderId - 1; // slot i holds node i + 1
  const leader = cluster.nodes[at];
  if (leaderId === 0 || leader === undefined || leader.status().role !== 'leader') return; // "no leader; try again"
  const { voters, learners } = leader.core.membership;
  const members = [...voters, ...learners];
  const outsiders = Array.from({ length: cluster.n }, (_, i) => cluster.nodeId(i)).filter((id) => !members.includes(id));
  const action = prng.int(3);
  let proposedAt = at;
  if (action === 0 && outsiders.length > 0 && voters.length + learners.length < 5) {
    leader.proposeConfChange({ type: 'add-learner', node: prng.pick(outsiders) });
  } else if (action === 1 && learners.length > 0) {
    const learner = prng.pick(learners);
    const match = leader.core.matchOf(learner) ?? 0;
    if (match === 0 || leader.status().lastIndex - match > promoteLagEntriesMax) return; // "not caught up"
    leader.proposeConfChange({ type: 'promote', node: learner });
  } else if (action === 2 && (voters.length > 3 || learners.length > 0)) {
    const target = voters.length > 3 ? prng.pick(members) : prng.pick(learners);
    if (target === leader.id) {
      const successor = voters.filter((id) => id !== leader.id).reduce((best, id) => ((leader.core.matchOf(id) ?? 0) > (leader.core.matchOf(best) ?? 0) ? id : best));
      if (!leader.transferLeadership(successor)) return;
      proposedAt = successor - 1;
      const moved = await cluster.scheduler.waitFor(() => cluster.nodes[proposedAt]?.status().role === 'leader', electionTimeoutMs);
      if (!moved) return;
    }
    // The new leader may refuse while its predecessor's entries are unapplied: ask again.
    for (let attempt = 0; attempt < 10; attempt++) {
      const result = cluster.nodes[proposedAt]?.proposeConfChange({ type: 'remove', node: target });
      if (result === undefined || result.ok || result.reason !== 'conf-change-pending') break;
      await cluster.sleep(100);
    }
  } else {
    return;
  }
  if (prng.chance(0.2) && cluster.nodes[proposedAt] !== undefined) {
    cluster.crash1(proposedAt);
    await cluster.sleep(200 + prng.int(800));
    if (cluster.nodes[proposedAt] === undefined) {
      await cluster.start1(proposedAt);
      cluster.connect(proposedAt);
    }
  }
  cluster.checkErrors();
}

/**
 * One Figure 8 round among the first `servers` slots (the voters; hunting runs without
 * membership changes): propose everywhere, wait briefly, crash the leader, keep a
 * majority up.
 */
async function huntLeader(cluster: RaftCluster, servers: number, prng: Prng): Promise<void> {
  let leader = -1;
  const propose = prng.chance(0.5);
  for (let i = 0; i < servers; i++) {
    if (cluster.nodes[i] === undefined) continue;
    if (propose ? cluster.start(i, 1 + cluster.randomCommand()).isLeader : cluster.getState(i).isLeader) leader = i;
  }
  // Often no time at all: the leader dies with its new entries unsent, leaving the
  // divergent logs Figure 8 is made of.
  await cluster.sleep(prng.chance(0.3) ? 0 : prng.chance(0.1) ? prng.int(500) : prng.int(13));
  if (leader !== -1 && cluster.nodes[leader] !== undefined) cluster.crash1(leader);
  const up = cluster.nodes.slice(0, servers).filter((node) => node !== undefined).length;
  if (up < Math.floor(servers / 2) + 1) {
    const i = prng.int(servers);
    if (cluster.nodes[i] === undefined) {
      await cluster.start1(i);
      cluster.connect(i);
    }
  }
  cluster.checkErrors();
}

/** Pauses a server, the leader most of the time, for 0.3–3 s (SIGSTOP, then SIGCONT). */
async function pauseStep(cluster: RaftCluster, prng: Prng): Promise<void> {
  await cluster.sleep(500 + prng.int(2000));
  const leader = cluster.currentLeader();
  cluster.pause(leader !== -1 && prng.chance(0.7) ? leader : prng.int(cluster.n), 300 + prng.int(2700));
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

async function healedPhase(cluster: RaftCluster, history: History): Promise<number> {
  cluster.interceptVoteRequest = undefined;
  cluster.network.clearBlocks();
  cluster.network.reliable = true;
  cluster.network.longReordering = false;
  cluster.network.duplicateProbability = 0;
  for (let i = 0; i < cluster.n; i++) {
    if (cluster.nodes[i] === undefined) await cluster.start1(i);
    cluster.connect(i);
  }
  // Liveness once healed: a leader, and a new entry applied on every voter within one()'s 10 s.
  // A membership change proposed during the fault phase may still commit now and change the
  // voters, so first commit an entry of the healed leader's term (which commits and applies
  // everything before it), then count the voters of the configuration that is left.
  await cluster.one(1 + cluster.randomCommand(), 1, true);
  await cluster.sleep(electionTimeoutMs);
  const leader = await cluster.checkOneLeader();
  const voters = cluster.nodes[leader]!.core.membership.voters.length;
  const lastIndex = await cluster.one(1 + cluster.randomCommand(), voters, true);
  const log = new Set<unknown>();
  for (let index = 1; index <= lastIndex; index++) log.add(cluster.nCommitted(index).command);
  for (const value of history.acknowledged) {
    if (!log.has(value)) throw new TestFailure(`acknowledged value ${value} is missing from the final log`);
  }
  cluster.checkErrors();
  return lastIndex;
}

/**
 * Reads and writes against a register. A write that never reached the final log never took
 * effect and is left out; one that did took effect by the time it was first applied
 * anywhere, which serves as its return time. So no operation stays pending, and the
 * check is cheap.
 */
function checkLinearizable(cluster: RaftCluster, history: History): void {
  const operations: Operation<RegisterInput, RegisterOutput>[] = [...history.reads];
  for (const write of history.writes) {
    const appliedMs = cluster.firstApplied.get(write.value);
    if (appliedMs === undefined) continue;
    operations.push({ clientId: write.client, input: { kind: 'write', value: write.value }, output: 0, callTime: write.callMs, returnTime: appliedMs });
  }
  const result = check(registerModel(0), operations);
  if (result.verdict === 'illegal') {
    throw new TestFailure(`reads are not linearizable (${history.reads.length} reads, ${operations.length - history.reads.length} writes)`);
  }
}
