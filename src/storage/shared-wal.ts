// One write-ahead log for every Raft group of a process: each record names its group, and
// the writes of all groups share one group commit (segment-writer.ts) — one append and one
// fsync per flush however many groups wrote in it, so fsyncs per second do not grow with
// the number of groups (issue 16; TiKV's raft-engine and CockroachDB's shared Pebble log
// make the same choice).
//
// Records (payload: group id u32 LE, 4 zero bytes, then):
//   groupEntry     index u64, data   — replaces the group's entry at index and all after it
//   groupState     data              — the group's state (the latest wins)
//   groupTruncate  index u64         — the group's log now ends at index
//   groupBase      index u64         — nothing of the group before this matters: its log
//                                      starts after index, and the entries and state that
//                                      follow in the same write are its whole live log
//
// Removing old segments. A group's records before its latest base are garbage, so the
// oldest segment may go once every group with records in it has a durable base in a later
// segment. A group writes a base whenever its snapshot replaces a prefix of its log (the
// base copies the few entries after the snapshot), and when the log asks it to: a group
// that keeps the oldest segment alive while the log holds more than `segmentsKept`
// segments is asked to rewrite its live log as a base (rewrite()), once per segment —
// that is how an idle group's old entries stop pinning the disk.

import { assert } from '../stdx/assert.js';
import type { Disk, DiskFile } from '../io/disk.js';
import { StorageError, type RecoveryEvent } from './errors.js';
import { RecordType, U64_BYTES, encodeRecord, readU64, type DecodedRecord } from './record.js';
import { LogModel, type WalEntry } from './segment.js';
import { corrupt, scanSegmentFiles } from './recovery.js';
import { type PendingWrite, SegmentWriter, type SegmentWriterStats } from './segment-writer.js';

export interface SharedWalOptions {
  readonly segmentBytesMax: number;
  readonly recordBytesMax: number;
  readonly flushBytesMax: number;
  /** While the log holds more segments than this, groups pinning the oldest are asked to rewrite. */
  readonly segmentsKept: number;
}

export const sharedWalDefaults: SharedWalOptions = {
  segmentBytesMax: 64 * 1024 * 1024,
  recordBytesMax: 16 * 1024 * 1024,
  flushBytesMax: 4 * 1024 * 1024,
  segmentsKept: 2,
};

/** One group's durable step, applied in this order: base or truncation, entries, state. */
export interface GroupWrite {
  /**
   * A base: everything the log held for the group is replaced by `entries` (which start at
   * baseIndex + 1) and `state` (required with a base).
   */
  readonly baseIndex?: number;
  /** The group's log ends at this index before `entries` are added. */
  readonly truncateAfterIndex?: number;
  /** Contiguous; the first may be at any index <= the last index + 1. */
  readonly entries: readonly WalEntry[];
  readonly state?: Uint8Array;
}

export interface GroupRecovered {
  /** Live entries, contiguous (or empty). */
  readonly entries: readonly WalEntry[];
  /** Where the group's log ends, if any entry, truncation or base of it survives. */
  readonly lastIndex: number | undefined;
  readonly state: Uint8Array | undefined;
}

export interface SharedWalRecovered {
  readonly groups: ReadonlyMap<number, GroupRecovered>;
  readonly events: readonly RecoveryEvent[];
  readonly created: boolean;
}

interface QueuedWrite extends PendingWrite {
  readonly group: number;
  readonly base: boolean;
}

interface GroupModel {
  log: LogModel | undefined;
  state: Uint8Array | undefined;
}

const GROUP_PREFIX_BYTES = 8;
const GROUP_ID_MAX = 0xffff_ffff;

export class SharedWal {
  private readonly writer: SegmentWriter<QueuedWrite>;
  /** Segment seq → the groups with records in it. */
  private readonly groupsIn = new Map<number, Set<number>>();
  /** Group → the seq of the segment holding its latest durable base (-1: none). */
  private readonly baseSeq = new Map<number, number>();
  /** Group → what to call when it pins the oldest segment. */
  private readonly rewriters = new Map<number, () => void>();
  /** The oldest segment for which rewrites were requested (once per segment). */
  private rewritesAskedFor = -1;
  private compacting = false;

  private constructor(
    disk: Disk,
    private readonly dir: string,
    private readonly options: SharedWalOptions,
    segments: ConstructorParameters<typeof SegmentWriter>[3],
    file: DiskFile,
  ) {
    this.writer = new SegmentWriter<QueuedWrite>(disk, dir, options, segments, file, {
      nextSegmentId: (previous) => ({ seq: previous.seq + 1, firstIndex: 0 }),
      // Every group's state lives in its bases and later records: a new segment needs no prefix.
      rollPrefix: () => [],
      durable: (batch, seq) => this.durable(batch, seq),
    });
  }

  /** Recovers the log in `dir` (created if missing), split by group, and opens it for appending. */
  static async open(disk: Disk, dir: string, options: Partial<SharedWalOptions> = {}): Promise<{ wal: SharedWal; recovered: SharedWalRecovered }> {
    const merged = { ...sharedWalDefaults, ...options };
    assert(merged.recordBytesMax + 64 <= merged.segmentBytesMax, 'a record fits in a segment');
    const models = new Map<number, GroupModel>();
    const groupsIn = new Map<number, Set<number>>();
    const baseSeq = new Map<number, number>();
    let seq = -1;
    const { segments, events } = await scanSegmentFiles(disk, dir, {
      begin(id) {
        seq = id.seq;
        groupsIn.set(seq, new Set());
      },
      record(record, file) {
        const group = replayGroupRecord(models, record, file);
        groupsIn.get(seq)!.add(group);
        if (record.type === RecordType.groupBase) baseSeq.set(group, seq);
      },
    });
    const created = segments.length === 0;
    let file: DiskFile;
    if (created) {
      const first = await SegmentWriter.createFirst(disk, dir, { seq: 0, firstIndex: 0 });
      file = first.file;
      segments.push(...first.segments);
      groupsIn.set(0, new Set());
    } else {
      file = await disk.open(`${dir}/${segments.at(-1)!.name}`, { create: false });
    }
    const wal = new SharedWal(disk, dir, merged, segments, file);
    for (const [at, groups] of groupsIn) wal.groupsIn.set(at, groups);
    for (const [group, at] of baseSeq) wal.baseSeq.set(group, at);
    const groups = new Map<number, GroupRecovered>();
    for (const [group, model] of models) groups.set(group, { entries: model.log?.entries ?? [], lastIndex: model.log?.lastIndex, state: model.state });
    return { wal, recovered: { groups, events, created } };
  }

  /** Registers the callback that rewrites `group`'s live log as a base (GroupWrite with baseIndex). */
  register(group: number, rewrite: () => void): void {
    assert(Number.isInteger(group) && group >= 0 && group <= GROUP_ID_MAX, 'group ids fit 32 bits');
    this.rewriters.set(group, rewrite);
  }

  /** Resolves when `write` is durable. Writes become durable in call order, across groups. */
  append(group: number, write: GroupWrite): Promise<void> {
    assert(Number.isInteger(group) && group >= 0 && group <= GROUP_ID_MAX, 'group ids fit 32 bits');
    assert(write.baseIndex === undefined || (write.truncateAfterIndex === undefined && write.state !== undefined), 'a base carries the state and no truncation');
    const refusal = this.writer.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const tooLarge = this.findOversizedRecord(group, write);
    if (tooLarge !== undefined) return Promise.reject(tooLarge);
    const chunks = encodeGroupWrite(group, write);
    const bytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    return new Promise<void>((resolve, reject) => {
      this.writer.enqueue({ chunks, bytes, group, base: write.baseIndex !== undefined, resolve, reject });
    });
  }

  sizeBytes(): number {
    return this.writer.sizeBytes();
  }

  /** flushCount is the number of fsyncs of the log. */
  stats(): SegmentWriterStats {
    return this.writer.stats();
  }

  segmentNames(): string[] {
    return this.writer.segments.map((segment) => segment.name);
  }

  /** Waits for queued writes, then closes the current segment. */
  async close(): Promise<void> {
    await this.writer.close();
  }

  private findOversizedRecord(group: number, write: GroupWrite): StorageError | undefined {
    const limit = this.options.recordBytesMax;
    for (const entry of write.entries) {
      if (entry.data.length > limit) {
        return new StorageError('record-too-large', this.dir, undefined, `group ${group}'s entry ${entry.index} has ${entry.data.length} bytes; the limit (recordBytesMax) is ${limit}`);
      }
    }
    if (write.state !== undefined && write.state.length > limit) {
      return new StorageError('record-too-large', this.dir, undefined, `group ${group}'s state of ${write.state.length} bytes exceeds recordBytesMax ${limit}`);
    }
    return undefined;
  }

  private durable(batch: readonly QueuedWrite[], seq: number): void {
    let groups = this.groupsIn.get(seq);
    if (groups === undefined) {
      groups = new Set();
      this.groupsIn.set(seq, groups);
    }
    for (const write of batch) {
      groups.add(write.group);
      if (write.base) this.baseSeq.set(write.group, seq);
    }
    this.maybeCompact();
  }

  /** Removes the oldest segments no group needs; asks the groups that pin the oldest to rewrite. */
  private maybeCompact(): void {
    if (this.compacting) return;
    const segments = this.writer.segments;
    let removable = 0;
    let pinning: number[] = [];
    while (removable + 1 < segments.length) {
      pinning = this.pinning(segments[removable]!.id.seq);
      if (pinning.length > 0) break;
      removable++;
    }
    if (removable > 0) {
      this.compacting = true;
      const removed = segments.slice(0, removable).map((segment) => segment.id.seq);
      this.writer.removeOldest(removable).then(
        () => {
          for (const seq of removed) this.groupsIn.delete(seq);
          this.compacting = false;
          this.maybeCompact();
        },
        // A failed removal leaves extra segments (recovery replays them harmlessly); the
        // next durable write tries again.
        () => {
          this.compacting = false;
        },
      );
      return;
    }
    const oldest = segments[0]!.id.seq;
    if (segments.length > this.options.segmentsKept && pinning.length > 0 && this.rewritesAskedFor !== oldest) {
      this.rewritesAskedFor = oldest;
      for (const group of pinning) this.rewriters.get(group)?.();
    }
  }

  /** The groups whose records in segment `seq` may still matter (no later durable base). */
  private pinning(seq: number): number[] {
    const pinning: number[] = [];
    for (const group of this.groupsIn.get(seq) ?? []) if ((this.baseSeq.get(group) ?? -1) <= seq) pinning.push(group);
    return pinning;
  }
}

function groupPrefix(group: number, index?: number): Buffer {
  const prefix = Buffer.alloc(GROUP_PREFIX_BYTES + (index === undefined ? 0 : U64_BYTES));
  prefix.writeUInt32LE(group, 0);
  if (index !== undefined) {
    assert(Number.isSafeInteger(index) && index >= 0, 'indexes are safe integers');
    prefix.writeUInt32LE(index % 0x1_0000_0000, GROUP_PREFIX_BYTES);
    prefix.writeUInt32LE(Math.floor(index / 0x1_0000_0000), GROUP_PREFIX_BYTES + 4);
  }
  return prefix;
}

const empty = Buffer.alloc(0);

function encodeGroupWrite(group: number, write: GroupWrite): Buffer[] {
  const chunks: Buffer[] = [];
  if (write.baseIndex !== undefined) chunks.push(encodeRecord(RecordType.groupBase, empty, groupPrefix(group, write.baseIndex)));
  if (write.truncateAfterIndex !== undefined) chunks.push(encodeRecord(RecordType.groupTruncate, empty, groupPrefix(group, write.truncateAfterIndex)));
  let previous = write.baseIndex;
  for (const entry of write.entries) {
    assert(previous === undefined || entry.index === previous + 1 || write.baseIndex === undefined, 'a base is followed by its entries in order');
    chunks.push(encodeRecord(RecordType.groupEntry, entry.data, groupPrefix(group, entry.index)));
    previous = entry.index;
  }
  if (write.state !== undefined) chunks.push(encodeRecord(RecordType.groupState, write.state, groupPrefix(group)));
  return chunks;
}

/** Applies one record to its group's model; returns the group. */
function replayGroupRecord(models: Map<number, GroupModel>, record: DecodedRecord, file: string): number {
  const payload = record.payload;
  if (payload.length < GROUP_PREFIX_BYTES || payload.readUInt32LE(4) !== 0) throw corrupt(file, record.offset, 'a record without a valid group id');
  const group = payload.readUInt32LE(0);
  let model = models.get(group);
  if (model === undefined) {
    model = { log: undefined, state: undefined };
    models.set(group, model);
  }
  const index = payload.length >= GROUP_PREFIX_BYTES + U64_BYTES ? readU64(payload, GROUP_PREFIX_BYTES) : undefined;
  switch (record.type) {
    case RecordType.groupEntry: {
      if (index === undefined) throw corrupt(file, record.offset, `group ${group}: entry record without a valid index`);
      // The first surviving record of a group may follow records in removed segments.
      model.log ??= new LogModel(index - 1);
      if (!model.log.canAppend(index)) throw corrupt(file, record.offset, `group ${group}: entry ${index} leaves a gap after index ${model.log.lastIndex}`);
      // Copy: the segment's buffer is large and must not stay alive for one entry.
      model.log.append({ index, data: Buffer.from(payload.subarray(GROUP_PREFIX_BYTES + U64_BYTES)) });
      return group;
    }
    case RecordType.groupState:
      model.state = Buffer.from(payload.subarray(GROUP_PREFIX_BYTES));
      return group;
    case RecordType.groupTruncate:
      if (index === undefined || payload.length !== GROUP_PREFIX_BYTES + U64_BYTES) throw corrupt(file, record.offset, `group ${group}: truncation record without a valid index`);
      model.log ??= new LogModel(index);
      model.log.truncateAfter(index);
      return group;
    case RecordType.groupBase:
      if (index === undefined || payload.length !== GROUP_PREFIX_BYTES + U64_BYTES) throw corrupt(file, record.offset, `group ${group}: base record without a valid index`);
      model.log = new LogModel(index);
      model.state = undefined;
      return group;
    default:
      throw corrupt(file, record.offset, `record type ${record.type} does not belong in a shared log segment (written by a newer version?)`);
  }
}
