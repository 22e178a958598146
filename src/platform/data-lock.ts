// A lock file per data directory, DIR/LOCK, naming the process that owns the directory.
// `flotilla server` takes its member directory's lock, and `flotilla start` the cluster's,
// before anything in the directory is read: two processes recovering and appending to the
// same write-ahead log would corrupt it, and even a read-only recovery of a live member's
// log reports its unsynced tail as torn.
//
// The file holds the owner's pid on its first line and, on Linux, the process's start time
// on the second (`start <clock ticks after boot>`, /proc/PID/stat field 22). The lock is
// tied to a live process, not to a file descriptor, so it works on every file system. A
// lock whose process is gone is stale and is taken over: the owner was killed with -9, or
// the machine rebooted. Pids are reused (pid_max may be 32768), so a live pid whose start
// time differs from the recorded one is another process, and the lock is stale too.
//
//   LOCK names          | acquire
//   --------------------+-----------------------------------------------------------
//   (absent)            | link a complete LOCK into place (atomic; fails if one appeared)
//   a live process      | refused: { acquired: false, pid }
//   a dead one, a reused| stale: rename it aside (atomic, so only one of two racing
//   pid, us, or garbage |   processes moves it); if what moved is a live process's lock
//                       |   (taken over in between), put it back, else link ours
//
// Without /proc (not Linux), a pid reused by an unrelated process keeps a stale lock
// looking live; the refusal names the pid and the file so that a user can check and
// delete it.

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

export type DataLockResult = { readonly acquired: true; readonly lock: DataLock } | { readonly acquired: false; readonly pid: number; readonly file: string };

/** A process, told apart from a later one with the same pid by its start time (undefined: unknown). */
interface Holder {
  readonly pid: number;
  readonly startTicks: string | undefined;
}

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
  const self: Holder = { pid: process.pid, startTicks: await startTicksOf(process.pid) };
  let tookOverPid: number | undefined;
  for (let attempt = 0; attempt < ACQUIRE_ATTEMPTS_MAX; attempt++) {
    if (await tryLink(file, self)) return { acquired: true, lock: ownedLock(file, self, tookOverPid) };
    const holder = await readHolder(file);
    if (holder === 'absent') continue;
    if (holder !== 'garbage' && (await isLiveHolder(holder, self))) return { acquired: false, pid: holder.pid, file };
    const moved = await moveAsideIfStale(file, self);
    if (typeof moved === 'number') return { acquired: false, pid: moved, file };
    if (moved === 'moved' && holder !== 'garbage') tookOverPid = holder.pid;
  }
  const holder = await readHolder(file);
  return { acquired: false, pid: typeof holder === 'object' ? holder.pid : 0, file };
}

/** Whether `holder` is a running process other than us (the same pid and start time). */
async function isLiveHolder(holder: Holder, self: Holder): Promise<boolean> {
  if (holder.pid === self.pid || !isProcessAlive(holder.pid)) return false;
  if (holder.startTicks === undefined) return true;
  const now = await startTicksOf(holder.pid);
  return now === undefined || now === holder.startTicks;
}

/** Field 22 of /proc/PID/stat, the process's start time; undefined without /proc. */
async function startTicksOf(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = fields[22 - 3];
    return ticks !== undefined && /^\d+$/.test(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** Writes our identity to a private file and links it in as the lock; false if a lock exists. */
async function tryLink(file: string, self: Holder): Promise<boolean> {
  const temporary = `${file}.${self.pid}.tmp`;
  await writeFile(temporary, `${self.pid}\n${self.startTicks === undefined ? '' : `start ${self.startTicks}\n`}`, { mode: 0o644 });
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

async function readHolder(file: string): Promise<Holder | 'absent' | 'garbage'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
  const [pidLine = '', startLine = ''] = text.split('\n');
  if (!/^\d{1,10}$/.test(pidLine.trim())) return 'garbage';
  const start = /^start (\d+)$/.exec(startLine.trim());
  return { pid: Number(pidLine.trim()), startTicks: start?.[1] };
}

/**
 * Renames the stale lock aside and removes it. If what was moved is a live process's lock
 * (another process took the stale one over in between), puts it back and returns its pid.
 */
async function moveAsideIfStale(file: string, self: Holder): Promise<'moved' | 'gone' | number> {
  const aside = `${file}.stale.${self.pid}`;
  try {
    await rename(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw error;
  }
  const moved = await readHolder(aside);
  if (typeof moved === 'object' && (await isLiveHolder(moved, self))) {
    await link(aside, file).catch(() => {});
    await unlink(aside).catch(() => {});
    return moved.pid;
  }
  await unlink(aside).catch(() => {});
  return 'moved';
}

function ownedLock(file: string, self: Holder, tookOverPid: number | undefined): DataLock {
  return {
    file,
    tookOverPid,
    release: async () => {
      const holder = await readHolder(file);
      if (typeof holder === 'object' && holder.pid === self.pid && holder.startTicks === self.startTicks) await unlink(file).catch(() => {});
    },
  };
}
