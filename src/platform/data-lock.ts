// A lock file per data directory, DIR/LOCK, holding the pid of the process that owns the
// directory. `flotilla server` takes its member directory's lock, and `flotilla start` the
// cluster's, before anything in the directory is read: two processes recovering and
// appending to the same write-ahead log would corrupt it, and even a read-only recovery of
// a live member's log reports its unsynced tail as torn.
//
// The lock is advisory and tied to a live process, not to a file descriptor, so that it
// works the same on every file system. A lock whose pid is dead (the owner was killed
// with -9, or the machine rebooted) is stale and is taken over:
//
//   LOCK holds       | acquire
//   -----------------+--------------------------------------------------------------
//   (absent)         | link a complete LOCK into place (atomic; fails if one appeared)
//   a live pid       | refused: { acquired: false, pid }
//   a dead pid, our  | stale: rename it aside (atomic, so only one of two racing
//   own, or garbage  |   processes moves it); if what moved is a live process's lock
//                    |   (taken over in between), put it back, else link ours
//
// A pid reused by an unrelated process keeps a stale lock looking live; the refusal names
// the pid and the file so that a user can check and delete it.

import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const LOCK_FILE_NAME = 'LOCK';

/** Attempts to create or take over the lock before giving up (another process keeps racing us). */
const ACQUIRE_ATTEMPTS_MAX = 4;

export interface DataLock {
  /** The lock file's absolute path. */
  readonly file: string;
  /** The pid whose stale lock was taken over, if one was. */
  readonly tookOverPid: number | undefined;
  /** Removes the lock if it is still ours. */
  release(): Promise<void>;
}

export type DataLockResult =
  | { readonly acquired: true; readonly lock: DataLock }
  | { readonly acquired: false; readonly pid: number; readonly file: string };

/** Whether a process with this pid exists (EPERM: it exists, owned by another user). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Creates `dir` if needed and takes its lock, unless a live process holds it. */
export async function acquireDataLock(dir: string): Promise<DataLockResult> {
  const directory = resolve(dir);
  await mkdir(directory, { recursive: true });
  const file = join(directory, LOCK_FILE_NAME);
  const self = process.pid;
  let tookOverPid: number | undefined;
  for (let attempt = 0; attempt < ACQUIRE_ATTEMPTS_MAX; attempt++) {
    if (await tryLink(file, self)) return { acquired: true, lock: ownedLock(file, self, tookOverPid) };
    const holder = await readHolder(file);
    if (holder === 'absent') continue;
    if (holder !== 'garbage' && holder !== self && isProcessAlive(holder)) return { acquired: false, pid: holder, file };
    const moved = await moveAsideIfStale(file, self);
    if (typeof moved === 'number') return { acquired: false, pid: moved, file };
    if (moved === 'moved' && typeof holder === 'number') tookOverPid = holder;
  }
  const holder = await readHolder(file);
  return { acquired: false, pid: typeof holder === 'number' ? holder : 0, file };
}

/** Writes our pid to a private file and links it in as the lock; false if a lock exists. */
async function tryLink(file: string, self: number): Promise<boolean> {
  const temporary = `${file}.${self}.tmp`;
  await writeFile(temporary, `${self}\n`, { mode: 0o644 });
  try {
    await link(temporary, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temporary).catch(() => {});
  }
}

async function readHolder(file: string): Promise<number | 'absent' | 'garbage'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
  const trimmed = text.trim();
  return /^\d{1,10}$/.test(trimmed) ? Number(trimmed) : 'garbage';
}

/**
 * Renames the stale lock aside and removes it. If what was moved is a live process's lock
 * (another process took the stale one over in between), puts it back and returns its pid.
 */
async function moveAsideIfStale(file: string, self: number): Promise<'moved' | 'gone' | number> {
  const aside = `${file}.stale.${self}`;
  try {
    await rename(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw error;
  }
  const moved = await readHolder(aside);
  if (typeof moved === 'number' && moved !== self && isProcessAlive(moved)) {
    await link(aside, file).catch(() => {});
    await unlink(aside).catch(() => {});
    return moved;
  }
  await unlink(aside).catch(() => {});
  return 'moved';
}

function ownedLock(file: string, self: number, tookOverPid: number | undefined): DataLock {
  return {
    file,
    tookOverPid,
    release: async () => {
      if ((await readHolder(file)) === self) await unlink(file).catch(() => {});
    },
  };
}
