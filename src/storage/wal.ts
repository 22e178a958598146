// A segmented write-ahead log of indexed byte records on io.Disk, with group commit.
//
// The log holds entries (index → bytes), an opaque state value (the latest wins) and
// truncation markers. An entry at an index <= the last index replaces that entry and
// everything after it, as Raft's conflict rule needs; the replacement is a new record, so
// it is as atomic as any append (etcd's WAL does the same), and old bytes are reclaimed
// when whole segments are removed after a snapshot.
//
// Group commit: append() queues the encoded records and returns a promise. One flush runs
// at a time; it takes everything queued (up to flushBytesMax), writes it with one append
// (writev) and one sync, and resolves all of it. Appends that arrive while a sync is in
// flight therefore share the next sync. (ts-ecosystem.md §4: 40-60x at 128 writers.)
//
// After a failed write or sync the log refuses everything (write-failed): what reached
// the disk is unknown, and only recovery after a restart can say.

import { assert } from '../stdx/assert.js';
import { DiskError, type Disk, type DiskFile } from '../io/disk.js';
import { StorageError, type RecoveryEvent } from './errors.js';
import { RecordType, encodeRecord, u64Bytes } from './record.js';
import { encodeSegmentHeader, segmentName, type SegmentId, type WalEntry } from './segment.js';
import { recoverSegments, type SegmentInfo } from './recovery.js';

export interface WalOptions {
  /** A segment is rolled when the next flush would take it past this size. */
  readonly segmentBytesMax: number;
  /** The largest entry or state value, in bytes. Larger ones are refused. */
  readonly recordBytesMax: number;
  /** One flush writes at most this much (at least one queued write), bounding a segment's overshoot. */
  readonly flushBytesMax: number;
}

export const walDefaults: WalOptions = {
  segmentBytesMax: 64 * 1024 * 1024,
  recordBytesMax: 16 * 1024 * 1024,
  flushBytesMax: 4 * 1024 * 1024,
};

/** One durable step, applied in this order: truncation, entries, state. */
export interface WalWrite {
  /** The log ends at this index before `entries` are added (a snapshot replacing the log). */
  readonly truncateAfterIndex?: number;
  /** Contiguous; the first may be at any index <= the last index + 1. */
  readonly entries: readonly WalEntry[];
  readonly state?: Uint8Array;
}

export interface WalRecovered {
  /** Live entries, contiguous, ending at lastIndex (or empty). */
  readonly entries: readonly WalEntry[];
  readonly lastIndex: number;
  readonly state: Uint8Array | undefined;
  /** Repairs made during recovery (a torn tail truncated, ...); the caller logs them. */
  readonly events: readonly RecoveryEvent[];
  /** True if no segment existed and open() started a new log. */
  readonly created: boolean;
}

export interface WalStats {
  /** Flushes done (each one append + one sync). */
  readonly flushCount: number;
  /** append() calls made durable. */
  readonly writeCount: number;
  readonly bytesWritten: number;
  readonly segmentCount: number;
}

interface QueuedWrite {
  readonly chunks: Buffer[];
  readonly bytes: number;
  /** The log's last index and state once this write is applied. */
  readonly lastIndexAfter: number;
  readonly stateAfter: Uint8Array | undefined;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class Wal {
  private queue: QueuedWrite[] = [];
  private flushing: Promise<void> | undefined = undefined;
  private failure: StorageError | undefined = undefined;
  private closed = false;
  /** Last index and state including queued writes (what the next append must follow). */
  private acceptedLastIndex: number;
  private acceptedState: Uint8Array | undefined;
  /** Last index and state of what is durable. */
  private durableLastIndex: number;
  private durableState: Uint8Array | undefined;
  private flushCount = 0;
  private writeCount = 0;
  private bytesWritten = 0;
  /** Bytes the current segment held before any batch (its header, state): rolling earlier is pointless. */
  private currentPrefixBytes = 0;

  private constructor(
    private readonly disk: Disk,
    private readonly dir: string,
    private readonly options: WalOptions,
    /** Invariant: non-empty; the last one is `file`. */
    private readonly segments: SegmentInfo[],
    private file: DiskFile,
    lastIndex: number,
    state: Uint8Array | undefined,
  ) {
    this.acceptedLastIndex = lastIndex;
    this.durableLastIndex = lastIndex;
    this.acceptedState = state;
    this.durableState = state;
  }

  /** Recovers the log in `dir` (created if missing) and opens it for appending. */
  static async open(disk: Disk, dir: string, options: Partial<WalOptions> = {}): Promise<{ wal: Wal; recovered: WalRecovered }> {
    const merged = { ...walDefaults, ...options };
    assert(merged.recordBytesMax + 64 <= merged.segmentBytesMax, 'a record fits in a segment');
    const { segments, model, events } = await recoverSegments(disk, dir);
    let file: DiskFile;
    const created = segments.length === 0;
    if (created) {
      const id: SegmentId = { seq: 0, firstIndex: model.lastIndex + 1 };
      file = await createSegment(disk, dir, id, [encodeSegmentHeader(id)]);
      segments.push({ id, name: segmentName(id), sizeBytes: file.size() });
    } else {
      file = await disk.open(`${dir}/${segments.at(-1)!.name}`, { create: false });
    }
    const wal = new Wal(disk, dir, merged, segments, file, model.lastIndex, model.state);
    const recovered: WalRecovered = { entries: model.entries, lastIndex: model.lastIndex, state: model.state, events, created };
    return { wal, recovered };
  }

  /** Resolves when `write` is durable. Writes become durable in call order. */
  append(write: WalWrite): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new StorageError('closed', this.dir, undefined, `the log in ${this.dir} is closed`));
    const tooLarge = this.findOversizedRecord(write);
    if (tooLarge !== undefined) return Promise.reject(tooLarge);
    const chunks = this.encode(write);
    const bytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ chunks, bytes, lastIndexAfter: this.acceptedLastIndex, stateAfter: this.acceptedState, resolve, reject });
      if (this.flushing === undefined) this.flushing = this.flushLoop();
    });
  }

  /**
   * Removes whole segments that hold nothing after `index` (which a durable snapshot now
   * covers). The last segment always stays. Returns how many were removed.
   */
  async compact(index: number): Promise<number> {
    // Segment k may go once segment k+1 starts at or before index+1 (see segment.ts).
    let removable = 0;
    while (removable + 1 < this.segments.length && this.segments[removable + 1]!.id.firstIndex <= index + 1) removable++;
    if (removable === 0) return 0;
    // Oldest first: a crash part-way leaves a shorter prefix removed, never a hole.
    for (const segment of this.segments.slice(0, removable)) await this.disk.remove(`${this.dir}/${segment.name}`);
    await this.disk.syncDir(this.dir);
    this.segments.splice(0, removable);
    return removable;
  }

  /** The index the next entry may follow (including writes not yet durable). */
  lastIndex(): number {
    return this.acceptedLastIndex;
  }

  sizeBytes(): number {
    return this.segments.reduce((sum, segment) => sum + segment.sizeBytes, 0);
  }

  stats(): WalStats {
    return { flushCount: this.flushCount, writeCount: this.writeCount, bytesWritten: this.bytesWritten, segmentCount: this.segments.length };
  }

  /** Names of the segment files, oldest first. */
  segmentNames(): string[] {
    return this.segments.map((segment) => segment.name);
  }

  /** Waits for queued writes, then closes the current segment. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.flushing !== undefined) await this.flushing;
    await this.file.close();
  }

  private findOversizedRecord(write: WalWrite): StorageError | undefined {
    const limit = this.options.recordBytesMax;
    for (const entry of write.entries) {
      if (entry.data.length > limit) {
        return new StorageError('record-too-large', this.dir, undefined, `entry ${entry.index} has ${entry.data.length} bytes; the limit (recordBytesMax) is ${limit}`);
      }
    }
    if (write.state !== undefined && write.state.length > limit) {
      return new StorageError('record-too-large', this.dir, undefined, `state of ${write.state.length} bytes exceeds recordBytesMax ${limit}`);
    }
    return undefined;
  }

  /** Encodes a write into records and advances the accepted log position. */
  private encode(write: WalWrite): Buffer[] {
    const chunks: Buffer[] = [];
    let lastIndex = this.acceptedLastIndex;
    if (write.truncateAfterIndex !== undefined) {
      assert(Number.isSafeInteger(write.truncateAfterIndex) && write.truncateAfterIndex >= 0, 'truncation index is a safe integer');
      chunks.push(encodeRecord(RecordType.truncate, u64Bytes(write.truncateAfterIndex)));
      lastIndex = write.truncateAfterIndex;
    }
    for (const entry of write.entries) {
      assert(entry.index >= 1 && entry.index <= lastIndex + 1, `entry ${entry.index} would leave a gap after ${lastIndex}`);
      chunks.push(encodeRecord(RecordType.entry, entry.data, u64Bytes(entry.index)));
      lastIndex = entry.index;
    }
    if (write.state !== undefined) {
      chunks.push(encodeRecord(RecordType.state, write.state));
      this.acceptedState = write.state;
    }
    this.acceptedLastIndex = lastIndex;
    return chunks;
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
      const last = batch.at(-1)!;
      this.durableLastIndex = last.lastIndexAfter;
      this.durableState = last.stateAfter;
      this.flushCount++;
      this.writeCount += batch.length;
      for (const write of batch) write.resolve();
    }
    this.flushing = undefined;
  }

  private takeBatch(): QueuedWrite[] {
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && (count === 0 || bytes + this.queue[count]!.bytes <= this.options.flushBytesMax)) {
      bytes += this.queue[count]!.bytes;
      count++;
    }
    return this.queue.splice(0, count);
  }

  /** One append and one sync for the whole batch, rolling to a new segment first if needed. */
  private async writeDurably(batch: readonly QueuedWrite[]): Promise<void> {
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

  /**
   * Starts segment seq+1 with its header, the durable state (so removing older segments
   * never loses it) and the batch, then syncs it and its directory entry.
   */
  private async roll(chunks: readonly Buffer[], bytes: number): Promise<void> {
    const previous = this.segments.at(-1)!;
    const id: SegmentId = { seq: previous.id.seq + 1, firstIndex: this.durableLastIndex + 1 };
    const prefix = [encodeSegmentHeader(id)];
    if (this.durableState !== undefined) prefix.push(encodeRecord(RecordType.state, this.durableState));
    await this.file.close();
    this.file = await createSegment(this.disk, this.dir, id, [...prefix, ...chunks]);
    this.currentPrefixBytes = prefix.reduce((sum, chunk) => sum + chunk.length, 0);
    this.segments.push({ id, name: segmentName(id), sizeBytes: this.file.size() });
    this.bytesWritten += bytes;
  }

  private fail(error: unknown, batch: readonly QueuedWrite[]): void {
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
