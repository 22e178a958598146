// `flotilla server` and a damaged data directory (DESIGN.md §3; issue 4, "Done when"): a
// corrupt byte in the middle of a log segment makes it refuse to start, naming the file
// and the byte offset; a torn last record is truncated with a log line and it starts.
// Also: SIGTERM stops a member cleanly (exit 0), and a restart resumes from the data.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getText, TestCluster } from './helpers.js';

const KEYS = 40;
const EXIT_TIMEOUT_MS = 15_000;

async function segmentPath(dataDir: string): Promise<string> {
  const dir = join(dataDir, 'group-1', 'wal');
  const segments = (await readdir(dir)).filter((name) => !name.endsWith('.tmp')).sort();
  assert.equal(segments.length, 1, 'the test log fits in one segment');
  return join(dir, segments[0]!);
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), EXIT_TIMEOUT_MS).unref())]);
}

test('SIGTERM stops a member cleanly; a corrupt byte mid-segment refuses to start (file and offset named); a torn last record is truncated and the member starts', { timeout: 60_000 }, async (t) => {
  const cluster = await TestCluster.create(t, 1);
  await cluster.startMember(1);
  await cluster.waitForLeader();
  const client = cluster.client();
  for (let i = 0; i < KEYS; i++) await client.put(`key-${i}`, `value-${i}`);
  client.close();
  const exit = await withTimeout(cluster.kill(1, 'SIGTERM'), 'clean shutdown');
  assert.deepEqual(exit, { code: 0, signal: null }, 'SIGTERM exits with code 0');
  assert.ok(
    cluster.members
      .get(1)!
      .entries()
      .some((entry) => entry.msg === 'stopped'),
  );

  // A flipped byte in the middle of the only segment: valid records follow it.
  const corruptDir = join(cluster.root, 'corrupt');
  await cp(cluster.dataDir(1), corruptDir, { recursive: true });
  const corruptSegment = await segmentPath(corruptDir);
  const bytes = await readFile(corruptSegment);
  const middle = Math.floor(bytes.length / 2);
  bytes[middle]! ^= 0x5a;
  await writeFile(corruptSegment, bytes);
  const refused = cluster.spawnMember(1, corruptDir);
  const refusedExit = await withTimeout(refused.child.exited, 'refusal to start');
  assert.notEqual(refusedExit.code, 0, 'a corrupt log refuses to start with a non-zero exit code');
  const stderr = refused.stderr.join('\n');
  assert.ok(stderr.includes(corruptSegment), `the message names the file ${corruptSegment}:\n${stderr}`);
  t.diagnostic(stderr.split('\n')[0]!);
  const offset = /at byte offset (\d+)/.exec(stderr);
  assert.ok(offset !== null, `the message names the byte offset:\n${stderr}`);
  assert.ok(Number(offset[1]) <= middle, `the offset ${offset[1]} is that of the record holding byte ${middle}`);
  assert.ok(!refused.entries().some((entry) => entry.msg === 'listening'), 'no port was opened');

  // A torn last record (a crash mid-write): cut off, logged, and the member starts.
  const tornDir = join(cluster.root, 'torn');
  await cp(cluster.dataDir(1), tornDir, { recursive: true });
  const tornSegment = await segmentPath(tornDir);
  await truncate(tornSegment, (await stat(tornSegment)).size - 3);
  const torn = await cluster.startMember(1, tornDir);
  const repaired = torn.entries().find((entry) => entry.msg.includes('truncated a torn final record'));
  assert.ok(repaired !== undefined, `the truncation is logged:\n${torn.describeOutput()}`);
  await cluster.waitForLeader();
  const after = cluster.client();
  // The torn record was the last durable write; everything acknowledged before it is there.
  for (let i = 0; i < KEYS - 1; i++) assert.equal(await getText(after, `key-${i}`), `value-${i}`);
  await after.put('after-repair', 'yes');
  assert.equal(await getText(after, 'after-repair'), 'yes');
});
