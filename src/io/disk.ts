// The file system, injected. storage/ is written against this interface only;
// platform/ implements it on node:fs and sim/ implements it in memory with faults
// (unsynced writes lost on a crash, torn final writes, read errors).
//
// Paths are '/'-separated strings relative to the root the implementation was given.
// Durability contract, as on Linux: data written to a file is durable after sync() of
// that file; a created, renamed or removed directory entry is durable after syncDir()
// of its directory.

export interface DiskFile {
  readonly path: string;
  /** Current length in bytes, including unsynced writes. */
  size(): number;
  /** Appends all chunks at the end of the file as one write (writev). */
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
  /** Opens a file for reading and appending; creates it (empty) if `create` is true. */
  open(path: string, options: { create: boolean }): Promise<DiskFile>;
  /** The whole content of a file. */
  readFile(path: string): Promise<Uint8Array>;
  /** Atomically replaces `to` with `from` (rename(2)). Durable after syncDir. */
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** Makes directory entry changes (create, rename, remove) durable. */
  syncDir(dir: string): Promise<void>;
}
