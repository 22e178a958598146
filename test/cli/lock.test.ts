// The data-directory lock (issue 13, item 5): a second `flotilla server` on a live member's
// data, or a second `flotilla start` on a running cluster's, refuses before it reads
// anything, naming the pid that holds it; a lock left by a dead process is taken over.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, TestCluster, waitFor } from '../server/helpers.js';
import { fingerprint, killAllCommands, lockPid, runFlotilla, stableFingerprint } from './helpers.js';

after(killAllCommands);

/** The pid of a process that has exited (a lock holding it is stale). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

test("flotilla server on a live member's data directory refuses before reading it, naming the pid", { timeout: 60_000 }, async (t) => {
  const cluster = await TestCluster.start(t, 1);
  await cluster.waitForLeader();
  await cluster.client().put('k', 'v');
  const dataDir = cluster.dataDir(1);
  const live = cluster.members.get(1)!.child.pid;
  assert.equal(await lockPid(join(dataDir, 'LOCK')), live, 'the member holds its lock');
  // The ZooKeeper group elects on its own a little later; wait for it, then until nothing is written.
  await waitFor('a ZooKeeper leader', 20_000, async () => (((await cluster.status(1)) as unknown as { zk: { leader: number } }).zk.leader !== 0 ? true : undefined));
  const before = await stableFingerprint(dataDir);
  assert.ok(
    [...before.keys()].some((file) => file.endsWith('.wal')),
    `WAL files exist: ${[...before.keys()].join(', ')}`,
  );

  const second = await runFlotilla([
    'server',
    '--id',
    '1',
    '--peers',
    `1=127.0.0.1:${cluster.peerPort(1)}`,
    '--data',
    dataDir,
    '--client-port',
    '0',
    '--admin-port',
    '0',
    '--zk-port',
    '0',
    '--etcd-port',
    '0',
    '--cluster-secret-file',
    join(cluster.root, 'cluster.env'),
  ]);
  assert.equal(second.code, 4, second.stderr);
  assert.match(second.stderr, new RegExp(`in use by a running process \\(pid ${live}\\)`));
  // The member logs "starting" before it recovers anything; the refusal comes before that.
  const messages = second.stdout
    .toString('utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
  assert.deepEqual(messages, [`refusing to start: the data directory is in use by process ${live}`]);
  assert.deepEqual(await fingerprint(dataDir), before, 'no file in the data directory changed');
  assert.equal(await lockPid(join(dataDir, 'LOCK')), live, "the lock is still the live member's");
  assert.equal(cluster.members.get(1)!.child.isRunning(), true);
});

test('a lock left by a dead process is taken over; a clean stop removes it', { timeout: 60_000 }, async (t) => {
  const cluster = await TestCluster.create(t, 1);
  const dataDir = cluster.dataDir(1);
  await mkdir(dataDir, { recursive: true });
  const dead = await deadPid();
  await writeFile(join(dataDir, 'LOCK'), `${dead}\n`);
  const member = await cluster.startMember(1);
  assert.equal(await lockPid(join(dataDir, 'LOCK')), member.child.pid);
  assert.ok(
    member.entries().some((entry) => entry.msg === 'starting' && entry['staleLockPid'] === dead),
    'the takeover is logged',
  );
  const exit = await cluster.kill(1, 'SIGTERM');
  assert.equal(exit.code, 0);
  await assert.rejects(stat(join(dataDir, 'LOCK')), /ENOENT/);
});

test('a lock naming a live pid with another start time (the pid was reused) is stale too', { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  const cluster = await TestCluster.create(t, 1);
  const dataDir = cluster.dataDir(1);
  await mkdir(dataDir, { recursive: true });
  // This test process is alive, but it is not the process that wrote this lock.
  await writeFile(join(dataDir, 'LOCK'), `${process.pid}\nstart 1\n`);
  const member = await cluster.startMember(1);
  assert.equal(await lockPid(join(dataDir, 'LOCK')), member.child.pid);
  assert.ok(member.entries().some((entry) => entry.msg === 'starting' && entry['staleLockPid'] === process.pid));
});

test("a second flotilla start on a running cluster's data says so, names the pid, and creates nothing", { timeout: 60_000 }, async (t) => {
  const data = await mkdtemp(join(tmpdir(), 'flotilla-start-'));
  t.after(() => rm(data, { recursive: true, force: true }));
  // This test process stands in for the running `flotilla start`: it is alive.
  await writeFile(join(data, 'LOCK'), `${process.pid}\n`);
  const ports = await freePorts(15);
  const plan = [0, 1, 2].map((member) => ports.slice(member * 5, member * 5 + 5).join(':')).join(',');
  const run = await runFlotilla(['start', '--data', data, '--ports', plan], { timeoutMs: 30_000 });
  assert.equal(run.code, 4, run.stderr);
  assert.equal(run.stderr.split('\n')[0]!.startsWith(`flotilla start: a cluster is already running from ${data} (pid ${process.pid})`), true, run.stderr);
  assert.deepEqual(await readdir(data), ['LOCK'], 'no secret, no member directory, no log was created');
});
