// The installed command (issue 13, item 1): bin/flotilla (for PATH, or a symlink to it)
// and bin/flotilla.js (what `npm link` installs) run this checkout's compiled CLI from any
// directory, with no registry lookup; `flotilla --version` prints package.json's version.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repositoryRoot } from '../repo.js';
import { freePorts } from '../server/helpers.js';
import { killAllCommands, runCommand, runFlotilla } from './helpers.js';

after(killAllCommands);

const root = repositoryRoot();

test('flotilla --version prints the version in package.json', { timeout: 30_000 }, async () => {
  const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
  const run = await runFlotilla(['--version']);
  assert.deepEqual({ code: run.code, stdout: run.stdout.toString('utf8') }, { code: 0, stdout: `flotilla ${version}\n` });
});

test('bin/flotilla, bin/flotilla.js and a symlink to bin/flotilla work from outside the checkout', { timeout: 60_000 }, async (t) => {
  const elsewhere = await mkdtemp(join(tmpdir(), 'flotilla-elsewhere-'));
  t.after(() => rm(elsewhere, { recursive: true, force: true }));
  const link = join(elsewhere, 'flotilla');
  await symlink(join(root, 'bin', 'flotilla'), link);
  const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
  for (const command of [join(root, 'bin', 'flotilla'), join(root, 'bin', 'flotilla.js'), link]) {
    const run = await runCommand(command, ['--version'], { cwd: elsewhere });
    assert.equal(run.code, 0, `${command}: ${run.stderr}`);
    assert.equal(run.stdout.toString('utf8'), `flotilla ${version}\n`, command);
  }
  // A real command, from there: nothing listens on a port just freed, and it says so at once.
  const [port] = await freePorts(1);
  const run = await runCommand(link, ['kv', 'get', 'x', '--endpoints', `127.0.0.1:${port}`], { cwd: elsewhere });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^flotilla kv: unavailable: every member refused the connection/);
});
