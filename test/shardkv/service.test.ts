// The group servers' handlers refuse malformed requests from clerks and from other groups
// with ErrFatal and a reason, and change nothing (STYLE.md 6).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerArgs, ShardKvRequest } from '../../src/shardkv/index.js';
import { runShardKvTest } from './lab.js';

test('malformed clerk and peer requests are refused with ErrFatal', async () => {
  await runShardKvTest(
    'malformed requests',
    { maxraftstate: -1 },
    async (cfg) => {
      const ck = cfg.makeClient();
      await cfg.join(0);
      await cfg.put(ck, 'a', 'x', 0);
      const leader = cfg.leader(0);
      assert.ok(leader >= 0);
      const badRequests: unknown[] = [
        { op: 'frob', key: 'a', value: '', client: 0, seq: 0 },
        { op: 'put', key: 5, value: '', client: 0, seq: 0 },
        { op: 'append', key: 'a', value: 'y', client: -1, seq: 1 },
      ];
      for (const args of badRequests) {
        const reply = await cfg.scheduler.waitOn(cfg.kvNetwork.call(ck.id, leader, args as ShardKvRequest));
        assert.equal(reply?.err, 'ErrFatal', JSON.stringify(args));
        assert.ok((reply?.value ?? '').length > 0, 'with a reason');
      }
      const badPeer: unknown[] = [
        { kind: 'steal', num: 1, shards: [0] },
        { kind: 'pull', num: 0, shards: [0] },
        { kind: 'delete', num: 1, shards: [10] },
        { kind: 'pull', num: 1, shards: 'all' },
      ];
      for (const args of badPeer) {
        const reply = await cfg.scheduler.waitOn(cfg.peerNetwork.call(3, leader, args as PeerArgs));
        assert.equal(reply?.err, 'ErrFatal', JSON.stringify(args));
      }
      await cfg.check(ck, 'a', 'x');
    },
    { seed: 5 },
  );
});
