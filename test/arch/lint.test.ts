// The linter must bite where this code base is most at risk: a promise nobody awaits or
// catches (its rejection is lost, or crashes the process far from the cause). These run
// the project's own biome.json rules on planted files and expect each to be reported, and
// check that the tree passes `biome ci` (formatting and lint), which is how npm test runs it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repositoryRoot } from '../repo.js';

const root = repositoryRoot(import.meta.url);
const biome = join(root, 'node_modules', '.bin', 'biome');

/** Lints one planted file with the project's rules; returns the rule names reported. */
function lintPlanted(source: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-lint-'));
  try {
    const config = JSON.parse(readFileSync(join(root, 'biome.json'), 'utf8')) as Record<string, unknown>;
    delete config['vcs'];
    delete config['$schema'];
    config['files'] = { includes: ['**'] };
    writeFileSync(join(dir, 'biome.json'), JSON.stringify(config));
    writeFileSync(join(dir, 'planted.ts'), source);
    const result = spawnSync(biome, ['lint', '--max-diagnostics=none', 'planted.ts'], { cwd: dir, encoding: 'utf8' });
    return [...`${result.stdout}${result.stderr}`.matchAll(/lint\/[a-zA-Z]+\/([a-zA-Z]+)/g)].map((m) => m[1]!);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a floating promise is reported: an async call, a method, a bare .then', () => {
  const rules = lintPlanted(`
export async function save(): Promise<number> {
  return 1;
}
export class Member {
  async stop(): Promise<void> {}
  run(): void {
    save();
    this.stop();
    save().then(() => 1);
  }
}
`);
  assert.deepEqual(rules, ['noFloatingPromises', 'noFloatingPromises', 'noFloatingPromises']);
});

test('a promise handled on purpose passes: awaited, void-ed, caught', () => {
  const rules = lintPlanted(`
export async function save(): Promise<number> {
  return 1;
}
export async function run(): Promise<void> {
  await save();
  void save();
  save().catch(() => undefined);
}
`);
  assert.deepEqual(rules, []);
});

test('a promise where a plain value is expected is reported (a promise as a condition)', () => {
  const rules = lintPlanted(`
export async function save(n: number): Promise<number> {
  return n;
}
export function run(values: number[]): void {
  if (save(1)) values.push(1);
}
`);
  assert.ok(rules.includes('noMisusedPromises'), `reported: ${rules.join(', ')}`);
});

test('the tree passes biome ci (formatting and every lint rule)', () => {
  const result = spawnSync(biome, ['ci', '--max-diagnostics=20', '.'], { cwd: root, encoding: 'utf8' });
  assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
});
