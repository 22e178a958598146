// A Jepsen-style test of Flotilla's etcd v3 API on real processes (issue 18, item 4): three
// `flotilla server` members, five `etcd3` clients (each on one member's etcd port) doing puts,
// linearizable gets (Range) and compare-and-sets (a Txn `If value == x Then put y`) on three
// keys, and a watcher on the keys' prefix, while a nemesis kill -9s and restarts the etcd
// group's leader (found with Maintenance.Status) and cuts the leader off its peers
// (test/server/link-proxy.ts, as in test/server/jepsen.test.ts).
//
// What is checked:
//  * the history of each key is linearizable (lincheck's etcdModel: read, write, cas on one
//    register; keys are independent, so each key's sub-history is checked on its own). An
//    operation whose outcome is unknown (deadline, connection lost after sending, the member
//    stopping) is recorded as pending (no output, no return time), as lincheck expects; a
//    read that failed is dropped (it changed nothing);
//  * the watch (prefix, prev_kv), resumed from the last revision it saw + 1 after every
//    error, and moved to another member every few seconds anyway (ResumingWatcher):
//    revisions strictly increasing, none twice, none missing from the first write to
//    the store's final revision (every write of the run is under the prefix), the events of
//    one revision in one response (multi-put transactions: both puts, one response), prev_kv
//    equal to the key's previous event, the final state equal to a final Range, every
//    acknowledged write at its revision, and no event that no client wrote or whose write
//    definitely failed (checkWatch, itself tested below on planted bugs);
//  * the faults happened: the leader died of SIGKILL, an isolation cut live peer
//    connections, and operations completed after each fault healed;
//  * the checker catches a planted bug: clients on a member cut off from its peers read with
//    `serializable: true` (etcd's local read, no ReadIndex) and must be caught reading stale.
//
// ETCD_JEPSEN_RUN_MS (else JEPSEN_RUN_MS) lengthens the run; the default keeps the file
// under about 40 s on a loaded 2-core machine.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3, EtcdError, GRPCGenericError, type IKeyValue, type IOptions, type IWatchResponse } from 'etcd3';
import { check, describeResult, etcdModel, type EtcdInput, type EtcdOutput, type Operation } from '../../src/lincheck/index.js';
import { sleep, TestCluster, waitFor } from '../server/helpers.js';
import { Proxies } from '../server/link-proxy.js';

const RUN_MS = Number(process.env['ETCD_JEPSEN_RUN_MS'] ?? process.env['JEPSEN_RUN_MS'] ?? 20_000);
/** The nemesis needs two rounds (kill, isolate) of about 4.5 s each, and a few more are better. */
const RUN_MS_MIN = 15_000;
/** The last stretch of the run, after the last fault healed: no faults, clients running. */
const HEALED_PHASE_MS = 3_000;
const CLIENTS = 5;
const PREFIX = 'j/';
/** The keys the linearizability checker sees: each holds a unique number. */
const KEYS = ['j/k0', 'j/k1', 'j/k2'];
/** Written together by multi-put transactions (the watch check's "one txn, one response"). */
const TXN_KEYS = ['j/t/a', 'j/t/b'];
/** A client call's gRPC deadline; a write that reaches it has an unknown outcome. */
const CALL_DEADLINE_MS = 3_000;
const CHECK_BUDGET_MS = 20_000;
/** The watcher moves to the next member this often even without an error (resuming is the point). */
const WATCH_ROTATE_MS = 4_000;
/**
 * Operations that must complete between a fault's heal and the next fault (1.5 s later; for
 * the last fault, the healed phase). Far below what five clients complete in that time on a
 * loaded machine, far above the zero of a cluster that stood still.
 */
const OPS_AFTER_FAULT_MIN = 10;

/** Milliseconds on a monotonic clock: the checker only compares times. */
function now(): number {
  return performance.now();
}

// ---- etcd3 clients ------------------------------------------------------------------------

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/**
 * A policy (cockatiel's interface, which etcd3 takes) that runs a call exactly once. etcd3's
 * default retries a failed call up to three times, which would turn a compare-and-set that
 * applied but lost its answer into a retry answered "not swapped"; its default per-host
 * circuit breaker would refuse calls for 5 s after three failures.
 */
const once = {
  execute: <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> => Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
} as unknown as Policy;

/** An etcd3 client on member `id`'s etcd port only: no retries, a deadline on every unary call, quick reconnects. */
function memberClient(cluster: TestCluster, id: number): Etcd3 {
  return new Etcd3({
    hosts: `http://127.0.0.1:${cluster.ports.get(id)!.etcd}`,
    grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500 },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
    faultHandling: { global: once, host: () => once },
  });
}

/**
 * Whether a failed call certainly did nothing: refused before it was sent (no connection), or
 * refused by the member before proposing (no leader). Anything else may have applied.
 */
function failedDefinitely(error: Error): boolean {
  return /No connection established|ECONNREFUSED|etcdserver: no leader/.test(error.message);
}

/** The etcd group's leader as a running member reports it (Maintenance.Status), if any. */
async function etcdLeader(cluster: TestCluster, clients: ReadonlyMap<number, Etcd3>): Promise<number | undefined> {
  for (const id of cluster.running()) {
    try {
      const leader = Number((await clients.get(id)!.maintenance.status({ deadline: Date.now() + 1000 })).leader);
      if (cluster.running().includes(leader)) return leader;
    } catch {
      // A member that just died, or has not opened its etcd port yet.
    }
  }
  return undefined;
}

// ---- The history ---------------------------------------------------------------------------

type EtcdOperation = Operation<EtcdInput, EtcdOutput>;

/** One write a client attempted on the watched prefix, and what became of it. */
interface WriteAttempt {
  readonly puts: readonly { readonly key: string; readonly value: string }[];
  /** applied: acknowledged (a cas: swapped); not-applied: refused, or a cas that did not swap. */
  readonly outcome: 'applied' | 'not-applied' | 'unknown';
  /** The revision the acknowledgement's header gave (applied writes only). */
  readonly revision: number | undefined;
}

interface History {
  /** The operations on each of KEYS, for the checker. */
  readonly byKey: Map<string, EtcdOperation[]>;
  readonly writes: WriteAttempt[];
  unknown: number;
  failed: number;
  /** How many calls failed with each error (its message's start), for the diagnostics. */
  readonly errors: Map<string, number>;
}

function newHistory(): History {
  return { byKey: new Map(KEYS.map((key) => [key, []])), writes: [], unknown: 0, failed: 0, errors: new Map() };
}

type Attempt<O> = { readonly kind: 'ok'; readonly output: O; readonly revision: number } | { readonly kind: 'failed' | 'unknown'; readonly error: string };

/** Runs one call and classifies how it ended (a read that failed counts as failed: it changed nothing). */
async function attempt<O>(read: boolean, run: () => Promise<{ output: O; revision: number }>): Promise<Attempt<O>> {
  try {
    const { output, revision } = await run();
    return { kind: 'ok', output, revision };
  } catch (error) {
    // Only the client's errors are outcomes; anything else (a failed assertion) is the test's.
    if (!(error instanceof GRPCGenericError || error instanceof EtcdError)) throw error;
    return { kind: read || failedDefinitely(error) ? 'failed' : 'unknown', error: error.message.slice(0, 70) };
  }
}

function count(history: History, result: Attempt<unknown>): void {
  if (result.kind === 'ok') return;
  if (result.kind === 'unknown') history.unknown++;
  else history.failed++;
  history.errors.set(result.error, (history.errors.get(result.error) ?? 0) + 1);
}

/** Runs an operation on `key` and records it: in the key's history and, for a write, in the write log. */
async function record(history: History, clientId: number, key: string, input: EtcdInput, run: () => Promise<{ output: EtcdOutput; revision: number }>): Promise<EtcdOutput | undefined> {
  const callTime = now();
  const result = await attempt(input.kind === 'read', run);
  const ops = history.byKey.get(key)!;
  if (result.kind === 'ok') ops.push({ clientId, input, output: result.output, callTime, returnTime: now() });
  else if (result.kind === 'unknown') ops.push({ clientId, input, output: undefined, callTime, returnTime: undefined });
  count(history, result);
  if (input.kind !== 'read') {
    const puts = [{ key, value: String(input.kind === 'write' ? input.value : input.to) }];
    const applied = result.kind === 'ok' && result.output === true;
    const outcome = applied ? 'applied' : result.kind === 'unknown' ? 'unknown' : 'not-applied';
    history.writes.push({ puts, outcome, revision: applied ? result.revision : undefined });
  }
  return result.kind === 'ok' ? result.output : undefined;
}

function parseNumber(kv: IKeyValue | undefined): number | null {
  if (kv === undefined) return null;
  const text = kv.value.toString();
  assert.match(text, /^\d+$/, `a key of the checker holds ${JSON.stringify(text)}, not a number this test wrote`);
  return Number(text);
}

async function readKey(etcd: Etcd3, key: string, serializable: boolean): Promise<{ output: number | null; revision: number }> {
  const response = await etcd.get(key).serializable(serializable).exec();
  return { output: parseNumber(response.kvs[0]), revision: Number(response.header.revision) };
}

async function putKey(etcd: Etcd3, key: string, value: string): Promise<{ output: true; revision: number }> {
  const response = await etcd.put(key).value(value).exec();
  return { output: true, revision: Number(response.header.revision) };
}

/** etcd's compare-and-set: `If value(key) == from Then put(key, to)`; true if it swapped. */
async function casKey(etcd: Etcd3, key: string, from: number, to: number): Promise<{ output: boolean; revision: number }> {
  const response = await etcd
    .if(key, 'Value', '==', String(from))
    .then(etcd.put(key).value(String(to)))
    .commit();
  return { output: response.succeeded, revision: Number(response.header.revision) };
}

/** One transaction putting `value` into every one of TXN_KEYS, logged for the watch check; true if acknowledged. */
async function multiPut(etcd: Etcd3, history: History, value: string): Promise<boolean> {
  const result = await attempt(false, async () => {
    const success = TXN_KEYS.map((key) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } }));
    const response = await etcd.kv.txn({ compare: [], success, failure: [] });
    return { output: response.succeeded, revision: Number(response.header.revision) };
  });
  const puts = TXN_KEYS.map((key) => ({ key, value }));
  const applied = result.kind === 'ok';
  history.writes.push({ puts, outcome: applied ? 'applied' : result.kind === 'unknown' ? 'unknown' : 'not-applied', revision: applied ? result.revision : undefined });
  count(history, result);
  return applied;
}

interface ClientOptions {
  /** Reads are etcd's serializable (member-local) reads: the planted bug. */
  readonly serializableReads: boolean;
  /** Only reads (the broken variant's clients on the isolated member). */
  readonly readsOnly: boolean;
}

/**
 * One client's loop until `stopped()`: reads, writes of unique numbers, read-then-cas (from
 * the value read to a new unique number), and now and then a multi-put transaction.
 */
async function runClient(etcd: Etcd3, clientId: number, history: History, stopped: () => boolean, options: ClientOptions): Promise<void> {
  let seed = clientId * 7919 + 1;
  const random = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    // The high bits: an LCG's low bits repeat with a short period.
    return (seed >>> 12) % n;
  };
  for (let n = 1; !stopped(); n++) {
    const key = KEYS[random(KEYS.length)]!;
    const value = clientId * 1_000_000 + n;
    const choice = options.readsOnly ? 0 : random(20);
    const read = () => record(history, clientId, key, { kind: 'read' }, () => readKey(etcd, key, options.serializableReads));
    let answered: boolean;
    if (choice < 8) answered = (await read()) !== undefined;
    else if (choice < 12) answered = (await record(history, clientId, key, { kind: 'write', value }, () => putKey(etcd, key, String(value)))) !== undefined;
    else if (choice < 19) {
      const from = await read();
      answered = typeof from === 'number' && (await record(history, clientId, key, { kind: 'cas', from, to: value }, () => casKey(etcd, key, from, value))) !== undefined;
    } else answered = await multiPut(etcd, history, `txn-${value}`);
    // A member that is down refuses at once: back off rather than spin.
    await sleep(answered ? 5 + random(15) : 100);
  }
}

// ---- The watcher ---------------------------------------------------------------------------

interface WatchedKv {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
}

interface WatchedEvent {
  readonly type: 'put' | 'delete';
  readonly kv: WatchedKv;
  /** prev_kv; undefined if the key did not exist before. */
  readonly prev: WatchedKv | undefined;
}

/** One watch response with events, as it arrived. */
interface WatchedResponse {
  readonly member: number;
  readonly events: readonly WatchedEvent[];
}

function watchedKv(kv: IKeyValue): WatchedKv {
  return { key: kv.key.toString(), value: kv.value.toString(), createRevision: Number(kv.create_revision), modRevision: Number(kv.mod_revision), version: Number(kv.version) };
}

/**
 * A watch on PREFIX with prev_kv from `startRevision` that survives faults: after an error
 * (or every WATCH_ROTATE_MS) it starts a new watch on another member, from the last revision
 * it has seen + 1. Every other watch goes to the etcd leader (the nemesis's victim, so that
 * watch is cut by a kill or stalls in an isolation), the rest to each member in turn (a
 * follower may lag behind the revision the watch resumes from). Each attempt uses a fresh
 * etcd3 client whose own reconnecting is cut short, so the resumption is this class's.
 */
class ResumingWatcher {
  readonly responses: WatchedResponse[] = [];
  /** Why each watch ended: 'rotate', or the error. */
  readonly endings: string[] = [];
  /** Cancellations the server sent (compaction, …): each is a failure of the watch. */
  readonly cancellations: string[] = [];
  private nextRevision: number;
  private stopping = false;
  private wake: (() => void) | undefined = undefined;
  private readonly loop: Promise<void>;

  constructor(
    private readonly cluster: TestCluster,
    private readonly clients: ReadonlyMap<number, Etcd3>,
    startRevision: number,
  ) {
    this.nextRevision = startRevision;
    this.loop = this.run();
  }

  /** The last revision seen in an event (startRevision - 1 before any). */
  lastRevision(): number {
    return this.nextRevision - 1;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    for (let attempt = 0; !this.stopping; attempt++) {
      const next = this.cluster.ids[Math.floor(attempt / 2) % this.cluster.ids.length]!;
      const member = attempt % 2 === 0 ? ((await etcdLeader(this.cluster, this.clients)) ?? next) : next;
      if (this.cluster.running().includes(member)) await this.watchOnce(member);
      if (!this.stopping) await sleep(100);
    }
  }

  /** One watch on `member` until it fails, WATCH_ROTATE_MS pass, or stop(). */
  private async watchOnce(member: number): Promise<void> {
    const etcd = memberClient(this.cluster, member);
    // Once an attempt is over its events are ignored: the next watch resumes after the last one taken.
    let live = true;
    let finish: (reason: string) => void = () => {};
    const done = new Promise<string>((resolve) => {
      finish = (reason) => {
        live = false;
        resolve(reason);
      };
    });
    this.wake = () => finish('stopped');
    const timer = setTimeout(() => finish('rotate'), WATCH_ROTATE_MS);
    try {
      const watcher = etcd.watch().prefix(PREFIX).withPreviousKV().startRevision(String(this.nextRevision)).watcher();
      watcher.on('data', (response) => {
        if (live) this.receive(member, response);
      });
      watcher.on('disconnected', (error) => finish(`disconnected (${error.message})`));
      watcher.on('error', (error) => {
        this.cancellations.push(`member ${member}: ${error.message}`);
        finish(`cancelled (${error.message})`);
      });
      this.endings.push(`member ${member}: ${await done}`);
      // Cancelling waits for the member's answer; a member that just died gives none.
      await Promise.race([watcher.cancel(), sleep(1000)]);
    } finally {
      clearTimeout(timer);
      this.wake = undefined;
      etcd.close();
    }
  }

  private receive(member: number, response: IWatchResponse): void {
    if (response.events.length === 0) return;
    const events = response.events.map((event) => ({
      type: event.type === 'Put' ? ('put' as const) : ('delete' as const),
      kv: watchedKv(event.kv),
      prev: event.prev_kv === null || event.prev_kv === undefined ? undefined : watchedKv(event.prev_kv),
    }));
    this.responses.push({ member, events });
    this.nextRevision = Math.max(this.nextRevision, ...events.map((event) => event.kv.modRevision + 1));
  }
}

// ---- The watch check -----------------------------------------------------------------------

function describeKv(kv: WatchedKv | undefined): string {
  return kv === undefined ? 'none' : `${kv.key}=${kv.value} (mod ${kv.modRevision}, create ${kv.createRevision}, version ${kv.version})`;
}

function sameKv(a: WatchedKv | undefined, b: WatchedKv | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.key === b.key && a.value === b.value && a.modRevision === b.modRevision && a.createRevision === b.createRevision && a.version === b.version;
}

/**
 * The stream's own order: each response one revision, revisions strictly increasing and
 * contiguous from `firstRevision`, prev_kv the key's previous event (nothing before its
 * first: the watch starts at the store's first write). Returns the last kv of each key.
 */
function checkStreamOrder(responses: readonly WatchedResponse[], firstRevision: number, problems: string[]): Map<string, WatchedKv> {
  const current = new Map<string, WatchedKv>();
  const responseAt = new Map<number, number>();
  let last = firstRevision - 1;
  for (const [i, response] of responses.entries()) {
    const revision = response.events[0]!.kv.modRevision;
    const mixed = response.events.find((event) => event.kv.modRevision !== revision);
    if (mixed !== undefined) problems.push(`response ${i} (member ${response.member}) mixes revisions ${revision} and ${mixed.kv.modRevision}`);
    const earlier = responseAt.get(revision);
    if (earlier !== undefined) problems.push(`revision ${revision} arrived twice (responses ${earlier} and ${i}, member ${response.member}): a duplicate, or one transaction split over two responses`);
    else if (revision < last) problems.push(`revision ${revision} arrived after ${last} (response ${i}, member ${response.member}): out of order`);
    else if (revision > last + 1) problems.push(`revisions ${last + 1}..${revision - 1} never arrived (next came ${revision}, response ${i}, member ${response.member}): a gap`);
    responseAt.set(revision, i);
    last = Math.max(last, revision);
    for (const event of response.events) {
      const before = current.get(event.kv.key);
      if (!sameKv(event.prev, before)) problems.push(`${event.kv.key} at revision ${revision}: prev_kv is ${describeKv(event.prev)}, the stream's previous event was ${describeKv(before)}`);
      if (event.type === 'put' && event.kv.version !== (before?.version ?? 0) + 1) problems.push(`${event.kv.key} at revision ${revision}: version ${event.kv.version} after ${before?.version ?? 0}`);
      if (event.type === 'put') current.set(event.kv.key, event.kv);
      else current.delete(event.kv.key);
    }
  }
  return current;
}

/**
 * Every problem with a watch stream, given the store's final revision and contents under the
 * prefix (a Range after the run) and every write the clients attempted; empty if none.
 */
function checkWatch(responses: readonly WatchedResponse[], firstRevision: number, finalRevision: number, finalKvs: readonly WatchedKv[], writes: readonly WriteAttempt[]): string[] {
  const problems: string[] = [];
  const empty = responses.findIndex((response) => response.events.length === 0);
  if (empty >= 0) return [`response ${empty} has no events`];
  const current = checkStreamOrder(responses, firstRevision, problems);
  const lastRevision = Math.max(firstRevision - 1, ...responses.map((response) => response.events[0]!.kv.modRevision));
  if (lastRevision < finalRevision) problems.push(`the stream stops at revision ${lastRevision}, the store is at ${finalRevision}: revisions ${lastRevision + 1}..${finalRevision} never arrived`);
  if (lastRevision > finalRevision) problems.push(`the stream reached revision ${lastRevision}, past the store's final ${finalRevision}`);
  // What the stream says each key holds is what the final Range says.
  for (const kv of finalKvs) if (!sameKv(current.get(kv.key), kv)) problems.push(`${kv.key}: the final Range has ${describeKv(kv)}, the stream's last event ${describeKv(current.get(kv.key))}`);
  for (const [key, kv] of current) if (!finalKvs.some((final) => final.key === key)) problems.push(`${key}: the stream ends with ${describeKv(kv)}, the final Range does not have it`);
  // Each event is a write some client attempted, not one that definitely failed, with all of its puts in one response.
  const byPut = new Map<string, WriteAttempt>();
  for (const write of writes) for (const put of write.puts) byPut.set(`${put.key}=${put.value}`, write);
  const eventsAt = new Map<number, string[]>();
  for (const response of responses) eventsAt.set(response.events[0]!.kv.modRevision, response.events.map((event) => `${event.kv.key}=${event.kv.value}`).sort());
  for (const [revision, events] of eventsAt) {
    for (const event of events) {
      const write = byPut.get(event);
      if (write === undefined) problems.push(`revision ${revision}: ${event}, which no client wrote`);
      else if (write.outcome === 'not-applied') problems.push(`revision ${revision}: ${event}, whose write failed definitely (or a cas that did not swap)`);
      else if (write.puts.some((put) => !events.includes(`${put.key}=${put.value}`)))
        problems.push(`revision ${revision}: ${events.join(', ')}, without the rest of its transaction (${write.puts.map((put) => `${put.key}=${put.value}`).join(', ')})`);
    }
  }
  // Each acknowledged write is in the stream, at the revision its answer gave.
  for (const write of writes) {
    if (write.outcome !== 'applied') continue;
    const want = write.puts.map((put) => `${put.key}=${put.value}`).sort();
    const got = eventsAt.get(write.revision!);
    if (got?.join(', ') !== want.join(', ')) problems.push(`the write of ${want.join(', ')} acknowledged at revision ${write.revision} is in the stream as ${got?.join(', ') ?? 'nothing'}`);
  }
  return problems;
}

// ---- The nemesis ---------------------------------------------------------------------------

/** One fault the nemesis injected, with its evidence. Times are now() (the history's clock). */
type Fault = KillFault | IsolateFault;

interface FaultCommon {
  readonly victim: number;
  /** Whether the victim was the etcd group's leader when the fault began. */
  readonly leader: boolean;
  readonly startMs: number;
  readonly healedMs: number;
}

interface KillFault extends FaultCommon {
  readonly kind: 'kill';
  /** What the victim died of: SIGKILL, if the kill happened. */
  readonly exit: string;
}

interface IsolateFault extends FaultCommon {
  readonly kind: 'isolate';
  /** The victim's peer connections that were open when its links were cut. */
  readonly liveConnectionsCut: number;
}

async function isolate(proxies: Proxies, victim: number, leader: boolean, forMs: number): Promise<Fault> {
  const startMs = now();
  const cutBefore = proxies.liveConnectionsCut();
  proxies.isolate(victim, true);
  const liveConnectionsCut = proxies.liveConnectionsCut() - cutBefore;
  await sleep(forMs);
  proxies.isolate(victim, false);
  return { kind: 'isolate', victim, leader, startMs, healedMs: now(), liveConnectionsCut };
}

async function killAndRestart(cluster: TestCluster, victim: number, leader: boolean, downMs: number): Promise<Fault> {
  const startMs = now();
  const exit = await cluster.kill(victim);
  await sleep(downMs);
  await cluster.startMember(victim);
  return { kind: 'kill', victim, leader, startMs, healedMs: now(), exit: exit.signal ?? `exit code ${exit.code}` };
}

/** Kills (-9) and restarts the etcd leader, or cuts it off its peers for 3 s, in turns, until `stopped()`. */
async function nemesis(cluster: TestCluster, proxies: Proxies, clients: ReadonlyMap<number, Etcd3>, stopped: () => boolean): Promise<Fault[]> {
  const faults: Fault[] = [];
  for (let round = 0; !stopped(); round++) {
    await sleep(1500);
    if (stopped()) break;
    const leader = await etcdLeader(cluster, clients);
    const victim = leader ?? cluster.ids[round % cluster.ids.length]!;
    const fault = round % 2 === 0 ? killAndRestart(cluster, victim, leader !== undefined, 1000 + ((round * 337) % 1000)) : isolate(proxies, victim, leader !== undefined, 3000);
    faults.push(await fault);
  }
  return faults;
}

function completedBetween(history: History, fromMs: number, toMs: number): number {
  let count = 0;
  for (const ops of history.byKey.values()) for (const op of ops) if (op.returnTime !== undefined && op.returnTime > fromMs && op.returnTime <= toMs) count++;
  return count;
}

interface FaultReport {
  readonly fault: Fault;
  /** Operations completed while the fault lasted. */
  readonly during: number;
  /** Operations completed between the heal and the next fault (or the end of the clients' run). */
  readonly after: number;
}

function reportFaults(history: History, faults: readonly Fault[], clientsStoppedMs: number): FaultReport[] {
  return faults.map((fault, i) => ({
    fault,
    during: completedBetween(history, fault.startMs, fault.healedMs),
    after: completedBetween(history, fault.healedMs, faults[i + 1]?.startMs ?? clientsStoppedMs),
  }));
}

function describeFault({ fault, during, after }: FaultReport): string {
  const evidence = fault.kind === 'kill' ? `died of ${fault.exit}` : `${fault.liveConnectionsCut} live peer connections cut`;
  return `${fault.kind} ${fault.victim}${fault.leader ? ' (the leader)' : ''} (${evidence}): ${during} ops during, ${after} after`;
}

/** The faults happened, and the cluster made progress after each. */
function assertFaultsHappened(reports: readonly FaultReport[]): void {
  const all = reports.map(describeFault).join('\n  ');
  assert.ok(
    reports.some(({ fault }) => fault.kind === 'kill' && fault.leader),
    `the nemesis killed no leader:\n  ${all}`,
  );
  assert.ok(
    reports.some(({ fault }) => fault.kind === 'isolate'),
    `the nemesis isolated no member:\n  ${all}`,
  );
  for (const report of reports) {
    const { fault } = report;
    if (fault.kind === 'kill') assert.equal(fault.exit, 'SIGKILL', `member ${fault.victim} did not die of kill -9`);
    else assert.ok(fault.liveConnectionsCut > 0, `isolating member ${fault.victim} cut no live peer connection: it was not isolated`);
    assert.ok(report.after > OPS_AFTER_FAULT_MIN, `only ${report.after} operations (want > ${OPS_AFTER_FAULT_MIN}) completed after ${describeFault(report)}`);
  }
}

// ---- A run ---------------------------------------------------------------------------------

interface Run {
  readonly cluster: TestCluster;
  readonly proxies: Proxies;
  /** One long-lived client per member. */
  readonly clients: Map<number, Etcd3>;
  readonly history: History;
  /** The revision of the run's first write (the store's first). */
  readonly firstRevision: number;
  /** Registers a cleanup that runs before the members are stopped. */
  readonly closing: (close: () => unknown) => void;
}

/**
 * Three members behind link proxies, every client closed when the test ends (also when it
 * fails), and each of KEYS written once (its history starts with that write).
 */
async function startRun(t: TestContext): Promise<Run> {
  const closers: (() => unknown)[] = [];
  // Registered before the cluster's cleanup, so clients and watchers stop before the members.
  t.after(async () => {
    for (const close of closers.reverse()) await close();
  });
  const cluster = await TestCluster.create(t, 3);
  const proxies = await Proxies.start(cluster);
  t.after(() => proxies.close());
  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  const clients = new Map(cluster.ids.map((id) => [id, memberClient(cluster, id)]));
  closers.push(() => {
    for (const etcd of clients.values()) etcd.close();
  });
  await waitFor('every member’s etcd port answers a linearizable Range', 20_000, async () => {
    await Promise.all([...clients.values()].map((etcd) => etcd.get('probe').exec()));
    return true;
  });
  // Every write of the run is the test's, from the store's first revision on.
  const fresh = await clients.get(1)!.get('probe').exec();
  assert.equal(Number(fresh.header.revision), 1, 'a new store is at revision 1');
  const history = newHistory();
  for (const [i, key] of KEYS.entries()) {
    const write = () => record(history, 0, key, { kind: 'write', value: i }, () => putKey(clients.get(1)!, key, String(i)));
    await waitFor(`the first write of ${key}`, 10_000, async () => ((await write()) === undefined ? undefined : true));
  }
  return { cluster, proxies, clients, history, firstRevision: 2, closing: (close) => closers.push(close) };
}

/**
 * Runs CLIENTS clients (client i on member `member(i)`) for `runMs`, and the nemesis for the
 * first `runMs - healedPhaseMs` of it (a fault still under way then is finished first).
 */
async function runClients(
  run: Run,
  member: (client: number) => number,
  options: (client: number) => ClientOptions,
  faultsFor: (stopped: () => boolean) => Promise<Fault[]>,
  runMs: number,
  healedPhaseMs: number,
): Promise<FaultReport[]> {
  let stopping = false;
  let faultsStopping = false;
  const loops = Array.from({ length: CLIENTS }, (_, i) => runClient(run.clients.get(member(i))!, i + 1, run.history, () => stopping, options(i)));
  const faultsDone = faultsFor(() => faultsStopping);
  // Awaited below; until then a failure of the nemesis must not surface as an unhandled rejection.
  faultsDone.catch(() => undefined);
  let faults: Fault[];
  try {
    await sleep(runMs - healedPhaseMs);
    faultsStopping = true;
    faults = await faultsDone;
    await sleep(healedPhaseMs);
  } finally {
    // Also when the nemesis failed: clients that never stop would keep the test running.
    stopping = true;
    await Promise.all(loops);
  }
  return reportFaults(run.history, faults, now());
}

/** Every link up, every member running, and each member's etcd port answering a linearizable Range. */
async function heal(run: Run): Promise<void> {
  run.proxies.healAll();
  for (const id of run.cluster.ids) if (!run.cluster.running().includes(id)) await run.cluster.startMember(id);
  await waitFor('every member answers after the heal', 20_000, async () => {
    await Promise.all([...run.clients.values()].map((etcd) => etcd.get('probe').exec()));
    return true;
  });
}

function verdicts(history: History): { verdicts: string; illegal: boolean; ok: boolean; explain: string } {
  const options = { timeBudgetMs: CHECK_BUDGET_MS, nowMs: () => performance.now() };
  const results = KEYS.map((key) => ({ key, result: check(etcdModel(), history.byKey.get(key)!, options) }));
  return {
    verdicts: results.map(({ key, result }) => `${key}: ${result.verdict}`).join(', '),
    illegal: results.some(({ result }) => result.verdict === 'illegal'),
    ok: results.every(({ result }) => result.verdict === 'ok'),
    explain: results
      .filter(({ result }) => result.verdict !== 'ok')
      .map(({ key, result }) => `${key}:\n${describeResult(etcdModel(), result)}`)
      .join('\n')
      .slice(0, 4000),
  };
}

function describeHistory(history: History): string {
  const ops = [...history.byKey.values()].reduce((sum, list) => sum + list.length, 0);
  const txns = history.writes.filter((write) => write.puts.length > 1);
  const errors = [...history.errors].sort((a, b) => b[1] - a[1]).slice(0, 5);
  return `${ops} operations on ${KEYS.length} keys (${history.unknown} outcome unknown, ${history.failed} failed definitely or reads that failed; ${errors.map(([error, n]) => `${n}× ${error}`).join(' | ')}), ${txns.filter((write) => write.outcome === 'applied').length} of ${txns.length} multi-put transactions acknowledged`;
}

// ---- Tests ---------------------------------------------------------------------------------

test('checkWatch passes a complete stream and catches a gap, a duplicate, a split transaction, reordering, a wrong prev_kv, a short stream, phantom and lost writes', () => {
  const kv = (key: string, value: string, modRevision: number, createRevision: number, version: number): WatchedKv => ({ key, value, modRevision, createRevision, version });
  const put = (now: WatchedKv, prev?: WatchedKv): WatchedEvent => ({ type: 'put', kv: now, prev });
  const a0 = kv('j/k0', '0', 2, 2, 1);
  const b1 = kv('j/k1', '1', 3, 3, 1);
  const ta = kv('j/t/a', 'txn-1', 4, 4, 1);
  const tb = kv('j/t/b', 'txn-1', 4, 4, 1);
  const a5 = kv('j/k0', '5', 5, 2, 2);
  const b7 = kv('j/k1', '7', 6, 3, 2);
  const stream: WatchedResponse[] = [
    { member: 1, events: [put(a0)] },
    { member: 1, events: [put(b1)] },
    { member: 2, events: [put(ta), put(tb)] },
    { member: 2, events: [put(a5, a0)] },
    { member: 3, events: [put(b7, b1)] },
  ];
  const writes: WriteAttempt[] = [
    { puts: [{ key: 'j/k0', value: '0' }], outcome: 'applied', revision: 2 },
    { puts: [{ key: 'j/k1', value: '1' }], outcome: 'applied', revision: 3 },
    { puts: TXN_KEYS.map((key) => ({ key, value: 'txn-1' })), outcome: 'applied', revision: 4 },
    { puts: [{ key: 'j/k0', value: '5' }], outcome: 'applied', revision: 5 },
    { puts: [{ key: 'j/k0', value: '6' }], outcome: 'not-applied', revision: undefined },
    // An unknown outcome that did apply.
    { puts: [{ key: 'j/k1', value: '7' }], outcome: 'unknown', revision: undefined },
  ];
  const final = [a5, b7, ta, tb];
  assert.deepEqual(checkWatch(stream, 2, 6, final, writes), []);
  const catches = (responses: WatchedResponse[], pattern: RegExp, finalRevision = 6, finalKvs = final, attempts = writes) => {
    const problems = checkWatch(responses, 2, finalRevision, finalKvs, attempts);
    assert.ok(
      problems.some((problem) => pattern.test(problem)),
      `${pattern} not among: ${problems.join('; ')}`,
    );
  };
  catches([stream[0]!, ...stream.slice(2)], /revisions 3\.\.3 never arrived .*a gap/);
  catches([...stream.slice(0, 4), stream[3]!, stream[4]!], /revision 5 arrived twice/);
  catches([stream[0]!, stream[1]!, { member: 2, events: [put(ta)] }, { member: 2, events: [put(tb)] }, ...stream.slice(3)], /revision 4 arrived twice/);
  catches([stream[0]!, stream[1]!, { member: 2, events: [put(ta)] }, ...stream.slice(3)], /without the rest of its transaction/, 6, [a5, b7, ta]);
  catches([...stream.slice(0, 3), stream[4]!, stream[3]!], /revision 5 arrived after 6 .*out of order/);
  catches([...stream.slice(0, 3), { member: 2, events: [put(a5)] }, stream[4]!], /j\/k0 at revision 5: prev_kv is none, the stream's previous event was j\/k0=0/);
  catches(stream.slice(0, 4), /the stream stops at revision 5, the store is at 6/);
  catches([...stream.slice(0, 4), { member: 3, events: [put(kv('j/k1', '8', 6, 3, 2), b1)] }], /j\/k1=8, which no client wrote/);
  catches([...stream.slice(0, 4), { member: 3, events: [put(kv('j/k0', '6', 6, 2, 3), a5)] }], /j\/k0=6, whose write failed definitely/, 6, [kv('j/k0', '6', 6, 2, 3), b1, ta, tb]);
  catches(stream, /acknowledged at revision 7 is in the stream as nothing/, 6, final, [...writes, { puts: [{ key: 'j/k2', value: '9' }], outcome: 'applied', revision: 7 }]);
  catches(stream, /j\/k1: the final Range has j\/k1=9/, 6, [a5, kv('j/k1', '9', 6, 3, 2), ta, tb]);
});

test('the fault assertions fail a run whose nemesis did not kill, did not isolate, or after which the cluster stood still', () => {
  const kill: Fault = { kind: 'kill', victim: 1, leader: true, startMs: 0, healedMs: 2000, exit: 'SIGKILL' };
  const isolated: Fault = { kind: 'isolate', victim: 2, leader: false, startMs: 3500, healedMs: 6500, liveConnectionsCut: 8 };
  const busy = newHistory();
  for (const t of [...Array.from({ length: 50 }, (_, i) => 2001 + i), ...Array.from({ length: 50 }, (_, i) => 6501 + i)]) {
    busy.byKey.get('j/k0')!.push({ clientId: 1, input: { kind: 'read' }, output: null, callTime: t - 1, returnTime: t });
  }
  // An unknown outcome (no return time) does not count as completed.
  busy.byKey.get('j/k0')!.push({ clientId: 2, input: { kind: 'write', value: 3 }, output: undefined, callTime: 2100, returnTime: undefined });
  const healthy = reportFaults(busy, [kill, isolated], 8000);
  assert.deepEqual(
    healthy.map((report) => [report.during, report.after]),
    [
      [0, 50],
      [0, 50],
    ],
  );
  assertFaultsHappened(healthy);
  assert.throws(() => assertFaultsHappened(reportFaults(busy, [isolated], 8000)), /killed no leader/);
  assert.throws(() => assertFaultsHappened(reportFaults(busy, [{ ...kill, leader: false }, isolated], 8000)), /killed no leader/);
  assert.throws(() => assertFaultsHappened(reportFaults(busy, [kill], 8000)), /isolated no member/);
  assert.throws(() => assertFaultsHappened(reportFaults(busy, [{ ...kill, exit: 'exit code 0' }, isolated], 8000)), /did not die of kill -9/);
  assert.throws(() => assertFaultsHappened(reportFaults(busy, [kill, { ...isolated, liveConnectionsCut: 0 }], 8000)), /was not isolated/);
  assert.throws(() => assertFaultsHappened(reportFaults(busy, [kill, isolated], 6500)), /only 0 operations .* after isolate 2/);
});

test('jepsen etcd: put/get/cas and a resuming prefix watch while the etcd leader is killed (-9) and cut off: linearizable; the watch complete, in order, txns whole, prev_kv right', {
  timeout: 120_000,
}, async (t) => {
  assert.ok(RUN_MS >= RUN_MS_MIN, `ETCD_JEPSEN_RUN_MS=${RUN_MS} is too short for the nemesis to both kill and isolate a member (at least ${RUN_MS_MIN})`);
  const run = await startRun(t);
  const { cluster, clients, history } = run;
  const watcher = new ResumingWatcher(cluster, clients, run.firstRevision);
  run.closing(() => watcher.stop());
  const mixed: ClientOptions = { serializableReads: false, readsOnly: false };
  const reports = await runClients(
    run,
    (i) => cluster.ids[i % cluster.ids.length]!,
    () => mixed,
    (stopped) => nemesis(cluster, run.proxies, clients, stopped),
    RUN_MS,
    HEALED_PHASE_MS,
  );
  t.diagnostic(`nemesis: ${reports.map(describeFault).join('; ')}`);

  await heal(run);
  for (const key of KEYS) await record(history, 99, key, { kind: 'read' }, () => readKey(clients.get(1)!, key, false));
  const final = await clients.get(1)!.getAll().prefix(PREFIX).exec();
  const finalRevision = Number(final.header.revision);
  // A watcher that never gets there is reported by checkWatch, with what it missed.
  await waitFor(`the watcher to reach revision ${finalRevision}`, 20_000, () => (watcher.lastRevision() >= finalRevision ? true : undefined)).catch(() => undefined);
  await watcher.stop();
  const disconnects = watcher.endings.filter((ending) => ending.includes('disconnected')).length;
  t.diagnostic(describeHistory(history));
  t.diagnostic(
    `watch: ${watcher.responses.length} responses, revisions ${run.firstRevision}..${watcher.lastRevision()} (store at ${finalRevision}), ${watcher.endings.length} watches, ${disconnects} ended by a disconnect`,
  );

  assertFaultsHappened(reports);
  assert.deepEqual(watcher.cancellations, [], 'a member cancelled the watch');
  assert.ok(watcher.endings.length >= 3, `the watch was resumed ${watcher.endings.length - 1} times: the resumption went untested`);
  assert.ok(
    history.writes.some((write) => write.puts.length > 1 && write.outcome === 'applied'),
    'no multi-put transaction was acknowledged',
  );
  const problems = checkWatch(watcher.responses, run.firstRevision, finalRevision, final.kvs.map(watchedKv), history.writes);
  assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems with the watch stream`);
  const result = verdicts(history);
  t.diagnostic(result.verdicts);
  assert.ok(
    [...history.byKey.values()].every((ops) => ops.length > 30),
    `the run made little progress: ${describeHistory(history)}`,
  );
  assert.ok(result.ok, `${result.verdicts}\n${result.explain}`);
});

test('jepsen etcd, broken on purpose: serializable reads on a member cut off from its peers are caught reading stale', { timeout: 60_000 }, async (t) => {
  const run = await startRun(t);
  const { cluster } = run;
  const leader = await waitFor('an etcd leader', 10_000, () => etcdLeader(cluster, run.clients));
  const victim = cluster.ids.find((id) => id !== leader)!;
  const others = cluster.ids.filter((id) => id !== victim);
  // Clients 0 and 1 only read, serializable, on the victim; the others write, read and cas on the rest.
  const onVictim = (i: number) => i < 2;
  const reports = await runClients(
    run,
    (i) => (onVictim(i) ? victim : others[i % others.length]!),
    (i) => ({ serializableReads: onVictim(i), readsOnly: onVictim(i) }),
    async () => {
      await sleep(1000);
      return [await isolate(run.proxies, victim, false, 3000)];
    },
    5000,
    500,
  );
  t.diagnostic(`nemesis: ${reports.map(describeFault).join('; ')}; ${describeHistory(run.history)}`);
  assert.ok(reports[0]!.fault.kind === 'isolate' && reports[0]!.fault.liveConnectionsCut > 0, 'the victim was not isolated');
  const result = verdicts(run.history);
  t.diagnostic(result.verdicts);
  assert.ok(result.illegal, `the checker found no stale read (${result.verdicts})`);
});
