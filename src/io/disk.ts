// The file system, injected. storage/ is written against this interface only;
// platform/ implements it on node:fs and sim/ implements it in memory with faults
// (unsynced writes lost on a crash, torn final writes, read errors).
//
// Paths are '/'-separated strings relative to the root the implementation was given.
// Durability contract, as on Linux: data written to a file is durable after sync() of
// that file; a created, renamed or removed directory entry is durable after syncDir()
// of its directory. Directories themselves (mkdirp) are treated as durable at once.
//
// Failures are DiskErrors carrying an errno-style code, so callers can tell a missing
// file from an I/O error without depending on node:fs.

export type DiskErrorCode =
  | 'ENOENT' // no such file or directory
  | 'EEXIST' // the file already exists
  | 'EIO' // the device failed the operation
  | 'ENOSPC' // the device is full
  | 'ECRASHED' // simulated: the disk crashed while the operation was in flight
  | 'EBADF' // the file was closed (or belongs to a disk that crashed since it was opened)
  | 'EOTHER'; // anything else; the message says what

export class DiskError extends Error {
  override name = 'DiskError';
  constructor(
    readonly code: DiskErrorCode,
    readonly path: string,
    message: string,
  ) {
    super(`${code}: ${message} (${path})`);
  }
}

export interface DiskFile {
  readonly path: string;
  /** Current length in bytes, including unsynced and in-flight appends. */
  size(): number;
  /**
   * Appends all chunks at the end of the file as one write (writev). Concurrent calls
   * land in call order. After a failed append the file is unusable (every later call
   * fails): the bytes on disk are unknown, so the caller must reopen and recover.
   */
  append(chunks: readonly Uint8Array[]): Promise<void>;
  /** Reads `length` bytes at `offset`; fewer only at the end of the file. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Makes every earlier write durable (fdatasync). */
  sync(): Promise<void>;
  /** Cuts the file to `size` bytes. Durable after the next sync(). */
  truncate(size: number): Promise<void>;
  close(): Promise<void>;
}

export interface Disk {
  /** Creates the directory and its parents if missing. */
  mkdirp(dir: string): Promise<void>;
  /** Names (not paths) of the entries of a directory, sorted. */
  list(dir: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
  /**
   * Opens a file for reading and appending, keeping its content. If it is missing, it is
   * created empty when `create` is true, else the call fails with ENOENT.
   */
  open(path: string, options: { create: boolean }): Promise<DiskFile>;
  /** The whole content of a file. */
  readFile(path: string): Promise<Uint8Array>;
  /** Atomically replaces `to` with `from` (rename(2)). Durable after syncDir. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; a missing file is not an error. Durable after syncDir. */
  remove(path: string): Promise<void>;
  /** Makes directory entry changes (create, rename, remove) durable. */
  syncDir(dir: string): Promise<void>;
}
