// A simulated Disk in memory, on the Scheduler's virtual time, deterministic for a seed.
//
// Model (what a crash keeps is what Linux promises, and no more):
// - Every operation takes effect when it is called, in call order, as a write into the
//   page cache would, and its promise settles after a latency drawn from the Prng.
//   Operations on one file settle in call order.
// - Each file has durable content: what the last completed sync() covered. sync() covers
//   the file as it was when sync() was called.
// - Each directory has durable entries: what the last completed syncDir() saw when it was
//   called. Directories themselves are durable as soon as mkdirp() creates them.
// - crash() rebuilds the namespace from the durable entries and every file from its
//   durable content. If a file's only unsynced change is appended bytes, with probability
//   `tornWriteProbability` a random prefix of them survives (a torn write). Operations in
//   flight fail with ECRASHED; handles opened before the crash fail with EBADF.
// - Faults: reads fail with EIO with `readErrorProbability`, and failNext() makes the next
//   read, append or sync of one file fail with EIO.

import { assert } from '../stdx/assert.js';
import type { Prng } from '../stdx/prng.js';
import type { Timer } from '../io/clock.js';
import { DiskError, type Disk, type DiskFile } from '../io/disk.js';
import type { Scheduler } from './scheduler.js';

export interface LatencyRangeMs {
  readonly min: number;
  readonly max: number;
}

export interface SimDiskOptions {
  readonly readLatencyMs: LatencyRangeMs;
  readonly writeLatencyMs: LatencyRangeMs;
  readonly syncLatencyMs: LatencyRangeMs;
  /** open, list, exists, rename, remove, syncDir, mkdirp. */
  readonly metadataLatencyMs: LatencyRangeMs;
  readonly readErrorProbability: number;
  /** At a crash, the chance that a file's unsynced appended tail survives in part. */
  readonly tornWriteProbability: number;
}

export const simDiskDefaults: SimDiskOptions = {
  readLatencyMs: { min: 0, max: 1 },
  writeLatencyMs: { min: 0, max: 1 },
  syncLatencyMs: { min: 1, max: 5 },
  metadataLatencyMs: { min: 0, max: 1 },
  readErrorProbability: 0,
  tornWriteProbability: 0.5,
};

export type FaultOperation = 'read' | 'append' | 'sync';

/** One file's content. An inode outlives its names, as on a real file system. */
class Inode {
  /** Current content is bytes[0, length). */
  bytes: Buffer = Buffer.alloc(0);
  length = 0;
  /** Durable content is durableCopy, or bytes[0, durableLength) while durableCopy is unset. */
  durableLength = 0;
  /** Set when a truncate shortened the file below durableLength since the last sync. */
  durableCopy: Buffer | undefined = undefined;
  syncsInFlight = 0;
  /** Virtual time by which every operation already issued on this file has settled. */
  settledByMs = 0;
  faults = new Set<FaultOperation>();

  content(): Buffer {
    return this.bytes.subarray(0, this.length);
  }

  durableContent(): Buffer {
    return this.durableCopy ?? this.bytes.subarray(0, this.durableLength);
  }

  append(chunk: Uint8Array): void {
    const needed = this.length + chunk.length;
    if (needed > this.bytes.length) {
      const grown = Buffer.alloc(Math.max(needed, this.bytes.length * 2, 256));
      this.bytes.copy(grown, 0, 0, this.length);
      this.bytes = grown;
    }
    this.bytes.set(chunk, this.length);
    this.length = needed;
  }

  truncate(size: number): void {
    assert(this.syncsInFlight === 0, 'the simulated disk does not model truncate during sync');
    // Keep the durable bytes before they are overwritten by later appends.
    if (size < this.durableLength && this.durableCopy === undefined) {
      this.durableCopy = Buffer.from(this.bytes.subarray(0, this.durableLength));
    }
    this.length = size;
  }

  /** Marks the first `length` bytes of the current content durable. */
  markDurable(length: number): void {
    this.durableCopy = undefined;
    this.durableLength = Math.min(length, this.length);
  }

  /** Resets the content to what survives a crash; `keepTailBytes` of an unsynced append. */
  restoreAfterCrash(keepTailBytes: number): void {
    const durable = Buffer.from(this.durableContent());
    const tail = this.durableCopy === undefined ? this.bytes.subarray(this.durableLength, this.durableLength + keepTailBytes) : Buffer.alloc(0);
    this.bytes = Buffer.concat([durable, tail]);
    this.length = this.bytes.length;
    this.durableLength = durable.length;
    this.durableCopy = undefined;
    this.syncsInFlight = 0;
    this.settledByMs = 0;
    this.faults.clear();
  }

  /** Bytes appended since the last sync, if that is the only unsynced change. */
  unsyncedAppendBytes(): number {
    return this.durableCopy === undefined ? this.length - this.durableLength : 0;
  }
}

interface Pending {
  readonly timer: Timer;
  readonly reject: (error: unknown) => void;
}

export class SimDisk implements Disk {
  private readonly options: SimDiskOptions;
  private directories = new Set<string>(['']);
  private names = new Map<string, Inode>();
  private durableNames = new Map<string, Inode>();
  private pending = new Set<Pending>();
  /** Incremented by every crash; handles from an older epoch are dead. */
  epoch = 0;
  crashCount = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly prng: Prng,
    options: Partial<SimDiskOptions> = {},
  ) {
    this.options = { ...simDiskDefaults, ...options };
  }

  // ---- Disk ----

  mkdirp(dir: string): Promise<void> {
    const path = normalize(dir);
    return this.settle(undefined, this.options.metadataLatencyMs, () => {
      const parts = path.split('/');
      for (let i = 1; i <= parts.length; i++) {
        const prefix = parts.slice(0, i).join('/');
        if (this.names.has(prefix)) throw new DiskError('EEXIST', prefix, 'a file is in the way');
        this.directories.add(prefix);
      }
    });
  }

  list(dir: string): Promise<string[]> {
    const path = normalize(dir);
    return this.settle(undefined, this.options.metadataLatencyMs, () => {
      if (!this.directories.has(path)) throw new DiskError('ENOENT', path, 'no such directory');
      const found = new Set<string>();
      for (const name of [...this.names.keys(), ...this.directories]) {
        if (name !== path && parentOf(name) === path) found.add(baseName(name));
      }
      return [...found].sort();
    });
  }

  exists(path: string): Promise<boolean> {
    const name = normalize(path);
    return this.settle(undefined, this.options.metadataLatencyMs, () => this.names.has(name) || this.directories.has(name));
  }

  open(path: string, options: { create: boolean }): Promise<DiskFile> {
    const name = normalize(path);
    return this.settle(undefined, this.options.metadataLatencyMs, () => {
      let inode = this.names.get(name);
      if (inode === undefined) {
        if (!options.create) throw new DiskError('ENOENT', name, 'no such file');
        if (!this.directories.has(parentOf(name))) throw new DiskError('ENOENT', name, 'no such directory');
        if (this.directories.has(name)) throw new DiskError('EEXIST', name, 'a directory is in the way');
        inode = new Inode();
        this.names.set(name, inode);
      }
      return new SimDiskFile(this, name, inode, this.epoch);
    });
  }

  readFile(path: string): Promise<Uint8Array> {
    const name = normalize(path);
    const inode = this.names.get(name);
    return this.settle(inode, this.options.readLatencyMs, () => {
      if (inode === undefined) throw new DiskError('ENOENT', name, 'no such file');
      this.maybeFail(inode, name, 'read');
      return Buffer.from(inode.content());
    });
  }

  rename(from: string, to: string): Promise<void> {
    const source = normalize(from);
    const target = normalize(to);
    return this.settle(undefined, this.options.metadataLatencyMs, () => {
      const inode = this.names.get(source);
      if (inode === undefined) throw new DiskError('ENOENT', source, 'no such file');
      if (!this.directories.has(parentOf(target))) throw new DiskError('ENOENT', target, 'no such directory');
      this.names.delete(source);
      this.names.set(target, inode);
    });
  }

  remove(path: string): Promise<void> {
    const name = normalize(path);
    return this.settle(undefined, this.options.metadataLatencyMs, () => {
      this.names.delete(name);
    });
  }

  syncDir(dir: string): Promise<void> {
    const path = normalize(dir);
    if (!this.directories.has(path)) {
      return this.settle(undefined, this.options.metadataLatencyMs, () => {
        throw new DiskError('ENOENT', path, 'no such directory');
      });
    }
    // Capture the directory as it is now; the entries become durable when the call settles.
    const entries = [...this.names].filter(([name]) => parentOf(name) === path);
    return this.settle(undefined, this.options.metadataLatencyMs, () => undefined).then(() => {
      for (const name of [...this.durableNames.keys()]) {
        if (parentOf(name) === path) this.durableNames.delete(name);
      }
      for (const [name, inode] of entries) this.durableNames.set(name, inode);
    });
  }

  // ---- Faults and inspection ----

  /**
   * Loses everything that was not durable, as a power failure would. Operations in flight
   * fail with ECRASHED. `tornWriteProbability` overrides the option for this crash.
   */
  crash(options: { tornWriteProbability?: number } = {}): void {
    const tornProbability = options.tornWriteProbability ?? this.options.tornWriteProbability;
    this.epoch++;
    this.crashCount++;
    for (const pending of this.pending) {
      pending.timer.cancel();
      pending.reject(new DiskError('ECRASHED', '', 'the disk crashed while the operation was in flight'));
    }
    this.pending.clear();
    const survivors = new Set(this.durableNames.values());
    // Sorted, so the Prng draws do not depend on Map insertion order.
    for (const inode of sortedInodes(this.durableNames)) {
      if (!survivors.delete(inode)) continue;
      const unsynced = inode.unsyncedAppendBytes();
      const keep = unsynced > 0 && this.prng.chance(tornProbability) ? this.prng.int(unsynced) : 0;
      inode.restoreAfterCrash(keep);
    }
    this.names = new Map(this.durableNames);
  }

  /** The next `operation` on `path` fails with EIO (one shot). */
  failNext(path: string, operation: FaultOperation): void {
    const inode = this.names.get(normalize(path));
    assert(inode !== undefined, `no file ${path}`);
    inode.faults.add(operation);
  }

  /** Flips one bit of a file, durable content included: media corruption. */
  flipBit(path: string, offset: number, bit = 0): void {
    const inode = this.names.get(normalize(path));
    assert(inode !== undefined, `no file ${path}`);
    assert(offset >= 0 && offset < inode.length, 'offset inside the file');
    inode.bytes[offset]! ^= 1 << bit;
    if (inode.durableCopy !== undefined && offset < inode.durableCopy.length) inode.durableCopy[offset]! ^= 1 << bit;
  }

  /** Current and durable sizes of a file, for tests. */
  describeFile(path: string): { size: number; durableSize: number } | undefined {
    const inode = this.names.get(normalize(path));
    if (inode === undefined) return undefined;
    return { size: inode.length, durableSize: inode.durableContent().length };
  }

  /** Whether the name of `path` would survive a crash now. */
  isNameDurable(path: string): boolean {
    return this.durableNames.has(normalize(path));
  }

  // ---- Internals shared with SimDiskFile ----

  /**
   * Runs `effect` now and settles its outcome after a drawn latency (after every earlier
   * operation on `inode`, when given). A crash before then rejects with ECRASHED.
   */
  settle<T>(inode: Inode | undefined, latency: LatencyRangeMs, effect: () => T): Promise<T> {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: effect() };
    } catch (error) {
      outcome = { ok: false, error };
    }
    let atMs = this.scheduler.nowMs + this.prng.range(latency.min, latency.max);
    if (inode !== undefined) {
      atMs = Math.max(atMs, inode.settledByMs);
      inode.settledByMs = atMs;
    }
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = {
        reject,
        timer: this.scheduler.at(atMs, () => {
          this.pending.delete(pending);
          if (outcome.ok) resolve(outcome.value);
          else reject(outcome.error);
        }),
      };
      this.pending.add(pending);
    });
  }

  maybeFail(inode: Inode, path: string, operation: FaultOperation): void {
    if (inode.faults.delete(operation)) throw new DiskError('EIO', path, `injected ${operation} error`);
    if (operation === 'read' && this.options.readErrorProbability > 0 && this.prng.chance(this.options.readErrorProbability)) {
      throw new DiskError('EIO', path, 'injected read error');
    }
  }

  get latencies(): SimDiskOptions {
    return this.options;
  }
}

class SimDiskFile implements DiskFile {
  private closed = false;
  private failed: DiskError | undefined = undefined;

  constructor(
    private readonly disk: SimDisk,
    readonly path: string,
    private readonly inode: Inode,
    private readonly epoch: number,
  ) {}

  size(): number {
    return this.inode.length;
  }

  append(chunks: readonly Uint8Array[]): Promise<void> {
    return this.operate(this.disk.latencies.writeLatencyMs, () => {
      this.failOnFault('append');
      for (const chunk of chunks) this.inode.append(chunk);
    });
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    assert(offset >= 0 && length >= 0, 'read range must not be negative');
    return this.operate(this.disk.latencies.readLatencyMs, () => {
      this.disk.maybeFail(this.inode, this.path, 'read');
      return Buffer.from(this.inode.content().subarray(offset, offset + length));
    });
  }

  sync(): Promise<void> {
    const lengthAtCall = this.inode.length;
    const promise = this.operate(this.disk.latencies.syncLatencyMs, () => {
      this.failOnFault('sync');
      this.inode.syncsInFlight++;
    });
    return promise.then(() => {
      this.inode.syncsInFlight--;
      this.inode.markDurable(lengthAtCall);
    });
  }

  truncate(size: number): Promise<void> {
    return this.operate(this.disk.latencies.writeLatencyMs, () => {
      assert(size >= 0 && size <= this.inode.length, 'truncate only shortens a file');
      this.inode.truncate(size);
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private operate<T>(latency: LatencyRangeMs, effect: () => T): Promise<T> {
    return this.disk.settle(this.inode, latency, () => {
      if (this.closed) throw new DiskError('EBADF', this.path, 'file is closed');
      if (this.epoch !== this.disk.epoch) throw new DiskError('EBADF', this.path, 'file was opened before a crash');
      if (this.failed !== undefined) throw this.failed;
      return effect();
    });
  }

  /** A failed append or sync leaves the file unusable, as FsDisk does. */
  private failOnFault(operation: FaultOperation): void {
    try {
      this.disk.maybeFail(this.inode, this.path, operation);
    } catch (error) {
      this.failed = error as DiskError;
      throw error;
    }
  }
}

function normalize(path: string): string {
  const parts = path.split('/').filter((part) => part.length > 0 && part !== '.');
  assert(!parts.includes('..'), `disk paths may not contain "..": ${path}`);
  return parts.join('/');
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function sortedInodes(names: Map<string, Inode>): Inode[] {
  return [...names.keys()].sort().map((name) => names.get(name)!);
}
