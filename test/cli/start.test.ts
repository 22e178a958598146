// `flotilla start` (npm start) as a supervisor (issue 13, item 6): a member killed with -9
// is restarted after a back-off; a member that refuses to start is reported with its reason
// and left stopped while the others serve; Ctrl-C stops everything and frees the lock.
//
// The cluster runs on ports the OS picked (--ports, a test-only flag) in its own process
// group, which t.after kills whole, members included, whatever happens in the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flotillaCommand } from '../../src/platform/spawn.js';
import { FlotillaClient } from '../../src/server/client.js';
import { freePorts, waitFor } from '../server/helpers.js';
import { fingerprint, lockPid, runFlotilla, stableFingerprint } from './helpers.js';

test('npm start restarts a member killed with -9, reports one that refuses to start, and stops cleanly', { timeout: 120_000 }, async (t) => {
  const data = await mkdtemp(join(tmpdir(), 'flotilla-start-'));
  // Member 3's directory is held by a live process (this test): it must refuse to start.
  await mkdir(join(data, 'member-3'), { recursive: true });
  await writeFile(join(data, 'member-3', 'LOCK'), `${process.pid}\n`);
  const ports = await freePorts(15);
  const plan = [0, 1, 2].map((member) => ports.slice(member * 5, member * 5 + 5).join(':')).join(',');
  const { command, args } = flotillaCommand();
  const start = spawn(command, [...args, 'start', '--data', data, '--ports', plan], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const output = { stdout: '', stderr: '' };
  start.stdout.on('data', (chunk: Buffer) => (output.stdout += chunk.toString('utf8')));
  start.stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => start.once('exit', (code) => resolve(code)));
  const clients: FlotillaClient[] = [];
  t.after(async () => {
    for (const client of clients) client.close();
    try {
      process.kill(-start.pid!, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
    await rm(data, { recursive: true, force: true });
  });
  const describe = () => `stdout:\n${output.stdout}\nstderr:\n${output.stderr}`;

  await waitFor('the banner', 40_000, () => (output.stdout.includes('Flotilla: a local cluster of 3 members is running (2 of them serving)') ? true : undefined)).catch((error: Error) => {
    throw new Error(`${error.message}\n${describe()}`);
  });
  assert.match(output.stderr, /\[member 3\] refuses to start \(exit code 4\): its data directory is in use by another process/, describe());
  assert.match(output.stderr, new RegExp(`\\[member 3\\] .*in use by a running process \\(pid ${process.pid}\\)`), 'its own reason is shown');
  assert.match(output.stdout, /restarted after 1 s, then 2 s, 4 s, \.\.\. up to 30 s/, 'the banner says so');

  const client = new FlotillaClient({ endpoints: [ports[1]!, ports[5]!].map((port) => ({ host: '127.0.0.1', port })), callDeadlineMs: 30_000 });
  clients.push(client);
  await client.put('greeting', 'hello');

  // A second start on the same data: refused before it reads or starts anything.
  // Both groups have leaders and their first entries are written: the data is idle.
  await waitFor('a ZooKeeper leader', 20_000, async () => {
    const status = (await (await fetch(`http://127.0.0.1:${ports[2]}/status`)).json()) as { zk: { leader: number } };
    return status.zk.leader !== 0 ? true : undefined;
  });
  const before = await stableFingerprint(data);
  const otherPorts = await freePorts(15);
  const otherPlan = [0, 1, 2].map((member) => otherPorts.slice(member * 5, member * 5 + 5).join(':')).join(',');
  const second = await runFlotilla(['start', '--data', data, '--ports', otherPlan]);
  assert.equal(second.code, 4, second.stderr);
  assert.match(second.stderr, new RegExp(`^flotilla start: a cluster is already running from ${data} \\(pid ${start.pid}\\)`));
  assert.deepEqual(await fingerprint(data), before, 'no file of the running cluster changed');

  const killed = await lockPid(join(data, 'member-1', 'LOCK'));
  process.kill(killed, 'SIGKILL');
  await waitFor('member 1 restarted', 30_000, () => (/\[member 1\] restarted \(pid \d+\)/.test(output.stdout) ? true : undefined)).catch((error: Error) => {
    throw new Error(`${error.message}\n${describe()}`);
  });
  assert.match(output.stderr, /\[member 1\] exited \(signal SIGKILL\); the other members keep serving; restarting it in 1 s/);
  const restarted = Number(/\[member 1\] restarted \(pid (\d+)\)/.exec(output.stdout)![1]);
  assert.notEqual(restarted, killed);
  assert.equal(await lockPid(join(data, 'member-1', 'LOCK')), restarted, 'the restarted member took over its stale lock');
  // Members 1 and 2 are a quorum again: the write is there.
  assert.equal(Buffer.from((await client.get('greeting')).value!).toString(), 'hello');

  process.kill(start.pid!, 'SIGINT');
  assert.equal(await exited, 0, describe());
  await assert.rejects(stat(join(data, 'LOCK')), /ENOENT/, 'the cluster lock is released');
  await assert.rejects(stat(join(data, 'member-1', 'LOCK')), /ENOENT/, 'the member lock is released');
});
