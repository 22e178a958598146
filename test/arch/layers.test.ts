import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkTree, checkSource, parseLayerTable } from './layers.js';
import { repositoryRoot } from '../repo.js';

const root = repositoryRoot();
const table = parseLayerTable(readFileSync(join(root, 'docs', 'ARCHITECTURE.md'), 'utf8'));

test('src/ follows the layer table and the determinism rule', () => {
  const violations = checkTree(root);
  assert.deepEqual(
    violations.map((v) => `${v.file}: ${v.message}`),
    [],
  );
});

test('the check catches a lower layer importing a higher one', () => {
  const found = checkSource(table, 'raft/core.ts', 'raft', "import { RaftNode } from '../runtime/node.js';\n");
  assert.equal(found.length, 1);
  assert.match(found[0]!.message, /runtime/);
});

test('the check catches Math.random, timers, Date and node: I/O outside platform/', () => {
  const sources = ['const x = Math.random();', 'setTimeout(() => {}, 10);', 'const now = Date.now();', "import { readFileSync } from 'node:fs';", 'const t = performance.now();'];
  for (const source of sources) {
    assert.equal(checkSource(table, 'raft/core.ts', 'raft', source).length, 1, source);
    assert.equal(checkSource(table, 'platform/x.ts', 'platform', source).length, 0, source);
  }
});

test('the check ignores comments and strings', () => {
  const source = "// no Math.random() or setTimeout here\nconst s = 'Date';\n/* performance */\n";
  assert.deepEqual(checkSource(table, 'raft/core.ts', 'raft', source), []);
});
