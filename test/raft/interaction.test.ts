// Golden-output interaction tests of the Raft core (STYLE.md 16). Each file in
// test/raft/testdata is a script; UPDATE=1 rewrites the expected output, and the diff
// is reviewed like code.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Interaction, formatScript, parseScript } from '../../src/testbed/interaction.js';
import { repositoryRoot } from '../repo.js';

const dataDir = join(repositoryRoot(), 'test', 'raft', 'testdata');
const update = process.env['UPDATE'] === '1';

for (const file of readdirSync(dataDir)
  .filter((name) => name.endsWith('.txt'))
  .sort()) {
  test(`interaction ${file}`, () => {
    const path = join(dataDir, file);
    const text = readFileSync(path, 'utf8');
    const header = text
      .split('\n')
      .filter((line, i, lines) => line.startsWith('#') && lines.slice(0, i).every((l) => l.startsWith('#')))
      .join('\n');
    const interaction = new Interaction();
    const results = parseScript(text).map((d) => ({ command: d.command, expected: d.expected, actual: interaction.run(d.command) }));
    if (update) {
      writeFileSync(
        path,
        formatScript(
          results.map((r) => ({ command: r.command, expected: r.actual })),
          header ? `${header}\n\n` : '',
        ),
      );
      return;
    }
    for (const r of results) assert.equal(r.actual, r.expected, `${file}: ${r.command}`);
  });
}
