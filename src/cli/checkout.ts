// Where this copy of Flotilla lives: the checkout's root (package.json, bin/), found from
// this module's own location, which is src/cli under tsx and dist/src/cli when compiled.

import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTextFile } from '../platform/files.js';

interface Checkout {
  readonly root: string;
  readonly version: string;
}

let found: Checkout | null | undefined;

/** The checkout's root directory and package.json version, or null if not found. */
export function checkout(): Checkout | null {
  if (found !== undefined) return found;
  found = null;
  for (const relative of ['../../package.json', '../../../package.json']) {
    const file = fileURLToPath(new URL(relative, import.meta.url));
    try {
      const manifest = JSON.parse(readTextFile(file)) as { name?: unknown; version?: unknown };
      if (manifest.name === 'flotilla' && typeof manifest.version === 'string') {
        found = { root: dirname(file), version: manifest.version };
        break;
      }
    } catch {
      // Not this one (absent, or not a manifest): try the next.
    }
  }
  return found;
}
