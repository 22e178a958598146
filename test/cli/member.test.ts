// flotilla member add/promote/remove/transfer-leader/list and flotilla server --join, with
// real processes: a fourth member joins a running cluster, catches up, becomes a voter in
// both groups, and then carries the cluster once the old leader is removed and another
// original member is killed (a quorum that needs the new member's log).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FlotillaClient } from '../../src/server/client.js';
import { TestCluster, freePorts, getText, putEventually, waitFor } from '../server/helpers.js';
import { killAllCommands, runFlotilla } from './helpers.js';

after(killAllCommands);

interface GroupView {
  leader: number;
  members: { id: number; kind: string; lag: number | null }[];
}

async function memberList(admins: string): Promise<Record<string, GroupView>> {
  const listed = await runFlotilla(['member', 'list', '--json', '--admin', admins]);
  assert.equal(listed.code, 0, listed.stderr);
  return JSON.parse(listed.stdout.toString()) as Record<string, GroupView>;
}

test('a member joins with --join, is added and promoted in both groups, and carries the cluster after the leader is removed', async (t) => {
  const cluster = await TestCluster.start(t, 3);
  await cluster.waitForLeader();
  const client = cluster.client();
  for (let i = 0; i < 30; i++) await client.put(`k${i}`, `v${i}`);
  const admins = () => cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.admin}`).join(',');

  // Bad requests are refused with a reason, and change nothing.
  const promoteUnknown = await runFlotilla(['member', 'promote', '9', '--admin', admins()]);
  assert.equal(promoteUnknown.code, 1);
  assert.match(promoteUnknown.stderr, /not a learner/);
  const badId = await runFlotilla(['member', 'remove', 'x', '--admin', admins()]);
  assert.notEqual(badId.code, 0);

  const [peerPort] = await freePorts(1);
  const { ports: joinerPorts } = await cluster.startJoiner(t, 4, peerPort!, join(cluster.root, 'member-4'));
  // Not a member yet: it must not have elected itself or anyone.
  const before = await memberList(admins());
  assert.ok(!before['kv']!.members.some((m) => m.id === 4));

  const added = await runFlotilla(['member', 'add', '4', `127.0.0.1:${peerPort}`, '--admin', admins()]);
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout.toString(), /kv: add 4 done.*\n.*zk: add 4 done/);
  const promoted = await waitFor('member 4 promoted in both groups', 20_000, async () => {
    const run = await runFlotilla(['member', 'promote', '4', '--admin', admins()]);
    if (run.code === 0) return run;
    assert.match(run.stderr, /not caught up|not a learner|no leader/, run.stderr);
    return undefined;
  });
  assert.match(promoted.stdout.toString(), /voters 1,2,3,4/);
  const after4 = await memberList(admins());
  for (const group of ['kv', 'zk'])
    assert.deepEqual(
      after4[group]!.members.map((m) => `${m.id}:${m.kind}`),
      ['1:voter', '2:voter', '3:voter', '4:voter'],
      group,
    );

  // Remove the key/value group's leader: it hands leadership over first.
  const leader = after4['kv']!.leader;
  const removed = await runFlotilla(['member', 'remove', String(leader), '--admin', admins()]);
  assert.equal(removed.code, 0, removed.stderr);
  const remaining = [1, 2, 3].filter((id) => id !== leader);
  const survivorsAdmin = [...remaining.map((id) => `127.0.0.1:${cluster.ports.get(id)!.admin}`), `127.0.0.1:${joinerPorts.admin}`].join(',');
  const afterRemove = await memberList(survivorsAdmin);
  for (const group of ['kv', 'zk']) {
    assert.deepEqual(
      afterRemove[group]!.members.map((m) => m.id),
      [...remaining, 4],
      group,
    );
    assert.notEqual(afterRemove[group]!.leader, leader, group);
  }
  await cluster.kill(leader);
  // Kill one more original member: the two left (one original and member 4) are a quorum of
  // three only together, so every answer below needs member 4's log.
  await cluster.kill(remaining[0]!);
  const endpoints = [remaining[1]!].map((id) => ({ host: '127.0.0.1', port: cluster.ports.get(id)!.client }));
  const survivors = new FlotillaClient({ endpoints: [...endpoints, { host: '127.0.0.1', port: joinerPorts.client }] });
  t.after(() => survivors.close());
  await putEventually(survivors, 'after', 'remove', 'a write through the two survivors');
  for (let i = 0; i < 30; i++) assert.equal(await getText(survivors, `k${i}`), `v${i}`);
});
