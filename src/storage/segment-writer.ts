// Group commit into segment files, shared by the one-group log (wal.ts) and the log that
// every Raft group of a process shares (shared-wal.ts).
//
// enqueue() queues a write's encoded records. One flush runs at a time; it takes
// everything queued (up to flushBytesMax), writes it with one append (writev) and one
// sync, and resolves all of it. Writes that arrive while a sync is in flight share the
// next sync. (ts-ecosystem.md §4: 40-60x at 128 writers.)
//
// A segment is rolled when the next batch would take it past segmentBytesMax: the new
// segment starts with its header and the records the owner says must open every segment
// (rollPrefix: the durable state, so removing older segments never loses it), then the
// batch, and it and its directory entry are synced before anything is acknowledged.
//
// After a failed write or sync the writer refuses everything (write-failed): what reached
// the disk is unknown, and only recovery after a restart can say.

import { assert } from '../stdx/assert.js';
import { DiskError, type Disk, type DiskFile } from '../io/disk.js';
import { StorageError } from './errors.js';
import { encodeSegmentHeader, segmentName, type SegmentId } from './segment.js';
import type { SegmentInfo } from './recovery.js';

export interface SegmentWriterOptions {
  /** A segment is rolled when the next flush would take it past this size. */
  readonly segmentBytesMax: number;
  /** One flush writes at most this much (at least one queued write), bounding a segment's overshoot. */
  readonly flushBytesMax: number;
}

export interface PendingWrite {
  readonly chunks: readonly Buffer[];
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export interface SegmentWriterHooks<W extends PendingWrite> {
  /** The id of the segment that follows `previous`. */
  readonly nextSegmentId: (previous: SegmentId) => SegmentId;
  /** Records that open every new segment after its header (what is durable so far). */
  readonly rollPrefix: () => Buffer[];
  /** A batch is durable, in segment `seq`; called before its writes resolve. */
  readonly durable: (batch: readonly W[], seq: number) => void;
}

export interface SegmentWriterStats {
  /** Flushes done (each one append + one sync). */
  readonly flushCount: number;
  /** Writes made durable. */
  readonly writeCount: number;
  readonly bytesWritten: number;
  readonly segmentCount: number;
}

export class SegmentWriter<W extends PendingWrite> {
  private queue: W[] = [];
  private flushing: Promise<void> | undefined = undefined;
  private failure: StorageError | undefined = undefined;
  private closed = false;
  private flushCount = 0;
  private writeCount = 0;
  private bytesWritten = 0;
  /** Bytes the current segment held before any batch (its header, state): rolling earlier is pointless. */
  private currentPrefixBytes = 0;

  constructor(
    private readonly disk: Disk,
    private readonly dir: string,
    private readonly options: SegmentWriterOptions,
    /** Invariant: non-empty; the last one is `file`. */
    readonly segments: SegmentInfo[],
    private file: DiskFile,
    private readonly hooks: SegmentWriterHooks<W>,
  ) {}

  /** Creates segment `id` holding its header, for a log that had none. */
  static async createFirst(disk: Disk, dir: string, id: SegmentId): Promise<{ segments: SegmentInfo[]; file: DiskFile }> {
    const file = await createSegment(disk, dir, id, [encodeSegmentHeader(id)]);
    return { segments: [{ id, name: segmentName(id), sizeBytes: file.size() }], file };
  }

  /** Why writes are refused (a failed write or sync, or close()); undefined while open. */
  refusal(): StorageError | undefined {
    if (this.failure !== undefined) return this.failure;
    if (this.closed) return new StorageError('closed', this.dir, undefined, `the log in ${this.dir} is closed`);
    return undefined;
  }

  /** Queues a write (the caller checked refusal() first); it resolves once durable. */
  enqueue(write: W): void {
    assert(this.refusal() === undefined, 'enqueue() only while the writer accepts writes');
    this.queue.push(write);
    if (this.flushing === undefined) this.flushing = this.flushLoop();
  }

  /** The current segment's sequence number (where the next flush lands unless it rolls). */
  currentSeq(): number {
    return this.segments.at(-1)!.id.seq;
  }

  /** Removes the `count` oldest segments (never the last), oldest first, and syncs the directory. */
  async removeOldest(count: number): Promise<void> {
    assert(count >= 0 && count < this.segments.length, 'the last segment stays');
    if (count === 0) return;
    // Oldest first: a crash part-way leaves a shorter prefix removed, never a hole.
    for (const segment of this.segments.slice(0, count)) await this.disk.remove(`${this.dir}/${segment.name}`);
    await this.disk.syncDir(this.dir);
    this.segments.splice(0, count);
  }

  sizeBytes(): number {
    return this.segments.reduce((sum, segment) => sum + segment.sizeBytes, 0);
  }

  stats(): SegmentWriterStats {
    return { flushCount: this.flushCount, writeCount: this.writeCount, bytesWritten: this.bytesWritten, segmentCount: this.segments.length };
  }

  /** Waits for queued writes, then closes the current segment. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.flushing !== undefined) await this.flushing;
    await this.file.close();
  }

  private async flushLoop(): Promise<void> {
    // Bounded: each turn takes at least one queued write, and a failure empties the queue.
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      try {
        await this.writeDurably(batch);
      } catch (error) {
        this.fail(error, batch);
        break;
      }
      this.flushCount++;
      this.writeCount += batch.length;
      this.hooks.durable(batch, this.currentSeq());
      for (const write of batch) write.resolve();
    }
    this.flushing = undefined;
  }

  private takeBatch(): W[] {
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && (count === 0 || bytes + this.queue[count]!.bytes <= this.options.flushBytesMax)) {
      bytes += this.queue[count]!.bytes;
      count++;
    }
    return this.queue.splice(0, count);
  }

  /** One append and one sync for the whole batch, rolling to a new segment first if needed. */
  private async writeDurably(batch: readonly W[]): Promise<void> {
    const chunks = batch.flatMap((write) => write.chunks);
    const bytes = batch.reduce((sum, write) => sum + write.bytes, 0);
    const current = this.segments.at(-1)!;
    if (this.file.size() + bytes > this.options.segmentBytesMax && this.file.size() > this.currentPrefixBytes) {
      await this.roll(chunks, bytes);
      return;
    }
    await this.file.append(chunks);
    await this.file.sync();
    current.sizeBytes = this.file.size();
    this.bytesWritten += bytes;
  }

  /** Starts the next segment with its header, the owner's prefix and the batch; syncs it and its name. */
  private async roll(chunks: readonly Buffer[], bytes: number): Promise<void> {
    const previous = this.segments.at(-1)!;
    const id = this.hooks.nextSegmentId(previous.id);
    const prefix = [encodeSegmentHeader(id), ...this.hooks.rollPrefix()];
    await this.file.close();
    this.file = await createSegment(this.disk, this.dir, id, [...prefix, ...chunks]);
    this.currentPrefixBytes = prefix.reduce((sum, chunk) => sum + chunk.length, 0);
    this.segments.push({ id, name: segmentName(id), sizeBytes: this.file.size() });
    this.bytesWritten += bytes;
  }

  private fail(error: unknown, batch: readonly W[]): void {
    const file = error instanceof DiskError ? error.path : `${this.dir}/${this.segments.at(-1)!.name}`;
    const cause = error instanceof Error ? error.message : String(error);
    this.failure = new StorageError(
      'write-failed',
      file,
      undefined,
      `writing the log failed (${cause}); nothing after the last successful sync is acknowledged. Restart the member: recovery keeps exactly what reached the disk.`,
    );
    const waiting = [...batch, ...this.queue];
    this.queue = [];
    for (const write of waiting) write.reject(this.failure);
  }
}

/** Creates a segment file holding `chunks`, syncs it, and makes its name durable. */
async function createSegment(disk: Disk, dir: string, id: SegmentId, chunks: readonly Uint8Array[]): Promise<DiskFile> {
  const path = `${dir}/${segmentName(id)}`;
  const file = await disk.open(path, { create: true });
  assert(file.size() === 0, `a new segment starts empty: ${path}`);
  await file.append(chunks);
  await file.sync();
  await disk.syncDir(dir);
  return file;
}
