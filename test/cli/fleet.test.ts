// A hundred Raft groups on each process (issue 16 item 1): three `flotilla server` members
// host the shard controller and key/value groups 100..199, every group a Raft group of three
// replicas. Every group elects a leader and applies the configurations the joins make (each a
// write to every group's log); the members' one shared log holds them all (one directory, its
// fsyncs counted beside the groups' saves); the groups tick together, so the heartbeats of
// the groups a member leads share a frame per peer (flotilla_peer_frames_sent_total far
// below flotilla_peer_messages_sent_total); and keys written through the sharded client
// survive a kill -9 of a member and its restart. Timing is not asserted: the ratios are
// structural (a hundred groups' messages in a handful of frames); bench/shards.ts measures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ShardedClient } from '../../src/server/sharded-client.js';
import { sleep, TestCluster, waitFor } from '../server/helpers.js';
import { killAllCommands, runFlotilla } from './helpers.js';

const GROUPS = 100;
const GIDS = Array.from({ length: GROUPS }, (_, i) => 100 + i);
const LAYOUT = ['ctrl=1,2,3', ...GIDS.map((gid) => `${gid}=1,2,3`)].join(';');

interface FleetStatus {
  pid: number;
  shards: { groups: { gid: number; role: string; leader: number; configNum: number }[] } | null;
}

async function metric(cluster: TestCluster, id: number, name: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${cluster.ports.get(id)!.admin}/metrics`);
  const text = await response.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line !== undefined, `member ${id} reports ${name}`);
  return Number(line.split(' ')[1]);
}

test('a hundred groups per process: all elect and apply the joins, share one log and coalesce their heartbeats, and survive a kill -9', { timeout: 240_000 }, async (t) => {
  t.after(killAllCommands);
  const cluster = await TestCluster.create(t, 3);
  cluster.extraArgs = ['--shards', LAYOUT];
  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  const status = async (id: number) => (await cluster.status(id)) as unknown as FleetStatus;

  // Every group has a leader that its members agree on.
  await waitFor(`a leader in each of the ${GROUPS} groups`, 60_000, async () => {
    const views = await Promise.all(cluster.ids.map(status));
    const leaders = new Map<number, Set<number>>();
    for (const view of views) for (const group of view.shards?.groups ?? []) if (group.leader !== 0) leaders.set(group.gid, (leaders.get(group.gid) ?? new Set()).add(group.leader));
    return GIDS.every((gid) => leaders.get(gid)?.size === 1) ? true : undefined;
  });

  // Join them all (in four calls): every group then applies configurations 1..4.
  const endpoints = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.client}`).join(',');
  for (let i = 0; i < 4; i++) {
    const batch = GIDS.slice(i * 25, (i + 1) * 25).map(String);
    await waitFor(`join of ${batch[0]}..${batch.at(-1)}`, 30_000, async () => {
      const run = await runFlotilla(['shard', 'join', ...batch, '--endpoints', endpoints, '--json'], { timeoutMs: 20_000 });
      if (run.code === 0) return true;
      assert.match(run.stdout.toString(), /address-unknown|unavailable|timeout|not-leader/, `join failed for an unexpected reason: ${run.stdout}${run.stderr}`);
      await sleep(300);
      return undefined;
    });
  }
  await waitFor('every group on every member applied configuration 4', 60_000, async () => {
    const views = await Promise.all(cluster.ids.map(status));
    return views.every((view) => view.shards?.groups.length === GROUPS && view.shards.groups.every((group) => group.configNum === 4)) ? true : undefined;
  });

  // Writes through the sharded client reach the groups that own shards now.
  const client = new ShardedClient({ endpoints: cluster.ids.map((id) => ({ host: '127.0.0.1', port: cluster.ports.get(id)!.client })), callDeadlineMs: 10_000 });
  t.after(() => client.close());
  const keys = Array.from({ length: 20 }, (_, i) => `${String.fromCharCode(100 + (i % 10))}${i}`);
  for (const key of keys) await client.put(key, `value of ${key}`);

  // One shared log per member: a single directory of segments, no log per group.
  const entries = await readdir(join(cluster.dataDir(2), 'shards'));
  assert.ok(entries.includes('wal'), `shards/ holds the shared log: ${entries.join(' ')}`);
  assert.ok(!entries.some((name) => /^group-\d+$/.test(name) && name !== 'group-9' && !GIDS.includes(Number(name.slice(6)))), 'nothing else');
  const walSyncs = await metric(cluster, 2, 'flotilla_wal_syncs_total');
  assert.ok(walSyncs > 0, 'the shared log was synced');

  // Coalescing: over a few seconds of (mostly idle) groups, messages far outnumber frames.
  const before = await Promise.all(
    cluster.ids.map(async (id) => ({ messages: await metric(cluster, id, 'flotilla_peer_messages_sent_total'), frames: await metric(cluster, id, 'flotilla_peer_frames_sent_total') })),
  );
  await sleep(3000);
  const after = await Promise.all(
    cluster.ids.map(async (id) => ({ messages: await metric(cluster, id, 'flotilla_peer_messages_sent_total'), frames: await metric(cluster, id, 'flotilla_peer_frames_sent_total') })),
  );
  const messages = after.reduce((sum, m, i) => sum + m.messages - before[i]!.messages, 0);
  const frames = after.reduce((sum, m, i) => sum + m.frames - before[i]!.frames, 0);
  t.diagnostic(`3 s with ${GROUPS} groups per member: ${messages} peer messages in ${frames} frames (${(messages / Math.max(1, frames)).toFixed(1)} a frame)`);
  assert.ok(messages > 0 && frames > 0, 'the groups heartbeat');
  assert.ok(messages >= 5 * frames, `heartbeats share frames: ${messages} messages, ${frames} frames`);

  // kill -9 a member and restart it: its hundred groups recover from the shared log.
  const pid = (await status(3)).pid;
  await cluster.kill(3);
  await cluster.startMember(3);
  assert.notEqual((await status(3)).pid, pid, 'member 3 was restarted');
  await waitFor('member 3 recovered every group at configuration 4', 60_000, async () => {
    const view = await status(3);
    return view.shards?.groups.length === GROUPS && view.shards.groups.every((group) => group.configNum === 4 && group.leader !== 0) ? true : undefined;
  });
  for (const key of keys) assert.equal(await client.get(key), `value of ${key}`);
});
