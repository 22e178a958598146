// What the ZooKeeper front-end needs from the host and cannot take itself (only platform/
// does I/O): SHA-1 for digest auth ids, random bytes for session passwords, the wall clock
// for ctime/mtime, and the facts `envi` reports.

import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { arch, hostname, platform, release, userInfo } from 'node:os';

export function sha1(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(bytes).digest());
}

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

export function randomBytesArray(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

/** Milliseconds since the Unix epoch (the wall clock, which may jump: for timestamps only). */
export function wallClockMs(): number {
  return Date.now();
}

/** `envi`'s lines after zookeeper.version, with Node in place of Java. */
export function hostEnvironment(): [string, string][] {
  return [
    ['host.name', hostname()],
    ['node.version', process.version],
    ['os.name', platform()],
    ['os.arch', arch()],
    ['os.version', release()],
    ['user.name', userInfo().username],
    ['user.dir', process.cwd()],
    ['process.pid', String(process.pid)],
  ];
}

/** Open and maximum file descriptors of this process (mntr), where /proc tells (Linux). */
export function fileDescriptors(): { open: number; max: number } | undefined {
  try {
    const open = readdirSync('/proc/self/fd').length;
    const limit = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return limit === null ? undefined : { open, max: Number(limit[1]) };
  } catch {
    return undefined;
  }
}
