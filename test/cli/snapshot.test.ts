// flotilla snapshot save / restore / status with real processes: a backup taken from a
// running three-member cluster seeds a new three-member cluster (new ports, new data
// directories) that serves the same keys and znodes; a damaged, truncated or misdirected
// restore is refused with its reason and writes nothing.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, getText } from '../server/helpers.js';
import { ZkClient } from '../../src/zkclient/index.js';
import { etcdctl, etcdSkipReason } from '../etcd/etcdctl.js';
import { killAllCommands, runFlotilla } from './helpers.js';

after(killAllCommands);

test('a backup of a running cluster seeds a new cluster with the same keys and znodes; damaged files are refused', async (t) => {
  const source = await TestCluster.start(t, 3);
  await source.waitForLeader();
  const client = source.client();
  for (let i = 0; i < 40; i++) await client.put(`key-${i}`, `value-${i}`);
  const zkAddress = `127.0.0.1:${source.ports.get(1)!.zk}`;
  const zk = await ZkClient.connect({ servers: [zkAddress], sessionTimeoutMs: 6000 });
  try {
    await zk.create('/app', 'config-v1');
    await zk.create('/app/child', 'hello');
  } finally {
    await zk.close();
  }
  // The etcd keyspace too, with its revisions, and a user (auth state is in the etcd group's snapshot).
  const withEtcd = etcdSkipReason() === undefined;
  const sourceEtcd = source.ids.map((id) => `127.0.0.1:${source.ports.get(id)!.etcd}`).join(',');
  if (withEtcd) {
    for (const args of [
      ['put', 'etcd-a', '1'],
      ['put', 'etcd-a', '2'],
      ['put', 'etcd-b', '3'],
      ['user', 'add', 'carol:pw'],
    ]) {
      const done = await etcdctl(sourceEtcd, args);
      assert.equal(done.code, 0, `etcdctl ${args.join(' ')}: ${done.stderr}`);
    }
  }
  // From a follower if there is one: the backup must still hold every acknowledged write.
  const backupFrom = source.ids.find((id) => id !== source.ids[0]) ?? 1;
  const file = join(source.root, 'backup.flot');
  const saved = await runFlotilla(['snapshot', 'save', file, '--admin', `127.0.0.1:${source.ports.get(backupFrom)!.admin}`]);
  assert.equal(saved.code, 0, saved.stderr);
  assert.match(saved.stdout.toString(), /kv at index \d+.*zk at index \d+/);
  const status = await runFlotilla(['snapshot', 'status', file]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout.toString(), /checksum ok/);

  // Refusals first: nothing may be written for a damaged, truncated or misdirected restore.
  const bytes = await readFile(file);
  const damaged = Buffer.from(bytes);
  damaged[Math.floor(damaged.length / 2)]! ^= 0x40;
  await writeFile(join(source.root, 'damaged.flot'), damaged);
  await writeFile(join(source.root, 'truncated.flot'), bytes.subarray(0, bytes.length - 100));
  const target = await TestCluster.create(t, 3);
  const peers = target.ids.map((id) => `${id}=127.0.0.1:${target.peerPort(id)}`).join(',');
  for (const [name, reason] of [
    ['damaged.flot', /checksum does not match/],
    ['truncated.flot', /checksum does not match|truncated/],
  ] as const) {
    const refused = await runFlotilla(['snapshot', 'restore', join(source.root, name), '--data', target.dataDir(1), '--id', '1', '--peers', peers]);
    assert.equal(refused.code, 2, `${name}: ${refused.stderr}`);
    assert.match(refused.stderr, reason);
    assert.equal(existsSync(target.dataDir(1)), false, `${name}: the restore wrote something`);
  }
  const wrongId = await runFlotilla(['snapshot', 'restore', file, '--data', target.dataDir(1), '--id', '9', '--peers', peers]);
  assert.equal(wrongId.code, 2);
  assert.match(wrongId.stderr, /--id 9 is not one of the members/);
  await mkdir(target.dataDir(2), { recursive: true });
  await writeFile(join(target.dataDir(2), 'something'), 'x');
  const notEmpty = await runFlotilla(['snapshot', 'restore', file, '--data', target.dataDir(2), '--id', '2', '--peers', peers]);
  assert.equal(notEmpty.code, 2);
  assert.match(notEmpty.stderr, /is not empty/);
  assert.deepEqual(await readdir(target.dataDir(2)), ['something']);
  await source.killAll();

  // The real restore: every member of the new cluster from the same file.
  for (const id of target.ids) {
    const dir = id === 2 ? join(target.root, 'member-2-restored') : target.dataDir(id);
    const restored = await runFlotilla(['snapshot', 'restore', file, '--data', dir, '--id', String(id), '--peers', peers]);
    assert.equal(restored.code, 0, restored.stderr);
  }
  await Promise.all(target.ids.map((id) => target.startMember(id, id === 2 ? join(target.root, 'member-2-restored') : target.dataDir(id))));
  await target.waitForLeader(15_000);
  const restoredClient = target.client();
  for (let i = 0; i < 40; i++) assert.equal(await getText(restoredClient, `key-${i}`), `value-${i}`);
  await restoredClient.put('after-restore', 'yes');
  assert.equal(await getText(restoredClient, 'after-restore'), 'yes');
  const zk2 = await ZkClient.connect({ servers: target.ids.map((id) => `127.0.0.1:${target.ports.get(id)!.zk}`), sessionTimeoutMs: 6000 });
  try {
    assert.equal(new TextDecoder().decode((await zk2.getData('/app')).data ?? new Uint8Array()), 'config-v1');
    assert.deepEqual(await zk2.getChildren('/app'), ['child']);
    assert.equal(new TextDecoder().decode((await zk2.getData('/app/child')).data ?? new Uint8Array()), 'hello');
  } finally {
    await zk2.close();
  }
  if (withEtcd) {
    const targetEtcd = target.ids.map((id) => `127.0.0.1:${target.ports.get(id)!.etcd}`).join(',');
    const got = await etcdctl(targetEtcd, ['get', 'etcd-', '--prefix', '-w', 'json']);
    assert.equal(got.code, 0, got.stderr);
    const kvs = (JSON.parse(got.stdout) as { kvs: { key: string; value: string; version: number; mod_revision: number }[] }).kvs;
    const text = (base64: string) => Buffer.from(base64, 'base64').toString();
    assert.deepEqual(
      kvs.map((kv) => [text(kv.key), text(kv.value), kv.version]),
      [
        ['etcd-a', '2', 2],
        ['etcd-b', '3', 1],
      ],
    );
    const users = await etcdctl(targetEtcd, ['user', 'list']);
    assert.equal(users.stdout.trim(), 'carol', users.stderr);
  }
});
