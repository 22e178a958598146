// ShardRpc's byte counters as GET /status shows them (`shards.rpc`, ShardHost.describe), on
// a real `flotilla server --shards` member: a shard of known size moved from one group to
// another must show up as peer-call bytes at least as large as its keys and values, and
// nothing else may be counted as a peer call before it. `npm run bench -- shards` reads
// these counters for the bytes a migration moves.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShardCtrlError, ShardedClient } from '../../src/server/sharded-client.js';
import type { ShardRpcStats } from '../../src/server/shard-rpc.js';
import { key2shard } from '../../src/shardkv/index.js';
import { TestCluster, waitFor } from './helpers.js';

/** Both groups and the controller on the one member: the pull goes through the member's own client port. */
const LAYOUT = 'ctrl=1;100=1;101=1';
const KEYS = 200;
const VALUE_BYTES = 100;

interface ShardsStatus {
  shards: { groups: { gid: number; shards: Record<string, number[]> }[]; rpc?: ShardRpcStats } | null;
}

test('ShardRpc counts the bytes of a shard pull as peer calls, and nothing else as peer calls', { timeout: 60_000 }, async (t) => {
  const cluster = await TestCluster.create(t, 1);
  cluster.extraArgs = ['--shards', LAYOUT];
  await cluster.startMember(1);
  const status = async () => (await cluster.status(1)) as unknown as ShardsStatus;
  const client = new ShardedClient({ endpoints: [{ host: '127.0.0.1', port: cluster.ports.get(1)!.client }], callDeadlineMs: 20_000 });
  t.after(() => client.close());

  await waitFor('the join of 100 and 101', 20_000, async () => {
    try {
      return await client.change({ kind: 'join', groups: [100, 101].map((gid) => [gid, []] as const) });
    } catch (error) {
      // The member learns its own client address within a second (MemberInfo); until then a join is refused.
      if (error instanceof ShardCtrlError && error.code === 'address-unknown') return undefined;
      throw error;
    }
  });
  const config = await client.query();
  const shard = config.shards.indexOf(100);
  assert.ok(shard >= 0, 'group 100 owns a shard');
  // Keys whose first character puts them in that shard.
  const keys = Array.from({ length: KEYS }, (_, i) => `${String.fromCharCode(100 + shard)}k${i}`);
  assert.ok(keys.every((key) => key2shard(key) === shard));
  const value = (i: number) => `${i}:`.padEnd(VALUE_BYTES, 'x');
  for (const [i, key] of keys.entries()) await client.put(key, value(i));

  const before = (await status()).shards?.rpc;
  assert.ok(before !== undefined, 'GET /status shows shards.rpc');
  assert.deepEqual(before.peer, { calls: 0, bytesSent: 0, bytesReceived: 0 }, 'no peer call before the move');
  assert.deepEqual(before.other, { calls: 0, bytesSent: 0, bytesReceived: 0 }, 'every request the member sent is of a known kind');

  await client.change({ kind: 'move', shard, gid: 101 });
  await waitFor(`shard ${shard} served by group 101, and deleted at 100`, 20_000, async () => {
    const groups = (await status()).shards?.groups ?? [];
    const to = groups.find((g) => g.gid === 101)?.shards['serving'] ?? [];
    const from = groups.find((g) => g.gid === 100)?.shards ?? {};
    return to.includes(shard) && !Object.values(from).some((shards) => shards.includes(shard)) ? true : undefined;
  });
  for (const [i, key] of keys.entries()) if (i % 50 === 0) assert.equal(await client.get(key), value(i), `${key} moved with its value`);

  const after = (await status()).shards!.rpc!;
  const dataBytes = keys.reduce((sum, key) => sum + key.length + VALUE_BYTES, 0);
  assert.ok(after.peer.calls >= 2, `a pull and a deletion at least (${after.peer.calls} peer calls)`);
  assert.ok(after.peer.bytesReceived >= dataBytes, `the pull's reply holds every key and value (${after.peer.bytesReceived} bytes received, ${dataBytes} of data)`);
  assert.ok(after.peer.bytesReceived < 2 * dataBytes + 4096, `the shard travelled once (${after.peer.bytesReceived} bytes received, ${dataBytes} of data)`);
  assert.ok(after.peer.bytesSent > 0 && after.peer.bytesSent < 1024, `peer requests are small (${after.peer.bytesSent} bytes sent)`);
  assert.deepEqual(after.other, { calls: 0, bytesSent: 0, bytesReceived: 0 });
});
