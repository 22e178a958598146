// Error messages that say what to do instead (issue 13, item 4): an unknown MapReduce
// application lists the ones there are. (zk create's missing parent: test/zkclient/cli.test.ts.)

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAllCommands, runFlotilla } from './helpers.js';

after(killAllCommands);

test('mr run and mr seq with an unknown application list the built-in ones', { timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-mr-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const command of ['run', 'seq']) {
    const run = await runFlotilla(['mr', command, '--app', 'wordcount', '--out', join(dir, 'out'), '/etc/hostname'], { cwd: dir });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^mr: unknown application "wordcount": the built-in applications are wc, indexer; anything else must be the path of a module/, command);
  }
  const path = await runFlotilla(['mr', 'run', '--app', './apps/mine.js', '--out', join(dir, 'out'), '/etc/hostname'], { cwd: dir });
  assert.equal(path.code, 2);
  assert.match(path.stderr, /^mr: application module not found: .*apps\/mine\.js \(the built-in applications are wc, indexer\)/);
});
