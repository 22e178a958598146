// ZooKeeper's own tools see Flotilla's membership: with a real three-member cluster, Debian's
// zkCli.sh 3.8.0 reads `/zookeeper/config` (`config`, `get -s`, `ls /zookeeper`) in
// ZooKeeper's `server.N=host:port:port:role;client` form, and changes the ZooKeeper group
// with `reconfig`: refused without the superuser, with a stale version, or with two changes at
// once; `-remove 3` shrinks it (as `flotilla member list` shows); a fourth member started
// with `--join` is added with `-add server.4=...`, becomes a participant, and serves the
// znodes written before it joined.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ZkClient } from '../../src/zkclient/index.js';
import { TestCluster, freePorts, waitFor } from '../server/helpers.js';
import { runZkCli, parseStat, zkCliSkipReason, type ZkCliResult } from '../zk/zkcli.js';
import { killAllCommands, runFlotilla } from './helpers.js';

after(killAllCommands);

const SUPER_PASSWORD = 'super:config-test-secret';
const superDigest = `super:${createHash('sha1').update(SUPER_PASSWORD).digest('base64')}`;

interface GroupView {
  leader: number;
  members: { id: number; kind: string }[];
}

async function memberList(admins: string): Promise<Record<string, GroupView>> {
  const listed = await runFlotilla(['member', 'list', '--json', '--admin', admins]);
  assert.equal(listed.code, 0, listed.stderr);
  return JSON.parse(listed.stdout.toString()) as Record<string, GroupView>;
}

/** The outputs of a zkCli run that must have completed, one per command. */
function outputs(result: ZkCliResult, count: number): ZkCliResult['commands'] {
  const context = `zkCli run:\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
  assert.equal(result.timedOut, false, `zkCli timed out; ${context}`);
  assert.equal(result.commands.length, count, `one output per command; ${context}`);
  return result.commands;
}

/** The config text's lines before the Stat block (the `server.` and `version=` lines). */
function configLines(text: string): string[] {
  return text.split('\n').filter((line) => /^(server\.\d+=|version=)/.test(line));
}

/** Reads /zookeeper/config through Flotilla's own ZooKeeper client until `done` accepts it. */
async function waitForConfig(zkPort: number, what: string, done: (text: string) => boolean): Promise<string> {
  const client = await ZkClient.connect({ servers: [`127.0.0.1:${zkPort}`], sessionTimeoutMs: 10_000 });
  try {
    return await waitFor(what, 20_000, async () => {
      const { data } = await client.getData('/zookeeper/config');
      const text = new TextDecoder().decode(data ?? new Uint8Array(0));
      return done(text) ? text : undefined;
    });
  } finally {
    await client.close();
  }
}

const skip = zkCliSkipReason();

test('zkCli reads /zookeeper/config and changes the ZooKeeper group with reconfig', { skip, timeout: 180_000 }, async (t) => {
  const cluster = await TestCluster.create(t, 3);
  cluster.extraArgs = ['--zk-super-digest', superDigest];
  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  await cluster.waitForLeader();
  const zkOf = (id: number) => cluster.ports.get(id)!.zk;
  const admins = () => cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.admin}`).join(',');
  const line = (id: number, zk: number, peer = cluster.peerPort(id), role = 'participant') => `server.${id}=127.0.0.1:${peer}:${peer}:${role};127.0.0.1:${zk}`;
  const bootstrap = [line(1, zkOf(1)), line(2, zkOf(2)), line(3, zkOf(3)), 'version=0'];

  // Every member answers with the whole group once it has heard every member's ZooKeeper
  // address (members announce them every second).
  for (const id of cluster.ids) await waitForConfig(zkOf(id), `member ${id}'s /zookeeper/config`, (text) => text === bootstrap.join('\n'));

  const connect = `127.0.0.1:${zkOf(1)}`;
  const read = outputs(await runZkCli(connect, ['config', 'get -s /zookeeper/config', 'ls /zookeeper', 'ls /zookeeper/config']), 4);
  assert.deepEqual(configLines(read[0]!.stdout), bootstrap, read[0]!.stdout);
  assert.deepEqual(configLines(read[1]!.stdout), bootstrap, read[1]!.stdout);
  const stat = parseStat(read[1]!.stdout);
  assert.ok(stat !== undefined, read[1]!.stdout);
  // As ZooKeeper keeps it: written at the config's zxid by setData(…, -1), ACL set with -1.
  assert.equal(stat.mZxid, 0n);
  assert.equal(stat.dataVersion, -1);
  assert.equal(stat.aclVersion, -1);
  assert.equal(stat.dataLength, Buffer.byteLength(bootstrap.join('\n')));
  assert.equal(read[2]!.stdout, '[config, quota]');
  assert.equal(read[3]!.stdout, '[]');

  // Refusals: ZooKeeper's codes as zkCli names them, and nothing changes.
  const refused = outputs(
    await runZkCli(connect, [
      'reconfig -remove 3',
      `addauth digest ${SUPER_PASSWORD}`,
      'reconfig -v 5 -remove 3',
      `reconfig -remove 2 -add server.5=127.0.0.1:1:1:participant;2181`,
      'reconfig -remove 9',
      'reconfig -add server.x=127.0.0.1:1:1',
    ]),
    6,
  );
  assert.match(refused[0]!.stderr, /Insufficient permission/, 'NOAUTH without the superuser');
  assert.match(refused[2]!.stderr, /version No is not valid/, 'BADVERSION for a stale -v');
  assert.match(refused[3]!.stderr, /Arguments are not valid/, 'BADARGUMENTS for two changes in one reconfig');
  assert.match(refused[4]!.stderr, /Arguments are not valid/, 'BADARGUMENTS for a server that is not a member');
  assert.match(refused[5]!.stderr, /Arguments are not valid/, 'BADARGUMENTS for a malformed server');
  assert.deepEqual(
    (await memberList(admins()))['zk']!.members.map((m) => m.id),
    [1, 2, 3],
  );

  // Remove member 3, naming the current version.
  // `config -w` leaves a data watch on the node, which the change fires.
  const removeRun = await runZkCli(connect, [`addauth digest ${SUPER_PASSWORD}`, 'config -w', 'reconfig -v 0 -remove 3', 'config']);
  const removed = outputs(removeRun, 4).slice(1);
  assert.match(removed[1]!.stdout, /Committed new configuration:/, removed[1]!.stderr);
  assert.ok(
    removeRun.events.some((event) => /type:NodeDataChanged path:\/zookeeper\/config/.test(event)),
    `the watch fired: ${removeRun.events.join('; ')}`,
  );
  const afterRemove = configLines(removed[1]!.stdout);
  assert.deepEqual(afterRemove.slice(0, 2), [line(1, zkOf(1)), line(2, zkOf(2))]);
  assert.match(afterRemove[2]!, /^version=[0-9a-f]+$/);
  assert.notEqual(afterRemove[2], 'version=0');
  assert.deepEqual(configLines(removed[2]!.stdout), afterRemove, 'config after the reply shows the same');
  const listed = await memberList(admins());
  assert.deepEqual(
    listed['zk']!.members.map((m) => `${m.id}:${m.kind}`),
    ['1:voter', '2:voter'],
  );
  // reconfig changes the ZooKeeper group only; `flotilla member` manages the key/value group.
  assert.deepEqual(
    listed['kv']!.members.map((m) => m.id),
    [1, 2, 3],
  );
  // The other member serves the same configuration.
  await waitForConfig(zkOf(2), "member 2's /zookeeper/config after the removal", (text) => configLines(text).join('\n') === afterRemove.join('\n'));

  // A znode written now must reach the member that joins next.
  const client = await ZkClient.connect({ servers: [connect], sessionTimeoutMs: 10_000 });
  t.after(() => client.close());
  await client.create('/before-join', 'written-by-member-1');

  // A fourth member, started with --join, added through reconfig.
  const [peerPort] = await freePorts(1);
  const { ports: joiner } = await cluster.startJoiner(t, 4, peerPort!, join(cluster.root, 'member-4'));
  const version = afterRemove[2]!.slice('version='.length);
  const added = outputs(await runZkCli(connect, [`addauth digest ${SUPER_PASSWORD}`, `reconfig -v ${version} -add ${line(4, joiner.zk, peerPort)}`]), 2);
  assert.match(added[1]!.stdout, /Committed new configuration:/, added[1]!.stderr);
  const afterAdd = configLines(added[1]!.stdout);
  assert.deepEqual(afterAdd.slice(0, 3), [line(1, zkOf(1)), line(2, zkOf(2)), line(4, joiner.zk, peerPort)]);
  const listedAfterAdd = await memberList(admins());
  assert.deepEqual(
    listedAfterAdd['zk']!.members.map((m) => `${m.id}:${m.kind}`),
    ['1:voter', '2:voter', '4:voter'],
  );
  // The new member has the group's data and the group's configuration.
  await waitForConfig(joiner.zk, "member 4's /zookeeper/config", (text) => configLines(text).join('\n') === afterAdd.join('\n'));
  const onJoiner = outputs(await runZkCli(`127.0.0.1:${joiner.zk}`, ['sync /before-join', 'get /before-join', 'config']), 3);
  assert.equal(onJoiner[1]!.stdout, 'written-by-member-1');
  assert.deepEqual(configLines(onJoiner[2]!.stdout), afterAdd);
});
