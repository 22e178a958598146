// `flotilla zk` as a user runs it: a real `flotilla` process (spawnFlotilla: the compiled
// CLI, or the sources under tsx) against a real ZooKeeper. Output and exit codes.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnFlotilla, type ChildHandle } from '../../src/platform/spawn.js';
import { zkHarness, targetKinds, uniquePath, waitUntil, within } from './helpers.js';

for (const kind of (['flotilla'] as const).filter((kind) => targetKinds().includes(kind))) {
  describe(`against ${kind}`, () => {
  const zk = zkHarness(kind);
  const CLI_TIMEOUT_MS = 20_000;

  interface Run {
    readonly code: number | null;
    readonly stdout: string;
    readonly stderr: string;
  }

  /** Starts `flotilla zk --server <zk> ...args`; the process is killed if it outlives the test. */
  function start(args: readonly string[], server = zk.server().connectString): { child: ChildHandle; output: { stdout: string; stderr: string }; done: Promise<Run> } {
    const child = spawnFlotilla(['zk', '--server', server, ...args], { output: 'pipe' });
    const output = { stdout: '', stderr: '' };
    child.process.stdout?.on('data', (chunk: Buffer) => (output.stdout += chunk.toString('utf8')));
    child.process.stderr?.on('data', (chunk: Buffer) => (output.stderr += chunk.toString('utf8')));
    const done = within(CLI_TIMEOUT_MS, `flotilla zk ${args.join(' ')}`, child.exited).then(({ code }) => ({ code, ...output }));
    done.catch(() => child.kill('SIGKILL'));
    return { child, output, done };
  }

  function cli(...args: string[]): Promise<Run> {
    return start(args).done;
  }

  test('cli: create, get, set, stat, ls and delete, with exit codes 0 / 1 (code name printed) / 2', { timeout: 90_000 }, async () => {
    const base = uniquePath('cli');
    assert.deepEqual(await cli('create', base, 'hello'), { code: 0, stdout: `Created ${base}\n`, stderr: '' });
    assert.deepEqual(await cli('get', base), { code: 0, stdout: 'hello\n', stderr: '' });
    assert.equal((await cli('set', base, 'world', '-v', '0')).code, 0);
    const stale = await cli('set', base, 'again', '-v', '0');
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /BADVERSION/);
    const stat = await cli('stat', base);
    assert.equal(stat.code, 0);
    assert.match(stat.stdout, /^cZxid = 0x[0-9a-f]+\n/);
    assert.match(stat.stdout, /\ndataVersion = 1\n/);
    assert.match(stat.stdout, /\ndataLength = 5\n/);

    assert.equal((await cli('create', '-s', `${base}/seq-`)).stdout, `Created ${base}/seq-0000000000\n`);
    assert.equal((await cli('create', '-e', `${base}/eph`)).code, 0);
    assert.deepEqual(await cli('ls', base), { code: 0, stdout: 'seq-0000000000\n', stderr: '' }, 'the ephemeral left with its session');
    const notEmpty = await cli('delete', base);
    assert.equal(notEmpty.code, 1);
    assert.match(notEmpty.stderr, /NOTEMPTY/);
    assert.equal((await cli('delete', `${base}/seq-0000000000`)).code, 0);
    assert.equal((await cli('delete', base, '-v', '1')).code, 0);
    const missing = await cli('get', base);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /NONODE/);

    const [noPath, unknown, badVersion, unreachable] = await Promise.all([
      cli('get'),
      cli('frobnicate', '/'),
      cli('delete', '/x', '-v', 'abc'),
      start(['--server', '127.0.0.1:1', '--timeout-ms', '500', 'ls', '/']).done,
    ]);
    assert.equal(noPath.code, 2, 'missing argument');
    assert.equal(unknown.code, 2, 'unknown subcommand');
    assert.equal(badVersion.code, 2, 'bad version');
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /CONNECTIONLOSS/);
  });

  test('cli: watch prints each event until --count, re-arming after each', { timeout: 60_000 }, async () => {
    const client = await zk.connect();
    const path = uniquePath('cli-watch');
    // On the member whose watch table `wchp` reads.
    const watching = start(['watch', path, '--count', '3'], `${zk.server().host}:${zk.server().port}`);
    const armed = async () => (await zk.server().fourLetter('wchp')).includes(path);
    await waitUntil('the watch to be armed', 15_000, armed);
    await client.create(path, 'v1');
    await waitUntil('NodeCreated and a re-armed watch', 10_000, async () => watching.output.stdout.split('\n').length === 2 && (await armed()));
    await client.setData(path, 'v2');
    await waitUntil('NodeDataChanged and a re-armed watch', 10_000, async () => watching.output.stdout.split('\n').length === 3 && (await armed()));
    await client.create(`${path}/child`);
    const run = await watching.done;
    assert.deepEqual(run, { code: 0, stdout: `NodeCreated ${path}\nNodeDataChanged ${path}\nNodeChildrenChanged ${path}\n`, stderr: '' });
  });

  test('cli: watch without --count runs until Ctrl-C and then exits 0', { timeout: 60_000 }, async () => {
    const path = uniquePath('cli-sigint');
    const watching = start(['watch', path], `${zk.server().host}:${zk.server().port}`);
    await waitUntil('the watch to be armed', 15_000, async () => (await zk.server().fourLetter('wchp')).includes(path));
    watching.child.kill('SIGINT');
    assert.equal((await watching.done).code, 0);
  });
  });
}
