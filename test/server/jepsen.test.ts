// A Jepsen-style test on real processes (issue 5, item 8): three `flotilla server` members,
// concurrent clients doing put/get/append on two keys and read/write/cas on a third, and a
// nemesis that kill -9s and restarts members and cuts their peer connections. The history
// is checked with the linearizability checker (kvModel; etcdModel for the cas key), and a
// second set of writers proves no acknowledged write is lost.
//
// Peer connections run through one TCP proxy per directed link (member i dials member j at
// proxy i→j), so the nemesis isolates a member by cutting its proxies: the members run
// unchanged. The broken variant runs members with `--read-mode unsafe-local` (reads served
// from a member's local state, no ReadIndex) and expects the checker to find the stale read.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { check, describeResult, etcdModel, kvModel, type EtcdInput, type EtcdOutput, type KvInput, type KvOutput, type Operation } from '../../src/lincheck/index.js';
import { ClientError, FlotillaClient, OutcomeUnknownError } from '../../src/server/client.js';
import { getText, sleep, TestCluster, waitFor, Writers } from './helpers.js';

const RUN_MS = Number(process.env['JEPSEN_RUN_MS'] ?? 30_000);
const CLIENTS = 6;
const KV_KEYS = ['k0', 'k1'];
const CAS_KEY = 'c';
const CHECK_BUDGET_MS = 30_000;

/** A TCP forwarder for one directed peer link that the nemesis can cut and heal. */
class LinkProxy {
  private readonly sockets = new Set<Socket>();
  private cut = false;
  private constructor(private readonly server: Server) {}

  static start(targetPort: number): Promise<LinkProxy> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      const proxy = new LinkProxy(server);
      server.on('connection', (inbound) => proxy.accept(inbound, targetPort));
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(proxy));
    });
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  setCut(cut: boolean): void {
    this.cut = cut;
    if (cut) for (const socket of this.sockets) socket.destroy();
  }

  close(): Promise<void> {
    this.setCut(true);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(inbound: Socket, targetPort: number): void {
    if (this.cut) return void inbound.destroy();
    const outbound = connect({ host: '127.0.0.1', port: targetPort });
    for (const [from, to] of [[inbound, outbound], [outbound, inbound]] as const) {
      this.sockets.add(from);
      from.on('error', () => {});
      from.on('close', () => {
        this.sockets.delete(from);
        to.destroy();
      });
      from.pipe(to);
    }
  }
}

class Proxies {
  private readonly links = new Map<string, LinkProxy>();

  static async start(cluster: TestCluster): Promise<Proxies> {
    const proxies = new Proxies();
    for (const from of cluster.ids) {
      for (const to of cluster.ids) if (from !== to) proxies.links.set(`${from}>${to}`, await LinkProxy.start(cluster.peerPort(to)));
    }
    cluster.dialPort = (from, to) => proxies.links.get(`${from}>${to}`)!.port;
    return proxies;
  }

  /** Cuts (or heals) every link to and from `id`. */
  isolate(id: number, cut: boolean): void {
    for (const [name, link] of this.links) if (name.split('>').includes(String(id))) link.setCut(cut);
  }

  healAll(): void {
    for (const link of this.links.values()) link.setCut(false);
  }

  async close(): Promise<void> {
    await Promise.all([...this.links.values()].map((link) => link.close()));
  }
}

interface History {
  kv: Operation<KvInput, KvOutput>[];
  cas: Operation<EtcdInput, EtcdOutput>[];
  unknown: number;
  failed: number;
}

/** Milliseconds since the run started: the checker only compares times. */
function now(): number {
  return performance.now();
}

/** Runs `op`; a definite failure (nothing applied) is dropped, an unknown outcome recorded as pending. */
async function record<I, O>(into: Operation<I, O>[], history: History, clientId: number, input: I, run: () => Promise<O>): Promise<O | undefined> {
  const callTime = now();
  try {
    const output = await run();
    into.push({ clientId, input, output, callTime, returnTime: now() });
    return output;
  } catch (error) {
    if (error instanceof OutcomeUnknownError) {
      history.unknown++;
      into.push({ clientId, input, output: undefined, callTime, returnTime: undefined });
      return undefined;
    }
    if (!(error instanceof ClientError)) throw error;
    history.failed++;
    return undefined;
  }
}

/**
 * One client's loop: a random mix of operations on the shared keys until `stop()`. Reads go
 * through `reader`, which starts at one member and stays there while it answers (writes
 * would move it to the leader), so followers serve reads too.
 */
async function runClient(client: FlotillaClient, reader: FlotillaClient, clientId: number, history: History, stopped: () => boolean): Promise<void> {
  let seed = clientId * 7919 + 1;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let n = 0; !stopped(); n++) {
    const choice = random(10);
    const key = KV_KEYS[random(KV_KEYS.length)]!;
    const unique = `${clientId}.${n};`;
    if (choice < 3) await record(history.kv, history, clientId, { kind: 'get', key }, async () => (await getText(reader, key)) ?? '');
    else if (choice < 4) await record(history.kv, history, clientId, { kind: 'put', key, value: unique }, async () => (await client.put(key, unique), ''));
    else if (choice < 6) await record(history.kv, history, clientId, { kind: 'append', key, value: unique }, async () => (await client.append(key, unique), ''));
    else await casStep(client, reader, clientId, history, clientId * 1_000_000 + n, random(3));
    await sleep(5 + random(20));
  }
}

/**
 * On the cas key, with every written number unique: a read; a write; or a read then a cas on
 * the version read. Version unchanged means the value is unchanged; a changed version means a
 * write of a different (unique) value came in between, so "not swapped" is the etcd model's
 * "value differed" — a cas of (value read → new value) is exactly what the model checks.
 */
async function casStep(client: FlotillaClient, reader: FlotillaClient, clientId: number, history: History, value: number, kind: number): Promise<void> {
  if (kind === 0) {
    await record(history.cas, history, clientId, { kind: 'write', value }, async () => (await client.put(CAS_KEY, String(value)), true));
    return;
  }
  let version = 0;
  const read = await record(history.cas, history, clientId, { kind: 'read' }, async () => {
    const got = await reader.get(CAS_KEY);
    version = got.version;
    return got.value === null ? null : Number(Buffer.from(got.value).toString());
  });
  if (kind === 1 || read === undefined || read === null || typeof read !== 'number') return;
  await record(history.cas, history, clientId, { kind: 'cas', from: read, to: value }, async () => (await client.cas(CAS_KEY, String(value), version)).swapped);
}

/** Kills and restarts members, and isolates them, one at a time, until `stopped()`. */
async function nemesis(t: TestContext, cluster: TestCluster, proxies: Proxies, stopped: () => boolean): Promise<string[]> {
  const events: string[] = [];
  let seed = 42;
  for (let round = 0; !stopped(); round++) {
    await sleep(1500);
    if (stopped()) break;
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const leader = await leaderOf(cluster);
    const victim = round % 2 === 0 && leader !== undefined ? leader : cluster.ids[seed % cluster.ids.length]!;
    if (round % 3 === 2) {
      events.push(`isolate ${victim}`);
      proxies.isolate(victim, true);
      await sleep(3000);
      proxies.isolate(victim, false);
    } else {
      events.push(`kill -9 ${victim}`);
      await cluster.kill(victim);
      await sleep(1000 + (seed % 1500));
      await cluster.startMember(victim);
    }
  }
  t.diagnostic(`nemesis: ${events.join(', ')}`);
  return events;
}

async function leaderOf(cluster: TestCluster): Promise<number | undefined> {
  for (const id of cluster.running()) {
    try {
      const status = await cluster.status(id);
      if (status.role === 'leader') return id;
    } catch {
      // A member that just died or has not opened its admin port yet.
    }
  }
  return undefined;
}

interface RunResult {
  history: History;
  lost: string[];
  acked: number;
  snapshotBytes: number[];
}

async function jepsenRun(t: TestContext, readMode: 'read-index' | 'unsafe-local', runMs: number): Promise<RunResult> {
  const cluster = await TestCluster.create(t, 3);
  const proxies = await Proxies.start(cluster);
  t.after(() => proxies.close());
  // A small maxraftstate: members snapshot (and restarted members install snapshots) during the run.
  cluster.extraArgs = ['--raft-state-bytes-max', String(256 * 1024), '--read-mode', readMode];
  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  await cluster.waitForLeader();

  const history: History = { kv: [], cas: [], unknown: 0, failed: 0 };
  let stopping = false;
  const stopped = () => stopping;
  const options = { callDeadlineMs: 4000, requestTimeoutMs: 2000 };
  // Each client starts at a different member: reads are served where they land.
  const loops = Array.from({ length: CLIENTS }, (_, i) => runClient(cluster.client(options), cluster.client(options, i), i + 1, history, stopped));
  const writers = new Writers(cluster.client(options), 2, 'w');
  const nemesisDone = nemesis(t, cluster, proxies, stopped);
  await sleep(runMs);
  stopping = true;
  await Promise.all([...loops, nemesisDone, writers.stop()]);

  // Heal: every link up, every member running, a leader; then read everything once more.
  proxies.healAll();
  for (const id of cluster.ids) if (!cluster.running().includes(id)) await cluster.startMember(id);
  await cluster.waitForLeader(20_000);
  const final = cluster.client({ callDeadlineMs: 20_000 });
  for (const key of KV_KEYS) await record(history.kv, history, 99, { kind: 'get', key }, async () => (await getText(final, key)) ?? '');
  const lost: string[] = [];
  const chunk = 64;
  for (let start = 0; start < writers.acks.length; start += chunk) {
    await Promise.all(writers.acks.slice(start, start + chunk).map(async (ack) => {
      const value = await waitFor(`read of ${ack.key}`, 20_000, () => getText(final, ack.key).then((text) => text ?? 'absent'));
      if (value !== ack.value) lost.push(`${ack.key} (index ${ack.index}): read ${value}`);
    }));
  }
  const snapshotBytes = await Promise.all(cluster.ids.map(async (id) => ((await cluster.status(id)) as unknown as { snapshotBytes: number }).snapshotBytes));
  t.diagnostic(`snapshot bytes on disk per member: ${snapshotBytes.join(', ')}`);
  t.diagnostic(`${history.kv.length + history.cas.length} operations (${history.unknown} outcome unknown, ${history.failed} failed definitely), ${writers.acks.length} acknowledged unique writes`);
  return { history, lost, acked: writers.acks.length, snapshotBytes };
}

function verdicts(history: History): { kv: string; cas: string; explain: string } {
  const options = { timeBudgetMs: CHECK_BUDGET_MS, nowMs: () => performance.now() };
  const kv = check(kvModel(), history.kv, options);
  const cas = check(etcdModel(), history.cas, options);
  const explain = [kv.verdict === 'ok' ? '' : describeResult(kvModel(), kv), cas.verdict === 'ok' ? '' : describeResult(etcdModel(), cas)].join('\n').slice(0, 4000);
  return { kv: kv.verdict, cas: cas.verdict, explain };
}

test('jepsen: concurrent put/get/append/cas while members are killed (-9), restarted and cut off: linearizable, no acknowledged write lost', { timeout: 180_000 }, async (t) => {
  const { history, lost, acked, snapshotBytes } = await jepsenRun(t, 'read-index', RUN_MS);
  assert.ok(acked > 0 && history.kv.length > 100 && history.cas.length > 50, 'the run made progress');
  assert.ok(snapshotBytes.some((bytes) => bytes > 0), 'the members snapshotted (raftStateBytesMax) during the run');
  assert.deepEqual(lost, [], 'acknowledged writes were lost');
  const result = verdicts(history);
  t.diagnostic(`kv: ${result.kv}, cas: ${result.cas}`);
  assert.equal(result.kv, 'ok', result.explain);
  assert.equal(result.cas, 'ok', result.explain);
});

test('jepsen, broken on purpose: members serving reads from local state without ReadIndex are caught by the checker', { timeout: 180_000 }, async (t) => {
  const { history } = await jepsenRun(t, 'unsafe-local', Math.min(RUN_MS, 15_000));
  const result = verdicts(history);
  t.diagnostic(`kv: ${result.kv}, cas: ${result.cas}`);
  assert.ok(result.kv === 'illegal' || result.cas === 'illegal', `the checker found no stale read (kv: ${result.kv}, cas: ${result.cas})`);
});
