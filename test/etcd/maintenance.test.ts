// etcd's MoveLeader through etcdctl, and watch progress notifications, on real `flotilla
// server` processes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { freePorts, TestCluster, waitFor } from '../server/helpers.js';
import { etcdctl, etcdSkipReason } from './etcdctl.js';
import { call, services } from './grpc.js';
import { runFlotilla } from '../cli/helpers.js';

interface StatusRow {
  readonly Endpoint: string;
  readonly Status: { readonly header: { readonly member_id: number }; readonly leader: number };
}

async function leaderOf(endpoints: readonly string[]): Promise<number> {
  const status = await etcdctl(endpoints.join(','), ['endpoint', 'status', '-w', 'json']);
  assert.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout) as StatusRow[];
  const leaders = new Set(rows.map((row) => row.Status.leader));
  assert.equal(leaders.size, 1, `the members name one leader: ${status.stdout}`);
  return [...leaders][0]!;
}

test('etcdctl move-leader hands the etcd group to the member named (in hex, as etcd ids are); a follower asked says "not leader"; an unknown member is refused', { timeout: 90_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const cluster = await TestCluster.start(t, 3);
  const endpoints = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`);
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(endpoints.join(','), ['endpoint', 'health'])).code === 0 ? true : undefined));
  const before = await leaderOf(endpoints);
  const target = cluster.ids.find((id) => id !== before)!;
  const moved = await etcdctl(endpoints.join(','), ['move-leader', target.toString(16)]);
  assert.equal(moved.code, 0, moved.stderr);
  assert.match(moved.stdout, new RegExp(`Leadership transferred from ${before.toString(16)} to ${target.toString(16)}`));
  assert.equal(await leaderOf(endpoints), target);
  // Straight to a follower (etcdctl always finds the leader first): etcd's "not leader".
  const follower = services(endpoints[cluster.ids.indexOf(before)]!);
  t.after(() => follower.close());
  await assert.rejects(
    call(follower.maintenance, 'MoveLeader', { targetID: String(before) }),
    (error: ServiceError) => error.code === status.FAILED_PRECONDITION && error.details === 'etcdserver: not leader',
  );
  const leader = services(endpoints[cluster.ids.indexOf(target)]!);
  t.after(() => leader.close());
  await assert.rejects(call(leader.maintenance, 'MoveLeader', { targetID: '99' }), (error: ServiceError) => error.details === 'etcdserver: bad leader transferee');
  // Writes go on under the new leader.
  const put = await etcdctl(endpoints.join(','), ['put', 'after-move', 'v']);
  assert.equal(put.code, 0, put.stderr);
});

test('a watch created with progress_notify hears the current revision while idle (also after events); one without progress_notify never does', { timeout: 60_000 }, async (t) => {
  const cluster = await TestCluster.create(t, 3);
  cluster.extraArgs = ['--etcd-watch-progress-notify-ms', '300'];
  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  const endpoints = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`);
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(endpoints.join(','), ['endpoint', 'health'])).code === 0 ? true : undefined));
  const grpc = services(endpoints[0]!);
  t.after(() => grpc.close());
  const stream = grpc.watch.Watch(new Metadata());
  t.after(() => stream.cancel());
  const replies: Array<{ watch_id: string; events: unknown[]; created: boolean; header: { revision: string } }> = [];
  stream.on('data', (reply: (typeof replies)[number]) => replies.push(reply));
  stream.on('error', () => {});
  stream.write({ create_request: { key: Buffer.from('p'), range_end: Buffer.from('q'), progress_notify: true, watch_id: 1 } });
  stream.write({ create_request: { key: Buffer.from('z'), watch_id: 2 } }); // no progress_notify: never notified
  const progressOf = (id: string) => replies.filter((r) => r.watch_id === id && !r.created && r.events.length === 0);
  await waitFor('two progress notifications', 10_000, () => (progressOf('1').length >= 2 ? true : undefined));
  assert.equal(progressOf('2').length, 0, 'a watch without progress_notify is never notified');
  await call(grpc.kv, 'Put', { key: Buffer.from('p1'), value: Buffer.from('v') });
  await waitFor('the put and then a notification at its revision', 10_000, () => {
    const put = replies.findIndex((r) => r.watch_id === '1' && r.events.length === 1);
    return put >= 0 && replies.slice(put + 1).some((r) => r.watch_id === '1' && r.events.length === 0 && Number(r.header.revision) >= Number(replies[put]!.header.revision)) ? true : undefined;
  });
});

test('etcdctl member add, promote and remove change the members of every group: the new one joins as a learner, is promoted once caught up, and goes', { timeout: 120_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const cluster = await TestCluster.start(t, 3);
  const endpoints = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`).join(',');
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(endpoints, ['endpoint', 'health'])).code === 0 ? true : undefined));
  const [peerPort] = await freePorts(1);
  // The id Flotilla will give it: the next after the members'. It waits to be added.
  await cluster.startJoiner(t, 4, peerPort!, join(cluster.root, 'member-4'));
  const added = await etcdctl(endpoints, ['member', 'add', 'member-4', `--peer-urls=http://127.0.0.1:${peerPort}`, '--learner', '-w', 'json']);
  assert.equal(added.code, 0, added.stderr);
  const member = (JSON.parse(added.stdout) as { member: { ID: number; isLearner: boolean; peerURLs: string[] } }).member;
  assert.equal(member.ID, 4);
  assert.equal(member.isLearner, true);
  assert.deepEqual(member.peerURLs, [`http://127.0.0.1:${peerPort}`]);
  const again = await etcdctl(endpoints, ['member', 'add', 'again', `--peer-urls=http://127.0.0.1:${peerPort}`]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /Peer URLs already exists/);

  await waitFor('member 4 promoted', 30_000, async () => ((await etcdctl(endpoints, ['member', 'promote', '4'])).code === 0 ? true : undefined));
  const listed = JSON.parse((await etcdctl(endpoints, ['member', 'list', '-w', 'json'])).stdout) as { members: { ID: number; isLearner?: boolean }[] };
  assert.deepEqual(
    listed.members.map((m) => [m.ID, m.isLearner === true]),
    [
      [1, false],
      [2, false],
      [3, false],
      [4, false],
    ],
  );
  // Every group has it, as `flotilla member list` shows.
  const admins = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.admin}`).join(',');
  const flotillaList = await runFlotilla(['member', 'list', '--json', '--admin', admins]);
  const groups = JSON.parse(flotillaList.stdout.toString()) as Record<string, { members: { id: number; role?: string }[] }>;
  for (const group of ['kv', 'zk', 'etcd'])
    assert.ok(
      groups[group]!.members.some((m) => m.id === 4),
      `member 4 in the ${group} group`,
    );

  const removed = await etcdctl(endpoints, ['member', 'remove', '4']);
  assert.equal(removed.code, 0, removed.stderr);
  const after = JSON.parse((await etcdctl(endpoints, ['member', 'list', '-w', 'json'])).stdout) as { members: { ID: number }[] };
  assert.deepEqual(
    after.members.map((m) => m.ID),
    [1, 2, 3],
  );
  const gone = await etcdctl(endpoints, ['member', 'remove', '9']);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /member not found/);
});

test('etcdctl defrag snapshots the etcd group on each member now; the keys stay', { timeout: 90_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const cluster = await TestCluster.start(t, 3);
  const endpoints = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`);
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(endpoints.join(','), ['endpoint', 'health'])).code === 0 ? true : undefined));
  const grpc = services(endpoints[0]!);
  t.after(() => grpc.close());
  for (let i = 0; i < 50; i++) await call(grpc.kv, 'Put', { key: Buffer.from(`k${i % 20}`), value: Buffer.from(`v${i}`) });
  const snapshots = async (id: number) => (await readdir(join(cluster.dataDir(id), 'group-4', 'snap')).catch(() => [] as string[])).filter((name) => !name.endsWith('.tmp'));
  for (const id of cluster.ids) assert.deepEqual(await snapshots(id), [], `member ${id} has no etcd snapshot before`);
  const defrag = await etcdctl(endpoints.join(','), ['defrag']);
  assert.equal(defrag.code, 0, defrag.stderr);
  assert.equal(defrag.stdout.match(/Finished defragmenting etcd member/g)?.length, 3, defrag.stdout);
  // The snapshot is written as the next Ready persists it.
  await waitFor('every member wrote an etcd snapshot', 20_000, async () => {
    await call(grpc.kv, 'Put', { key: Buffer.from('after'), value: Buffer.from('x') });
    const counts = await Promise.all(cluster.ids.map(snapshots));
    return counts.every((names) => names.length > 0) ? true : undefined;
  });
  const got = (await call(grpc.kv, 'Range', { key: Buffer.from('k'), range_end: Buffer.from('l'), count_only: true })) as { count: string };
  assert.equal(got.count, '20');
});
