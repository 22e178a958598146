// `flotilla debug leader` (issue 13, item 8): every Raft group's leader with its process id,
// and every member, found from the admin address of just one of them.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePorts, TestCluster, waitFor } from '../server/helpers.js';
import { killAllCommands, runFlotilla } from './helpers.js';

after(killAllCommands);

interface Output {
  groups: { group: string; leader: number; pid: number | null }[];
  members: { id: number; pid: number; kv: { role: string }; zk: { role: string } }[];
}

test('debug leader names the key/value and the ZooKeeper leader with their pids, and every member', { timeout: 90_000 }, async (t) => {
  const cluster = await TestCluster.start(t, 3);
  const kvLeader = await cluster.waitForLeader();
  const pids = new Map(cluster.ids.map((id) => [id, cluster.members.get(id)!.child.pid]));
  const firstAdmin = `127.0.0.1:${cluster.ports.get(1)!.admin}`;
  // The ZooKeeper group elects on its own; wait until it has a leader too.
  const output = await waitFor('both groups to have a leader', 20_000, async () => {
    const run = await runFlotilla(['debug', 'leader', '--admin', firstAdmin, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const parsed = JSON.parse(run.stdout.toString('utf8')) as Output;
    return parsed.groups.every((group) => group.leader !== 0) ? parsed : undefined;
  });
  assert.deepEqual(
    output.members.map((member) => [member.id, member.pid]),
    [...pids.entries()],
    'every member, found from one address',
  );
  const [kv, zk] = output.groups;
  assert.equal(kv!.group, 'key/value');
  assert.equal(kv!.leader, kvLeader);
  assert.equal(kv!.pid, pids.get(kvLeader));
  assert.equal(zk!.group, 'zookeeper');
  assert.equal(zk!.pid, pids.get(zk!.leader));
  assert.equal(output.members.find((member) => member.id === zk!.leader)!.zk.role, 'leader');

  const human = await runFlotilla(['debug', 'leader', '--admin', firstAdmin]);
  assert.match(human.stdout.toString('utf8'), new RegExp(`^key/value group: leader member ${kvLeader}, pid ${pids.get(kvLeader)} `));
  assert.match(human.stdout.toString('utf8'), new RegExp(`\\nzookeeper group: leader member ${zk!.leader}, pid ${pids.get(zk!.leader)} `));
});

test('debug leader with nothing listening says so and exits 1', { timeout: 30_000 }, async () => {
  const [port] = await freePorts(1);
  const run = await runFlotilla(['debug', 'leader', '--admin', `127.0.0.1:${port}`]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, new RegExp(`no member answered on its admin port \\(127\\.0\\.0\\.1:${port}: connection refused\\)`));
});
