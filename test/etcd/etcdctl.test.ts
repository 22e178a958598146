// etcd's v3 API on real `flotilla server` processes, driven by Debian's etcdctl 3.4:
// - differential: the same etcdctl -w json commands against a real etcd 3.4 and a three-member
//   Flotilla, compared field by field (ids and terms normalized; revisions compared as they
//   are: both stores count the same writes), errors by exit code and etcd's message;
// - kill -9 of the etcd group's leader: writes through etcdctl continue on the others, and
//   every acknowledged one is read back after the member restarts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { sleep, TestCluster, waitFor } from '../server/helpers.js';
import { assertSameAnswers, type DifferentialStep, ETCDCTL_PATH, etcdctl, etcdSkipReason, RealEtcd } from './etcdctl.js';

type Step = DifferentialStep;

const txnSuccess = 'value("a") = "3"\n\nput a 5\nget b\n\nput a never\n\n';
const txnFailure = 'mod("b") > "100"\nversion("a") = "2"\n\nput a never\n\nput b failed\nget a --prefix\n\n';

/** Each step runs with -w json against both systems, in this order, from an empty store. */
const script: readonly Step[] = [
  { args: ['put', 'a', '1'] },
  { args: ['put', 'b', '2'] },
  { args: ['put', 'a', '3', '--prev-kv'] },
  { args: ['get', 'a'] },
  { args: ['put', 'ab', '4'] },
  { args: ['put', 'ac', '0'] },
  { args: ['get', 'a', '--prefix'] },
  { args: ['get', 'a', '--prefix', '--limit', '2'] },
  { args: ['get', 'a', '--prefix', '--keys-only'] },
  { args: ['get', 'a', '--prefix', '--count-only'] },
  { args: ['get', 'a', '--prefix', '--sort-by', 'VALUE', '--order', 'DESCEND'] },
  { args: ['get', 'a', '--prefix', '--sort-by', 'MODIFY', '--order', 'ASCEND'] },
  { args: ['get', 'a', '--prefix', '--sort-by', 'CREATE'] },
  { args: ['get', 'b', '--from-key'] },
  { args: ['get', 'a', 'b'] },
  { args: ['get', 'a', '--rev', '2'] },
  { args: ['get', 'a', '--consistency', 's'] },
  { args: ['get', 'nothing'] },
  { args: ['del', 'ab', '--prev-kv'] },
  { args: ['del', 'nothing'] },
  { args: ['del', 'a', '--prefix'] },
  { args: ['put', 'a', '3'] },
  { args: ['txn'], input: txnSuccess },
  { args: ['txn'], input: txnFailure },
  { args: ['put', 'c', '--ignore-value'] },
  { args: ['put', 'b', '--ignore-value'] },
  { args: ['put', 'd', 'x', '--lease', '1234'] },
  { args: ['compaction', '4'] },
  { args: ['get', 'a', '--rev', '3'] },
  { args: ['get', 'a', '--rev', '4'] },
  { args: ['get', 'a', '--rev', '1000'] },
  { args: ['compaction', '3'] },
  { args: ['get', 'a', '--prefix', '--rev', '0'] },
];

test('differential: the same etcdctl commands give the same answers from a real etcd 3.4 and from Flotilla', { timeout: 180_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const real = await RealEtcd.start();
  t.after(() => real.stop());
  const cluster = await TestCluster.start(t, 3);
  const flotilla = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`).join(',');
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(flotilla, ['endpoint', 'health'])).code === 0 ? true : undefined));
  await assertSameAnswers(script, real.endpoint, flotilla);
});

test('member list and endpoint status name the three members; status says who leads', { timeout: 60_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const cluster = await TestCluster.start(t, 3);
  const endpoints = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`);
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(endpoints.join(','), ['endpoint', 'health'])).code === 0 ? true : undefined));
  const list = await etcdctl(endpoints[1]!, ['member', 'list', '-w', 'json']);
  assert.equal(list.code, 0, list.stderr);
  const members = (JSON.parse(list.stdout) as { members: { ID: number; clientURLs: string[] }[] }).members;
  assert.deepEqual(
    members.map((m) => m.ID),
    [1, 2, 3],
  );
  assert.deepEqual(
    members.map((m) => m.clientURLs),
    endpoints.map((endpoint) => [`http://${endpoint}`]),
  );
  const status = await etcdctl(endpoints.join(','), ['endpoint', 'status', '-w', 'json']);
  assert.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout) as { Status: { header: { member_id: number }; leader: number; version: string; raftIndex: number } }[];
  assert.equal(rows.length, 3);
  assert.equal(new Set(rows.map((row) => row.Status.leader)).size, 1, 'every member names the same leader');
  assert.ok(rows.every((row) => row.Status.version.startsWith('3.4.')));
});

test('kill -9 of the etcd leader: etcdctl writes continue through the others and every acknowledged one is read back', { timeout: 120_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const cluster = await TestCluster.start(t, 3);
  const endpoints = () => cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`).join(',');
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(endpoints(), ['endpoint', 'health'])).code === 0 ? true : undefined));
  const leaderOf = async () => {
    const status = await cluster.status(1);
    return (status as unknown as { etcd: { leader: number } }).etcd.leader;
  };
  const acked: string[] = [];
  for (let i = 0; i < 5; i++) if ((await etcdctl(endpoints(), ['put', `k${i}`, `v${i}`])).code === 0) acked.push(`k${i}`);
  const leader = await leaderOf();
  assert.ok(leader !== 0, 'the etcd group has a leader');
  await cluster.kill(leader);
  const others = cluster.ids
    .filter((id) => id !== leader)
    .map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`)
    .join(',');
  for (let i = 5; i < 15; i++) {
    const put = await etcdctl(others, ['put', `k${i}`, `v${i}`]);
    if (put.code === 0) acked.push(`k${i}`);
  }
  assert.ok(acked.length >= 12, `writes continued without the leader (${acked.length} of 15 acknowledged)`);
  await cluster.startMember(leader);
  await waitFor('the restarted member serves', 30_000, async () =>
    (await etcdctl(`127.0.0.1:${cluster.ports.get(leader)!.etcd}`, ['get', 'k0', '--consistency', 'l'])).code === 0 ? true : undefined,
  );
  const all = await etcdctl(`127.0.0.1:${cluster.ports.get(leader)!.etcd}`, ['get', 'k', '--prefix', '-w', 'json']);
  assert.equal(all.code, 0, all.stderr);
  const keys = ((JSON.parse(all.stdout) as { kvs?: { key: string }[] }).kvs ?? []).map((kv) => Buffer.from(kv.key, 'base64').toString());
  for (const key of acked) assert.ok(keys.includes(key), `${key} was acknowledged and is there after the restart`);
});

interface WatchLine {
  Header: { revision: number };
  Events?: { type?: number; kv: { key: string; value?: string; mod_revision: number }; prev_kv?: { value?: string } }[];
  CompactRevision?: number;
  Canceled?: boolean;
}

/** `etcdctl watch ARGS -w json` until `until` says so: one parsed line per response. */
async function watchLines(endpoint: string, args: readonly string[], act: () => Promise<void>, until: (lines: WatchLine[]) => boolean, timeoutMs = 20_000): Promise<WatchLine[]> {
  const child = spawn(ETCDCTL_PATH, [`--endpoints=${endpoint}`, 'watch', ...args, '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: WatchLine[] = [];
  let buffered = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let at = buffered.indexOf('\n'); at >= 0; at = buffered.indexOf('\n')) {
      const line = buffered.slice(0, at).trim();
      buffered = buffered.slice(at + 1);
      if (line.startsWith('{')) lines.push(JSON.parse(line) as WatchLine);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    await sleep(500); // the watch is created before the writes
    await act();
    await waitFor(`watch ${args.join(' ')} (got ${lines.length} responses; ${stderr.trim()})`, timeoutMs, async () => (until(lines) ? true : undefined));
    return lines;
  } finally {
    child.kill('SIGKILL');
  }
}

const decoded = (text: string | undefined) => Buffer.from(text ?? '', 'base64').toString();

test('watch: events in revision order, one response per transaction, prev_kv, resuming from a revision, and a compacted start cancelled', { timeout: 120_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const cluster = await TestCluster.start(t, 3);
  const endpoints = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`);
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(endpoints.join(','), ['endpoint', 'health'])).code === 0 ? true : undefined));
  const put = async (key: string, value: string) => assert.equal((await etcdctl(endpoints[0]!, ['put', key, value])).code, 0);
  // A follower's watch (member 3) sees what member 1's clients write.
  const lines = await watchLines(
    endpoints[2]!,
    ['--prefix', 'w', '--prev-kv'],
    async () => {
      await put('w1', 'a');
      await put('w1', 'b');
      assert.equal((await etcdctl(endpoints[1]!, ['txn'], '\nput w2 x\nput w3 y\ndel w1\n\n\n')).code, 0);
      await put('other', 'ignored');
    },
    (got) => got.flatMap((line) => line.Events ?? []).length >= 5,
  );
  const events = lines.flatMap((line) =>
    (line.Events ?? []).map((event) => `${event.type === 1 ? 'DELETE' : 'PUT'} ${decoded(event.kv.key)}=${decoded(event.kv.value)} @${event.kv.mod_revision} prev=${decoded(event.prev_kv?.value)}`),
  );
  assert.deepEqual(events, ['PUT w1=a @2 prev=', 'PUT w1=b @3 prev=a', 'PUT w2=x @4 prev=', 'PUT w3=y @4 prev=', 'DELETE w1= @4 prev=b']);
  const txnResponse = lines.find((line) => (line.Events ?? []).some((event) => event.kv.mod_revision === 4));
  assert.equal(txnResponse?.Events?.length, 3, 'the transaction’s three events come in one response');

  // Resuming from revision 3 replays 3 and 4, the transaction again in one response.
  const resumed = await watchLines(
    endpoints[0]!,
    ['--prefix', 'w', '--rev', '3'],
    async () => {},
    (got) => got.flatMap((line) => line.Events ?? []).length >= 4,
  );
  assert.deepEqual(
    resumed.map((line) => (line.Events ?? []).map((event) => `${decoded(event.kv.key)}@${event.kv.mod_revision}`).join(' ')),
    ['w1@3', 'w2@4 w3@4 w1@4'],
  );

  // After compaction, a watch from before the compact revision is cancelled with it.
  assert.equal((await etcdctl(endpoints[0]!, ['compaction', '4'])).code, 0);
  const cancelled = await watchLines(
    endpoints[1]!,
    ['--prefix', 'w', '--rev', '2'],
    async () => {},
    (got) => got.some((line) => line.CompactRevision !== undefined && line.CompactRevision > 0) || got.some((line) => line.Canceled === true),
  );
  assert.ok(
    cancelled.some((line) => line.CompactRevision === 4),
    JSON.stringify(cancelled),
  );
});
