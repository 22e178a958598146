// Replacing a damaged member, the way the README's "Operating Flotilla" section tells an
// operator to: a member whose write-ahead log has a corrupt byte refuses to start; it is
// removed from the cluster, its directory moved away, and it starts again empty with
// --join, is added and promoted; it catches up by snapshot, and holds every acknowledged
// write (the test then kills another member, so that no answer can come without it).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FlotillaClient } from '../../src/server/client.js';
import { TestCluster, getText, putEventually, waitFor } from '../server/helpers.js';
import { killAllCommands, runFlotilla } from './helpers.js';

after(killAllCommands);

async function largestSegment(dataDir: string): Promise<string> {
  const dir = join(dataDir, 'group-1', 'wal');
  const files = (await readdir(dir)).filter((name) => !name.endsWith('.tmp'));
  const sized = await Promise.all(files.map(async (name) => ({ path: join(dir, name), bytes: (await stat(join(dir, name))).size })));
  return sized.sort((a, b) => b.bytes - a.bytes)[0]!.path;
}

test('a member with a corrupt log is removed, rejoins empty with --join, catches up by snapshot and holds every acknowledged write', async (t) => {
  const cluster = await TestCluster.create(t, 3);
  // Small snapshots: by the time the member rejoins, the log it missed is compacted away.
  cluster.extraArgs = ['--raft-state-bytes-max', '4096'];
  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  await cluster.waitForLeader();
  const client = cluster.client();
  const acknowledged: string[] = [];
  for (let i = 0; i < 150; i++) {
    await client.put(`key-${i}`, `value-${i}-${'x'.repeat(64)}`);
    acknowledged.push(`key-${i}`);
  }
  const admins = () => [1, 2].map((id) => `127.0.0.1:${cluster.ports.get(id)!.admin}`).join(',');

  // Member 3 stops; a byte in the middle of its largest segment is damaged; it refuses.
  await cluster.kill(3, 'SIGTERM');
  const segment = await largestSegment(cluster.dataDir(3));
  const bytes = await readFile(segment);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x5a;
  await writeFile(segment, bytes);
  const refused = cluster.spawnMember(3, cluster.dataDir(3));
  const exit = await refused.child.exited;
  assert.equal(exit.code, 3, `a damaged log exits 3:\n${refused.describeOutput()}`);
  assert.ok(refused.stderr.join('\n').includes(segment), 'the refusal names the damaged file');

  // The cluster goes on without it meanwhile.
  for (let i = 150; i < 200; i++) {
    await client.put(`key-${i}`, `value-${i}`);
    acknowledged.push(`key-${i}`);
  }

  const removed = await runFlotilla(['member', 'remove', '3', '--admin', admins()]);
  assert.equal(removed.code, 0, removed.stderr);
  await rename(cluster.dataDir(3), `${cluster.dataDir(3)}.damaged`);
  const { ports } = await cluster.startJoiner(t, 3, cluster.peerPort(3), cluster.dataDir(3), 1, ['--raft-state-bytes-max', '4096']);
  const added = await runFlotilla(['member', 'add', '3', `127.0.0.1:${cluster.peerPort(3)}`, '--admin', admins()]);
  assert.equal(added.code, 0, added.stderr);
  // Generous: on a loaded 2-core machine the joiner's catch-up by snapshot took over 20 s once.
  await waitFor('member 3 promoted in every group', 45_000, async () => {
    const run = await runFlotilla(['member', 'promote', '3', '--admin', admins()]);
    return run.code === 0 ? run : undefined;
  });
  // It caught up by snapshot: the log before the leader's snapshot was gone.
  const snapshots = await readdir(join(cluster.dataDir(3), 'group-1', 'snap'));
  assert.ok(
    snapshots.some((name) => !name.endsWith('.tmp')),
    `no snapshot in the rejoined member's key/value group: ${snapshots.join(', ')}`,
  );

  // Only member 3 and one other are left: every answer needs member 3.
  await cluster.kill(1);
  const survivors = new FlotillaClient({
    endpoints: [
      { host: '127.0.0.1', port: cluster.ports.get(2)!.client },
      { host: '127.0.0.1', port: ports.client },
    ],
  });
  t.after(() => survivors.close());
  await putEventually(survivors, 'probe', 'ok', 'a leader among members 2 and 3');
  for (const key of acknowledged) assert.ok((await getText(survivors, key))?.startsWith(`value-${key.slice(4)}`), `${key} is missing`);
});
