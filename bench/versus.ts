// `npm run bench -- versus [--seconds N] [--rounds N] [--trials N] [--sizes 256,1024]
// [--only zk,kv,etcd,failover-zk,failover-kv] [--force] [--out FILE]`: Flotilla side by side with
// the systems it stands in for, in one run on this machine (issue 15 §1):
//
//   - a three-server Apache ZooKeeper 3.8 ensemble (Debian's `zookeeper`, forceSync=yes)
//     against the ZooKeeper port of a three-member Flotilla cluster, both driven by the same
//     load generator (node-zookeeper-client);
//   - a three-member etcd 3.4 cluster (Debian's `etcd-server`, driven by the `etcd3` gRPC
//     client) against Flotilla's native key/value port (FlotillaClient), and against
//     Flotilla's etcd v3 API driven by the very same etcd3 client (phase `etcd`);
//   - failover: the leader is killed (kill -9, then SIGSTOP) while a client writes every
//     10 ms through the survivors; how long until writes succeed again.
//
// All three clusters are real processes on 127.0.0.1 with temporary data directories, kept up
// together for the whole run. Each workload alternates between the two systems (round r runs
// the other system first when r is even, Flotilla first when odd) and the table shows medians
// over the rounds and the ratios Flotilla / other (STYLE.md 19). The load average is printed
// around every phase; a phase does not start on a machine whose 1-minute load average is
// above LOAD_FACTOR × cores (after waiting a little for it to fall) unless --force is given.
// The results, every round included, are saved as JSON under bench-results/.
//
// Installs nothing: it needs `apt-get install zookeeper etcd-server etcd-client` and a built
// checkout (`npm run build`: the members run `node bin/flotilla.js server`).
//
// Every process started here runs under a guard (common.ts) that kills it when this process
// exits, however it exits; on an error or Ctrl-C the clusters are stopped and removed first.

import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3, type IOptions } from 'etcd3';
import type zookeeper from 'node-zookeeper-client';
import { FlotillaClient } from '../src/server/client.js';
import { freePorts } from '../test/server/helpers.js';
import { fourLetter, JAVA_PATH, ZOOKEEPER_JAR_PATH } from '../test/zk/real-zookeeper.js';
import {
  closedLoop,
  connectZk,
  coreCount,
  describeLoad,
  type GuardedProcess,
  type LoadResult,
  median,
  removeOnExit,
  sampleBusyFraction,
  sleep,
  spawnGuarded,
  zkCreate,
  zkGetData,
  zkSetData,
} from './common.js';

const checkout = fileURLToPath(new URL('..', import.meta.url));
const FLOTILLA_BIN = join(checkout, 'bin', 'flotilla.js');
const FLOTILLA_MAIN = join(checkout, 'dist', 'src', 'cli', 'main.js');
const ETCD_PATH = '/usr/bin/etcd';
const SLF4J_SIMPLE_JAR_PATH = '/usr/share/java/slf4j-simple.jar';

const MEMBER_IDS = [1, 2, 3] as const;
/** Sessions (connections) the concurrent workloads spread their clients over. */
const CONNECTIONS = 8;
/** A phase waits for the 1-minute load average to fall below LOAD_FACTOR × cores. */
const LOAD_FACTOR = 1.5;
/** With the clusters idle, more CPU busy than this means another load shares the machine. */
const BUSY_FRACTION_MAX = 0.25;
const START_TIMEOUT_MS = 90_000;
const HEALTHY_TIMEOUT_MS = 120_000;
const RESTART_ATTEMPTS_MAX = 3;
const RESTART_SETTLE_MS = 1_000;
const FAILOVER_WRITE_INTERVAL_MS = 10;
/** Writes of the failover client still waiting for their answer; no more are issued beyond. */
const FAILOVER_OUTSTANDING_MAX = 2_000;
/** Successful writes the failover client must see before the leader is killed. */
const FAILOVER_WRITES_BEFORE = 20;
const FAILOVER_WARM_TIMEOUT_MS = 20_000;
/** ZooKeeper's own defaults (Debian's zoo.cfg): a stopped leader is noticed after syncLimit × tickTime. */
const ZK_TICK_TIME_MS = 2_000;
const ZK_INIT_LIMIT = 10;
const ZK_SYNC_LIMIT = 5;
/** The Flotilla client's wait for one reply in the failover trials (default 5000): a stopped leader keeps the connection open. */
const FLOTILLA_FAILOVER_REQUEST_TIMEOUT_MS = 1_000;

type PhaseName = 'zk' | 'kv' | 'etcd' | 'failover-zk' | 'failover-kv';
const PHASES: readonly PhaseName[] = ['zk', 'kv', 'etcd', 'failover-zk', 'failover-kv'];

interface Options {
  seconds: number;
  rounds: number;
  warmupSeconds: number;
  trials: number;
  sizes: number[];
  phases: Set<PhaseName>;
  force: boolean;
  loadWaitSeconds: number;
  failoverTimeoutSeconds: number;
  out: string;
}

function parseArgs(args: readonly string[]): Options {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const options: Options = {
    seconds: 4,
    rounds: 3,
    warmupSeconds: 1,
    trials: 5,
    sizes: [256],
    phases: new Set(PHASES),
    force: false,
    loadWaitSeconds: 30,
    failoverTimeoutSeconds: 60,
    out: join('bench-results', `versus-${stamp}.json`),
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    if (flag === '--force') {
      options.force = true;
      continue;
    }
    const value = args[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    const number = Number(value);
    if (flag === '--seconds') options.seconds = positive(flag, number);
    else if (flag === '--rounds') options.rounds = Math.max(1, Math.round(positive(flag, number)));
    else if (flag === '--warmup-seconds') options.warmupSeconds = number >= 0 ? number : positive(flag, number);
    else if (flag === '--trials') options.trials = Math.max(1, Math.round(positive(flag, number)));
    else if (flag === '--sizes') options.sizes = value.split(',').map((size) => Math.round(positive(flag, Number(size))));
    else if (flag === '--only') options.phases = new Set(value.split(',').flatMap((name) => phasesNamed(name)));
    else if (flag === '--load-wait-seconds') options.loadWaitSeconds = number >= 0 ? number : positive(flag, number);
    else if (flag === '--failover-timeout-seconds') options.failoverTimeoutSeconds = positive(flag, number);
    else if (flag === '--out') options.out = value;
    else
      throw new Error(`unknown option ${flag} (--seconds, --rounds, --warmup-seconds, --trials, --sizes, --only ${PHASES.join(',')}, --force, --load-wait-seconds, --failover-timeout-seconds, --out)`);
  }
  return options;
}

function positive(flag: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${flag} needs a positive number`);
  return value;
}

function phasesNamed(name: string): PhaseName[] {
  if (name === 'failover') return ['failover-zk', 'failover-kv'];
  if ((PHASES as readonly string[]).includes(name)) return [name as PhaseName];
  throw new Error(`--only: unknown phase ${name} (${PHASES.join(', ')}, failover)`);
}

// =======================================================================================
// The clusters: three guarded processes each, on ports picked free, with temporary data.

interface ProcessCommand {
  readonly command: string;
  readonly args: readonly string[];
}

abstract class Cluster {
  protected readonly members = new Map<number, GuardedProcess>();

  constructor(
    readonly name: string,
    readonly root: string,
  ) {
    removeOnExit(root);
  }

  protected abstract command(id: number): ProcessCommand;
  /** undefined when every member serves and all agree on one leader; otherwise what is missing. */
  protected abstract probeUnhealthy(): Promise<string | undefined>;

  async start(): Promise<void> {
    await Promise.all(MEMBER_IDS.map((id) => this.startMember(id)));
    await this.waitHealthy(START_TIMEOUT_MS);
  }

  private async startMember(id: number): Promise<void> {
    const { command, args } = this.command(id);
    this.members.set(id, await spawnGuarded(command, args, { dir: this.root }));
  }

  async waitHealthy(timeoutMs = HEALTHY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let reason: string | undefined = 'not probed';
    while (Date.now() < deadline) {
      const dead = MEMBER_IDS.find((id) => this.members.get(id)?.isRunning() !== true);
      if (dead !== undefined) throw new Error(`${this.name}: member ${dead} exited:\n${this.members.get(dead)?.describeOutput() ?? ''}`);
      reason = await this.probeUnhealthy().catch((error: Error) => error.message);
      if (reason === undefined) return;
      await sleep(100);
    }
    const outputs = MEMBER_IDS.map((id) => `--- member ${id}:\n${this.members.get(id)?.describeOutput() ?? ''}`).join('\n');
    throw new Error(`${this.name} not healthy within ${timeoutMs} ms: ${reason}\n${outputs}`);
  }

  signal(id: number, signal: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): void {
    this.members.get(id)?.signal(signal);
  }

  /** Starts member `id` again on its data and ports, after it was killed. */
  async restart(id: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.members.get(id)?.stop();
      await this.startMember(id);
      // A member that dies at once may have met a half-built dist/ (another `npm run build`).
      await sleep(RESTART_SETTLE_MS);
      if (this.members.get(id)?.isRunning() === true) return;
      if (attempt === RESTART_ATTEMPTS_MAX) throw new Error(`${this.name}: member ${id} exits at once after a restart:\n${this.members.get(id)?.describeOutput() ?? ''}`);
      console.log(`  (${this.name} member ${id} exited at once after its restart; trying again)`);
      await sleep(RESTART_SETTLE_MS);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.members.values()].map((member) => member.stop()));
    await rm(this.root, { recursive: true, force: true });
  }
}

/** Three QuorumPeerMain JVMs, forceSync=yes, ZooKeeper's default timing. */
class ZooKeeperEnsemble extends Cluster {
  private constructor(
    root: string,
    private readonly clientPorts: readonly number[],
    private readonly quorumPorts: readonly number[],
  ) {
    super('zookeeper', root);
  }

  static async create(): Promise<ZooKeeperEnsemble> {
    const root = await mkdtemp(join(tmpdir(), 'flotilla-versus-zk-'));
    const ports = await freePorts(3 * MEMBER_IDS.length);
    const ensemble = new ZooKeeperEnsemble(root, ports.slice(0, 3), ports.slice(3));
    for (const id of MEMBER_IDS) await ensemble.writeConfig(id);
    return ensemble;
  }

  private async writeConfig(id: number): Promise<void> {
    const dir = join(this.root, `m${id}`);
    await mkdir(join(dir, 'data'), { recursive: true });
    await writeFile(join(dir, 'data', 'myid'), `${id}\n`);
    const lines = [
      `tickTime=${ZK_TICK_TIME_MS}`,
      `initLimit=${ZK_INIT_LIMIT}`,
      `syncLimit=${ZK_SYNC_LIMIT}`,
      `dataDir=${join(dir, 'data')}`,
      `clientPort=${this.clientPorts[id - 1]}`,
      'clientPortAddress=127.0.0.1',
      '4lw.commands.whitelist=*',
      'admin.enableServer=false',
      'maxClientCnxns=0',
      'forceSync=yes',
      ...MEMBER_IDS.map((other) => `server.${other}=127.0.0.1:${this.quorumPorts[2 * (other - 1)]}:${this.quorumPorts[2 * (other - 1) + 1]}`),
    ];
    await writeFile(join(dir, 'zoo.cfg'), `${lines.join('\n')}\n`);
  }

  protected command(id: number): ProcessCommand {
    const classPath = [ZOOKEEPER_JAR_PATH, ...(existsSync(SLF4J_SIMPLE_JAR_PATH) ? [SLF4J_SIMPLE_JAR_PATH] : [])].join(':');
    const args = [
      '-Xmx1g',
      '-XX:-UsePerfData',
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      '-cp',
      classPath,
      'org.apache.zookeeper.server.quorum.QuorumPeerMain',
      join(this.root, `m${id}`, 'zoo.cfg'),
    ];
    return { command: JAVA_PATH, args };
  }

  address(id: number): string {
    return `127.0.0.1:${this.clientPorts[id - 1]}`;
  }

  async mode(id: number): Promise<string> {
    const answer = await fourLetter('127.0.0.1', this.clientPorts[id - 1]!, 'srvr', 2_000);
    return /^Mode: (\S+)/m.exec(answer)?.[1] ?? `no Mode in ${JSON.stringify(answer.slice(0, 80))}`;
  }

  async version(): Promise<string> {
    const answer = await fourLetter('127.0.0.1', this.clientPorts[0]!, 'srvr', 2_000);
    // Debian's build leaves the git placeholder in: "3.8.0-${mvngit.commit.id}".
    return /^Zookeeper version: ([^,\n]+)/m.exec(answer)?.[1]?.replace(/-\$\{mvngit\.commit\.id\}$/, '') ?? 'unknown';
  }

  async leader(): Promise<number> {
    const modes = await Promise.all(MEMBER_IDS.map((id) => this.mode(id)));
    const leaders = MEMBER_IDS.filter((_, i) => modes[i] === 'leader');
    if (leaders.length !== 1) throw new Error(`zookeeper: ${leaders.length} leaders (modes ${modes.join(', ')})`);
    return leaders[0]!;
  }

  protected async probeUnhealthy(): Promise<string | undefined> {
    const modes = await Promise.all(MEMBER_IDS.map((id) => this.mode(id)));
    const serving = modes.every((mode) => mode === 'leader' || mode === 'follower');
    return serving && modes.filter((mode) => mode === 'leader').length === 1 ? undefined : `modes ${modes.join(', ')}`;
  }
}

/** Three etcd members with their default timing (heartbeat 100 ms, election 1000 ms). */
class EtcdCluster extends Cluster {
  private constructor(
    root: string,
    private readonly clientPorts: readonly number[],
    private readonly peerPorts: readonly number[],
  ) {
    super('etcd', root);
  }

  static async create(): Promise<EtcdCluster> {
    const root = await mkdtemp(join(tmpdir(), 'flotilla-versus-etcd-'));
    const ports = await freePorts(2 * MEMBER_IDS.length);
    return new EtcdCluster(root, ports.slice(0, 3), ports.slice(3));
  }

  protected command(id: number): ProcessCommand {
    const peerUrl = (other: number) => `http://127.0.0.1:${this.peerPorts[other - 1]}`;
    const args = [
      `--name=m${id}`,
      `--data-dir=${join(this.root, `m${id}`)}`,
      `--listen-client-urls=${this.url(id)}`,
      `--advertise-client-urls=${this.url(id)}`,
      `--listen-peer-urls=${peerUrl(id)}`,
      `--initial-advertise-peer-urls=${peerUrl(id)}`,
      `--initial-cluster=${MEMBER_IDS.map((other) => `m${other}=${peerUrl(other)}`).join(',')}`,
      `--initial-cluster-token=versus-${process.pid}`,
      '--initial-cluster-state=new',
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn',
    ];
    return { command: ETCD_PATH, args };
  }

  url(id: number): string {
    return `http://127.0.0.1:${this.clientPorts[id - 1]}`;
  }

  async version(): Promise<string> {
    const response = await fetch(`${this.url(1)}/version`);
    return ((await response.json()) as { etcdserver?: string }).etcdserver ?? 'unknown';
  }

  /** The member's view through the gateway: its own id and the leader's (decimal strings). */
  private async status(id: number): Promise<{ self: string; leader: string }> {
    const response = await fetch(`${this.url(id)}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(2_000) });
    const body = (await response.json()) as { header?: { member_id?: string }; leader?: string };
    return { self: body.header?.member_id ?? '?', leader: body.leader ?? '0' };
  }

  async leader(): Promise<number> {
    const statuses = await Promise.all(MEMBER_IDS.map((id) => this.status(id)));
    const index = statuses.findIndex((status) => status.self === status.leader);
    if (index < 0 || statuses.some((status) => status.leader !== statuses[index]!.leader)) throw new Error('etcd: no leader every member agrees on');
    return MEMBER_IDS[index]!;
  }

  protected async probeUnhealthy(): Promise<string | undefined> {
    const health = await Promise.all(
      MEMBER_IDS.map(async (id) => {
        const response = await fetch(`${this.url(id)}/health`, { signal: AbortSignal.timeout(2_000) });
        return ((await response.json()) as { health?: string }).health === 'true';
      }),
    );
    if (!health.every(Boolean)) return `health ${health.join(', ')}`;
    await this.leader();
    return undefined;
  }
}

interface FlotillaStatus {
  role: string;
  leader: number;
  term: number;
  zk: { role: string; leader: number; term: number };
  etcd: { role: string; leader: number; term: number };
}

/** Three `node bin/flotilla.js server` members with their defaults (tick 100 ms, zk tick 2000 ms). */
class FlotillaCluster extends Cluster {
  private constructor(
    root: string,
    private readonly ports: readonly number[],
  ) {
    super('flotilla', root);
  }

  static async create(): Promise<FlotillaCluster> {
    if (!existsSync(FLOTILLA_MAIN)) throw new Error(`the compiled flotilla command is missing (${FLOTILLA_MAIN}): run \`npm run build\` first`);
    const root = await mkdtemp(join(tmpdir(), 'flotilla-versus-flotilla-'));
    await writeFile(join(root, 'cluster.env'), `FLOTILLA_CLUSTER_SECRET=versus-${process.pid}-0123456789abcdef\n`, { mode: 0o600 });
    return new FlotillaCluster(root, await freePorts(5 * MEMBER_IDS.length));
  }

  private port(id: number, kind: 'peer' | 'client' | 'admin' | 'zk' | 'etcd'): number {
    const offset = { peer: 0, client: 1, admin: 2, zk: 3, etcd: 4 }[kind];
    return this.ports[5 * (id - 1) + offset]!;
  }

  protected command(id: number): ProcessCommand {
    const peers = MEMBER_IDS.map((other) => `${other}=127.0.0.1:${this.port(other, 'peer')}`).join(',');
    const args = [
      FLOTILLA_BIN,
      'server',
      '--id',
      String(id),
      '--peers',
      peers,
      '--data',
      join(this.root, `m${id}`),
      '--client-port',
      String(this.port(id, 'client')),
      '--admin-port',
      String(this.port(id, 'admin')),
      '--zk-port',
      String(this.port(id, 'zk')),
      '--etcd-port',
      String(this.port(id, 'etcd')),
      '--cluster-secret-file',
      join(this.root, 'cluster.env'),
      '--log-level',
      'warn',
    ];
    return { command: process.execPath, args };
  }

  zkAddress(id: number): string {
    return `127.0.0.1:${this.port(id, 'zk')}`;
  }

  /** Flotilla's etcd v3 API (the same gRPC service etcd serves). */
  etcdUrl(id: number): string {
    return `http://127.0.0.1:${this.port(id, 'etcd')}`;
  }

  clientEndpoint(id: number): { host: string; port: number } {
    return { host: '127.0.0.1', port: this.port(id, 'client') };
  }

  async status(id: number): Promise<FlotillaStatus> {
    const response = await fetch(`http://127.0.0.1:${this.port(id, 'admin')}/status`, { signal: AbortSignal.timeout(2_000) });
    return (await response.json()) as FlotillaStatus;
  }

  async zkMode(id: number): Promise<string> {
    const answer = await fourLetter('127.0.0.1', this.port(id, 'zk'), 'srvr', 2_000);
    return /^Mode: (\S+)/m.exec(answer)?.[1] ?? 'none';
  }

  /** The leader of the key/value, ZooKeeper or etcd group (elected independently). */
  async leader(group: 'kv' | 'zk' | 'etcd'): Promise<number> {
    const statuses = await Promise.all(MEMBER_IDS.map((id) => this.status(id)));
    const views = statuses.map((status) => (group === 'kv' ? status : group === 'zk' ? status.zk : status.etcd));
    const index = views.findIndex((view) => view.role === 'leader');
    if (index < 0 || views.some((view) => view.leader !== MEMBER_IDS[index] || view.term !== views[index]!.term)) throw new Error(`flotilla: no ${group} leader every member agrees on`);
    return MEMBER_IDS[index]!;
  }

  protected async probeUnhealthy(): Promise<string | undefined> {
    await this.leader('kv');
    await this.leader('zk');
    await this.leader('etcd');
    return undefined;
  }
}

// =======================================================================================
// What the workloads drive: a ZooKeeper-protocol target, a key/value target.

interface ZkTarget {
  readonly label: string;
  readonly cluster: Cluster;
  address(id: number): string;
  leader(): Promise<number>;
}

interface KvDriver {
  put(key: string, value: Buffer): Promise<unknown>;
  get(key: string): Promise<unknown>;
  close(): void;
}

interface KvTarget {
  readonly label: string;
  readonly cluster: Cluster;
  leader(): Promise<number>;
  /** A client whose endpoints are `ids`; `failover` configures it to give up on a silent member sooner. */
  connect(ids: readonly number[], failover: boolean): KvDriver;
}

type EtcdPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/**
 * A fault-handling policy that only runs the call: etcd3's default circuit breaker stops
 * sending to a member for 5 s after three failures, which would time the client's breaker
 * instead of etcd's failover. Only execute() is used by etcd3's connection pool.
 */
const passThroughPolicy = {
  execute: async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T) => fn({ signal: new AbortController().signal }),
} as unknown as EtcdPolicy;

function etcdTarget(cluster: EtcdCluster): KvTarget {
  return etcdClientTarget(
    'etcd',
    cluster,
    () => cluster.leader(),
    (id) => cluster.url(id),
  );
}

/** Flotilla's etcd v3 API driven by the very same etcd3 client as etcd. */
function flotillaEtcdTarget(cluster: FlotillaCluster): KvTarget {
  return etcdClientTarget(
    'flotilla',
    cluster,
    () => cluster.leader('etcd'),
    (id) => cluster.etcdUrl(id),
  );
}

function etcdClientTarget(label: string, cluster: Cluster, leader: () => Promise<number>, url: (id: number) => string): KvTarget {
  return {
    label,
    cluster,
    leader,
    connect: (ids, failover) => {
      const client = new Etcd3({
        hosts: ids.map(url),
        ...(failover ? { faultHandling: { host: () => passThroughPolicy, global: passThroughPolicy } } : {}),
      });
      return {
        put: (key, value) => {
          const put = client.put(key).value(value);
          return failover ? put.options({ deadline: Date.now() + 10_000 }).exec() : put.exec();
        },
        get: (key) => client.get(key).buffer(),
        close: () => client.close(),
      };
    },
  };
}

function flotillaKvTarget(cluster: FlotillaCluster): KvTarget {
  return {
    label: 'flotilla',
    cluster,
    leader: () => cluster.leader('kv'),
    connect: (ids, failover) => {
      const client = new FlotillaClient({
        endpoints: ids.map((id) => cluster.clientEndpoint(id)),
        ...(failover ? { requestTimeoutMs: FLOTILLA_FAILOVER_REQUEST_TIMEOUT_MS } : {}),
      });
      return {
        put: (key, value) => client.put(key, value),
        get: (key) => client.get(key),
        close: () => client.close(),
      };
    },
  };
}

// =======================================================================================
// Measurements, alternating between the two systems.

interface Measurement {
  readonly workload: string;
  readonly valueBytes: number;
  readonly system: string;
  /** 0-based; -1 for the warm-up. */
  readonly round: number;
  readonly loadAverage1: number;
  readonly result: LoadResult;
}

interface Workload<T> {
  readonly key: string;
  readonly label: string;
  run(target: T, valueBytes: number, seconds: number): Promise<LoadResult>;
}

interface Report {
  readonly options: Omit<Options, 'phases'> & { phases: PhaseName[] };
  readonly startedAt: string;
  readonly cores: number;
  readonly versions: Record<string, string>;
  readonly settings: Record<string, string>;
  readonly loadTimeline: { phase: string; when: 'before' | 'after'; atMs: number; loadAverage: number[]; busyFraction?: number }[];
  readonly measurements: Measurement[];
  readonly failovers: FailoverTrial[];
  forced: boolean;
  refused?: string;
  error?: string;
}

/** Runs `workload` on `a` and `b` for every round, the first system alternating (after a warm-up of both). */
async function alternate<T extends { label: string }>(report: Report, workload: Workload<T>, a: T, b: T, valueBytes: number, options: Options): Promise<void> {
  if (options.warmupSeconds > 0) {
    for (const target of [a, b]) await workload.run(target, valueBytes, options.warmupSeconds);
  }
  for (let round = 0; round < options.rounds; round++) {
    for (const target of round % 2 === 0 ? [a, b] : [b, a]) {
      const result = await workload.run(target, valueBytes, options.seconds);
      report.measurements.push({ workload: workload.key, valueBytes, system: target.label, round, loadAverage1: loadavg()[0]!, result });
      const errors = result.errors > 0 ? `, ${result.errors} errors (${result.firstError})` : '';
      console.log(
        `  ${workload.label} [${valueBytes} B] round ${round + 1} ${target.label}: ${result.opsPerSecond.toFixed(0)} ops/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, client ${result.clientCpuUsPerOp.toFixed(0)} µs CPU/op${errors}`,
      );
    }
  }
}

/** `count` ZooKeeper sessions, the i-th to the i-th of `addresses` (cyclically). */
async function zkSessions(addresses: readonly string[], count: number): Promise<zookeeper.Client[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => connectZk(addresses[i % addresses.length]!)));
}

/** Makes /versus/s-0 … s-(streams-1) hold `value`, spread over the sessions. */
async function prepareZnodes(sessions: readonly zookeeper.Client[], streams: number, value: Buffer): Promise<void> {
  await zkCreate(sessions[0]!, '/versus', Buffer.alloc(0), { existsOk: true });
  await Promise.all(
    Array.from({ length: streams }, async (_, s) => {
      const session = sessions[s % sessions.length]!;
      await zkCreate(session, `/versus/s-${s}`, value, { existsOk: true });
      await zkSetData(session, `/versus/s-${s}`, value);
    }),
  );
}

/** A ZooKeeper workload: `streams` clients over sessions to the leader, a follower, or every member. */
function zkWorkload(key: string, label: string, op: 'set' | 'get', streams: number, via: 'leader' | 'follower' | 'spread'): Workload<ZkTarget> {
  return {
    key,
    label,
    run: async (target, valueBytes, seconds) => {
      const leader = await target.leader();
      const ids = via === 'leader' ? [leader] : via === 'follower' ? MEMBER_IDS.filter((id) => id !== leader).slice(0, 1) : [...MEMBER_IDS];
      const sessions = await zkSessions(
        ids.map((id) => target.address(id)),
        via === 'spread' ? CONNECTIONS : 1,
      );
      try {
        const value = Buffer.alloc(valueBytes, 'v');
        await prepareZnodes(sessions, streams, value);
        return await closedLoop(streams, seconds, (s) => {
          const session = sessions[s % sessions.length]!;
          return op === 'set' ? zkSetData(session, `/versus/s-${s}`, value) : zkGetData(session, `/versus/s-${s}`);
        });
      } finally {
        for (const session of sessions) session.close();
      }
    },
  };
}

const ZK_WORKLOADS: readonly Workload<ZkTarget>[] = [
  zkWorkload('zk-set-1-leader', 'setData, 1 client → leader', 'set', 1, 'leader'),
  zkWorkload('zk-set-1-follower', 'setData, 1 client → follower', 'set', 1, 'follower'),
  zkWorkload('zk-set-16', `setData, 16 clients / ${CONNECTIONS} sessions`, 'set', 16, 'spread'),
  zkWorkload('zk-set-64', `setData, 64 clients / ${CONNECTIONS} sessions`, 'set', 64, 'spread'),
  zkWorkload('zk-get-64', `getData, 64 clients / ${CONNECTIONS} sessions`, 'get', 64, 'spread'),
];

/** A key/value workload: `streams` clients over min(streams, CONNECTIONS) client objects, each knowing every member. */
function kvWorkload(key: string, label: string, op: 'put' | 'get', streams: number): Workload<KvTarget> {
  return {
    key,
    label,
    run: async (target, valueBytes, seconds) => {
      const drivers = Array.from({ length: Math.min(streams, CONNECTIONS) }, () => target.connect(MEMBER_IDS, false));
      try {
        const value = Buffer.alloc(valueBytes, 'v');
        await Promise.all(Array.from({ length: streams }, (_, s) => drivers[s % drivers.length]!.put(`versus/k-${s}`, value)));
        return await closedLoop(streams, seconds, (s) => {
          const driver = drivers[s % drivers.length]!;
          return op === 'put' ? driver.put(`versus/k-${s}`, value) : driver.get(`versus/k-${s}`);
        });
      } finally {
        for (const driver of drivers) driver.close();
      }
    },
  };
}

const KV_WORKLOADS: readonly Workload<KvTarget>[] = [
  kvWorkload('kv-put-1', 'put, 1 client', 'put', 1),
  kvWorkload('kv-put-16', `put, 16 clients / ${CONNECTIONS} conns`, 'put', 16),
  kvWorkload('kv-put-64', `put, 64 clients / ${CONNECTIONS} conns`, 'put', 64),
  kvWorkload('kv-get-64', `get (linearizable), 64 clients / ${CONNECTIONS} conns`, 'get', 64),
];

/** The same workloads for the `etcd` phase (the etcd3 client on both), kept apart in the results. */
const ETCD_API_WORKLOADS: readonly Workload<KvTarget>[] = KV_WORKLOADS.map((w) => ({ ...w, key: `etcd-api-${w.key}` }));

// =======================================================================================
// Failover.

interface FailoverTrial {
  readonly protocol: 'zk' | 'kv';
  readonly system: string;
  readonly signal: 'SIGKILL' | 'SIGSTOP';
  readonly trial: number;
  readonly leader: number;
  /** From the signal to the first success of a write issued after it; null: none within the timeout. */
  readonly recoveryMs: number | null;
  readonly failedWrites: number;
  /** Why the trial measured nothing (its client could not write before the kill). */
  readonly error?: string;
}

interface FailoverTarget {
  readonly label: string;
  readonly cluster: Cluster;
  leader(): Promise<number>;
  /** A client that writes one key through the members `ids` only. */
  openWriter(ids: readonly number[]): Promise<{ write(): Promise<unknown>; close(): void }>;
}

function zkFailoverTarget(target: ZkTarget): FailoverTarget {
  return {
    label: target.label,
    cluster: target.cluster,
    leader: () => target.leader(),
    openWriter: async (ids) => {
      // A session that outlives the election: the server clamps 30 s to 20 ticks at most.
      const session = await connectZk(ids.map((id) => target.address(id)).join(','), { sessionTimeoutMs: 30_000 });
      const value = Buffer.alloc(64, 'f');
      await zkCreate(session, '/versus-failover', value, { existsOk: true });
      return { write: () => zkSetData(session, '/versus-failover', value), close: () => session.close() };
    },
  };
}

function kvFailoverTarget(target: KvTarget): FailoverTarget {
  return {
    label: target.label,
    cluster: target.cluster,
    leader: () => target.leader(),
    openWriter: async (ids) => {
      const driver = target.connect(ids, true);
      const value = Buffer.alloc(64, 'f');
      return { write: () => driver.put('versus/failover', value), close: () => driver.close() };
    },
  };
}

/** Issues a write every FAILOVER_WRITE_INTERVAL_MS (an open loop: a stuck write does not hold back the next). */
class PacedWriter {
  private stopped = false;
  private outstanding = 0;
  successes = 0;
  failures = 0;
  /** performance.now() of the first success of a write issued at or after `since`. */
  firstSuccessAfter: number | undefined;
  since = Number.POSITIVE_INFINITY;
  readonly done: Promise<void>;

  constructor(private readonly write: () => Promise<unknown>) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    const start = performance.now();
    for (let k = 0; !this.stopped; k++) {
      const wait = start + k * FAILOVER_WRITE_INTERVAL_MS - performance.now();
      if (wait > 0) await sleep(wait);
      if (this.outstanding < FAILOVER_OUTSTANDING_MAX) this.issue();
    }
  }

  private issue(): void {
    const issuedAt = performance.now();
    this.outstanding++;
    this.write().then(
      () => {
        this.outstanding--;
        this.successes++;
        if (issuedAt >= this.since) this.firstSuccessAfter ??= performance.now();
      },
      () => {
        this.outstanding--;
        this.failures++;
      },
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

type TrialOutcome = Pick<FailoverTrial, 'leader' | 'recoveryMs' | 'failedWrites' | 'error'>;

/** One kill (or stop) of the current leader with the paced writer running; restores the member afterwards. */
async function failoverTrial(target: FailoverTarget, signal: 'SIGKILL' | 'SIGSTOP', timeoutMs: number): Promise<TrialOutcome> {
  await target.cluster.waitHealthy();
  const leader = await target.leader();
  const writer = await target.openWriter(MEMBER_IDS.filter((id) => id !== leader));
  const paced = new PacedWriter(() => writer.write());
  let outcome: TrialOutcome = { leader, recoveryMs: null, failedWrites: 0 };
  let signalled = false;
  try {
    const warmDeadline = Date.now() + FAILOVER_WARM_TIMEOUT_MS;
    while (paced.successes < FAILOVER_WRITES_BEFORE) {
      if (Date.now() > warmDeadline) throw new Error(`the failover client's writes did not succeed before the kill (${paced.failures} failed)`);
      await sleep(10);
    }
    const failuresBefore = paced.failures;
    const killedAt = performance.now();
    paced.since = killedAt;
    target.cluster.signal(leader, signal);
    signalled = true;
    while (paced.firstSuccessAfter === undefined && performance.now() - killedAt < timeoutMs) await sleep(5);
    outcome = { leader, recoveryMs: paced.firstSuccessAfter === undefined ? null : paced.firstSuccessAfter - killedAt, failedWrites: paced.failures - failuresBefore };
  } catch (error) {
    outcome = { ...outcome, error: (error as Error).message };
  } finally {
    await paced.stop();
    writer.close();
    if (signalled && signal === 'SIGSTOP') target.cluster.signal(leader, 'SIGCONT');
    else if (signalled) await target.cluster.restart(leader);
  }
  await target.cluster.waitHealthy();
  return outcome;
}

async function alternateFailover(report: Report, protocol: 'zk' | 'kv', a: FailoverTarget, b: FailoverTarget, options: Options): Promise<void> {
  for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
    for (let trial = 0; trial < options.trials; trial++) {
      for (const target of trial % 2 === 0 ? [a, b] : [b, a]) {
        const outcome = await failoverTrial(target, signal, options.failoverTimeoutSeconds * 1000);
        report.failovers.push({ protocol, system: target.label, signal, trial, ...outcome });
        const recovery =
          outcome.error !== undefined ? `no measurement: ${outcome.error}` : outcome.recoveryMs === null ? `none within ${options.failoverTimeoutSeconds} s` : `${outcome.recoveryMs.toFixed(0)} ms`;
        console.log(
          `  ${protocol} failover, ${signal} of leader ${outcome.leader}, trial ${trial + 1} ${target.label}: writes succeed again after ${recovery} (${outcome.failedWrites} failed writes)`,
        );
      }
    }
  }
}

// =======================================================================================
// The load gate and the phases.

class RefusedError extends Error {}

/** Records the load before `phase`; refuses (or with --force, flags) a loaded machine. */
async function beginPhase(report: Report, phase: string, options: Options): Promise<void> {
  const limit = LOAD_FACTOR * coreCount;
  // Our own previous phase raises the 1-minute average too; it falls by a factor e every
  // minute once we idle. With --force there is nothing to wait for.
  const deadline = Date.now() + (options.force ? 0 : options.loadWaitSeconds * 1000);
  while (loadavg()[0]! > limit && Date.now() < deadline) {
    console.log(`  (load average ${describeLoad()} is above ${limit.toFixed(1)} = ${LOAD_FACTOR} × ${coreCount} cores; waiting for it to fall)`);
    await sleep(5_000);
  }
  const busyFraction = await sampleBusyFraction();
  report.loadTimeline.push({ phase, when: 'before', atMs: Date.now(), loadAverage: loadavg(), ...(busyFraction === undefined ? {} : { busyFraction }) });
  const busy = busyFraction === undefined ? '' : `; CPU busy with the clusters idle: ${(busyFraction * 100).toFixed(0)} %`;
  console.log(`\n-- ${phase}: load average before ${describeLoad()}${busy}`);
  // The 1-minute average still carries our own previous phase, so where the idle CPU can be
  // sampled it decides: another load is what makes a comparison meaningless, not our own.
  const loaded = busyFraction === undefined ? loadavg()[0]! > limit : busyFraction > BUSY_FRACTION_MAX;
  if (!loaded) return;
  if (!options.force) {
    const why =
      busyFraction === undefined
        ? `the 1-minute load average ${loadavg()[0]!.toFixed(2)} is above ${limit.toFixed(1)} (${LOAD_FACTOR} × ${coreCount} cores)`
        : `the CPU is ${(busyFraction * 100).toFixed(0)} % busy while the clusters idle (more than ${BUSY_FRACTION_MAX * 100} %: another load is running)`;
    throw new RefusedError(`${why} before "${phase}": refusing to report numbers from a loaded machine (--force runs anyway)`);
  }
  report.forced = true;
  console.log('  a loaded machine: running anyway (--force); these numbers are from a loaded machine');
}

function endPhase(report: Report, phase: string): void {
  const began = [...report.loadTimeline].reverse().find((entry) => entry.phase === phase && entry.when === 'before');
  const seconds = began === undefined ? Number.NaN : (Date.now() - began.atMs) / 1000;
  report.loadTimeline.push({ phase, when: 'after', atMs: Date.now(), loadAverage: loadavg() });
  console.log(`-- ${phase}: load average after ${describeLoad()} (the phase took ${seconds.toFixed(0)} s)`);
}

interface Systems {
  zookeeper: ZooKeeperEnsemble;
  etcd: EtcdCluster;
  flotilla: FlotillaCluster;
}

async function startSystems(systems: Partial<Systems>): Promise<Systems> {
  // One after the other: three JVMs starting at once on two cores starve the others' elections.
  systems.zookeeper = await ZooKeeperEnsemble.create();
  await systems.zookeeper.start();
  systems.etcd = await EtcdCluster.create();
  await systems.etcd.start();
  systems.flotilla = await FlotillaCluster.create();
  await systems.flotilla.start();
  return systems as Systems;
}

async function runPhases(report: Report, systems: Systems, options: Options): Promise<void> {
  const { zookeeper, etcd, flotilla } = systems;
  const zkOther: ZkTarget = { label: 'zookeeper', cluster: zookeeper, address: (id) => zookeeper.address(id), leader: () => zookeeper.leader() };
  const zkFlotilla: ZkTarget = { label: 'flotilla', cluster: flotilla, address: (id) => flotilla.zkAddress(id), leader: () => flotilla.leader('zk') };
  const kvOther = etcdTarget(etcd);
  const kvFlotilla = flotillaKvTarget(flotilla);
  if (options.phases.has('zk')) {
    for (const size of options.sizes) {
      await beginPhase(report, `ZooKeeper protocol, ${size} B values`, options);
      for (const workload of ZK_WORKLOADS) await alternate(report, workload, zkOther, zkFlotilla, size, options);
      endPhase(report, `ZooKeeper protocol, ${size} B values`);
    }
  }
  if (options.phases.has('kv')) {
    for (const size of options.sizes) {
      await beginPhase(report, `key/value, ${size} B values`, options);
      for (const workload of KV_WORKLOADS) await alternate(report, workload, kvOther, kvFlotilla, size, options);
      endPhase(report, `key/value, ${size} B values`);
    }
  }
  if (options.phases.has('etcd')) {
    const kvFlotillaEtcd = flotillaEtcdTarget(flotilla);
    for (const size of options.sizes) {
      await beginPhase(report, `etcd API (the etcd3 client on both), ${size} B values`, options);
      for (const workload of ETCD_API_WORKLOADS) await alternate(report, workload, kvOther, kvFlotillaEtcd, size, options);
      endPhase(report, `etcd API (the etcd3 client on both), ${size} B values`);
    }
  }
  if (options.phases.has('failover-zk')) {
    await beginPhase(report, 'failover, ZooKeeper protocol', options);
    await alternateFailover(report, 'zk', zkFailoverTarget(zkOther), zkFailoverTarget(zkFlotilla), options);
    endPhase(report, 'failover, ZooKeeper protocol');
  }
  if (options.phases.has('failover-kv')) {
    await beginPhase(report, 'failover, key/value', options);
    await alternateFailover(report, 'kv', kvFailoverTarget(kvOther), kvFailoverTarget(kvFlotilla), options);
    endPhase(report, 'failover, key/value');
  }
}

async function describeVersions(systems: Systems): Promise<Record<string, string>> {
  const distBuilt = statSync(FLOTILLA_MAIN).mtime.toISOString();
  return {
    zookeeper: await systems.zookeeper.version().catch(() => 'unknown'),
    etcd: await systems.etcd.version().catch(() => 'unknown'),
    flotilla: `dist built ${distBuilt}`,
    node: process.version,
  };
}

/** Flotilla's `srvr` must name the same ZooKeeper-group leader as its /status. */
async function checkFlotillaSrvr(flotilla: FlotillaCluster): Promise<void> {
  const leader = await flotilla.leader('zk');
  const modes = await Promise.all(MEMBER_IDS.map((id) => flotilla.zkMode(id)));
  const agrees = MEMBER_IDS.every((id, i) => (modes[i] === 'leader') === (id === leader));
  console.log(`flotilla srvr modes ${modes.join(', ')}; /status names member ${leader} the ZooKeeper-group leader${agrees ? '' : ' — they DISAGREE'}`);
}

export async function run(args: string[]): Promise<void> {
  const options = parseArgs(args);
  for (const [path, install] of [
    [JAVA_PATH, 'default-jre-headless'],
    [ZOOKEEPER_JAR_PATH, 'zookeeper'],
    [ETCD_PATH, 'etcd-server'],
  ] as const) {
    if (!existsSync(path)) throw new Error(`${path} is missing: apt-get install ${install} (the benchmark installs nothing)`);
  }
  const report: Report = {
    options: { ...options, phases: [...options.phases] },
    startedAt: new Date().toISOString(),
    cores: coreCount,
    versions: {},
    settings: {
      zookeeper: `3 servers, QuorumPeerMain, forceSync=yes, tickTime=${ZK_TICK_TIME_MS} initLimit=${ZK_INIT_LIMIT} syncLimit=${ZK_SYNC_LIMIT}, -Xmx1g`,
      etcd: '3 members, defaults (heartbeat 100 ms, election 1000 ms, fsync on), client etcd3 (gRPC)',
      flotilla: '3 members, node bin/flotilla.js server with defaults (tick 100 ms, zk tick 2000 ms), clients node-zookeeper-client and FlotillaClient',
      failoverClients: `a write every ${FAILOVER_WRITE_INTERVAL_MS} ms through the two survivors; ZooKeeper sessions 30 s; etcd3 without its circuit breaker, 10 s deadline; FlotillaClient requestTimeoutMs ${FLOTILLA_FAILOVER_REQUEST_TIMEOUT_MS} (it follows the survivors' redirect to the leader: the native protocol does not forward)`,
    },
    loadTimeline: [],
    measurements: [],
    failovers: [],
    forced: false,
  };
  console.log(
    `versus: ${options.seconds} s per measurement, ${options.rounds} rounds, ${options.trials} failover trials, values ${options.sizes.join(', ')} B; ${coreCount} cores, load average ${describeLoad()}`,
  );
  const systems: Partial<Systems> = {};
  const stopAll = () => Promise.allSettled([systems.zookeeper?.stop(), systems.etcd?.stop(), systems.flotilla?.stop()]);
  // Ctrl-C: stop the clusters and exit; the measurement under way fails meanwhile and is not reported.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    // The signal often comes twice (the terminal's, and tsx passing its own on): the second
    // must not kill us halfway through removing the data directories.
    if (interrupted) return;
    interrupted = true;
    process.exitCode = 130;
    console.error(`\n${signal}: stopping every process this benchmark started; no table`);
    void stopAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await beginPhase(report, 'start the clusters', options);
    const started = await startSystems(systems);
    Object.assign(report.versions, await describeVersions(started));
    console.log(`running: zookeeper ${report.versions['zookeeper']}, etcd ${report.versions['etcd']}, flotilla (${report.versions['flotilla']})`);
    await checkFlotillaSrvr(started.flotilla);
    endPhase(report, 'start the clusters');
    await runPhases(report, started, options);
  } catch (error) {
    if (interrupted) return;
    if (!(error instanceof RefusedError)) {
      report.error = (error as Error).stack ?? String(error);
      throw error;
    }
    report.refused = error.message;
    process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
    if (!interrupted) await finishReport(report, options.out);
  }
}

/** Prints the tables (unless the run was refused) and saves the JSON, partial results included. */
async function finishReport(report: Report, out: string): Promise<void> {
  if (report.refused === undefined) printTables(report);
  else console.log(`\nNo table: ${report.refused}`);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`saved ${out}`);
}

// =======================================================================================
// The tables.

function fixed(value: number, digits: number, width: number): string {
  const text = Number.isNaN(value) ? '-' : value === Number.POSITIVE_INFINITY ? 'none' : value.toFixed(digits);
  return text.padStart(width);
}

function medianOf(report: Report, workload: string, size: number, system: string, pick: (result: LoadResult) => number): number {
  return median(report.measurements.filter((m) => m.workload === workload && m.valueBytes === size && m.system === system && m.round >= 0).map((m) => pick(m.result)));
}

function printComparison(report: Report, title: string, other: string, workloads: readonly Workload<unknown>[]): void {
  const sizes = [...new Set(report.measurements.map((m) => m.valueBytes))].sort((a, b) => a - b);
  const rows = workloads.flatMap((w) => sizes.map((size) => ({ w, size }))).filter(({ w, size }) => report.measurements.some((m) => m.workload === w.key && m.valueBytes === size));
  if (rows.length === 0) return;
  console.log(`\n${title} — medians of ${report.options.rounds} rounds; ratio = flotilla / ${other} (ops/s: above 1 is faster; latency: below 1 is faster)`);
  const metrics = `${'ops/s'.padStart(9)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)}`;
  console.log(`${''.padEnd(48)} │ ${other.padEnd(25)} │ ${'flotilla'.padEnd(25)} │ ${'flotilla / other'.padEnd(21)} │ ${'client CPU µs/op'.padEnd(19)} │`);
  console.log(`${'workload'.padEnd(48)} │ ${metrics} │ ${metrics} │ ${'ops/s'.padStart(9)} ${'p50'.padStart(5)} ${'p99'.padStart(5)} │ ${other.padStart(9)} ${'flotilla'.padStart(9)} │ errors`);
  const notes: string[] = [];
  for (const { w, size } of rows) {
    const cells = (system: string) =>
      ['opsPerSecond', 'p50Ms', 'p99Ms', 'clientCpuUsPerOp', 'errors'].map((field) => medianOf(report, w.key, size, system, (r) => r[field as keyof LoadResult] as number));
    const [oOps, oP50, oP99, oCpu] = cells(other) as [number, number, number, number];
    const [fOps, fP50, fP99, fCpu] = cells('flotilla') as [number, number, number, number];
    const errors = report.measurements.filter((m) => m.workload === w.key && m.valueBytes === size).reduce((sum, m) => sum + m.result.errors, 0);
    console.log(
      `${`${w.label}, ${size} B`.padEnd(48)} │ ${fixed(oOps, 0, 9)} ${fixed(oP50, 2, 7)} ${fixed(oP99, 2, 7)} │ ${fixed(fOps, 0, 9)} ${fixed(fP50, 2, 7)} ${fixed(fP99, 2, 7)} │ ${fixed(fOps / oOps, 2, 9)} ${fixed(fP50 / oP50, 2, 5)} ${fixed(fP99 / oP99, 2, 5)} │ ${fixed(oCpu, 0, 9)} ${fixed(fCpu, 0, 9)} │ ${errors}`,
    );
    notes.push(...clientNotes(`${w.label}, ${size} B`, [other, oCpu, oOps], ['flotilla', fCpu, fOps]));
  }
  for (const note of notes) console.log(`  note: ${note}`);
}

/** The share of a core the benchmark's client used, where it is large enough to limit the server it drives. */
const CLIENT_CORES_NOTABLE = 0.5;

function clientNotes(row: string, ...systems: [string, number, number][]): string[] {
  return systems.flatMap(([system, cpuUsPerOp, opsPerSecond]) => {
    const cores = (cpuUsPerOp * opsPerSecond) / 1e6;
    return cores > CLIENT_CORES_NOTABLE
      ? [`${row}: the ${system} client process used ${cores.toFixed(2)} of a core (${cpuUsPerOp.toFixed(0)} µs/op): on ${coreCount} shared cores it may limit ${system}`]
      : [];
  });
}

function printFailover(report: Report): void {
  if (report.failovers.length === 0) return;
  console.log(
    `\nFailover — the leader is signalled while a client writes every ${FAILOVER_WRITE_INTERVAL_MS} ms through the survivors; ms from the signal until a write issued after it succeeds (median / max of ${report.options.trials} trials)`,
  );
  console.log(
    `${'protocol, signal'.padEnd(30)} │ ${'other'.padEnd(10)} ${'median'.padStart(7)} ${'max'.padStart(7)} │ ${'flotilla'.padEnd(8)} ${'median'.padStart(7)} ${'max'.padStart(7)} │ ratio of medians`,
  );
  for (const protocol of ['zk', 'kv'] as const) {
    for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
      const trials = report.failovers.filter((t) => t.protocol === protocol && t.signal === signal);
      if (trials.length === 0) continue;
      const stats = (system: string) => {
        const values = trials.filter((t) => t.system === system && t.error === undefined).map((t) => t.recoveryMs ?? Number.POSITIVE_INFINITY);
        return { median: median(values), max: Math.max(...values) };
      };
      const other = protocol === 'zk' ? 'zookeeper' : 'etcd';
      const o = stats(other);
      const f = stats('flotilla');
      const label = `${protocol === 'zk' ? 'ZooKeeper protocol' : 'key/value'}, ${signal === 'SIGKILL' ? 'kill -9' : 'SIGSTOP'}`;
      console.log(
        `${label.padEnd(30)} │ ${other.padEnd(10)} ${fixed(o.median, 0, 7)} ${fixed(o.max, 0, 7)} │ ${''.padEnd(8)} ${fixed(f.median, 0, 7)} ${fixed(f.max, 0, 7)} │ ${fixed(f.median / o.median, 2, 7)}`,
      );
    }
  }
}

function printTables(report: Report): void {
  const loads = report.loadTimeline.map((entry) => `${entry.phase} ${entry.when}: ${entry.loadAverage.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`\n== versus: ${report.cores} cores${report.forced ? '; LOADED MACHINE (--force): treat the numbers as a smoke test' : ''}`);
  for (const line of loads) console.log(`   load average ${line}`);
  for (const [system, setting] of Object.entries(report.settings)) console.log(`   ${system}: ${setting}`);
  printComparison(report, 'ZooKeeper protocol, node-zookeeper-client against both', 'zookeeper', ZK_WORKLOADS as readonly Workload<unknown>[]);
  printComparison(report, 'Key/value: etcd (etcd3 gRPC client) against Flotilla (FlotillaClient)', 'etcd', KV_WORKLOADS as readonly Workload<unknown>[]);
  printComparison(report, "etcd API: the etcd3 client against etcd and against Flotilla's etcd port", 'etcd', ETCD_API_WORKLOADS as readonly Workload<unknown>[]);
  printFailover(report);
}
