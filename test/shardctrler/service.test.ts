// The controller as a service on the simulator: a bad input from a clerk is refused with a
// clear error (never retried, never a crash), and the replicas go on serving.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShardClerkRefused, type ShardClerkArgs } from '../../src/testbed/shardctrler-clerk.js';
import { checkGroups } from '../../src/testbed/shardctrler-cluster.js';
import { runShardTest } from './lab.js';

test('bad inputs through a clerk are refused with a clear error; the controller keeps working', async () => {
  await runShardTest('bad inputs', {}, async (cfg) => {
    const ck = cfg.makeClient();
    await ck.join(new Map([[1, ['a']]]));
    const refused = async (call: Promise<unknown>, message: RegExp): Promise<void> => {
      await assert.rejects(call, (error: Error) => error instanceof ShardClerkRefused && message.test(error.message));
    };
    await refused(ck.move(10, 1), /shard-invalid: shard 10 does not exist; shards are 0 to 9/);
    await refused(ck.move(0, 7), /group-unknown: group 7 is not in configuration 1/);
    await refused(ck.join(new Map([[0, ['z']]])), /gid-invalid: gid 0 is reserved/);
    await refused(ck.join(new Map([[1, ['a']]])), /group-exists/);
    await refused(ck.leave([9]), /group-unknown/);
    await refused(ck.query(-2), /Query\(-2\): num is -1 \(the latest\) or a configuration number/);
    // Arguments no clerk of ours sends, straight on the RPC network.
    const bad = { op: 'join', groups: [1, 'not-a-list'], gids: [], shard: 0, gid: 0, num: -1, client: 0, seq: 0, ack: 0 } as unknown as ShardClerkArgs;
    let reply: Awaited<ReturnType<typeof cfg.clerkNetwork.call>>;
    // Until a server answers (any server: the arguments are checked before the Raft group is asked).
    for (let server = 0; ; server = (server + 1) % cfg.n) {
      reply = await cfg.scheduler.waitOn(cfg.clerkNetwork.call(ck.id, server, bad));
      if (reply !== undefined) break;
    }
    assert.equal(reply.err, 'ErrFatal');
    assert.match(reply.message, /join: groups are not \[gid, servers\] pairs/);
    await ck.join(new Map([[2, ['b']]]));
    const c = await checkGroups(ck, [1, 2]);
    assert.equal(c.num, 2, 'no refused call made a configuration');
    cfg.checkErrors();
  });
});
