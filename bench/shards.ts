// `npm run bench -- shards [--seconds N] [--rounds N] [--warmup-seconds N] [--clients N]
// [--only scaling,migration,fleet] [--out FILE]`: the sharded key/value service (issue 16
// item 6) on three real `flotilla server --shards` processes on loopback, each layout with
// the shard controller's group and its key/value groups on all three members (3 replicas,
// one per process):
//
//   - scaling: aggregate write throughput (puts through ShardedClient, --clients concurrent
//     clients, keys over all ten shards) with 1, 2, 4 and 8 key/value groups. The four
//     clusters stay up side by side and the rounds alternate between them (the machine's
//     load drifts within minutes); medians over the rounds, as ratios to the 1-group layout.
//   - migration: one shard preloaded with N keys (1,000 and 10,000, 100-byte values) is
//     moved to the other group while clients keep writing to every shard, that one included:
//     the time from the move's configuration until a read of a preloaded key succeeds
//     through the new group, the shard-request bytes the members exchanged for it (pulls and
//     deletions: ShardRpc's counters in GET /status), and the writers' throughput during the
//     move against the seconds before it.
//   - fleet: with 1, 10 and 50 groups all taking writes, writes/s and WAL fsyncs per second
//     per member (Prometheus, GET /metrics); with 1 and 100 idle groups, peer messages and
//     frames per second over a 5 s window; and how long each layout took to start.
//
// Every ratio is against a baseline measured in the same run (STYLE.md 19). The members run
// the same code as the benchmark (the sources under tsx for `npm run bench`), or the compiled
// tree in $FLOTILLA_DIST (`FLOTILLA_DIST=dist-x` runs `node dist-x/src/cli/main.js server`).
// Every process is a guarded child (common.ts): stopped when the benchmark ends, fails or is
// killed. Results, every round included, go to bench-results/shards-<timestamp>.json.

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { realClock } from '../src/platform/clock.js';
import { flotillaCommand } from '../src/platform/spawn.js';
import type { Address } from '../src/server/config.js';
import { ShardCtrlError, ShardedClient } from '../src/server/sharded-client.js';
import { parseShardServerName } from '../src/server/shard-layout.js';
import { decodeKvReply, encodeShardRequest } from '../src/server/shard-protocol.js';
import { ShardRpc, type ShardRpcStats } from '../src/server/shard-rpc.js';
import { type ShardConfig, shardCount } from '../src/shardctrler/index.js';
import { freePorts } from '../test/server/helpers.js';
import { closedLoop, coreCount, describeLoad, type GuardedProcess, type LoadResult, median, removeOnExit, sleep, spawnGuarded } from './common.js';

const PHASES = ['scaling', 'migration', 'fleet'] as const;
type PhaseName = (typeof PHASES)[number];

const MEMBER_IDS = [1, 2, 3] as const;
const FIRST_GID = 100;
const SCALING_GROUPS = [1, 2, 4, 8];
const MIGRATION_KEYS = [1_000, 10_000];
const FLEET_WRITING_GROUPS = [1, 10, 50];
const FLEET_IDLE_GROUPS = [1, 100];
/** Writers in the fleet phase, whatever the number of groups (one each with 50 groups). */
const FLEET_STREAMS = 50;
const IDLE_WINDOW_SECONDS = 5;
const VALUE_BYTES = 100;
/** Keys written per shard in the scaling and fleet phases (puts overwrite them). */
const KEYS_PER_SHARD = 100;
/** A key's shard is its first character code mod 10 (key2shard): 'd' (100) is shard 0. */
const SHARD_CHAR_BASE = 100;
/** /proc/<pid>/stat counts CPU time in clock ticks; 100 per second on Linux (USER_HZ). */
const CLOCK_TICKS_PER_SECOND = 100;
const STARTUP_TIMEOUT_MS_BASE = 30_000;
const STARTUP_TIMEOUT_MS_PER_GROUP = 1_000;
const SERVED_TIMEOUT_MS = 60_000;
const SETTLED_TIMEOUT_MS = 30_000;
const PRELOAD_CLIENTS = 16;

interface Options {
  seconds: number;
  rounds: number;
  warmupSeconds: number;
  clients: number;
  phases: Set<PhaseName>;
  out: string;
}

function parseArgs(args: readonly string[]): Options {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const options: Options = { seconds: 5, rounds: 3, warmupSeconds: 1, clients: 32, phases: new Set(PHASES), out: join('bench-results', `shards-${stamp}.json`) };
  const positive = (flag: string, value: number) => {
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${flag} must be a positive number`);
    return value;
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const value = args[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    const number = Number(value);
    if (flag === '--seconds') options.seconds = positive(flag, number);
    else if (flag === '--rounds') options.rounds = Math.max(1, Math.round(positive(flag, number)));
    else if (flag === '--warmup-seconds') options.warmupSeconds = number === 0 ? 0 : positive(flag, number);
    else if (flag === '--clients') options.clients = Math.max(1, Math.round(positive(flag, number)));
    else if (flag === '--out') options.out = value;
    else if (flag === '--only') {
      const names = value.split(',').map((name) => name.trim());
      for (const name of names) if (!(PHASES as readonly string[]).includes(name)) throw new Error(`--only: unknown phase "${name}" (${PHASES.join(', ')})`);
      options.phases = new Set(names as PhaseName[]);
    } else throw new Error(`unknown option ${flag} (--seconds, --rounds, --warmup-seconds, --clients, --only ${PHASES.join(',')}, --out)`);
  }
  return options;
}

// =======================================================================================
// Clusters: three `flotilla server --shards` members on 127.0.0.1.

/** What GET /status says about the sharded service (ShardHost.describe). */
interface MemberStatus {
  readonly pid: number;
  readonly shards: {
    readonly ctrl: { readonly role: string; readonly leader: number; readonly latest: number } | null;
    readonly groups: readonly { readonly gid: number; readonly role: string; readonly leader: number; readonly configNum: number; readonly shards: Record<string, number[]>; readonly keys: number }[];
    /** Absent from members built before ShardRpc counted bytes. */
    readonly rpc?: ShardRpcStats;
  } | null;
}

interface MemberPorts {
  readonly peer: number;
  readonly client: number;
  readonly admin: number;
  readonly zk: number;
}

interface ServerCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly label: string;
}

function serverCommand(): ServerCommand {
  const dist = process.env['FLOTILLA_DIST'];
  if (dist !== undefined && dist !== '') {
    const main = resolve(dist, 'src', 'cli', 'main.js');
    if (!existsSync(main)) throw new Error(`FLOTILLA_DIST=${dist}: ${main} is missing (build it: npx tsc -p tsconfig.json --outDir ${dist})`);
    return { command: process.execPath, args: [main], label: `node ${main}` };
  }
  const { command, args } = flotillaCommand();
  return { command, args, label: [command, ...args].join(' ') };
}

/** Every cluster still running, stopped when the benchmark ends. */
const running = new Set<ShardCluster>();

class ShardCluster {
  readonly gids: readonly number[];
  private readonly processes = new Map<number, GuardedProcess>();
  private readonly clients: ShardedClient[] = [];

  private constructor(
    readonly name: string,
    private readonly root: string,
    groupCount: number,
    private readonly ports: ReadonlyMap<number, MemberPorts>,
  ) {
    this.gids = Array.from({ length: groupCount }, (_, i) => FIRST_GID + i);
  }

  get layout(): string {
    return ['ctrl=1,2,3', ...this.gids.map((gid) => `${gid}=1,2,3`)].join(';');
  }

  /**
   * Starts the three members and waits until the controller and every group have a leader;
   * the milliseconds that took (spawn to leaders). Throws with the members' last output if
   * a member exits or the leaders do not come.
   */
  static async start(name: string, groupCount: number, command: ServerCommand): Promise<{ cluster: ShardCluster; startupMs: number }> {
    const root = await mkdtemp(join(tmpdir(), `flotilla-bench-shards-${name}-`));
    removeOnExit(root);
    await writeFile(join(root, 'cluster.env'), `FLOTILLA_CLUSTER_SECRET=bench-shards-${process.pid}-0123456789abcdef\n`, { mode: 0o600 });
    const free = await freePorts(4 * MEMBER_IDS.length);
    const ports = new Map(MEMBER_IDS.map((id, i) => [id, { peer: free[4 * i]!, client: free[4 * i + 1]!, admin: free[4 * i + 2]!, zk: free[4 * i + 3]! }]));
    const cluster = new ShardCluster(name, root, groupCount, ports);
    running.add(cluster);
    const startMs = performance.now();
    for (const id of MEMBER_IDS) cluster.processes.set(id, await spawnGuarded(command.command, [...command.args, ...cluster.serverArgs(id)], { dir: root }));
    await cluster.waitFor('the controller and every group to elect a leader', STARTUP_TIMEOUT_MS_BASE + STARTUP_TIMEOUT_MS_PER_GROUP * groupCount, async () => {
      const statuses = await cluster.statuses();
      const leaders = new Set<number>();
      let ctrlLeader = false;
      for (const status of statuses) {
        if (status.shards?.ctrl?.role === 'leader') ctrlLeader = true;
        for (const group of status.shards?.groups ?? []) if (group.role === 'leader') leaders.add(group.gid);
      }
      return ctrlLeader && leaders.size === groupCount ? true : undefined;
    });
    return { cluster, startupMs: performance.now() - startMs };
  }

  private serverArgs(id: number): string[] {
    const port = this.ports.get(id)!;
    return [
      'server',
      '--id',
      String(id),
      '--peers',
      MEMBER_IDS.map((other) => `${other}=127.0.0.1:${this.ports.get(other)!.peer}`).join(','),
      '--data',
      join(this.root, `member-${id}`),
      '--client-port',
      String(port.client),
      '--admin-port',
      String(port.admin),
      '--zk-port',
      String(port.zk),
      '--etcd-port',
      '0',
      '--cluster-secret-file',
      join(this.root, 'cluster.env'),
      '--log-level',
      'warn',
      '--shards',
      this.layout,
    ];
  }

  endpoints(): Address[] {
    return MEMBER_IDS.map((id) => ({ host: '127.0.0.1', port: this.ports.get(id)!.client }));
  }

  /** A ShardedClient of this cluster, closed when the cluster stops. */
  client(callDeadlineMs = 15_000): ShardedClient {
    const client = new ShardedClient({ endpoints: this.endpoints(), callDeadlineMs });
    this.clients.push(client);
    return client;
  }

  /** The last `lines` lines each member printed (warnings and errors: the members log at warn). */
  recentOutput(lines = 4): string {
    return MEMBER_IDS.map((id) => {
      const output = this.processes
        .get(id)!
        .describeOutput()
        .split('\n')
        .filter((line) => line.length > 0)
        .slice(-lines);
      return `member ${id}: ${output.length === 0 ? '(nothing)' : output.join('\n  ')}`;
    }).join('\n');
  }

  pids(): number[] {
    return MEMBER_IDS.map((id) => this.processes.get(id)!.pid);
  }

  async status(id: number): Promise<MemberStatus> {
    const response = await fetch(`http://127.0.0.1:${this.ports.get(id)!.admin}/status`, { signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new Error(`${this.name}: status of member ${id}: HTTP ${response.status}`);
    return (await response.json()) as MemberStatus;
  }

  statuses(): Promise<MemberStatus[]> {
    return Promise.all(MEMBER_IDS.map((id) => this.status(id)));
  }

  async metrics(id: number): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${this.ports.get(id)!.admin}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new Error(`${this.name}: metrics of member ${id}: HTTP ${response.status}`);
    return response.text();
  }

  /** Joins every group (their servers from the layout), retrying while members still learn each other's addresses. */
  async joinAll(): Promise<{ num: number; joinMs: number }> {
    const startMs = performance.now();
    const client = this.client(20_000);
    const num = await this.waitFor('flotilla shard join of every group', 60_000, async () => {
      try {
        return await client.change({ kind: 'join', groups: this.gids.map((gid) => [gid, []] as const) });
      } catch (error) {
        if (error instanceof ShardCtrlError && error.code === 'address-unknown') return undefined;
        throw error;
      }
    });
    // Every group's leader has installed the join's configuration and serves what it got.
    await this.waitFor(`every group at configuration ${num}`, 60_000, async () => {
      const statuses = await this.statuses();
      const ready = new Set<number>();
      for (const status of statuses)
        for (const group of status.shards?.groups ?? []) if (group.role === 'leader' && group.configNum >= num && (group.shards['pulling'] ?? []).length === 0) ready.add(group.gid);
      return ready.size === this.gids.length ? true : undefined;
    });
    return { num, joinMs: performance.now() - startMs };
  }

  /** Polls `probe` every 50 ms; fails early, with the members' output, if a member exits. */
  async waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    let lastError: unknown;
    while (performance.now() < deadline) {
      const exited = MEMBER_IDS.find((id) => !this.processes.get(id)!.isRunning());
      if (exited !== undefined) throw new Error(`${this.name}: member ${exited} exited while waiting for ${what}:\n${this.processes.get(exited)!.describeOutput()}`);
      try {
        const value = await probe();
        if (value !== undefined) return value;
      } catch (error) {
        if (error instanceof ShardCtrlError) throw error;
        lastError = error;
      }
      await sleep(50);
    }
    throw new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? '' : ` (last error: ${String(lastError)})`}`);
  }

  async stop(): Promise<void> {
    running.delete(this);
    for (const client of this.clients) client.close();
    await Promise.allSettled([...this.processes.values()].map((process) => process.stop()));
    await rm(this.root, { recursive: true, force: true });
  }
}

// =======================================================================================
// Measuring the members: CPU time, Prometheus counters, ShardRpc's bytes.

/** CPU seconds (user + system, every thread) the process has used; undefined without /proc. */
async function cpuSeconds(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  // After "pid (comm) ": state is field 3, utime field 14, stime field 15.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

async function totalCpuSeconds(pids: readonly number[]): Promise<number | undefined> {
  const each = await Promise.all(pids.map(cpuSeconds));
  return each.some((value) => value === undefined) ? undefined : each.reduce<number>((a, b) => a + b!, 0);
}

/** The sum of every sample of `name` (all label sets) in Prometheus text; undefined if the metric is not there. */
function metricTotal(text: string, name: string): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match !== null && match[1] === name) total = (total ?? 0) + Number(match[3]);
  }
  return total;
}

const COUNTERS = {
  walSyncs: 'flotilla_wal_syncs_total',
  /** One per durable save of a group's Ready (a WAL append + fdatasync today), any group of the member. */
  logSaves: 'flotilla_fsync_seconds_count',
  logSaveSeconds: 'flotilla_fsync_seconds_sum',
  peerMessages: 'flotilla_peer_messages_sent_total',
  peerFrames: 'flotilla_peer_frames_sent_total',
  peerBytes: 'flotilla_peer_bytes_sent_total',
} as const;
type CounterName = keyof typeof COUNTERS;
/** Per member: each counter's value, or its increase per second; undefined where the member does not export it. */
type Rates = Record<CounterName, number | undefined>;

/** Per member, each counter's value (undefined: the member does not export it). */
async function readCounters(cluster: ShardCluster): Promise<Rates[]> {
  const texts = await Promise.all(MEMBER_IDS.map((id) => cluster.metrics(id)));
  return texts.map((text) => Object.fromEntries(Object.entries(COUNTERS).map(([key, name]) => [key, metricTotal(text, name)])) as Rates);
}

/** Per member, each counter's increase per second between two readings; undefined where either reading lacks it. */
function ratesPerSecond(before: Rates[], after: Rates[], seconds: number): Rates[] {
  return before.map((b, i) => {
    const a = after[i]!;
    return Object.fromEntries((Object.keys(COUNTERS) as CounterName[]).map((key) => [key, b[key] === undefined || a[key] === undefined ? undefined : (a[key]! - b[key]!) / seconds])) as Record<
      CounterName,
      number | undefined
    >;
  });
}

/** The mean duration of a log save (WAL append + fdatasync) over every member, in ms; undefined without the histogram. */
function meanSaveMs(rates: readonly Rates[]): number | undefined {
  const seconds = rates.map((rate) => rate.logSaveSeconds);
  const saves = rates.map((rate) => rate.logSaves);
  if ([...seconds, ...saves].some((value) => value === undefined)) return undefined;
  const count = saves.reduce<number>((a, b) => a + b!, 0);
  return count === 0 ? undefined : (1000 * seconds.reduce<number>((a, b) => a + b!, 0)) / count;
}

/** The mean over members of one rate; undefined if any member lacks it. */
function meanOf(rates: readonly Rates[], key: CounterName): number | undefined {
  const values = rates.map((rate) => rate[key]);
  return values.some((value) => value === undefined) ? undefined : values.reduce<number>((a, b) => a + b!, 0) / values.length;
}

/** The members' summed ShardRpc peer-call bytes (pulls and deletions, both directions); undefined if a member does not count them. */
async function peerRpcBytes(cluster: ShardCluster): Promise<{ bytes: number; calls: number } | undefined> {
  const statuses = await cluster.statuses();
  let bytes = 0;
  let calls = 0;
  for (const status of statuses) {
    const peer = status.shards?.rpc?.peer;
    if (peer === undefined) return undefined;
    bytes += peer.bytesSent + peer.bytesReceived;
    calls += peer.calls;
  }
  return { bytes, calls };
}

// =======================================================================================
// Keys and values.

function keyIn(shard: number, suffix: string): string {
  return `${String.fromCharCode(SHARD_CHAR_BASE + shard)}${suffix}`;
}

/** Write i of a load spread evenly over the ten shards and KEYS_PER_SHARD keys in each. */
function spreadKey(i: number, tag: string): string {
  return keyIn(i % shardCount, `${tag}${Math.floor(i / shardCount) % KEYS_PER_SHARD}`);
}

const VALUE = 'v'.repeat(VALUE_BYTES);

/** Preloaded key i's value: VALUE_BYTES, different per key (so a read proves which key it got). */
function preloadValue(i: number): string {
  const label = `p${i}-`;
  return label + 'x'.repeat(VALUE_BYTES - label.length);
}

// =======================================================================================
// Phase 1: throughput with 1, 2, 4 and 8 groups.

interface ScalingSample {
  readonly groups: number;
  readonly round: number;
  readonly result: LoadResult;
  /** Cores the three members used during the measurement. */
  readonly serverCores: number | undefined;
  /** Cores this process (the clients) used. */
  readonly clientCores: number;
  readonly rates: Rates[];
}

interface ScalingReport {
  readonly startupMs: Record<number, number>;
  readonly samples: ScalingSample[];
  readonly loadBefore: string;
  loadAfter?: string;
}

async function measure(
  cluster: ShardCluster,
  streams: number,
  seconds: number,
  op: (stream: number, i: number) => Promise<unknown>,
): Promise<{ result: LoadResult; serverCores: number | undefined; clientCores: number; rates: Rates[] }> {
  const countersBefore = await readCounters(cluster);
  const cpuBefore = await totalCpuSeconds(cluster.pids());
  const startMs = performance.now();
  const result = await closedLoop(streams, seconds, op);
  const elapsedSeconds = (performance.now() - startMs) / 1000;
  const cpuAfter = await totalCpuSeconds(cluster.pids());
  const countersAfter = await readCounters(cluster);
  return {
    result,
    serverCores: cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / elapsedSeconds,
    clientCores: (result.clientCpuUsPerOp * result.ops) / 1e6 / elapsedSeconds,
    rates: ratesPerSecond(countersBefore, countersAfter, elapsedSeconds),
  };
}

async function runScaling(options: Options, command: ServerCommand, report: Report): Promise<void> {
  const scaling: ScalingReport = { startupMs: {}, samples: [], loadBefore: describeLoad() };
  report.scaling = scaling;
  console.log(`\nscaling: ${SCALING_GROUPS.join(', ')} groups side by side, ${options.clients} clients, ${options.rounds} rounds of ${options.seconds} s; load average ${scaling.loadBefore}`);
  const layouts: { groups: number; cluster: ShardCluster; clients: ShardedClient[] }[] = [];
  try {
    for (const groups of SCALING_GROUPS) {
      const { cluster, startupMs } = await ShardCluster.start(`scaling-${groups}`, groups, command);
      scaling.startupMs[groups] = startupMs;
      await cluster.joinAll();
      layouts.push({ groups, cluster, clients: Array.from({ length: options.clients }, () => cluster.client()) });
      console.log(`  ${groups} group(s) up in ${(startupMs / 1000).toFixed(1)} s`);
    }
    for (const layout of layouts) {
      if (options.warmupSeconds > 0) await closedLoop(options.clients, options.warmupSeconds, (s, i) => layout.clients[s]!.put(spreadKey(i, 's'), VALUE));
    }
    for (let round = 0; round < options.rounds; round++) {
      // Even rounds from 1 group up, odd rounds from 8 down: a drift in the machine's load
      // then favours no layout.
      const order = round % 2 === 0 ? layouts : [...layouts].reverse();
      for (const layout of order) {
        const sample = await measure(layout.cluster, options.clients, options.seconds, (s, i) => layout.clients[s]!.put(spreadKey(i, 's'), VALUE));
        scaling.samples.push({ groups: layout.groups, round, ...sample });
        console.log(
          `  round ${round + 1}, ${layout.groups} group(s): ${sample.result.opsPerSecond.toFixed(0)} writes/s${sample.result.errors > 0 ? `, ${sample.result.errors} errors (${sample.result.firstError})` : ''}`,
        );
      }
    }
  } finally {
    await Promise.allSettled(layouts.map((layout) => layout.cluster.stop()));
    scaling.loadAfter = describeLoad();
  }
}

// =======================================================================================
// Phase 2: migration cost.

interface WriteEvent {
  readonly endMs: number;
  readonly latencyMs: number;
  readonly shard: number;
}

/** Clients that put to every shard until stopped, recording when each write finished. */
class Writers {
  readonly events: WriteEvent[] = [];
  errors = 0;
  private stopped = false;
  private readonly loops: Promise<void>[];

  constructor(clients: readonly ShardedClient[]) {
    this.loops = clients.map((client, c) => this.run(client, c, clients.length));
  }

  private async run(client: ShardedClient, c: number, streams: number): Promise<void> {
    for (let i = c; !this.stopped; i += streams) {
      const key = spreadKey(i, 'w');
      const startMs = performance.now();
      try {
        await client.put(key, VALUE);
        this.events.push({ endMs: performance.now(), latencyMs: performance.now() - startMs, shard: i % shardCount });
      } catch {
        this.errors++;
        await sleep(10);
      }
    }
  }

  /** Writes per second that finished in [fromMs, toMs). */
  rate(fromMs: number, toMs: number): number {
    if (toMs <= fromMs) return Number.NaN;
    return this.events.filter((event) => event.endMs >= fromMs && event.endMs < toMs).length / ((toMs - fromMs) / 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

interface MigrationSample {
  readonly keys: number;
  readonly round: number;
  readonly shard: number;
  readonly from: number;
  readonly to: number;
  /** From sending the move until the controller answered with the new configuration. */
  readonly moveMs: number;
  /** From that answer until a read of a preloaded key succeeded through the new group. */
  readonly servedMs: number | undefined;
  /** From that answer until the old group had deleted its copy and the new one finished its clean-up. */
  readonly settledMs: number | undefined;
  /** Shard-request bytes of the peer calls (pulls, deletions) every member made, both directions; undefined if not counted. */
  readonly peerBytes: number | undefined;
  readonly peerCalls: number | undefined;
  readonly dataBytes: number;
  readonly writesPerSecondBefore: number;
  readonly writesPerSecondDuring: number;
  readonly writesPerSecondWorst250Ms: number;
  readonly writesPerSecondAfter: number;
  /** The longest write to the moving shard that finished from the move until `seconds` after it was served. */
  readonly movedShardStallMs: number;
}

interface MigrationReport {
  readonly samples: MigrationSample[];
  readonly loadBefore: string;
  loadAfter?: string;
  writerErrors?: number;
  error?: string;
}

async function runMigration(options: Options, command: ServerCommand, report: Report): Promise<void> {
  const migration: MigrationReport = { samples: [], loadBefore: describeLoad() };
  report.migration = migration;
  console.log(
    `\nmigration: a shard of ${MIGRATION_KEYS.join(' / ')} keys (${VALUE_BYTES} B values) moved between 2 groups under ${options.clients} writers, ${options.rounds} moves each; load average ${migration.loadBefore}`,
  );
  const { cluster } = await ShardCluster.start('migration', 2, command);
  let writers: Writers | undefined;
  try {
    await cluster.joinAll();
    const admin = cluster.client(30_000);
    const probe = new ShardRpc({ clock: realClock, requestTimeoutMs: 3_000, connectTimeoutMs: 1_000 });
    const firstOwner = cluster.gids[0]!;
    const owned = (await admin.query()).shards.flatMap((gid, shard) => (gid === firstOwner ? [shard] : []));
    if (owned.length < MIGRATION_KEYS.length) throw new Error(`group ${firstOwner} owns shards ${owned.join(',')} after the join; need ${MIGRATION_KEYS.length}`);
    writers = new Writers(Array.from({ length: options.clients }, () => cluster.client()));
    try {
      for (const [k, keys] of MIGRATION_KEYS.entries()) {
        const shard = owned[k]!;
        await preload(cluster, shard, keys);
        console.log(`  shard ${shard}: ${keys} keys preloaded`);
        for (let round = 0; round < options.rounds; round++) {
          const sample = await moveOnce(options, cluster, admin, probe, writers, { shard, keys, round });
          migration.samples.push(sample);
          console.log(
            `  ${keys} keys, move ${round + 1} (${sample.from} → ${sample.to}): served after ${describeMs(sample.servedMs)}, ${sample.peerBytes === undefined ? 'n/a' : sample.peerBytes} peer bytes, writes/s ${sample.writesPerSecondBefore.toFixed(0)} before, ${sample.writesPerSecondDuring.toFixed(0)} during`,
          );
          if (sample.servedMs === undefined)
            throw new Error(
              `shard ${shard} (${keys} keys) was not served by group ${sample.to} within ${SERVED_TIMEOUT_MS / 1000} s of its move; the remaining moves are skipped. The members' last output:\n${cluster.recentOutput()}`,
            );
        }
      }
    } finally {
      probe.close();
    }
  } catch (error) {
    migration.error = (error as Error).message;
    console.log(`  migration stopped: ${migration.error}`);
  } finally {
    await writers?.stop();
    migration.writerErrors = writers?.errors;
    await cluster.stop();
    migration.loadAfter = describeLoad();
  }
}

async function preload(cluster: ShardCluster, shard: number, keys: number): Promise<void> {
  const clients = Array.from({ length: PRELOAD_CLIENTS }, () => cluster.client(30_000));
  let next = 0;
  await Promise.all(
    clients.map(async (client) => {
      for (let i = next++; i < keys; i = next++) await client.put(keyIn(shard, `p${i}`), preloadValue(i));
    }),
  );
}

async function moveOnce(
  options: Options,
  cluster: ShardCluster,
  admin: ShardedClient,
  probe: ShardRpc,
  writers: Writers,
  what: { shard: number; keys: number; round: number },
): Promise<MigrationSample> {
  const { shard, keys, round } = what;
  const before = await admin.query();
  const from = before.shards[shard]!;
  const to = cluster.gids.find((gid) => gid !== from)!;
  const windowMs = options.seconds * 1000;
  await sleep(windowMs);
  const bytesBefore = await peerRpcBytes(cluster);
  const moveStartMs = performance.now();
  const num = await admin.change({ kind: 'move', shard, gid: to });
  const configMs = performance.now();
  const config = await admin.query(num);
  // A key preloaded at random position, read through the new group's servers only.
  const i = Math.floor((round + 1) * 7919) % keys;
  const servedAt = await waitServed(probe, config, to, keyIn(shard, `p${i}`), preloadValue(i), configMs + SERVED_TIMEOUT_MS);
  let settledAt: number | undefined;
  if (servedAt !== undefined) {
    settledAt = await cluster
      .waitFor(`shard ${shard} settled on group ${to}`, SETTLED_TIMEOUT_MS, async () => {
        const statuses = await cluster.statuses();
        const groups = statuses.flatMap((status) => status.shards?.groups ?? []);
        const oldDone = groups.filter((g) => g.gid === from).every((g) => g.configNum >= num && !Object.values(g.shards).some((shards) => shards.includes(shard)));
        const newDone = groups.filter((g) => g.gid === to).every((g) => g.configNum >= num && (g.shards['serving'] ?? []).includes(shard));
        return oldDone && newDone ? performance.now() : undefined;
      })
      .catch(() => undefined);
  }
  const bytesAfter = await peerRpcBytes(cluster);
  const endMs = (servedAt ?? performance.now()) + windowMs;
  if (performance.now() < endMs) await sleep(endMs - performance.now());
  const servedEnd = servedAt ?? performance.now();
  // Writes per second in 250 ms buckets from the move until it was served (at least one bucket).
  let worst = Number.POSITIVE_INFINITY;
  for (let t = moveStartMs; t < Math.max(servedEnd, moveStartMs + 250); t += 250) worst = Math.min(worst, writers.rate(t, t + 250));
  const stall = writers.events.filter((event) => event.shard === shard && event.endMs >= moveStartMs && event.endMs < endMs).reduce((max, event) => Math.max(max, event.latencyMs), 0);
  return {
    keys,
    round,
    shard,
    from,
    to,
    moveMs: configMs - moveStartMs,
    servedMs: servedAt === undefined ? undefined : servedAt - configMs,
    settledMs: settledAt === undefined ? undefined : settledAt - configMs,
    peerBytes: bytesBefore === undefined || bytesAfter === undefined ? undefined : bytesAfter.bytes - bytesBefore.bytes,
    peerCalls: bytesBefore === undefined || bytesAfter === undefined ? undefined : bytesAfter.calls - bytesBefore.calls,
    dataBytes: keys * (keyIn(shard, `p${keys - 1}`).length + VALUE_BYTES),
    writesPerSecondBefore: writers.rate(moveStartMs - windowMs, moveStartMs),
    writesPerSecondDuring: writers.rate(moveStartMs, Math.max(servedEnd, moveStartMs + 250)),
    writesPerSecondWorst250Ms: worst,
    writesPerSecondAfter: writers.rate(servedEnd, servedEnd + windowMs),
    movedShardStallMs: stall,
  };
}

/**
 * Reads `key` through group `gid`'s servers (a linearizable get through its log) every 10 ms
 * until one answers OK; the time it did, or undefined at `deadlineMs`. A value other than
 * `expected` means the moved shard lost data: that fails the benchmark.
 */
async function waitServed(probe: ShardRpc, config: ShardConfig, gid: number, key: string, expected: string, deadlineMs: number): Promise<number | undefined> {
  const servers = (config.groups.get(gid) ?? []).map((name) => parseShardServerName(name)).filter((name) => name !== undefined);
  if (servers.length === 0) throw new Error(`configuration ${config.num} names no servers for group ${gid}`);
  const request = encodeShardRequest({ kind: 'kv', gid, request: { op: 'get', key, value: '', client: 0, seq: 0 } });
  while (performance.now() < deadlineMs) {
    const replies = await Promise.all(servers.map((server) => probe.call({ host: server.host, port: server.port }, request)));
    for (const bytes of replies) {
      if (bytes === undefined) continue;
      const reply = decodeKvReply(bytes);
      if (reply.err !== 'OK') continue;
      if (reply.value !== expected) throw new Error(`group ${gid} served ${JSON.stringify(key)} as ${JSON.stringify(reply.value.slice(0, 40))}, not the preloaded value`);
      return performance.now();
    }
    await sleep(10);
  }
  return undefined;
}

// =======================================================================================
// Phase 3: fleet efficiency — fsyncs with many writing groups, messages with many idle ones.

interface FleetWriteSample {
  readonly groups: number;
  readonly round: number;
  readonly result: LoadResult;
  /** Writes answered OK (the group owns the key's shard); the rest committed and were answered wrong-group. */
  readonly okWrites: number;
  readonly serverCores: number | undefined;
  /** Per member: counter increases per second. */
  readonly rates: Rates[];
}

interface FleetIdleSample {
  readonly groups: number;
  readonly seconds: number;
  readonly serverCores: number | undefined;
  readonly rates: Rates[];
}

interface FleetReport {
  readonly startup: { groups: number; startupMs?: number; joinMs?: number; error?: string }[];
  readonly writes: FleetWriteSample[];
  readonly idle: FleetIdleSample[];
  readonly loadBefore: string;
  loadAfter?: string;
}

async function runFleet(options: Options, command: ServerCommand, report: Report): Promise<void> {
  const fleet: FleetReport = { startup: [], writes: [], idle: [], loadBefore: describeLoad() };
  report.fleet = fleet;
  console.log(
    `\nfleet: writes with ${FLEET_WRITING_GROUPS.join(', ')} groups (${FLEET_STREAMS} writers), idle with ${FLEET_IDLE_GROUPS.join(', ')} groups (${IDLE_WINDOW_SECONDS} s); one layout at a time; load average ${fleet.loadBefore}`,
  );
  const sizes = [...new Set([...FLEET_WRITING_GROUPS, ...FLEET_IDLE_GROUPS])].sort((a, b) => a - b);
  for (const groups of sizes) {
    const startup: FleetReport['startup'][number] = { groups };
    fleet.startup.push(startup);
    let cluster: ShardCluster | undefined;
    try {
      const started = await ShardCluster.start(`fleet-${groups}`, groups, command);
      cluster = started.cluster;
      startup.startupMs = started.startupMs;
      startup.joinMs = (await cluster.joinAll()).joinMs;
      console.log(`  ${groups} group(s): leaders after ${(started.startupMs / 1000).toFixed(1)} s, joined in ${(startup.joinMs / 1000).toFixed(1)} s`);
      if (FLEET_WRITING_GROUPS.includes(groups)) await fleetWrites(options, cluster, fleet);
      if (FLEET_IDLE_GROUPS.includes(groups)) {
        await sleep(1_000);
        fleet.idle.push(await fleetIdle(cluster));
      }
    } catch (error) {
      startup.error = (error as Error).message.split('\n').slice(0, 6).join('\n');
      console.log(`  ${groups} group(s): failed: ${startup.error}`);
    } finally {
      await cluster?.stop();
    }
  }
  fleet.loadAfter = describeLoad();
}

/** Writes straight to each group's leader, FLEET_STREAMS writers spread over the groups. */
async function fleetWrites(options: Options, cluster: ShardCluster, fleet: FleetReport): Promise<void> {
  const groups = cluster.gids.length;
  const config = await cluster.client().query();
  const rpc = new ShardRpc({ clock: realClock, requestTimeoutMs: 3_000, connectTimeoutMs: 1_000 });
  const endpoints = cluster.endpoints();
  // Each group's leader, as an index into endpoints (members 1, 2, 3); moved on when it refuses.
  const leaderIndex = new Map<number, number>();
  for (const [m, status] of (await cluster.statuses()).entries()) for (const group of status.shards?.groups ?? []) if (group.role === 'leader') leaderIndex.set(group.gid, m);
  let okWrites = 0;
  // With ten shards at most ten groups own one. A write to a group that owns none commits
  // through its log all the same (the owner check is at apply) and is answered wrong-group:
  // the same log append, replication and fsync, which is what this phase counts.
  const op = async (stream: number, i: number): Promise<void> => {
    const gid = cluster.gids[stream % groups]!;
    const owned = config.shards.flatMap((owner, shard) => (owner === gid ? [shard] : []));
    const shard = owned.length > 0 ? owned[i % owned.length]! : i % shardCount;
    const key = keyIn(shard, `f${Math.floor(i / groups) % KEYS_PER_SHARD}`);
    const m = leaderIndex.get(gid) ?? 0;
    const bytes = await rpc.call(endpoints[m]!, encodeShardRequest({ kind: 'kv', gid, request: { op: 'put', key, value: VALUE, client: 0, seq: 0 } }));
    const reply = bytes === undefined ? undefined : decodeKvReply(bytes);
    if (reply?.err === 'OK') okWrites++;
    if (reply?.err === 'OK' || reply?.err === 'ErrWrongGroup') return;
    leaderIndex.set(gid, (m + 1) % endpoints.length);
    throw new Error(`group ${gid} at member ${m + 1}: ${reply === undefined ? 'no answer' : reply.err}`);
  };
  try {
    if (options.warmupSeconds > 0) await closedLoop(FLEET_STREAMS, options.warmupSeconds, op);
    for (let round = 0; round < options.rounds; round++) {
      okWrites = 0;
      const { result, serverCores, rates } = await measure(cluster, FLEET_STREAMS, options.seconds, op);
      fleet.writes.push({ groups, round, result, okWrites, serverCores, rates });
      const syncs = meanOf(rates, 'walSyncs');
      console.log(
        `  ${groups} group(s), round ${round + 1}: ${result.opsPerSecond.toFixed(0)} writes/s, WAL fsyncs/s per member ${syncs === undefined ? 'n/a' : syncs.toFixed(0)}${result.errors > 0 ? `, ${result.errors} errors (${result.firstError})` : ''}`,
      );
    }
  } finally {
    rpc.close();
  }
}

async function fleetIdle(cluster: ShardCluster): Promise<FleetIdleSample> {
  const before = await readCounters(cluster);
  const cpuBefore = await totalCpuSeconds(cluster.pids());
  const startMs = performance.now();
  await sleep(IDLE_WINDOW_SECONDS * 1000);
  const after = await readCounters(cluster);
  const cpuAfter = await totalCpuSeconds(cluster.pids());
  const seconds = (performance.now() - startMs) / 1000;
  const sample = {
    groups: cluster.gids.length,
    seconds,
    serverCores: cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / seconds,
    rates: ratesPerSecond(before, after, seconds),
  };
  const messages = meanOf(sample.rates, 'peerMessages');
  console.log(`  ${sample.groups} idle group(s): peer messages/s per member ${messages === undefined ? 'n/a' : messages.toFixed(0)}`);
  return sample;
}

// =======================================================================================
// The report.

interface Report {
  readonly benchmark: 'shards';
  readonly startedAt: string;
  readonly cores: number;
  readonly server: string;
  readonly options: Omit<Options, 'phases'> & { phases: PhaseName[] };
  readonly loadBefore: string;
  loadAfter?: string;
  scaling?: ScalingReport;
  migration?: MigrationReport;
  fleet?: FleetReport;
  error?: string;
}

export async function run(args: string[]): Promise<void> {
  const options = parseArgs(args);
  const command = serverCommand();
  const report: Report = {
    benchmark: 'shards',
    startedAt: new Date().toISOString(),
    cores: coreCount,
    server: command.label,
    options: { ...options, phases: [...options.phases] },
    loadBefore: describeLoad(),
  };
  console.log(`shards: ${coreCount} cores, load average ${report.loadBefore}; members run ${command.label}`);
  let interrupted = false;
  const stopAll = () => Promise.allSettled([...running].map((cluster) => cluster.stop()));
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${signal}: stopping every process this benchmark started; no table`);
    void stopAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (options.phases.has('scaling')) await runScaling(options, command, report);
    if (options.phases.has('migration')) await runMigration(options, command, report);
    if (options.phases.has('fleet')) await runFleet(options, command, report);
  } catch (error) {
    report.error = (error as Error).stack ?? String(error);
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
    report.loadAfter = describeLoad();
    if (!interrupted) {
      printTables(report);
      await mkdir(dirname(options.out), { recursive: true });
      await writeFile(options.out, `${JSON.stringify(report, null, 2)}\n`);
      console.log(`saved ${options.out}`);
    }
  }
}

// =======================================================================================
// Tables.

function fixed(value: number | undefined, digits = 0, width = 8): string {
  return (value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(digits)).padStart(width);
}

function ratio(value: number | undefined, base: number | undefined, width = 7): string {
  if (value === undefined || base === undefined || Number.isNaN(value) || Number.isNaN(base) || base === 0) return 'n/a'.padStart(width);
  return `${(value / base).toFixed(2)}×`.padStart(width);
}

function describeMs(ms: number | undefined): string {
  return ms === undefined ? 'never (timed out)' : `${ms.toFixed(0)} ms`;
}

/** The median of the defined values; undefined if there are none. */
function medianOf(values: readonly (number | undefined)[]): number | undefined {
  const defined = values.filter((value): value is number => value !== undefined);
  return defined.length === 0 ? undefined : median(defined);
}

function printTables(report: Report): void {
  console.log(`\n== shards: ${report.cores} cores; load average before ${report.loadBefore}, after ${report.loadAfter} ==`);
  if (report.scaling !== undefined) printScaling(report.scaling);
  if (report.migration !== undefined) printMigration(report.migration);
  if (report.fleet !== undefined) printFleet(report.fleet);
}

function printScaling(scaling: ScalingReport): void {
  console.log(`\nthroughput scaling (medians over rounds; load average ${scaling.loadBefore} before, ${scaling.loadAfter ?? '?'} after)`);
  console.log('groups | startup s | writes/s | × 1 group | p50 ms | p99 ms | errors | log saves/s per member | mean save ms | server cores | client cores');
  const rows = SCALING_GROUPS.map((groups) => {
    const samples = scaling.samples.filter((sample) => sample.groups === groups);
    return {
      groups,
      opsPerSecond: medianOf(samples.map((s) => s.result.opsPerSecond)),
      p50: medianOf(samples.map((s) => s.result.p50Ms)),
      p99: medianOf(samples.map((s) => s.result.p99Ms)),
      errors: samples.reduce((sum, s) => sum + s.result.errors, 0),
      saves: medianOf(samples.map((s) => meanOf(s.rates, 'logSaves'))),
      saveMs: medianOf(samples.map((s) => meanSaveMs(s.rates))),
      serverCores: medianOf(samples.map((s) => s.serverCores)),
      clientCores: medianOf(samples.map((s) => s.clientCores)),
    };
  });
  const base = rows[0]?.opsPerSecond;
  for (const row of rows) {
    const startup = scaling.startupMs[row.groups];
    console.log(
      `${String(row.groups).padStart(6)} | ${fixed(startup === undefined ? undefined : startup / 1000, 1, 9)} | ${fixed(row.opsPerSecond, 0)} | ${ratio(row.opsPerSecond, base, 9)} | ${fixed(row.p50, 1, 6)} | ${fixed(row.p99, 1, 6)} | ${String(row.errors).padStart(6)} | ${fixed(row.saves, 0, 22)} | ${fixed(row.saveMs, 2, 12)} | ${fixed(row.serverCores, 2, 12)} | ${fixed(row.clientCores, 2, 12)}`,
    );
  }
}

function printMigration(migration: MigrationReport): void {
  console.log(`\nmigration cost (medians over moves; load average ${migration.loadBefore} before, ${migration.loadAfter ?? '?'} after)`);
  console.log('keys | moves | config→served ms | config→old copy deleted ms | peer bytes | × data | writes/s before | during (× before) | worst 250 ms (×) | after (×) | moved-shard stall ms');
  for (const keys of MIGRATION_KEYS) {
    const samples = migration.samples.filter((sample) => sample.keys === keys);
    if (samples.length === 0) {
      console.log(`${String(keys).padStart(5)} | not measured`);
      continue;
    }
    const before = medianOf(samples.map((s) => s.writesPerSecondBefore));
    const bytes = medianOf(samples.map((s) => s.peerBytes));
    const served = samples.filter((s) => s.servedMs !== undefined);
    console.log(
      [
        String(keys).padStart(5),
        `${served.length}/${samples.length}`.padStart(5),
        fixed(medianOf(samples.map((s) => s.servedMs)), 0, 16),
        fixed(medianOf(samples.map((s) => s.settledMs)), 0, 26),
        fixed(bytes, 0, 10),
        ratio(bytes, samples[0]!.dataBytes, 6),
        fixed(before, 0, 15),
        `${fixed(medianOf(samples.map((s) => s.writesPerSecondDuring)), 0, 6)} (${ratio(medianOf(samples.map((s) => s.writesPerSecondDuring / s.writesPerSecondBefore)), 1, 6)})`.padStart(17),
        `${fixed(medianOf(samples.map((s) => s.writesPerSecondWorst250Ms)), 0, 6)} (${ratio(medianOf(samples.map((s) => s.writesPerSecondWorst250Ms / s.writesPerSecondBefore)), 1, 6)})`.padStart(16),
        `${fixed(medianOf(samples.map((s) => s.writesPerSecondAfter)), 0, 6)} (${ratio(medianOf(samples.map((s) => s.writesPerSecondAfter / s.writesPerSecondBefore)), 1, 6)})`.padStart(9),
        fixed(medianOf(samples.map((s) => s.movedShardStallMs)), 0, 20),
      ].join(' | '),
    );
  }
  if (migration.writerErrors !== undefined && migration.writerErrors > 0) console.log(`writer errors during the phase: ${migration.writerErrors}`);
  if (migration.error !== undefined) console.log(`stopped early: ${migration.error}`);
}

function printFleet(fleet: FleetReport): void {
  console.log(`\nfleet: writing groups (medians over rounds; per member = mean of the three members; load average ${fleet.loadBefore} before, ${fleet.loadAfter ?? '?'} after)`);
  console.log('groups | startup s | writes/s | OK share | log saves/s per member (× 1 group) | mean save ms | WAL fsyncs/s per member (× 1 group) | fsyncs per write | server cores');
  const writeRows = FLEET_WRITING_GROUPS.map((groups) => {
    const samples = fleet.writes.filter((sample) => sample.groups === groups);
    const writes = medianOf(samples.map((s) => s.result.opsPerSecond));
    const syncs = medianOf(samples.map((s) => meanOf(s.rates, 'walSyncs')));
    return {
      groups,
      samples,
      writes,
      okShare: medianOf(samples.map((s) => (s.result.ops === 0 ? undefined : s.okWrites / s.result.ops))),
      saves: medianOf(samples.map((s) => meanOf(s.rates, 'logSaves'))),
      saveMs: medianOf(samples.map((s) => meanSaveMs(s.rates))),
      syncs,
      syncsPerWrite: syncs === undefined || writes === undefined ? undefined : syncs / writes,
      serverCores: medianOf(samples.map((s) => s.serverCores)),
    };
  });
  const startupOf = (groups: number) => fleet.startup.find((s) => s.groups === groups);
  const baseRow = writeRows[0];
  for (const row of writeRows) {
    const startup = startupOf(row.groups);
    if (row.samples.length === 0) {
      console.log(`${String(row.groups).padStart(6)} | not measured${startup?.error === undefined ? '' : `: ${startup.error.split('\n')[0]}`}`);
      continue;
    }
    console.log(
      [
        String(row.groups).padStart(6),
        fixed(startup?.startupMs === undefined ? undefined : startup.startupMs / 1000, 1, 9),
        fixed(row.writes, 0),
        `${fixed(row.okShare === undefined ? undefined : row.okShare * 100, 0, 7)}%`,
        `${fixed(row.saves, 0, 8)} (${ratio(row.saves, baseRow?.saves)})`.padStart(35),
        fixed(row.saveMs, 2, 12),
        `${fixed(row.syncs, 0, 8)} (${ratio(row.syncs, baseRow?.syncs)})`.padStart(35),
        fixed(row.syncsPerWrite, 3, 16),
        fixed(row.serverCores, 2, 12),
      ].join(' | '),
    );
  }
  console.log(`\nfleet: idle groups, ${IDLE_WINDOW_SECONDS} s window (per member = mean of the three members)`);
  console.log('groups | startup s | peer messages/s per member (× 1 group) | peer frames/s per member (×) | peer bytes/s per member (×) | server cores');
  const baseIdle = fleet.idle.find((sample) => sample.groups === FLEET_IDLE_GROUPS[0]);
  for (const groups of FLEET_IDLE_GROUPS) {
    const sample = fleet.idle.find((s) => s.groups === groups);
    const startup = startupOf(groups);
    if (sample === undefined) {
      console.log(`${String(groups).padStart(6)} | not measured${startup?.error === undefined ? '' : `: ${startup.error.split('\n')[0]}`}`);
      continue;
    }
    const column = (key: CounterName, width: number) =>
      `${fixed(meanOf(sample.rates, key), 0, 8)} (${ratio(meanOf(sample.rates, key), baseIdle === undefined ? undefined : meanOf(baseIdle.rates, key))})`.padStart(width);
    console.log(
      [
        String(groups).padStart(6),
        fixed(startup?.startupMs === undefined ? undefined : startup.startupMs / 1000, 1, 9),
        column('peerMessages', 39),
        column('peerFrames', 28),
        column('peerBytes', 27),
        fixed(sample.serverCores, 2, 12),
      ].join(' | '),
    );
  }
}
