// A segmented write-ahead log of indexed byte records on io.Disk, with group commit.
//
// The log holds entries (index → bytes), an opaque state value (the latest wins) and
// truncation markers. An entry at an index <= the last index replaces that entry and
// everything after it, as Raft's conflict rule needs; the replacement is a new record, so
// it is as atomic as any append (etcd's WAL does the same), and old bytes are reclaimed
// when whole segments are removed after a snapshot.
//
// Group commit, segment rolling and the refusal after a failed write are segment-writer.ts's:
// append() encodes the records and queues them there; appends that arrive while a sync is
// in flight share the next sync.

import { assert } from '../stdx/assert.js';
import type { Disk, DiskFile } from '../io/disk.js';
import { StorageError, type RecoveryEvent } from './errors.js';
import { RecordType, encodeRecord, u64Bytes } from './record.js';
import type { WalEntry } from './segment.js';
import { recoverSegments, type SegmentInfo } from './recovery.js';
import { type PendingWrite, SegmentWriter, type SegmentWriterStats } from './segment-writer.js';

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

export type WalStats = SegmentWriterStats;

interface QueuedWrite extends PendingWrite {
  /** The log's last index and state once this write is applied. */
  readonly lastIndexAfter: number;
  readonly stateAfter: Uint8Array | undefined;
}

export class Wal {
  /** Last index and state including queued writes (what the next append must follow). */
  private acceptedLastIndex: number;
  private acceptedState: Uint8Array | undefined;
  /** Last index and state of what is durable. */
  private durableLastIndex: number;
  private durableState: Uint8Array | undefined;
  private readonly writer: SegmentWriter<QueuedWrite>;

  private constructor(
    disk: Disk,
    private readonly dir: string,
    private readonly options: WalOptions,
    segments: SegmentInfo[],
    file: DiskFile,
    lastIndex: number,
    state: Uint8Array | undefined,
  ) {
    this.acceptedLastIndex = lastIndex;
    this.durableLastIndex = lastIndex;
    this.acceptedState = state;
    this.durableState = state;
    this.writer = new SegmentWriter<QueuedWrite>(disk, dir, options, segments, file, {
      // Segment seq+1 starts after the durable log: the invariant segment.ts relies on.
      nextSegmentId: (previous) => ({ seq: previous.seq + 1, firstIndex: this.durableLastIndex + 1 }),
      rollPrefix: () => (this.durableState === undefined ? [] : [encodeRecord(RecordType.state, this.durableState)]),
      durable: (batch) => {
        const last = batch.at(-1)!;
        this.durableLastIndex = last.lastIndexAfter;
        this.durableState = last.stateAfter;
      },
    });
  }

  /** Recovers the log in `dir` (created if missing) and opens it for appending. */
  static async open(disk: Disk, dir: string, options: Partial<WalOptions> = {}): Promise<{ wal: Wal; recovered: WalRecovered }> {
    const merged = { ...walDefaults, ...options };
    assert(merged.recordBytesMax + 64 <= merged.segmentBytesMax, 'a record fits in a segment');
    const { segments, model, events } = await recoverSegments(disk, dir);
    let file: DiskFile;
    const created = segments.length === 0;
    if (created) {
      const first = await SegmentWriter.createFirst(disk, dir, { seq: 0, firstIndex: model.lastIndex + 1 });
      file = first.file;
      segments.push(...first.segments);
    } else {
      file = await disk.open(`${dir}/${segments.at(-1)!.name}`, { create: false });
    }
    const wal = new Wal(disk, dir, merged, segments, file, model.lastIndex, model.state);
    const recovered: WalRecovered = { entries: model.entries, lastIndex: model.lastIndex, state: model.state, events, created };
    return { wal, recovered };
  }

  /** Resolves when `write` is durable. Writes become durable in call order. */
  append(write: WalWrite): Promise<void> {
    const refusal = this.writer.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const tooLarge = this.findOversizedRecord(write);
    if (tooLarge !== undefined) return Promise.reject(tooLarge);
    const chunks = this.encode(write);
    const bytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    return new Promise<void>((resolve, reject) => {
      this.writer.enqueue({ chunks, bytes, lastIndexAfter: this.acceptedLastIndex, stateAfter: this.acceptedState, resolve, reject });
    });
  }

  /**
   * Removes whole segments that hold nothing after `index` (which a durable snapshot now
   * covers). The last segment always stays. Returns how many were removed.
   */
  async compact(index: number): Promise<number> {
    const segments = this.writer.segments;
    // Segment k may go once segment k+1 starts at or before index+1 (see segment.ts).
    let removable = 0;
    while (removable + 1 < segments.length && segments[removable + 1]!.id.firstIndex <= index + 1) removable++;
    await this.writer.removeOldest(removable);
    return removable;
  }

  /** The index the next entry may follow (including writes not yet durable). */
  lastIndex(): number {
    return this.acceptedLastIndex;
  }

  sizeBytes(): number {
    return this.writer.sizeBytes();
  }

  stats(): WalStats {
    return this.writer.stats();
  }

  /** Names of the segment files, oldest first. */
  segmentNames(): string[] {
    return this.writer.segments.map((segment) => segment.name);
  }

  /** Waits for queued writes, then closes the current segment. */
  async close(): Promise<void> {
    await this.writer.close();
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
}
