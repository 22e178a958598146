// The real Disk on node:fs/promises. Appends are positional writev calls at an offset
// reserved when append() is called, so concurrent appends land in call order; sync() is
// fdatasync; syncDir() opens the directory and fsyncs it, which is how Linux makes a
// created, renamed or removed entry durable.

import { open, mkdir, readdir, stat, readFile, rename, rm } from 'node:fs/promises';
import { constants, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { resolve, relative, sep, isAbsolute } from 'node:path';
import { assert } from '../stdx/assert.js';
import { DiskError, type DiskErrorCode, type Disk, type DiskFile } from '../io/disk.js';

/** Linux's IOV_MAX: a writev takes at most this many buffers, so longer lists are split. */
export const IOVEC_COUNT_MAX = 1024;

const knownCodes: ReadonlySet<string> = new Set(['ENOENT', 'EEXIST', 'EIO', 'ENOSPC', 'EBADF']);

/** Converts a node:fs error into a DiskError that names the relative path. */
function toDiskError(error: unknown, path: string): DiskError {
  if (error instanceof DiskError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  const diskCode: DiskErrorCode = typeof code === 'string' && knownCodes.has(code) ? (code as DiskErrorCode) : 'EOTHER';
  const message = error instanceof Error ? error.message : String(error);
  return new DiskError(diskCode, path, message);
}

async function wrap<T>(path: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw toDiskError(error, path);
  }
}

export class FsDisk implements Disk {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** The absolute path of `path`; refuses paths that would leave the root. */
  resolvePath(path: string): string {
    assert(!isAbsolute(path), `disk paths are relative to the root: ${path}`);
    const absolute = resolve(this.root, path);
    const inside = relative(this.root, absolute);
    assert(inside === '' || (!inside.startsWith('..') && !isAbsolute(inside)), `path leaves the disk root: ${path}`);
    assert(!inside.split(sep).includes('..'), `path leaves the disk root: ${path}`);
    return absolute;
  }

  mkdirp(dir: string): Promise<void> {
    return wrap(dir, async () => {
      await mkdir(this.resolvePath(dir), { recursive: true });
    });
  }

  list(dir: string): Promise<string[]> {
    return wrap(dir, async () => (await readdir(this.resolvePath(dir))).sort());
  }

  exists(path: string): Promise<boolean> {
    return wrap(path, async () => {
      let stats: Stats;
      try {
        stats = await stat(this.resolvePath(path));
      } catch (error) {
        if ((error as { code?: unknown }).code === 'ENOENT') return false;
        throw error;
      }
      return stats.isFile() || stats.isDirectory();
    });
  }

  open(path: string, options: { create: boolean }): Promise<DiskFile> {
    return wrap(path, async () => {
      // O_RDWR without O_APPEND: appends are positional writes at the tracked size, which
      // keeps concurrent appends ordered and lets truncate() move the end back.
      const flags = constants.O_RDWR | (options.create ? constants.O_CREAT : 0);
      const handle = await open(this.resolvePath(path), flags, 0o644);
      try {
        const { size } = await handle.stat();
        return new FsDiskFile(path, handle, size);
      } catch (error) {
        await handle.close();
        throw error;
      }
    });
  }

  readFile(path: string): Promise<Uint8Array> {
    return wrap(path, () => readFile(this.resolvePath(path)));
  }

  rename(from: string, to: string): Promise<void> {
    return wrap(from, () => rename(this.resolvePath(from), this.resolvePath(to)));
  }

  remove(path: string): Promise<void> {
    return wrap(path, () => rm(this.resolvePath(path), { force: true }));
  }

  syncDir(dir: string): Promise<void> {
    return wrap(dir, async () => {
      const handle = await open(this.resolvePath(dir), constants.O_RDONLY);
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
  }
}

class FsDiskFile implements DiskFile {
  /** Invariant: sizeBytes = bytes on disk + bytes of appends in flight. */
  private sizeBytes: number;
  private failure: DiskError | undefined = undefined;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    sizeBytes: number,
  ) {
    this.sizeBytes = sizeBytes;
  }

  size(): number {
    return this.sizeBytes;
  }

  async append(chunks: readonly Uint8Array[]): Promise<void> {
    this.checkUsable();
    let position = this.sizeBytes;
    for (const chunk of chunks) this.sizeBytes += chunk.length;
    try {
      for (let start = 0; start < chunks.length; start += IOVEC_COUNT_MAX) {
        position = await this.writeAll(chunks.slice(start, start + IOVEC_COUNT_MAX), position);
      }
    } catch (error) {
      // The file's tail is now unknown; refuse further use rather than guess (fsyncgate).
      this.failure = toDiskError(error, this.path);
      throw this.failure;
    }
  }

  /** One writev, repeated for the remainder after a short write. Returns the new end. */
  private async writeAll(chunks: readonly Uint8Array[], position: number): Promise<number> {
    let pending = chunks.filter((chunk) => chunk.length > 0);
    let at = position;
    const attemptsMax = 1024;
    for (let attempt = 0; pending.length > 0; attempt++) {
      assert(attempt < attemptsMax, 'writev made no progress');
      const { bytesWritten } = await this.handle.writev(pending as Uint8Array[], at);
      at += bytesWritten;
      pending = dropPrefix(pending, bytesWritten);
    }
    return at;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.checkUsable();
    assert(offset >= 0 && length >= 0, 'read range must not be negative');
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    try {
      while (filled < length) {
        const { bytesRead } = await this.handle.read(buffer, filled, length - filled, offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
    } catch (error) {
      throw toDiskError(error, this.path);
    }
    return buffer.subarray(0, filled);
  }

  async sync(): Promise<void> {
    this.checkUsable();
    try {
      await this.handle.datasync();
    } catch (error) {
      this.failure = toDiskError(error, this.path);
      throw this.failure;
    }
  }

  async truncate(size: number): Promise<void> {
    this.checkUsable();
    assert(size >= 0 && size <= this.sizeBytes, 'truncate only shortens a file');
    await wrap(this.path, () => this.handle.truncate(size));
    this.sizeBytes = size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await wrap(this.path, () => this.handle.close());
  }

  private checkUsable(): void {
    if (this.closed) throw new DiskError('EBADF', this.path, 'file is closed');
    if (this.failure !== undefined) throw this.failure;
  }
}

/** The chunks left after the first `bytes` bytes were written. */
function dropPrefix(chunks: readonly Uint8Array[], bytes: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = bytes;
  for (const chunk of chunks) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
    skip = 0;
  }
  return rest;
}
