// Small file-system helpers for the server process and `flotilla start`: configuration
// and secret files, directory sizes for /status, and log files. The durable Raft state
// itself goes through io.Disk (fs-disk.ts), never through here.

import { createWriteStream, type Dirent, type WriteStream } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** Directory entries visited by directoryBytes at most (a bound on the walk, STYLE.md 10). */
export const DIRECTORY_ENTRIES_MAX = 100_000;

export function absolutePath(path: string): string {
  return resolve(path);
}

export async function readTextFile(path: string): Promise<string> {
  return readFile(resolve(path), 'utf8');
}

export async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(resolve(path));
    return true;
  } catch {
    return false;
  }
}

export async function ensureDirectory(path: string): Promise<void> {
  await mkdir(resolve(path), { recursive: true });
}

/** Creates `path` readable by its owner only; fails if it exists. */
export async function writePrivateFile(path: string, text: string): Promise<void> {
  await writeFile(resolve(path), text, { mode: 0o600, flag: 'wx' });
}

/** Total size of the regular files under `path` (0 if it does not exist). */
export async function directoryBytes(path: string): Promise<number> {
  let total = 0;
  let visited = 0;
  const pending = [resolve(path)];
  while (pending.length > 0 && visited < DIRECTORY_ENTRIES_MAX) {
    const dir = pending.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      visited++;
      const full = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(full);
      else if (entry.isFile()) total += (await stat(full).catch(() => ({ size: 0 }))).size;
    }
  }
  return total;
}

export interface LineFile {
  write(line: string): void;
  close(): Promise<void>;
}

/** Appends lines to a file (created if missing). */
export function openLineFile(path: string): LineFile {
  const stream: WriteStream = createWriteStream(resolve(path), { flags: 'a' });
  stream.on('error', () => {});
  return {
    write: (line) => {
      stream.write(line.endsWith('\n') ? line : `${line}\n`);
    },
    close: () => new Promise((done) => stream.end(() => done())),
  };
}

/** True if `path` does not exist or is an empty directory. */
export async function isEmptyOrMissingDirectory(path: string): Promise<boolean> {
  try {
    return (await readdir(path)).length === 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
}
