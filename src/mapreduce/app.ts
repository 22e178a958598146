// Loading an application module. A spec is either the name of a built-in application
// (wc, indexer) or an absolute path / file URL of a module exporting map and reduce.
// Only workers and the sequential reference load applications; the coordinator never does.

import { AppLoadError, describeError } from './errors.js';
import type { MapReduceApp } from './types.js';

export const builtinApps = ['wc', 'indexer'] as const;

export function isBuiltinApp(spec: string): boolean {
  return (builtinApps as readonly string[]).includes(spec);
}

export async function loadApp(spec: string): Promise<MapReduceApp> {
  let module: unknown;
  try {
    module = await importApp(spec);
  } catch (error) {
    throw new AppLoadError(`cannot load application "${spec}": ${describeError(error)}`);
  }
  return checkApp(spec, module);
}

async function importApp(spec: string): Promise<unknown> {
  // Literal specifiers, so that tsx (running from src/) and plain node (running from dist/)
  // both resolve the built-ins.
  if (spec === 'wc') return import('./apps/wc.js');
  if (spec === 'indexer') return import('./apps/indexer.js');
  const url = spec.startsWith('file:') ? spec : toFileUrl(spec);
  return import(url);
}

function toFileUrl(path: string): string {
  if (!path.startsWith('/')) throw new Error(`"${path}" is neither a built-in application (${builtinApps.join(', ')}) nor an absolute path`);
  return `file://${path.split('/').map(encodeURIComponent).join('/')}`;
}

function checkApp(spec: string, module: unknown): MapReduceApp {
  const candidate = module as Partial<MapReduceApp>;
  if (typeof candidate.map !== 'function' || typeof candidate.reduce !== 'function') {
    throw new AppLoadError(`application "${spec}" must export functions map(filename, contents) and reduce(key, values)`);
  }
  if (candidate.combine !== undefined && typeof candidate.combine !== 'function') {
    throw new AppLoadError(`application "${spec}" exports combine, but it is not a function`);
  }
  return { map: candidate.map, reduce: candidate.reduce, ...(candidate.combine ? { combine: candidate.combine } : {}) };
}
