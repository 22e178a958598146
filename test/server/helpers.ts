// Real `flotilla server` processes on 127.0.0.1 for the process-level tests. Client and
// admin ports are chosen by the OS (port 0) and read from each member's "listening" log
// line; peer ports must be known to every member before it starts (the peer list is
// static configuration), so they are picked by binding port 0 briefly. A restarted member
// gets the ports it had, so clients and peers find it again.
//
// Every process a test starts is killed in t.after, also when the test fails.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { spawnServerChild, type ServerChild } from '../../src/platform/server-children.js';
import { FlotillaClient } from '../../src/server/client.js';

export const TICK_MS = 100;
const LISTEN_TIMEOUT_MS = 20_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? '' : ` (last error: ${String(lastError)})`}`);
}

/** `count` distinct free ports (all held open together, then released). */
/**
 * Ports free now for the test's members, distinct, from 20000–32767: below Linux's ephemeral
 * range (32768–60999 by default), so no socket that listens on port 0 or dials out — a link
 * proxy, a client — can be given one of them between this call and the member's listen
 * (that race once put a proxy on a member's peer port). Each is checked by listening on it;
 * all stay open until every one is found, then close.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: ReturnType<typeof createServer>[] = [];
  const taken = new Set<number>();
  try {
    for (let attempt = 0; servers.length < count; attempt++) {
      if (attempt > 1000) throw new Error(`no ${count} free ports in 20000-32767 after 1000 tries`);
      const port = 20_000 + Math.floor(Math.random() * 12_768);
      if (taken.has(port)) continue;
      const server = createServer();
      const listening = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (!listening) continue;
      taken.add(port);
      servers.push(server);
    }
    return [...taken];
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

export interface Ports {
  peer: number;
  client: number;
  admin: number;
  /** The ZooKeeper port. */
  zk: number;
  /** The etcd gRPC port. */
  etcd: number;
}

export interface LogEntry {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export class MemberProcess {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly child: ServerChild;
  readonly listening: Promise<Ports>;

  constructor(
    readonly id: number,
    args: readonly string[],
  ) {
    let onListening: (ports: Ports) => void = () => {};
    this.child = spawnServerChild({
      args,
      onStdoutLine: (line) => {
        this.stdout.push(line);
        const entry = parseEntry(line);
        if (entry?.msg === 'listening') onListening(entry['ports'] as Ports);
      },
      onStderrLine: (line) => this.stderr.push(line),
    });
    this.listening = new Promise<Ports>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`member ${id} did not print "listening" within ${LISTEN_TIMEOUT_MS} ms:\n${this.describeOutput()}`)), LISTEN_TIMEOUT_MS);
      onListening = (ports) => {
        clearTimeout(timer);
        resolve(ports);
      };
      void this.child.exited.then((exit) => {
        clearTimeout(timer);
        reject(new Error(`member ${id} exited (code ${exit.code}, signal ${exit.signal}) before listening:\n${this.describeOutput()}`));
      });
    });
    this.listening.catch(() => {});
  }

  /** Parsed JSON log lines. */
  entries(): LogEntry[] {
    return this.stdout.map(parseEntry).filter((entry): entry is LogEntry => entry !== undefined);
  }

  describeOutput(): string {
    return [...this.stdout.slice(-30), ...this.stderr.slice(-30)].join('\n');
  }
}

function parseEntry(line: string): LogEntry | undefined {
  try {
    const value = JSON.parse(line) as LogEntry;
    return typeof value === 'object' && value !== null && typeof value.msg === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

export interface StatusJson {
  id: number;
  role: string;
  term: number;
  leader: number;
  commit: number;
  applied: number;
  lastIndex: number;
  logBytes: number;
  peers: { id: number; connected: boolean; progress: string | null }[];
}

export class TestCluster {
  readonly members = new Map<number, MemberProcess>();
  readonly ports = new Map<number, Ports>();
  private readonly clients: FlotillaClient[] = [];
  /** Members started with startJoiner (not in `members`): killed with the others. */
  private readonly joiners = new Set<MemberProcess>();
  /** Extra flags for every member started from now on (read mode, snapshot size). */
  extraArgs: string[] = [];
  /** The port member `from` dials to reach member `to`; the Jepsen test puts a proxy there. */
  dialPort: (from: number, to: number) => number = (_from, to) => this.peerPorts.get(to)!;

  private constructor(
    readonly root: string,
    readonly ids: readonly number[],
    private readonly peerPorts: Map<number, number>,
    private readonly secretFile: string,
  ) {}

  /** Creates the data root and the secret; registers the cleanup with `t`. Starts nothing. */
  static async create(t: TestContext, size: number): Promise<TestCluster> {
    const cluster = await TestCluster.createDetached(size);
    t.after(() => cluster.dispose());
    return cluster;
  }

  /** Like create(), for callers that clean up themselves with dispose(). */
  static async createDetached(size: number): Promise<TestCluster> {
    const root = await mkdtemp(join(tmpdir(), 'flotilla-server-'));
    const secretFile = join(root, 'cluster.env');
    await writeFile(secretFile, 'FLOTILLA_CLUSTER_SECRET=process-test-secret-0123456789\n', { mode: 0o600 });
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    const ports = await freePorts(size);
    return new TestCluster(root, ids, new Map(ids.map((id, i) => [id, ports[i]!])), secretFile);
  }

  /** Kills every member and removes the data root. */
  async dispose(): Promise<void> {
    await this.killAll();
    await rm(this.root, { recursive: true, force: true });
  }

  static async start(t: TestContext, size = 3): Promise<TestCluster> {
    const cluster = await TestCluster.create(t, size);
    await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
    return cluster;
  }

  dataDir(id: number): string {
    return join(this.root, `member-${id}`);
  }

  /** Starts member `id` (again) with the ports it had before, if any. */
  async startMember(id: number, dataDir = this.dataDir(id)): Promise<MemberProcess> {
    const previous = this.ports.get(id);
    const peers = this.ids.map((other) => `${other}=127.0.0.1:${other === id ? this.peerPorts.get(id) : this.dialPort(id, other)}`).join(',');
    const args = [
      'server',
      '--id',
      String(id),
      '--peers',
      peers,
      '--data',
      dataDir,
      '--tick-ms',
      String(TICK_MS),
      '--client-port',
      String(previous?.client ?? 0),
      '--admin-port',
      String(previous?.admin ?? 0),
      '--zk-port',
      String(previous?.zk ?? 0),
      '--etcd-port',
      String(previous?.etcd ?? 0),
      '--cluster-secret-file',
      this.secretFile,
      ...this.extraArgs,
    ];
    const member = new MemberProcess(id, args);
    this.members.set(id, member);
    const ports = await member.listening;
    this.ports.set(id, ports);
    return member;
  }

  /**
   * Starts member `id` with `flotilla server --join` through member `via`'s admin port: an
   * empty data directory, a new peer port (or `peerPort`), waiting to be added. Killed when
   * the test ends. Not in `members` (it is not in the static peer list).
   */
  async startJoiner(t: TestContext, id: number, peerPort: number, dataDir: string, via = 1, extraArgs: readonly string[] = []): Promise<{ member: MemberProcess; ports: Ports }> {
    const member = new MemberProcess(id, [
      'server',
      '--id',
      String(id),
      '--peers',
      `${id}=127.0.0.1:${peerPort}`,
      '--join',
      `127.0.0.1:${this.ports.get(via)!.admin}`,
      '--data',
      dataDir,
      '--tick-ms',
      String(TICK_MS),
      '--client-port',
      '0',
      '--admin-port',
      '0',
      '--zk-port',
      '0',
      '--etcd-port',
      '0',
      '--cluster-secret-file',
      this.secretFile,
      ...extraArgs,
    ]);
    this.joiners.add(member);
    t.after(async () => {
      member.child.kill('SIGKILL');
      await member.child.exited;
    });
    return { member, ports: await member.listening };
  }

  /** Spawns a member without waiting for it to listen (for members expected to refuse). */
  spawnMember(id: number, dataDir: string): MemberProcess {
    const peers = this.ids.map((other) => `${other}=127.0.0.1:${this.peerPorts.get(other)}`).join(',');
    const member = new MemberProcess(id, ['server', '--id', String(id), '--peers', peers, '--data', dataDir, '--tick-ms', String(TICK_MS), '--cluster-secret-file', this.secretFile]);
    this.members.set(id, member);
    return member;
  }

  peerPort(id: number): number {
    return this.peerPorts.get(id)!;
  }

  async kill(id: number, signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<{ code: number | null; signal: string | null }> {
    const member = this.members.get(id)!;
    member.child.kill(signal);
    return member.child.exited;
  }

  async killAll(): Promise<void> {
    for (const client of this.clients) client.close();
    // Joiners too: dispose() may run before the test's own hooks, and a joiner still writing
    // its data directory made the removal fail (ENOTEMPTY).
    await Promise.all(
      [...this.members.values(), ...this.joiners].map(async (member) => {
        member.child.kill('SIGKILL');
        await member.child.exited;
      }),
    );
  }

  /** A client whose endpoint list starts at the `first`-th member (so its reads land there). */
  client(options: Partial<ConstructorParameters<typeof FlotillaClient>[0]> = {}, first = 0): FlotillaClient {
    const all = this.ids.filter((id) => this.ports.has(id)).map((id) => ({ host: '127.0.0.1', port: this.ports.get(id)!.client }));
    const endpoints = [...all.slice(first % all.length), ...all.slice(0, first % all.length)];
    const client = new FlotillaClient({ ...options, endpoints });
    this.clients.push(client);
    return client;
  }

  async status(id: number): Promise<StatusJson> {
    const response = await fetch(`http://127.0.0.1:${this.ports.get(id)!.admin}/status`);
    if (!response.ok) throw new Error(`status of member ${id}: HTTP ${response.status}`);
    return (await response.json()) as StatusJson;
  }

  running(): number[] {
    return this.ids.filter((id) => this.members.get(id)?.child.isRunning() === true);
  }

  /** Waits until a running member is leader and every running member agrees on it. */
  async waitForLeader(timeoutMs = 10_000): Promise<number> {
    return waitFor('a leader that every running member knows', timeoutMs, async () => {
      const statuses = await Promise.all(this.running().map((id) => this.status(id)));
      const leader = statuses.find((status) => status.role === 'leader');
      if (leader === undefined) return undefined;
      return statuses.every((status) => status.leader === leader.id && status.term === leader.term) ? leader.id : undefined;
    });
  }
}

export interface Ack {
  readonly key: string;
  readonly value: string;
  readonly index: number;
  readonly atMs: number;
}

/** The value of `key` as text, or null if absent (a linearizable get). */
export async function getText(client: FlotillaClient, key: string): Promise<string | null> {
  const { value } = await client.get(key);
  return value === null ? null : Buffer.from(value).toString();
}

/** Writers that set unique keys until stopped, recording every acknowledged write. */
export class Writers {
  readonly acks: Ack[] = [];
  readonly failures: string[] = [];
  private stopped = false;
  private readonly loops: Promise<void>[];

  constructor(client: FlotillaClient, count: number, prefix: string) {
    this.loops = Array.from({ length: count }, (_, writer) => this.run(client, `${prefix}-${writer}`));
  }

  private async run(client: FlotillaClient, name: string): Promise<void> {
    for (let seq = 0; !this.stopped; seq++) {
      const key = `${name}-${seq}`;
      const value = `value-${name}-${seq}`;
      try {
        const { version } = await client.put(key, value);
        this.acks.push({ key, value, index: version, atMs: Date.now() });
      } catch (error) {
        this.failures.push(`${key}: ${(error as Error).message}`);
        if (!this.stopped) await sleep(20);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

/** How many acknowledged writes lostWrites() reads at a time. */
const READ_BACK_CHUNK = 64;

/**
 * Reads every one of `acks` back through `client` and returns a line for each write that is
 * not there as acknowledged (empty: none lost). Every write is checked, not a sample: a lost
 * write is as likely early in a run as late.
 */
export async function lostWrites(client: FlotillaClient, acks: readonly Ack[]): Promise<string[]> {
  const lost: string[] = [];
  for (let start = 0; start < acks.length; start += READ_BACK_CHUNK) {
    const slice = acks.slice(start, start + READ_BACK_CHUNK);
    const values = await Promise.all(slice.map((ack) => getText(client, ack.key)));
    for (const [i, ack] of slice.entries()) {
      if (values[i] !== ack.value) lost.push(`${ack.key} (index ${ack.index}): read ${values[i] === null ? 'nothing' : JSON.stringify(values[i])}, acknowledged ${JSON.stringify(ack.value)}`);
    }
  }
  return lost;
}

/** Retries a put until it succeeds (a new leader elected, a quorum back): fails after `timeoutMs`. */
export async function putEventually(client: FlotillaClient, key: string, value: string, what: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(what, timeoutMs, async () => {
    try {
      await client.put(key, value);
      return true;
    } catch {
      return undefined;
    }
  });
}
