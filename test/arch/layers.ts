// The layer check: every import in src/ must follow the table in docs/ARCHITECTURE.md,
// and only platform/ may touch real time, randomness or I/O.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve, sep } from 'node:path';

export type LayerTable = Map<string, Set<string>>;

/** Parses the "| module | may import |" table of docs/ARCHITECTURE.md. */
export function parseLayerTable(markdown: string): LayerTable {
  const table: LayerTable = new Map();
  const start = markdown.indexOf('| module | may import |');
  if (start < 0) throw new Error('docs/ARCHITECTURE.md has no "| module | may import |" table');
  const lines = markdown.slice(start).split('\n').slice(2);
  for (const line of lines) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').map((cell) => cell.trim());
    const module = cells[1]!;
    const allowed = cells[2]!
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name.length > 0);
    table.set(module, new Set(allowed));
  }
  return table;
}

const bannedGlobals: readonly [RegExp, string][] = [
  [/\bDate\b/, 'Date'],
  [/\bperformance\b/, 'performance'],
  [/\bsetTimeout\b/, 'setTimeout'],
  [/\bsetInterval\b/, 'setInterval'],
  [/\bsetImmediate\b/, 'setImmediate'],
  [/\bMath\s*\.\s*random\b/, 'Math.random'],
  [/\bprocess\s*\./, 'process'],
];

const ioModules = new Set([
  'fs',
  'fs/promises',
  'net',
  'http',
  'https',
  'http2',
  'tls',
  'dgram',
  'child_process',
  'worker_threads',
  'timers',
  'timers/promises',
  'os',
  'crypto',
  'process',
  'readline',
  'perf_hooks',
  'cluster',
]);

/** Removes comments (block and line; a '//' inside a URL-like string is left alone). */
export function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/(^|[^:'"])\/\/.*$/gm, '$1');
}

/** Empties string and template literals. */
export function stripStrings(code: string): string {
  return code
    .replace(/`(?:\\[\s\S]|[^`\\])*`/g, '``')
    .replace(/'(?:\\.|[^'\\\n])*'/g, "''")
    .replace(/"(?:\\.|[^"\\\n])*"/g, '""');
}

export interface Violation {
  file: string;
  message: string;
}

/** Checks one source file of module `module`. `file` is relative to src/. */
export function checkSource(table: LayerTable, file: string, module: string, source: string): Violation[] {
  const violations: Violation[] = [];
  const allowed = table.get(module);
  if (allowed === undefined) {
    return [{ file, message: `module "${module}" is not in the layer table of docs/ARCHITECTURE.md` }];
  }
  const code = stripComments(source);
  const importPattern = /(?:import|export)\s[^;]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g;
  for (const match of code.matchAll(importPattern)) {
    const specifier = (match[1] ?? match[2] ?? match[3])!;
    if (specifier.startsWith('.')) {
      const target = resolve('/src', dirname(file), specifier);
      const targetModule = relative('/src', target).split(sep)[0]!;
      if (targetModule !== module && !allowed.has(targetModule)) {
        violations.push({ file, message: `imports ${targetModule}/ ("${specifier}"), which ${module}/ may not import` });
      }
    } else if (module !== 'platform') {
      const bare = specifier.replace(/^node:/, '');
      if (ioModules.has(bare)) violations.push({ file, message: `uses node:${bare}; only platform/ may do I/O` });
    }
  }
  if (module !== 'platform') {
    for (const [pattern, name] of bannedGlobals) {
      if (pattern.test(stripStrings(code))) violations.push({ file, message: `uses ${name}; only platform/ may touch real time, randomness or the process` });
    }
  }
  return violations;
}

function listSources(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...listSources(path));
    else if (name.endsWith('.ts')) files.push(path);
  }
  return files;
}

/** Checks the whole tree rooted at `root` (the repository). */
export function checkTree(root: string): Violation[] {
  const table = parseLayerTable(readFileSync(join(root, 'docs', 'ARCHITECTURE.md'), 'utf8'));
  const srcDir = join(root, 'src');
  const violations: Violation[] = [];
  for (const path of listSources(srcDir)) {
    const file = relative(srcDir, path);
    const module = file.split(sep)[0]!;
    violations.push(...checkSource(table, file, module, readFileSync(path, 'utf8')));
  }
  return violations;
}
