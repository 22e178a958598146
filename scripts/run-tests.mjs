// Runs every compiled *.test.js file under dist/test with node's test runner. Files are
// passed explicitly: given a directory, Node treats every .js file under a folder named
// "test" as a test file, helpers and fixtures included. The runner's flags (exit after the
// last result, a per-file timeout) are in test-runner-flags.mjs.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { testRunnerFlags, unsupportedNode } from './test-runner-flags.mjs';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const unsupported = unsupportedNode();
if (unsupported !== undefined) {
  console.error(unsupported);
  process.exit(1);
}
const files = find(new URL('../dist/test', import.meta.url).pathname);
const result = spawnSync(process.execPath, [...testRunnerFlags, ...process.argv.slice(2), ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
