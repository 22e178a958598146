// The sharded key/value service in real `flotilla server` processes (issue 16 item 5):
// three members host the shard controller and three key/value groups (--shards, LAYOUT); the
// groups join with `flotilla shard join`; four ShardedClients append unique tokens to keys
// of every shard and read them (recording a history) while `flotilla shard move` moves
// shards and members are killed with SIGKILL and restarted. At the end every acknowledged
// append is read back exactly once (exactly-once across migrations and crashes), the
// history is linearizable (lincheck's kvModel), and the faults are shown to have happened:
// pids changed, each move made the next configuration, and each moved shard is served by
// its new group. Its broken twin runs the groups with --shard-unsafe serve-before-arrival
// (a moved shard is served before its data arrives) and must be caught.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, describeResult, kvModel, type KvInput, type KvOutput, type Operation } from '../../src/lincheck/index.js';
import { ClientError } from '../../src/server/client.js';
import { ShardedClient } from '../../src/server/sharded-client.js';
import { shardCount } from '../../src/shardctrler/index.js';
import { key2shard } from '../../src/shardkv/index.js';
import { sleep, TestCluster, waitFor } from '../server/helpers.js';
import { killAllCommands, runFlotilla } from './helpers.js';

/**
 * Groups 101 and 102 have three replicas (a kill -9 makes them fail over); group 100 has
 * member 1 only, so while member 1 is down a shard moved away from 100 cannot be pulled
 * and its new owner must wait (the broken twin serves it empty instead).
 */
const LAYOUT = 'ctrl=1,2,3;100=1;101=1,2,3;102=1,2,3';
const GIDS = [100, 101, 102];
/** One key per shard: a key's shard is its first byte mod 10. */
const KEYS = Array.from({ length: shardCount }, (_, shard) => String.fromCharCode(100 + shard)).sort();
const CLIENTS = 4;
const CHECK_BUDGET_MS = 20_000;
const RAFT_STATE_BYTES_MAX = 8 * 1024;

interface ShardStatus {
  pid: number;
  shards: { ctrl: { latest: number } | null; groups: { gid: number; role: string; configNum: number; shards: Record<string, number[]>; keys: number }[] } | null;
}

interface Outcome {
  cluster: TestCluster;
  moves: { shard: number; gid: number; num: number }[];
  /** The configuration `flotilla shard leave 102` made. */
  left: { num: number; shards: number[] };
  pidsBefore: Map<number, number>;
  /** Acknowledged appends not read back exactly once. */
  lost: { key: string; token: string }[];
  acked: number;
  verdict: string;
  explain: string;
}

test('sharded groups in real processes: moves and kill -9 under client writes, then every acked write read back and the history linearizable', { timeout: 90_000 }, async (t) => {
  const outcome = await scenario(t, { unsafe: false });
  const { cluster, moves } = outcome;
  for (const id of [1, 2]) assert.notEqual((await status(cluster, id)).pid, outcome.pidsBefore.get(id), `member ${id} was killed and restarted`);
  assert.deepEqual(
    moves.map((m) => m.num),
    [2, 3, 4, 5, 6],
    'each move made the next configuration',
  );
  assert.ok((await status(cluster, 3)).shards!.ctrl!.latest >= 6, 'the controller on member 3 has every configuration');
  assert.equal(outcome.left.num, 7, 'the leave made configuration 7');
  assert.ok(!outcome.left.shards.includes(102), 'group 102 left: no shard is on it');
  // Every shard is served by the group configuration 7 gives it (the moves and the leave really moved them).
  for (const [s, gid] of outcome.left.shards.entries()) {
    await waitFor(`shard ${s} served by group ${gid}`, 20_000, async () => {
      for (const id of cluster.ids) {
        const group = (await status(cluster, id)).shards?.groups.find((g) => g.gid === gid);
        if (group?.role === 'leader' && group.configNum === 7 && [...(group.shards['serving'] ?? []), ...(group.shards['gc'] ?? [])].includes(s)) return true;
      }
      return undefined;
    });
  }
  // Group 102 handed every shard off and, once their new owners had them, deleted its copies.
  await waitFor('group 102 holds nothing', 20_000, async () => {
    const groups = await Promise.all(cluster.ids.map(async (id) => (await status(cluster, id)).shards?.groups.find((g) => g.gid === 102)));
    return groups.every((g) => g !== undefined && g.configNum === 7 && g.keys === 0 && Object.keys(g.shards).length === 0) ? true : undefined;
  });
  // Every hosted group writes to the member's one shared log; snapshots are per group.
  assert.ok(
    (await readdir(join(cluster.dataDir(3), 'shards', 'wal'))).some((name) => name.endsWith('.wal')),
    "member 3 keeps the groups' shared log",
  );
  for (const dir of ['group-101', 'group-102']) {
    const files = await readdir(join(cluster.dataDir(3), 'shards', dir, 'snap'));
    assert.ok(files.length > 0, `member 3's ${dir} took a snapshot`);
  }
  assert.deepEqual(outcome.lost, [], 'every acknowledged append is read back exactly once');
  assert.ok(outcome.acked >= 50, `the clients made progress (${outcome.acked} acknowledged appends)`);
  assert.equal(outcome.verdict, 'ok', outcome.explain);
});

test('the broken twin: groups that serve a shard before its data arrives are caught', { timeout: 90_000 }, async (t) => {
  const outcome = await scenario(t, { unsafe: true });
  t.diagnostic(`lost ${outcome.lost.length} of ${outcome.acked} acknowledged appends; verdict ${outcome.verdict}`);
  assert.ok(outcome.lost.length > 0 || outcome.verdict === 'illegal', 'serving a shard before its data arrived went unnoticed');
});

test('bad sharding input is refused with a clear message', async (t) => {
  t.after(killAllCommands);
  const server = (layout: string) =>
    runFlotilla(['server', '--id', '1', '--peers', '1=127.0.0.1:1', '--data', '/nonexistent/never-created', '--cluster-secret', 'a-secret-of-enough-bytes', '--shards', layout]);
  for (const [layout, message] of [
    ['100=1', /no controller group/],
    ['ctrl=1', /no key\/value group/],
    ['ctrl=1;5=1', /neither ctrl nor a gid from 100/],
    ['ctrl=1;100=1,2', /member 2 is not in the peer list/],
    ['ctrl=1;100=1;100=1', /group 100 appears twice/],
  ] as const) {
    const run = await server(layout);
    assert.equal(run.code, 2, `--shards ${layout}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
  const move = await runFlotilla(['shard', 'move', 'x', '100', '--endpoints', '127.0.0.1:1']);
  assert.equal(move.code, 2);
  assert.match(move.stderr, /shard: "x" is not a non-negative integer/);
  const join = await runFlotilla(['shard', 'join', '0', '--endpoints', '127.0.0.1:1']);
  assert.equal(join.code, 2);
  assert.match(join.stderr, /0 is not a group/);
  // Data kept in the old layout (a log per sharded group, before the shared log) is refused, not ignored.
  const old = await mkdtemp(`${tmpdir()}/flotilla-old-layout-`);
  t.after(() => rm(old, { recursive: true, force: true }));
  await mkdir(`${old}/group-100/wal`, { recursive: true });
  const refused = await runFlotilla(['server', '--id', '1', '--peers', '1=127.0.0.1:1', '--data', old, '--cluster-secret', 'a-secret-of-enough-bytes', '--shards', 'ctrl=1;100=1']);
  assert.equal(refused.code, 3, `a member with the old layout refuses to start: ${refused.stderr}`);
  assert.match(refused.stderr, /group-100 holds sharded group 100's log in the layout of an older version/);
  const serializable = await runFlotilla(['kv', 'get', 'k', '--sharded', '--serializable', '--endpoints', '127.0.0.1:1']);
  assert.equal(serializable.code, 2);
  assert.match(serializable.stderr, /--serializable does not apply with --sharded/);

  // A member started without --shards says so, at once.
  const cluster = await TestCluster.create(t, 1);
  await cluster.startMember(1);
  const endpoint = `127.0.0.1:${cluster.ports.get(1)!.client}`;
  for (const args of [
    ['shard', 'query'],
    ['kv', 'put', '--sharded', 'k', 'v'],
  ]) {
    const run = await runFlotilla([...args, '--endpoints', endpoint]);
    assert.equal(run.code, 1, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, /invalid: .*this member hosts no sharded service \(start it with --shards\)/);
    assert.ok(run.elapsedMs < 5_000, `${args.join(' ')} failed at once (${run.elapsedMs} ms)`);
  }
});

async function scenario(t: TestContext, options: { unsafe: boolean }): Promise<Outcome> {
  t.after(killAllCommands);
  assert.equal(new Set(KEYS.map(key2shard)).size, shardCount, 'the keys cover every shard');
  const cluster = await TestCluster.create(t, 3);
  // A small log limit, so that every group snapshots (and restarted members recover from snapshots).
  cluster.extraArgs = ['--shards', LAYOUT, '--raft-state-bytes-max', String(RAFT_STATE_BYTES_MAX), ...(options.unsafe ? ['--shard-unsafe', 'serve-before-arrival'] : [])];
  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  const endpoints = () => cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.client}`).join(',');
  const shard = (args: string[]) => runFlotilla(['shard', ...args, '--endpoints', endpoints(), '--json'], { timeoutMs: 20_000 });

  // Members learn each other's client addresses within a second (MemberInfo); until then a join is refused.
  const joined = await waitFor('flotilla shard join 100 101 102', 20_000, async () => {
    const run = await shard(['join', ...GIDS.map(String)]);
    if (run.code === 0) return JSON.parse(run.stdout.toString()) as { num: number; shards: number[] };
    assert.match(run.stdout.toString(), /address-unknown|unavailable|timeout|not-leader/, `join failed for an unexpected reason: ${run.stdout}${run.stderr}`);
    await sleep(300);
    return undefined;
  });
  assert.equal(joined.num, 1);
  assert.deepEqual(new Set(joined.shards), new Set(GIDS), 'every group got shards');

  const history: Operation<KvInput, KvOutput>[] = [];
  const acked: { key: string; token: string }[] = [];
  const startMs = performance.now();
  const now = () => performance.now() - startMs;
  let running = true;
  const clients: ShardedClient[] = [];
  t.after(() => {
    for (const client of clients) client.close();
  });
  const newClient = (callDeadlineMs: number) => {
    const client = new ShardedClient({ endpoints: cluster.ids.map((id) => ({ host: '127.0.0.1', port: cluster.ports.get(id)!.client })), callDeadlineMs });
    clients.push(client);
    return client;
  };
  const writer = async (c: number) => {
    const client = newClient(5_000);
    for (let n = 0; running; n++) {
      const key = KEYS[(c * 7 + n * 3) % KEYS.length]!;
      const input: KvInput = n % 3 === 2 ? { kind: 'get', key } : { kind: 'append', key, value: `<${c}.${n}>` };
      const callTime = now();
      try {
        let output = '';
        if (input.kind === 'get') output = await client.get(key);
        else await client.append(key, input.value);
        history.push({ clientId: c, input, output, callTime, returnTime: now() });
        if (input.kind === 'append') acked.push({ key, token: input.value });
      } catch (error) {
        if (!(error instanceof ClientError)) throw error;
        // Unknown (or, for a get, nothing happened): recorded as pending, which the checker allows to apply or not.
        history.push({ clientId: c, input, output: undefined, callTime, returnTime: undefined });
      }
    }
  };
  // A prober reads the keys of the shards moved while their old owner was down, with a short
  // deadline, so that its reads land while they move (it is a client like the others).
  const prober = async () => {
    const client = newClient(1_500);
    for (let n = 0; running; n++) {
      const key = KEYS.find((k) => key2shard(k) === n % 2)!;
      const callTime = now();
      try {
        const output = await client.get(key);
        history.push({ clientId: CLIENTS, input: { kind: 'get', key }, output, callTime, returnTime: now() });
      } catch (error) {
        if (!(error instanceof ClientError)) throw error;
        history.push({ clientId: CLIENTS, input: { kind: 'get', key }, output: undefined, callTime, returnTime: undefined });
      }
      await sleep(20);
    }
  };
  const writers = [...Array.from({ length: CLIENTS }, (_, c) => writer(c)), prober()];

  const pidsBefore = new Map<number, number>();
  for (const id of cluster.ids) pidsBefore.set(id, (await status(cluster, id)).pid);
  const moves: Outcome['moves'] = [];
  let left: Outcome['left'] = { num: 0, shards: [] };
  const move = async (s: number, gid: number) => {
    const run = await shard(['move', String(s), String(gid)]);
    assert.equal(run.code, 0, `shard move ${s} ${gid}: ${run.stdout}${run.stderr}`);
    moves.push({ shard: s, gid, num: (JSON.parse(run.stdout.toString()) as { num: number }).num });
  };
  // Join gave shards 0-3 to group 100, 4-6 to 101, 7-9 to 102 (the controller's deterministic balance).
  try {
    await sleep(1_500);
    await move(4, 102);
    await cluster.kill(1, 'SIGKILL'); // group 100 is down; 101 and 102 fail over
    await move(0, 101); // 101 cannot pull shard 0 until member 1 is back
    await sleep(3_000);
    await cluster.startMember(1);
    await move(7, 100);
    await cluster.kill(2, 'SIGKILL');
    await sleep(1_000);
    await move(1, 102);
    await cluster.startMember(2);
    await move(0, 100);
    const leave = await shard(['leave', '102']);
    assert.equal(leave.code, 0, `shard leave 102: ${leave.stdout}${leave.stderr}`);
    left = JSON.parse(leave.stdout.toString()) as { num: number; shards: number[] };
    await sleep(3_000);
  } finally {
    running = false;
    await Promise.all(writers);
  }

  const reader = newClient(15_000);
  const values = new Map<string, string>();
  for (const key of KEYS) values.set(key, await reader.get(key));
  const lost = acked.filter(({ key, token }) => values.get(key)!.split(token).length !== 2);
  t.diagnostic(`${history.length} operations, ${acked.length} acknowledged appends, ${history.filter((op) => op.output === undefined).length} unknown; moves ${JSON.stringify(moves)}`);
  const result = check(kvModel(), history, { timeBudgetMs: CHECK_BUDGET_MS, nowMs: () => performance.now() });
  return { cluster, moves, left, pidsBefore, lost, acked: acked.length, verdict: result.verdict, explain: result.verdict === 'ok' ? '' : describeResult(kvModel(), result).slice(0, 4000) };
}

async function status(cluster: TestCluster, id: number): Promise<ShardStatus> {
  return (await cluster.status(id)) as unknown as ShardStatus;
}
