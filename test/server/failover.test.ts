// kill -9 of the leader: the kernel closes the dead process's sockets, the survivors'
// transports report it, and each group's followers campaign at once instead of waiting out
// the election timeout (RaftCore.peerUnreachable). How fast is for `npm run bench`; this
// checks that the path is taken for both groups and that writes go on, with nothing lost.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, getText, putEventually } from './helpers.js';

test('after kill -9 of the leader the survivors campaign early in the groups it led, and every acknowledged write survives', async (t) => {
  const cluster = await TestCluster.start(t, 3);
  const leader = await cluster.waitForLeader();
  const client = cluster.client();
  for (let i = 0; i < 20; i++) await client.put(`k${i}`, `v${i}`);
  const zkLeader = ((await cluster.status(leader)) as unknown as { zk: { leader: number } }).zk.leader;
  const killed = await cluster.kill(leader);
  assert.equal(killed.signal, 'SIGKILL');
  const survivors = cluster.ids.filter((id) => id !== leader);
  const newLeader = await cluster.waitForLeader(15_000);
  assert.notEqual(newLeader, leader);
  // The key/value group lost its leader; the ZooKeeper group too if it led there as well.
  const early = survivors.flatMap((id) =>
    cluster.members
      .get(id)!
      .entries()
      .filter((e) => e.msg.startsWith('the connection to the leader closed'))
      .map((e) => ({ id, group: e['group'] })),
  );
  assert.ok(
    early.some((e) => e.group === 'kv'),
    `no survivor campaigned early in the kv group: ${JSON.stringify(early)}`,
  );
  if (zkLeader === leader)
    assert.ok(
      early.some((e) => e.group === 'zk'),
      `no survivor campaigned early in the zk group: ${JSON.stringify(early)}`,
    );
  else assert.ok(!early.some((e) => e.group === 'zk'), `the zk group's leader (${zkLeader}) lived, yet a survivor campaigned early there`);
  await putEventually(client, 'after', 'kill', 'a write through the survivors');
  for (let i = 0; i < 20; i++) assert.equal(await getText(client, `k${i}`), `v${i}`);
  assert.equal(await getText(client, 'after'), 'kill');
});
