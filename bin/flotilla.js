#!/usr/bin/env node
// The `flotilla` command: runs the compiled CLI (dist/, built by `npm install` or `npm run build`).
// `npm link` in the checkout puts it on PATH as `flotilla`; so does adding this folder to
// PATH (bin/flotilla is a launcher for that). Either way it runs this checkout's code from
// any directory, with no registry lookup (`npx flotilla` outside the checkout would ask
// the npm registry for a package of that name).

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  const checkout = fileURLToPath(new URL('..', import.meta.url));
  process.stderr.write(`flotilla: the compiled command is missing (${fileURLToPath(main)}); run \`npm run build\` in ${checkout}\n`);
  process.exit(1);
}
await import(main.href);
