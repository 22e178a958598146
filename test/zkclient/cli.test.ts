// `flotilla zk` as a user runs it: a real `flotilla` process (spawnFlotilla: the compiled
// CLI, or the sources under tsx) against a real ZooKeeper. Output and exit codes.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnFlotilla, type ChildHandle } from '../../src/platform/spawn.js';
import { zkHarness, targetKinds, uniquePath, waitUntil, within } from './helpers.js';
import { printableValue, runFlotilla } from '../cli/helpers.js';

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
      assert.deepEqual(await cli('set', base, 'world', '-v', '0'), { code: 0, stdout: `Set ${base} (data version 1, 5 bytes)\n`, stderr: '' });
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
      const orphan = await cli('create', `${base}/no/such`);
      assert.equal(orphan.code, 1);
      assert.equal(orphan.stderr, `flotilla zk: NONODE: create ${base}/no/such: the parent node ${base}/no does not exist (create it first)\n`);
      assert.deepEqual(await cli('delete', `${base}/seq-0000000000`), { code: 0, stdout: `Deleted ${base}/seq-0000000000\n`, stderr: '' });
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

    test('cli: watch prints the initial state, then each event with the new data until --count, re-arming after each', { timeout: 60_000 }, async () => {
      const client = await zk.connect();
      const path = uniquePath('cli-watch');
      // On the member whose watch table `wchp` reads.
      const watching = start(['watch', path, '--count', '4'], `${zk.server().host}:${zk.server().port}`);
      const armed = async () => (await zk.server().fourLetter('wchp')).includes(path);
      const lines = () => watching.output.stdout.split('\n').length - 1;
      await waitUntil('the initial state and an armed watch', 15_000, async () => lines() === 1 && (await armed()));
      await client.create(path, 'v1');
      await waitUntil('NodeCreated and a re-armed watch', 10_000, async () => lines() === 2 && (await armed()));
      await client.setData(path, 'v2');
      await waitUntil('NodeDataChanged and a re-armed watch', 10_000, async () => lines() === 3 && (await armed()));
      await client.create(`${path}/child`);
      await waitUntil('NodeChildrenChanged and a re-armed watch', 10_000, async () => lines() === 4 && (await armed()));
      await client.delete(`${path}/child`);
      await client.setData(path, 'v3');
      const run = await watching.done;
      assert.equal(run.code, 0, run.stderr);
      const printed = run.stdout.split('\n');
      assert.deepEqual(printed.slice(0, 4), [`${path} does not exist`, `NodeCreated ${path} = v1`, `NodeDataChanged ${path} = v2`, `NodeChildrenChanged ${path} children: child`]);
      // The child's deletion and the new data race to be the fifth event; either way the new state is printed.
      assert.match(printed[4]!, new RegExp(`^(NodeChildrenChanged ${path} children: \\(none\\)|NodeDataChanged ${path} = v3)$`));
    });

    test('cli: watch starts with the current data', { timeout: 60_000 }, async () => {
      const client = await zk.connect();
      const path = uniquePath('cli-watch-data');
      await client.create(path, 'hello');
      const watching = start(['watch', path, '--count', '1'], `${zk.server().host}:${zk.server().port}`);
      await waitUntil('the initial state', 15_000, () => watching.output.stdout.includes('\n'));
      assert.equal(watching.output.stdout, `${path} = hello\n`);
      await waitUntil('the watch to be armed', 15_000, async () => (await zk.server().fourLetter('wchp')).includes(path));
      await client.delete(path);
      assert.deepEqual(await watching.done, { code: 0, stdout: `${path} = hello\nNodeDeleted ${path}\n`, stderr: '' });
    });

    test('cli: create and set read data over 128 KiB from standard input and --file; get prints it in full through a pipe', { timeout: 60_000 }, async (t) => {
      const server = zk.server().connectString;
      const path = uniquePath('cli-file');
      const first = printableValue(200_000, 7);
      const created = await runFlotilla(['zk', '--server', server, 'create', path, '--file', '-'], { stdin: first });
      assert.equal(created.code, 0, created.stderr);
      const got = await runFlotilla(['zk', '--server', server, 'get', path], { readDelayMs: 300 });
      assert.equal(got.code, 0, got.stderr);
      assert.equal(got.stdout.length, first.length + 1);
      assert.equal(got.stdout.toString('utf8'), `${first}\n`);

      const dir = await mkdtemp(join(tmpdir(), 'flotilla-zk-cli-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const second = printableValue(500_000, 8);
      await writeFile(join(dir, 'data.txt'), second);
      const set = await runFlotilla(['zk', '--server', server, 'set', path, '--file', join(dir, 'data.txt')]);
      assert.equal(set.stdout.toString('utf8'), `Set ${path} (data version 1, ${second.length} bytes)\n`, set.stderr);
      const again = await runFlotilla(['zk', '--server', server, 'get', path], { readDelayMs: 300 });
      assert.equal(again.stdout.toString('utf8'), `${second}\n`);

      await writeFile(join(dir, 'too-large.bin'), Buffer.alloc(2 * 1024 * 1024));
      const refused = await runFlotilla(['zk', '--server', server, 'set', path, '--file', join(dir, 'too-large.bin')]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /jute\.maxbuffer/);
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
