// Membership changes under client load, with real processes and the real CLI (issue 14): a
// Jepsen-style history of concurrent clients, checked by the linearizability checker, while
// `flotilla member ...` reshapes the cluster underneath them:
//
//   start            voters 1,2,3
//   member 4         flotilla server --join; member add 4; member promote 4 (retried: it is
//                    refused until caught up)                               voters 1,2,3,4
//   remove leader L  member transfer-leader L --group zk (so L leads both groups), then
//                    member remove L: L hands leadership over; L keeps running a moment
//                    (a removed member must not disrupt anyone), then is stopped     3 voters
//   learner 5        --join; member add 5; it receives the log; removed while still a
//                    learner (member remove 5 --group zk, then member remove 5, which is
//                    done in kv and refused by zk, and says so); stopped            3 voters
//   member 6         --join; add 6; promote 6                                       4 voters
//   remove follower  member remove F (an original member that leads neither group); stopped
//                                                                                   3 voters
//
// Clients (each its own FlotillaClient, so its own session) run the whole time: get, put and
// append on a few keys (kvModel), and read, write and cas on one more (etcdModel), each
// operation with its call and return times; an outcome-unknown write is recorded as pending,
// as test/server/jepsen.test.ts does. The test asserts that the changes happened (each CLI
// command's answer, `member list` after each, the leader changed after its removal, the
// removed processes stopped cleanly), that the clients made progress after every change, and
// that the history is linearizable. Members snapshot small logs (--raft-state-bytes-max): the
// leader has compacted its log by the time member 6 joins, which then catches up by snapshot.

import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { check, describeResult, etcdModel, kvModel, type EtcdInput, type EtcdOutput, type KvInput, type KvOutput, type Operation } from '../../src/lincheck/index.js';
import { ClientError, FlotillaClient, KvError, OutcomeUnknownError } from '../../src/server/client.js';
import { freePorts, getText, type Ports, sleep, type StatusJson, TestCluster, waitFor } from '../server/helpers.js';
import { type CommandRun, killAllCommands, runFlotilla } from './helpers.js';

after(killAllCommands);

const CLIENTS = 4;
const KV_KEYS = ['k0', 'k1', 'k2'];
const CAS_KEY = 'c';
/** A slow run logs over 100 KiB before member 6 joins: the leader has snapshotted by then. */
const EXTRA_ARGS = ['--raft-state-bytes-max', String(32 * 1024)];
const CLIENT_OPTIONS = { callDeadlineMs: 4_000, requestTimeoutMs: 2_000 };
/** Clients run this long after the last change, with the final membership. */
const HEALED_PHASE_MS = 3_000;
/** How long a removed leader keeps running (under load) before it is stopped: past an election timeout (at most 20 ticks of 100 ms). */
const REMOVED_LINGER_MS = 2_500;
/** A learner is promoted once caught up; waiting longer than this is a failure. */
const PROMOTE_WITHIN_MS = 25_000;
const CHECK_BUDGET_MS = 20_000;
/**
 * Operations with a definite answer in the whole run, and between one change's end and the
 * next one's (or the clients' end). On a loaded 2-core machine the run answers well over a
 * thousand and each stretch over a hundred (the counts are printed); these minimums are far
 * above the handful of a cluster that stood still after a change.
 */
const OPS_MIN = 300;
const OPS_AFTER_CHANGE_MIN = 15;

interface History {
  kv: Operation<KvInput, KvOutput>[];
  cas: Operation<EtcdInput, EtcdOutput>[];
  unknown: number;
  failed: number;
}

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
    if (!(error instanceof ClientError) && !(error instanceof KvError)) throw error;
    history.failed++;
    return undefined;
  }
}

/**
 * One client: a random mix of operations until `stopped()`. Reads go through `readerOf()`,
 * a client that stays at the member it first reaches while that member answers (writes
 * would move it to the leader), so followers serve reads too; the test points it at a new
 * member once that member is a voter.
 */
async function runClient(client: FlotillaClient, readerOf: () => FlotillaClient, clientId: number, history: History, stopped: () => boolean): Promise<void> {
  let seed = clientId * 7919 + 1;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let n = 0; !stopped(); n++) {
    const choice = random(10);
    const key = KV_KEYS[random(KV_KEYS.length)]!;
    const unique = `${clientId}.${n};`;
    const reader = readerOf();
    if (choice < 3) await record(history.kv, history, clientId, { kind: 'get', key }, async () => (await getText(reader, key)) ?? '');
    else if (choice < 4)
      await record(history.kv, history, clientId, { kind: 'put', key, value: unique }, async () => {
        await client.put(key, unique);
        return '';
      });
    else if (choice < 6)
      await record(history.kv, history, clientId, { kind: 'append', key, value: unique }, async () => {
        await client.append(key, unique);
        return '';
      });
    else await casStep(client, reader, clientId, history, clientId * 1_000_000 + n, random(3));
    await sleep(5 + random(20));
  }
}

/** On the cas key (every written number unique): a write; a read; or a read then a cas on the version read (see test/server/jepsen.test.ts). */
async function casStep(client: FlotillaClient, reader: FlotillaClient, clientId: number, history: History, value: number, kind: number): Promise<void> {
  if (kind === 0) {
    await record(history.cas, history, clientId, { kind: 'write', value }, async () => {
      await client.put(CAS_KEY, String(value));
      return true;
    });
    return;
  }
  let version = 0;
  const read = await record(history.cas, history, clientId, { kind: 'read' }, async () => {
    const got = await reader.get(CAS_KEY);
    version = got.version;
    return got.value === null ? null : Number(Buffer.from(got.value).toString());
  });
  if (kind === 1 || typeof read !== 'number') return;
  await record(history.cas, history, clientId, { kind: 'cas', from: read, to: value }, async () => (await client.cas(CAS_KEY, String(value), version)).swapped);
}

/** Operations with a definite answer whose answer came in (fromMs, toMs]. */
function completedBetween(history: History, fromMs: number, toMs: number): number {
  let count = 0;
  for (const op of [...history.kv, ...history.cas]) if (op.returnTime !== undefined && op.returnTime > fromMs && op.returnTime <= toMs) count++;
  return count;
}

interface GroupView {
  leader: number;
  term: number;
  members: { id: number; kind: string; lag: number | null }[];
}
type Views = Record<'kv' | 'zk', GroupView>;

/** A member process the test started, original or joined. */
interface Member {
  readonly ports: Ports;
  readonly child: { isRunning(): boolean; kill(signal: 'SIGTERM' | 'SIGKILL'): void; readonly exited: Promise<{ code: number | null; signal: string | null }> };
}

/** Drives membership through the CLI, keeping track of the member processes that still run. */
class Operator {
  readonly live = new Map<number, Member>();
  /** Each change, with the time (now()) its last step finished. */
  readonly changes: { what: string; doneMs: number }[] = [];
  /** Lines for the test's diagnostics. */
  readonly observations: string[] = [];

  constructor(
    private readonly t: TestContext,
    private readonly cluster: TestCluster,
  ) {
    for (const id of cluster.ids) this.live.set(id, { ports: cluster.ports.get(id)!, child: cluster.members.get(id)!.child });
  }

  admins(): string {
    return [...this.live.values()].map((m) => `127.0.0.1:${m.ports.admin}`).join(',');
  }

  member(args: readonly string[]): Promise<CommandRun> {
    return runFlotilla(['member', ...args, '--admin', this.admins()], { timeoutMs: 50_000 });
  }

  /** `member ...args`, which must succeed and print `expected`. */
  async expectDone(args: readonly string[], expected: RegExp): Promise<string> {
    const run = await this.member(args);
    assert.equal(run.code, 0, `member ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
    assert.match(run.stdout.toString(), expected, `member ${args.join(' ')}`);
    return run.stdout.toString();
  }

  async list(): Promise<Views> {
    const run = await this.member(['list', '--json']);
    assert.equal(run.code, 0, `member list: ${run.stderr}`);
    return JSON.parse(run.stdout.toString()) as Views;
  }

  /** Both groups' members as `id:kind`, once each group has a leader. */
  async settledList(): Promise<{ views: Views; kv: string[]; zk: string[] }> {
    const views = await waitFor('a leader in both groups', 15_000, async () => {
      const got = await this.list();
      return got.kv.leader !== 0 && got.zk.leader !== 0 ? got : undefined;
    });
    const describe = (view: GroupView) => view.members.map((m) => `${m.id}:${m.kind}`);
    return { views, kv: describe(views.kv), zk: describe(views.zk) };
  }

  async assertMembers(expected: string[], when: string): Promise<Views> {
    const { views, kv, zk } = await this.settledList();
    assert.deepEqual(kv, expected, `key/value group ${when}`);
    assert.deepEqual(zk, expected, `zookeeper group ${when}`);
    return views;
  }

  /** Starts member `id` with --join (its client port chosen by the test, so clients can list it first). */
  async join(id: number, peerPort: number, clientPort: number): Promise<Member> {
    const via = [...this.live.keys()].find((live) => this.cluster.ids.includes(live))!;
    const extra = [...EXTRA_ARGS, '--client-port', String(clientPort)];
    const { member, ports } = await this.cluster.startJoiner(this.t, id, peerPort, join(this.cluster.root, `member-${id}`), via, extra);
    assert.equal(ports.client, clientPort);
    const started: Member = { ports, child: member.child };
    this.live.set(id, started);
    return started;
  }

  /**
   * `member promote id`, retried while it is refused for not having caught up (or for want of
   * a leader). Should it be done in the key/value group only, it is finished in the other
   * group with --group, as the CLI's answer then says to.
   */
  async promote(id: number): Promise<void> {
    const deadline = Date.now() + PROMOTE_WITHIN_MS;
    let only: string[] = [];
    for (let refusals = 0; ; refusals++) {
      const run = await this.member(['promote', String(id), ...only]);
      if (run.code === 0) return this.t.diagnostic(`member ${id} promoted after ${refusals} refusals${only.length > 0 ? ', finished with --group zk' : ''}`);
      assert.match(run.stderr, /not caught up|no leader|try again/, `promote ${id} refused for another reason (after ${refusals} refusals): ${run.stderr}`);
      if (new RegExp(`promote ${id}: done in kv, not in zk`).test(run.stderr)) only = ['--group', 'zk'];
      assert.ok(Date.now() < deadline, `member ${id} was still refused promotion after ${PROMOTE_WITHIN_MS} ms: ${run.stderr}`);
      await sleep(200);
    }
  }

  /** Removed from the members the CLI asks (it is no member any more). */
  forget(id: number): Member {
    const member = this.live.get(id)!;
    this.live.delete(id);
    return member;
  }

  /** SIGTERM: a removed member stops cleanly. */
  async stop(id: number, member = this.forget(id)): Promise<void> {
    assert.ok(member.child.isRunning(), `member ${id} was still running when removed`);
    member.child.kill('SIGTERM');
    const exit = await member.child.exited;
    assert.equal(exit.code, 0, `member ${id} stopped on SIGTERM with code ${exit.code} (signal ${exit.signal})`);
  }

  done(what: string): void {
    this.changes.push({ what, doneMs: now() });
  }
}

type MemberStatus = StatusJson & { zk: { role: string; term: number; leader: number } };

async function statusOf(member: Member): Promise<MemberStatus> {
  const response = await fetch(`http://127.0.0.1:${member.ports.admin}/status`);
  assert.ok(response.ok, `status: HTTP ${response.status}`);
  return (await response.json()) as MemberStatus;
}

/** The key/value leader's snapshot bytes on disk (its log before them is compacted away). */
async function snapshotBytesOfLeader(op: Operator): Promise<number> {
  const { views } = await op.settledList();
  const status = (await statusOf(op.live.get(views.kv.leader)!)) as unknown as { snapshotBytes: number };
  op.observations.push(`leader ${views.kv.leader} had ${status.snapshotBytes} snapshot bytes when member 6 joined`);
  return status.snapshotBytes;
}

/** Adds and promotes a joined member: voters `before` plus `id`. */
async function addVoter(op: Operator, id: number, peerPort: number, clientPort: number, before: number[]): Promise<void> {
  await op.join(id, peerPort, clientPort);
  await op.expectDone(['add', String(id), `127.0.0.1:${peerPort}`], new RegExp(`kv: add ${id} done.*\\n.*zk: add ${id} done`));
  await op.promote(id);
  await op.assertMembers(
    [...before, id].sort((a, b) => a - b).map((v) => `${v}:voter`),
    `after member ${id} was added and promoted`,
  );
  op.done(`add and promote ${id}`);
}

/** Removes the key/value leader (made the ZooKeeper leader too first); returns it. */
async function removeLeader(op: Operator, voters: number[]): Promise<number> {
  const { views } = await op.settledList();
  const leader = views.kv.leader;
  if (views.zk.leader !== leader) await op.expectDone(['transfer-leader', String(leader), '--group', 'zk'], new RegExp(`zk: member ${leader} leads`));
  const removed = await op.expectDone(['remove', String(leader)], new RegExp(`kv: remove ${leader} done.*\\n.*zk: remove ${leader} done`));
  assert.doesNotMatch(removed, new RegExp(`voters [\\d,]*\\b${leader}\\b`), 'the removed leader is no voter');
  const leaderMember = op.forget(leader);
  const remaining = voters.filter((id) => id !== leader);
  const after = await op.assertMembers(
    remaining.map((id) => `${id}:voter`),
    `after the leader ${leader} was removed`,
  );
  assert.notEqual(after.kv.leader, leader, 'leadership of the key/value group moved');
  assert.notEqual(after.zk.leader, leader, 'leadership of the zookeeper group moved');
  // Still running, past an election timeout without a word from a leader: it may never
  // learn that it was removed (the removal commits after the leader stops sending to it), so
  // it may campaign, but with pre-vote it moves to no new term and can depose no one (Raft
  // thesis §4.2.3). Its term stays at most the cluster's, and it leads nothing.
  await sleep(REMOVED_LINGER_MS);
  const lingered = await statusOf(leaderMember);
  const cluster = (await op.settledList()).views;
  for (const [group, removedView, clusterView] of [
    ['key/value', lingered, cluster.kv],
    ['zookeeper', lingered.zk, cluster.zk],
  ] as const) {
    assert.notEqual(removedView.role, 'leader', `the removed member ${leader} leads the ${group} group`);
    assert.ok(removedView.term <= clusterView.term, `the removed member ${leader} is at term ${removedView.term} of the ${group} group, past the cluster's ${clusterView.term}`);
  }
  op.observations.push(
    `removed leader ${leader} after ${REMOVED_LINGER_MS} ms: ${lingered.role} at term ${lingered.term} (cluster ${cluster.kv.term}), zk ${lingered.zk.role} at term ${lingered.zk.term} (cluster ${cluster.zk.term})`,
  );
  await op.stop(leader, leaderMember);
  const settled = await op.assertMembers(
    remaining.map((id) => `${id}:voter`),
    `after the removed leader ${leader} stopped`,
  );
  assert.ok(remaining.includes(settled.kv.leader), `the key/value leader ${settled.kv.leader} is one of ${remaining.join(',')}`);
  op.done(`remove leader ${leader}`);
  return leader;
}

/** Joins member `id`, adds it as a learner, waits until it has applied entries, removes it while a learner. */
async function learnerInAndOut(op: Operator, id: number, peerPort: number, clientPort: number, voters: number[]): Promise<void> {
  const learner = await op.join(id, peerPort, clientPort);
  await op.expectDone(['add', String(id), `127.0.0.1:${peerPort}`], new RegExp(`kv: add ${id} done; voters [\\d,]+, learners ${id}\\n.*zk: add ${id} done`));
  const asVoters = voters.map((v) => `${v}:voter`);
  await op.assertMembers([...asVoters, `${id}:learner`], `after member ${id} was added`);
  const applied = await waitFor(`learner ${id} to apply entries`, 15_000, async () => {
    const status = await statusOf(learner);
    return status.applied > 0 ? status.applied : undefined;
  });
  // Out of the ZooKeeper group first, then a plain remove: done in the key/value group and
  // refused by the other, and the CLI says which part is done (it must not print just the
  // refusal, as if nothing had changed).
  await op.expectDone(['remove', String(id), '--group', 'zk'], new RegExp(`^zk: remove ${id} done; voters [\\d,]+\\n$`));
  const partial = await op.member(['remove', String(id)]);
  assert.equal(partial.code, 1, `remove ${id} after its zk removal: ${partial.stderr}`);
  assert.match(partial.stdout.toString(), new RegExp(`^kv: remove ${id} done; voters [\\d,]+\\n$`));
  assert.match(partial.stderr, new RegExp(`the zk group refused remove ${id} \\(invalid-conf-change: node ${id} is not a member\\)`));
  assert.match(partial.stderr, new RegExp(`remove ${id}: done in kv, not in zk; .*flotilla member remove ${id} --group zk`));
  await op.assertMembers(asVoters, `after learner ${id} was removed`);
  await op.stop(id);
  op.done(`learner ${id} (applied ${applied}) added and removed`);
}

/** Removes an original member that leads neither group (if there is one; else one that does not lead the key/value group). */
async function removeFollower(op: Operator, voters: number[], originals: readonly number[]): Promise<number> {
  const { views } = await op.settledList();
  const candidates = voters.filter((id) => originals.includes(id) && id !== views.kv.leader);
  const follower = candidates.find((id) => id !== views.zk.leader) ?? candidates[0]!;
  assert.ok(follower !== undefined, `an original follower among ${voters.join(',')}`);
  await op.expectDone(['remove', String(follower)], new RegExp(`kv: remove ${follower} done.*\\n.*zk: remove ${follower} done`));
  await op.stop(follower);
  await op.assertMembers(
    voters.filter((id) => id !== follower).map((id) => `${id}:voter`),
    `after follower ${follower} was removed`,
  );
  op.done(`remove follower ${follower}`);
  return follower;
}

function verdicts(history: History): { kv: string; cas: string; explain: string } {
  const options = { timeBudgetMs: CHECK_BUDGET_MS, nowMs: () => performance.now() };
  const kv = check(kvModel(), history.kv, options);
  const cas = check(etcdModel(), history.cas, options);
  const explain = [kv.verdict === 'ok' ? '' : describeResult(kvModel(), kv), cas.verdict === 'ok' ? '' : describeResult(etcdModel(), cas)].join('\n').slice(0, 4000);
  return { kv: kv.verdict, cas: cas.verdict, explain };
}

/**
 * The history with one more read of the cas key after everything else (the final read
 * included), answering the first acknowledged write's value although the final read found
 * another: the stale read a removed member serving its own old state would give. Values are
 * unique, so no write can explain it, and the checker must refuse it. Undefined if the final
 * read failed or found that first value.
 */
function withStaleRead(history: History, finalRead: EtcdOutput | undefined): History | undefined {
  const first = history.cas.find((op) => op.input.kind === 'write' && op.output !== undefined)?.input;
  if (first?.kind !== 'write' || finalRead === undefined || finalRead === first.value) return undefined;
  const end = Math.max(...history.cas.map((op) => op.returnTime ?? op.callTime));
  return { ...history, cas: [...history.cas, { clientId: 98, input: { kind: 'read' }, output: first.value, callTime: end + 1, returnTime: end + 2 }] };
}

test('member add/promote/remove (the leader, a learner, a follower) through the CLI under client load: the history is linearizable', { timeout: 90_000 }, async (t) => {
  const startedMs = Date.now();
  const cluster = await TestCluster.create(t, 3);
  cluster.extraArgs = EXTRA_ARGS;
  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  await cluster.waitForLeader();
  // Peer and client ports of members 4, 5 and 6, known now so that the clients list them.
  const [peer4, peer5, peer6, client4, client5, client6] = (await freePorts(6)) as [number, number, number, number, number, number];
  const endpoints = [...cluster.ids.map((id) => cluster.ports.get(id)!.client), client4, client5, client6].map((port) => ({ host: '127.0.0.1', port }));
  const clients: FlotillaClient[] = [];
  const newClient = (first: number) => {
    const client = new FlotillaClient({ ...CLIENT_OPTIONS, endpoints: [...endpoints.slice(first), ...endpoints.slice(0, first)] });
    clients.push(client);
    return client;
  };
  t.after(() => {
    for (const client of clients) client.close();
  });

  const history: History = { kv: [], cas: [], unknown: 0, failed: 0 };
  let stopping = false;
  // Each client's reads start at a different original member; the first two clients read
  // from members 4 and 6 once those are voters (endpoints 3 and 5).
  const readers = Array.from({ length: CLIENTS }, (_, i) => newClient(i % 3));
  const loops = Array.from({ length: CLIENTS }, (_, i) =>
    runClient(
      newClient(0),
      () => readers[i]!,
      i + 1,
      history,
      () => stopping,
    ),
  );
  const op = new Operator(t, cluster);
  let removedLeader: number;
  let removedFollower: number;
  let finalVoters: number[];
  try {
    await sleep(1_000);
    op.done('clients started');
    await addVoter(op, 4, peer4, client4, [1, 2, 3]);
    readers[0] = newClient(3);
    removedLeader = await removeLeader(op, [1, 2, 3, 4]);
    const afterLeader = [1, 2, 3, 4].filter((id) => id !== removedLeader);
    await learnerInAndOut(op, 5, peer5, client5, afterLeader);
    const leaderSnapshotBytes = await snapshotBytesOfLeader(op);
    assert.ok(leaderSnapshotBytes > 0, 'the leader has snapshotted before member 6 joins');
    await addVoter(op, 6, peer6, client6, afterLeader);
    readers[1] = newClient(5);
    removedFollower = await removeFollower(op, [...afterLeader, 6], cluster.ids);
    finalVoters = [...afterLeader, 6].filter((id) => id !== removedFollower);
    await sleep(HEALED_PHASE_MS);
  } finally {
    stopping = true;
    await Promise.all(loops);
  }
  const clientsStoppedMs = now();

  // The final membership, once more, and a last read of every key through the survivors.
  const { views } = await op.settledList();
  for (const group of ['kv', 'zk'] as const) {
    assert.deepEqual(
      views[group].members.map((m) => `${m.id}:${m.kind}`),
      finalVoters.map((id) => `${id}:voter`),
      group,
    );
    assert.ok(finalVoters.includes(views[group].leader), `${group} leader ${views[group].leader} is a voter`);
  }
  const final = new FlotillaClient({ callDeadlineMs: 20_000, endpoints: finalVoters.map((id) => ({ host: '127.0.0.1', port: op.live.get(id)!.ports.client })) });
  clients.push(final);
  for (const key of KV_KEYS) await record(history.kv, history, 99, { kind: 'get', key }, async () => (await getText(final, key)) ?? '');
  const finalRead = await record(history.cas, history, 99, { kind: 'read' }, async () => {
    const got = await final.get(CAS_KEY);
    return got.value === null ? null : Number(Buffer.from(got.value).toString());
  });

  // Progress: in all, and after every change.
  const stretches = op.changes.map((change, i) => ({ ...change, after: completedBetween(history, change.doneMs, op.changes[i + 1]?.doneMs ?? clientsStoppedMs) }));
  for (const line of op.observations) t.diagnostic(line);
  t.diagnostic(`changes: ${stretches.map((s) => `${s.what} (+${s.after} ops)`).join('; ')}`);
  const completed = completedBetween(history, 0, Number.POSITIVE_INFINITY);
  t.diagnostic(`${history.kv.length + history.cas.length} operations: ${completed} answered, ${history.unknown} outcome unknown, ${history.failed} failed definitely`);
  assert.ok(completed > OPS_MIN, `only ${completed} operations were answered (want > ${OPS_MIN})`);
  for (const stretch of stretches) assert.ok(stretch.after > OPS_AFTER_CHANGE_MIN, `only ${stretch.after} operations (want > ${OPS_AFTER_CHANGE_MIN}) were answered after "${stretch.what}"`);

  const result = verdicts(history);
  t.diagnostic(`kv: ${result.kv}, cas: ${result.cas}`);
  assert.equal(result.kv, 'ok', result.explain);
  assert.equal(result.cas, 'ok', result.explain);
  // The check saw this history: one planted stale read at the end makes it illegal.
  const planted = withStaleRead(history, finalRead);
  assert.ok(planted !== undefined, `the final read of the cas key (${String(finalRead)}) answered, and not with the first value written`);
  assert.equal(check(etcdModel(), planted.cas, { timeBudgetMs: CHECK_BUDGET_MS, nowMs: () => performance.now() }).verdict, 'illegal', 'a planted stale read is caught');
  t.diagnostic(`removed leader ${removedLeader}, removed follower ${removedFollower}, voters now ${finalVoters.join(',')}; ${Date.now() - startedMs} ms in all`);
});
