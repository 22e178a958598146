// Runs every compiled *.test.js file under dist/test with node's test runner. Files are
// passed explicitly: given a directory, Node treats every .js file under a folder named
// "test" as a test file, helpers and fixtures included.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const files = find(new URL('../dist/test', import.meta.url).pathname);
const result = spawnSync(process.execPath, ['--test', ...process.argv.slice(2), ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
