// Randomized simulation of the sharded key/value service (lab 5B) on ShardKvCluster: a
// controller of three and 2–4 replica groups of three. A seed fixes everything: the number
// of groups, the network, snapshots, the nemesis schedule, the operator's configuration
// changes, the clients' keys and timing, and every message delay. Two phases:
//   fault phase   clients Get, Put and Append a handful of keys while an operator joins,
//                 leaves and moves shards at random times, and a nemesis crashes and
//                 restarts group servers (one at a time, or whole groups) and partitions
//                 groups inside (Raft links cut between the two sides); on an unreliable
//                 network messages are delayed, lost and reordered
//   healed phase  every server up, every link whole, the network reliable, every group
//                 joined: every clerk call still outstanding must complete, a final Get of
//                 every key must complete, and every group must reach the latest
//                 configuration with each shard held (in memory) by its owner alone
// Raft's safety checker watches every group and the controller throughout; the clerks'
// whole history (calls stamped with Scheduler.stampMs(); a call that never returned stays
// pending) is checked for linearizability key by key at the end (lincheck's kv model).
// The controller's own servers are left alone: its faults are test/shardctrler's.

import { Prng } from '../stdx/prng.js';
import type { YieldToHost } from '../sim/scheduler.js';
import { shardCount } from '../shardctrler/index.js';
import { key2shard, shardKvPullBytesMaxDefault, type ShardKvUnsafe } from '../shardkv/index.js';
import { check, describeResult, hashString, type KvInput, type KvOutput, kvModel } from '../lincheck/index.js';
import { TestFailure } from './raft-cluster.js';
import { ShardKvCluster, type ShardKvOperation } from './shardkv-cluster.js';
import type { ShardKvClerk } from './shardkv-clerk.js';

/** Virtual length of the fault phase. */
export const shardFaultPhaseMsDefault = 8000;
/** Healed, every outstanding clerk call must complete within this much virtual time. */
export const shardHealedCallsMs = 60_000;
/** Then the final reads, and then every group reaching the latest configuration, within this each. */
export const shardHealedStepMs = 30_000;
/** The linearizability check's memory for its caches (deterministic, unlike a time budget). */
const checkCacheBytesMax = 256 * 1024 * 1024;
/** One key per shard: key2shard is the first character's code mod 10, so 'a'..'j' cover shards 7, 8, 9, 0, ... 6. */
const keyPool = 'abcdefghij';

export interface ShardSimOptions {
  readonly seed: number;
  readonly yieldToHost: YieldToHost;
  /** A deliberately broken group state machine (STYLE.md 18). */
  readonly unsafe?: ShardKvUnsafe;
  readonly faultPhaseMs?: number;
  /** Fixes some of the settings instead of drawing them from the seed. */
  readonly settings?: Partial<ShardSimSettings>;
}

export interface ShardSimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failure: string | undefined;
  /** Equal for equal runs: the Raft network's delivery hash, the event count and the history. */
  readonly traceHash: string;
  readonly settings: string;
  /** Clerk calls that returned (the final reads included). */
  readonly ops: number;
  /** The controller's latest configuration number at the end. */
  readonly configs: number;
  readonly virtualMs: number;
}

export interface ShardSimSettings {
  /** Replica groups (gids 100, 101, ...), three servers each. */
  groups: number;
  unreliable: boolean;
  /** The lab's maxraftstate for the group servers; -1: never snapshot. */
  maxraftstate: number;
  /** Mean milliseconds between nemesis actions. */
  nemesisIntervalMs: number;
  /** The nemesis crashes (and restarts) single group servers. */
  crashes: boolean;
  /** The nemesis shuts down (and restarts) whole groups. */
  groupCrashes: boolean;
  /** The nemesis partitions groups inside (and isolates single servers). */
  partitions: boolean;
  /** Mean milliseconds between the operator's Join, Leave and Move calls. */
  configIntervalMs: number;
  clients: number;
  keys: number;
  /** The groups' pullBytesMax: 1 moves shards a key per page (every page its own entry). */
  pullBytesMax: number;
}

function drawSettings(prng: Prng): ShardSimSettings {
  return {
    groups: prng.range(2, 4),
    unreliable: prng.chance(0.5),
    maxraftstate: prng.chance(0.5) ? prng.pick([100, 400, 1000]) : -1,
    nemesisIntervalMs: prng.pick([300, 700, 1500]),
    crashes: prng.chance(0.7),
    groupCrashes: prng.chance(0.35),
    partitions: prng.chance(0.6),
    configIntervalMs: prng.pick([300, 800, 2000]),
    clients: prng.range(2, 5),
    keys: prng.range(2, 6),
    pullBytesMax: prng.chance(0.5) ? 1 : shardKvPullBytesMaxDefault,
  };
}

function describeSettings(s: ShardSimSettings): string {
  const parts = [`groups=${s.groups}`, s.unreliable ? 'unreliable' : 'reliable', s.maxraftstate < 0 ? 'no-snapshots' : `maxraftstate=${s.maxraftstate}`];
  parts.push(`nemesis=${s.nemesisIntervalMs}ms`);
  if (s.crashes) parts.push('crashes');
  if (s.groupCrashes) parts.push('group-crashes');
  if (s.partitions) parts.push('partitions');
  parts.push(`config-changes=${s.configIntervalMs}ms`, `clients=${s.clients}`, `keys=${s.keys}`);
  if (s.pullBytesMax < shardKvPullBytesMaxDefault) parts.push(`pull-pages=${s.pullBytesMax}B`);
  return parts.join(' ');
}

/** The run's state shared by its tasks. */
interface Run {
  readonly cfg: ShardKvCluster;
  readonly settings: ShardSimSettings;
  readonly keys: string[];
  /** Every clerk call; returnTime and output undefined while it has not returned. */
  readonly history: ShardKvOperation[];
  /** Groups in the controller's latest configuration, as the operator last set it. */
  readonly joined: Set<number>;
  faulty: boolean;
  nextValue: number;
}

export async function runShardSimulation(options: ShardSimOptions): Promise<ShardSimResult> {
  const prng = new Prng(options.seed);
  const settings = { ...drawSettings(prng.fork()), ...options.settings };
  if (!Number.isSafeInteger(settings.groups) || settings.groups < 1) throw new RangeError(`groups must be a positive integer, not ${settings.groups}`);
  if (!Number.isSafeInteger(settings.keys) || settings.keys < 1 || settings.keys > keyPool.length) throw new RangeError(`keys must be 1..${keyPool.length}, not ${settings.keys}`);
  if (!Number.isSafeInteger(settings.clients) || settings.clients < 1) throw new RangeError(`clients must be a positive integer, not ${settings.clients}`);
  const cfg = new ShardKvCluster({
    seed: prng.nextUint32(),
    yieldToHost: options.yieldToHost,
    maxraftstate: settings.maxraftstate,
    unreliable: settings.unreliable,
    ngroups: settings.groups,
    n: 3,
    pullBytesMax: settings.pullBytesMax,
    ...(options.unsafe === undefined ? {} : { unsafe: options.unsafe }),
  });
  const runPrng = prng.fork();
  const pool = keyPool.split('');
  const keys: string[] = [];
  for (let k = 0; k < settings.keys; k++) keys.push(pool.splice(runPrng.int(pool.length), 1)[0]!);
  const run: Run = { cfg, settings, keys, history: [], joined: new Set(), faulty: true, nextValue: 0 };
  const faultPhaseMs = options.faultPhaseMs ?? shardFaultPhaseMsDefault;
  // Nothing a correct run does takes this long: a run stuck in virtual time ends here.
  const limitMs = faultPhaseMs + shardHealedCallsMs + 3 * shardHealedStepMs;
  cfg.scheduler.failAt(limitMs, () => new TestFailure(`the run took longer than ${limitMs / 1000} s of virtual time`));
  let failure: string | undefined;
  let configs = 0;
  try {
    await cfg.startAll();
    configs = await faultAndHeal(run, runPrng, faultPhaseMs);
    checkLinearizable(run);
  } catch (error) {
    if (!(error instanceof TestFailure) && !(error instanceof Error && error.name === 'AssertionFailure')) throw error;
    failure = error.message;
  } finally {
    cfg.cleanup();
  }
  let hash = (cfg.raftNetwork.traceHash ^ Math.imul(cfg.scheduler.eventCount, 0x9e3779b1)) >>> 0;
  hash = hashString(JSON.stringify(run.history), hash) >>> 0;
  return {
    seed: options.seed,
    ok: failure === undefined,
    failure,
    traceHash: hash.toString(16).padStart(8, '0'),
    settings: describeSettings(settings),
    ops: run.history.filter((op) => op.returnTime !== undefined).length,
    configs,
    virtualMs: cfg.nowMs(),
  };
}

/** Both phases; returns the latest configuration number. */
async function faultAndHeal(run: Run, prng: Prng, faultPhaseMs: number): Promise<number> {
  const { cfg, settings } = run;
  // The first configuration: a random nonempty set of groups.
  const first = Array.from({ length: settings.groups }, (_, gi) => gi).filter(() => prng.chance(0.5));
  if (first.length === 0) first.push(prng.int(settings.groups));
  await cfg.joinm(first);
  for (const gi of first) run.joined.add(gi);

  const end = cfg.nowMs() + faultPhaseMs;
  const faulty = () => cfg.nowMs() < end;
  let outstanding = 0;
  const task = (body: () => Promise<void>): void => {
    outstanding++;
    void cfg.go(body().then(() => void outstanding--));
  };
  for (let c = 0; c < settings.clients; c++) {
    const ck = cfg.makeClient();
    const clientPrng = prng.fork();
    task(async () => {
      while (faulty()) await clientStep(run, ck, c, clientPrng);
    });
  }
  const nemesisPrng = prng.fork();
  task(async () => {
    while (faulty()) await nemesisStep(run, nemesisPrng);
  });
  const operatorPrng = prng.fork();
  task(async () => {
    while (faulty()) await operatorStep(run, operatorPrng);
  });
  await cfg.sleep(faultPhaseMs);

  // Healed: whatever the tasks are waiting on must now complete.
  run.faulty = false;
  cfg.raftNetwork.clearBlocks();
  cfg.setUnreliable(false);
  for (let gi = 0; gi < settings.groups; gi++) {
    for (let i = 0; i < cfg.n; i++) {
      if (cfg.groups[gi]![i]!.service === undefined) await cfg.startServer(gi, i);
      cfg.raftNetwork.connect(cfg.raftId(gi, i));
    }
  }
  if (!(await cfg.scheduler.waitFor(() => outstanding === 0, shardHealedCallsMs, 50))) {
    const pending = run.history.filter((op) => op.returnTime === undefined).length;
    throw new TestFailure(`liveness: healed for ${shardHealedCallsMs / 1000} s, ${pending} clerk call(s) and ${outstanding} task(s) still outstanding\n${cfg.describe()}`);
  }
  cfg.checkErrors();
  const missing = Array.from({ length: settings.groups }, (_, gi) => gi).filter((gi) => !run.joined.has(gi));
  if (missing.length > 0) await within(cfg, shardHealedStepMs, 'joining the remaining groups', () => cfg.joinm(missing));

  // The final reads, one fresh clerk each, in turn.
  await within(cfg, shardHealedStepMs, 'the final reads', async () => {
    const ck = cfg.makeClient();
    for (const key of run.keys) await call(run, ck, settings.clients, { kind: 'get', key });
  });

  // Every group reaches the latest configuration, each shard held by its owner alone.
  const latest = await within(cfg, shardHealedStepMs, 'querying the latest configuration', () => cfg.query(-1));
  const converged = () => {
    for (let gi = 0; gi < settings.groups; gi++) {
      const machine = cfg.machine(gi)?.machine;
      if (machine === undefined || machine.config.num !== latest.num || !machine.settled) return false;
    }
    return true;
  };
  if (!(await cfg.scheduler.waitFor(converged, shardHealedStepMs, 50))) {
    throw new TestFailure(`liveness: healed, the groups did not all reach configuration ${latest.num} with every shard installed within ${shardHealedStepMs / 1000} s\n${cfg.describe()}`);
  }
  for (let gi = 0; gi < settings.groups; gi++) {
    const machine = cfg.machine(gi)!.machine;
    for (let s = 0; s < shardCount; s++) {
      const owns = latest.shards[s] === cfg.gid(gi);
      if ((machine.shardState(s) !== undefined) !== owns) {
        throw new TestFailure(`group ${cfg.gid(gi)} ${owns ? 'lacks' : 'still holds'} shard ${s} in configuration ${latest.num} (${machine.describe()})`);
      }
    }
  }
  cfg.checkErrors();
  return latest.num;
}

/** `body`, which must finish within `ms` of virtual time. */
async function within<T>(cfg: ShardKvCluster, ms: number, what: string, body: () => Promise<T>): Promise<T> {
  let done = false;
  let value: T | undefined;
  void cfg.go(
    body().then((v) => {
      value = v;
      done = true;
    }),
  );
  if (!(await cfg.scheduler.waitFor(() => done, ms, 50))) throw new TestFailure(`liveness: healed, ${what} did not finish within ${ms / 1000} s\n${cfg.describe()}`);
  cfg.checkErrors();
  return value as T;
}

/** One clerk call, logged as pending first and completed when it returns. */
async function call(run: Run, ck: ShardKvClerk, client: number, input: KvInput): Promise<void> {
  const { cfg, history } = run;
  const at = history.length;
  const callTime = cfg.scheduler.stampMs();
  history.push({ clientId: client, input, output: undefined, callTime, returnTime: undefined });
  let output: KvOutput;
  if (input.kind === 'get') output = await ck.get(input.key);
  else if (input.kind === 'put') {
    await ck.put(input.key, input.value);
    output = '';
  } else {
    await ck.append(input.key, input.value);
    output = '';
  }
  history[at] = { clientId: client, input, output, callTime, returnTime: cfg.scheduler.stampMs() };
}

async function clientStep(run: Run, ck: ShardKvClerk, client: number, prng: Prng): Promise<void> {
  const key = prng.pick(run.keys);
  const roll = prng.int(10);
  // Values are unique, so a write applied twice or lost shows in every later read.
  const value = `${client}.${run.nextValue++};`;
  const input: KvInput = roll < 4 ? { kind: 'get', key } : roll < 6 ? { kind: 'put', key, value } : { kind: 'append', key, value };
  await call(run, ck, client, input);
  await run.cfg.sleep(prng.int(60));
}

/** A Join of a group not in the configuration, a Leave of one that is (never the last), or a Move. */
async function operatorStep(run: Run, prng: Prng): Promise<void> {
  const { cfg, settings, joined } = run;
  await cfg.sleep(prng.int(2 * settings.configIntervalMs));
  if (!run.faulty) return;
  const out = Array.from({ length: settings.groups }, (_, gi) => gi).filter((gi) => !joined.has(gi));
  const action = prng.int(3);
  if (action === 0 && out.length > 0) {
    const gi = prng.pick(out);
    await cfg.join(gi);
    joined.add(gi);
  } else if (action === 1 && joined.size > 1) {
    const gi = prng.pick([...joined]);
    joined.delete(gi);
    await cfg.leave(gi);
  } else {
    // Mostly a shard a client uses, so that moves hit live keys.
    const shard = prng.chance(0.7) ? key2shard(prng.pick(run.keys)) : prng.int(shardCount);
    await cfg.move(shard, prng.pick([...joined]));
  }
  cfg.checkErrors();
}

async function nemesisStep(run: Run, prng: Prng): Promise<void> {
  const { cfg, settings } = run;
  await cfg.sleep(prng.int(2 * settings.nemesisIntervalMs));
  if (!run.faulty) return;
  const servers = Array.from({ length: settings.groups * cfg.n }, (_, k) => ({ gi: Math.floor(k / cfg.n), i: k % cfg.n }));
  const up = servers.filter(({ gi, i }) => cfg.groups[gi]![i]!.service !== undefined);
  const down = servers.filter(({ gi, i }) => cfg.groups[gi]![i]!.service === undefined);
  const gi = prng.int(settings.groups);
  switch (prng.int(6)) {
    case 0:
      if (settings.crashes && up.length > 0) {
        const victim = prng.pick(up);
        cfg.shutdownServer(victim.gi, victim.i);
      }
      break;
    case 1:
      if (down.length > 0) {
        const back = prng.pick(down);
        await cfg.startServer(back.gi, back.i);
      }
      break;
    case 2:
      if (settings.groupCrashes && prng.chance(0.5)) cfg.shutdownGroup(gi);
      else if (settings.crashes && up.length > 0) {
        // Crash and restart at once: what the disk held is all that survives.
        const victim = prng.pick(up);
        await cfg.startServer(victim.gi, victim.i);
      }
      break;
    case 3:
      // A group with servers down comes back whole.
      if (down.length > 0) {
        const back = prng.pick(down).gi;
        for (let k = 0; k < cfg.n; k++) if (cfg.groups[back]![k]!.service === undefined) await cfg.startServer(back, k);
      }
      break;
    case 4:
      if (settings.partitions) partitionGroup(run, gi, prng);
      break;
    default:
      cfg.raftNetwork.clearBlocks();
      for (let k = 0; k < cfg.n; k++) cfg.raftNetwork.connect(cfg.raftId(gi, k));
      break;
  }
  cfg.checkErrors();
}

/** Splits group gi's servers in two random sides (Raft links across cut both ways), or isolates one server. */
function partitionGroup(run: Run, gi: number, prng: Prng): void {
  const { cfg } = run;
  if (prng.chance(0.3)) {
    cfg.raftNetwork.disconnect(cfg.raftId(gi, prng.int(cfg.n)));
    return;
  }
  const side = Array.from({ length: cfg.n }, () => prng.chance(0.5));
  for (let a = 0; a < cfg.n; a++) {
    for (let b = 0; b < cfg.n; b++) {
      cfg.raftNetwork.setBlocked(cfg.raftId(gi, a), cfg.raftId(gi, b), side[a] !== side[b]);
    }
  }
}

function checkLinearizable(run: Run): void {
  const result = check(kvModel(), run.history, { cacheBytesMax: checkCacheBytesMax });
  if (result.verdict === 'illegal') {
    throw new TestFailure(`the clerks' history is not linearizable (${run.history.length} calls):\n${describeResult(kvModel(), result)}`);
  }
  if (result.verdict !== 'ok') throw new TestFailure(`the linearizability check could not decide (${result.verdict}) on ${run.history.length} calls`);
}
