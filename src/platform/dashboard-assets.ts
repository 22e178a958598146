// The dashboard's static files (the page, its script and its style sheet), read from the
// checkout's `dashboard/` folder. Found the way etcdProtoFile() finds `proto/`: from
// src/platform under tsx the checkout is two levels up, from <build dir>/src/platform three,
// so `npm start` and the compiled `dist/` both serve them with no build step of their own.
//
// Only the names in `dashboardAssetTypes` are served, so a request can never name another
// file. Each file is read once and kept: they are small, and change only with the checkout.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readBytesFile } from './files.js';

/** The files of `dashboard/` the admin port serves, with their content types. */
export const dashboardAssetTypes: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** No dashboard file comes near this; a larger one is refused, not served. */
const assetBytesMax = 1 << 20;

export interface DashboardAsset {
  readonly contentType: string;
  readonly body: Uint8Array;
}

const cache = new Map<string, DashboardAsset>();

/** The dashboard folder, or an Error naming where it was looked for. */
export function dashboardFolder(): string | Error {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..'), join(here, '..', '..', '..')].map((root) => join(root, 'dashboard'));
  const found = candidates.find((folder) => existsSync(join(folder, 'index.html')));
  return found ?? new Error(`the dashboard's files are missing: looked for index.html in ${candidates.join(' and ')}`);
}

/** A file of the dashboard by name; undefined for a name not served; throws if the checkout lacks it. */
export function dashboardAsset(name: string): DashboardAsset | undefined {
  if (!Object.hasOwn(dashboardAssetTypes, name)) return undefined;
  const cached = cache.get(name);
  if (cached !== undefined) return cached;
  const folder = dashboardFolder();
  if (folder instanceof Error) throw folder;
  const asset = { contentType: dashboardAssetTypes[name]!, body: new Uint8Array(readBytesFile(join(folder, name), assetBytesMax)) };
  cache.set(name, asset);
  return asset;
}
