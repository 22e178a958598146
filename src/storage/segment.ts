// Segment files: names, the header record that opens every segment, and the replay of one
// segment's records into the log model.
//
// A segment is named <seq>-<firstIndex>.wal, both as 16 hex digits, so that names sort in
// log order. Invariant (what makes removal after a snapshot safe): when segment seq+1 is
// created, the log ends at firstIndex-1, so every live entry with an index >= firstIndex
// was written into segment seq+1 or later.

import { assert } from '../stdx/assert.js';
import { RecordType, U64_BYTES, encodeRecord, readU64, writeU64, type DecodedRecord } from './record.js';

const SEGMENT_MAGIC = Buffer.from('FLWALSEG', 'latin1');
const SEGMENT_VERSION = 1;
const HEADER_PAYLOAD_BYTES = SEGMENT_MAGIC.length + 4 + 4 + 2 * U64_BYTES;
const NAME_PATTERN = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

export interface SegmentId {
  readonly seq: number;
  /** The log ended at firstIndex - 1 when this segment was created. */
  readonly firstIndex: number;
}

export function segmentName(id: SegmentId): string {
  return `${hex16(id.seq)}-${hex16(id.firstIndex)}.wal`;
}

export function parseSegmentName(name: string): SegmentId | undefined {
  const match = NAME_PATTERN.exec(name);
  if (match === null) return undefined;
  const seq = Number.parseInt(match[1]!, 16);
  const firstIndex = Number.parseInt(match[2]!, 16);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(firstIndex)) return undefined;
  return { seq, firstIndex };
}

function hex16(value: number): string {
  assert(Number.isSafeInteger(value) && value >= 0, 'segment numbers are safe integers');
  return value.toString(16).padStart(16, '0');
}

export function encodeSegmentHeader(id: SegmentId): Buffer {
  const payload = Buffer.alloc(HEADER_PAYLOAD_BYTES);
  SEGMENT_MAGIC.copy(payload, 0);
  payload.writeUInt32LE(SEGMENT_VERSION, 8);
  writeU64(payload, id.seq, 16);
  writeU64(payload, id.firstIndex, 24);
  return encodeRecord(RecordType.segmentHeader, payload);
}

/** Checks that `record` is the header of segment `id`; returns what is wrong, if anything. */
export function checkSegmentHeader(record: DecodedRecord, id: SegmentId): string | undefined {
  if (record.type !== RecordType.segmentHeader) return `the first record has type ${record.type}, not a segment header`;
  const payload = record.payload;
  if (payload.length !== HEADER_PAYLOAD_BYTES) return `segment header of ${payload.length} bytes`;
  if (!payload.subarray(0, 8).equals(SEGMENT_MAGIC)) return 'bad segment magic';
  const version = payload.readUInt32LE(8);
  if (version !== SEGMENT_VERSION) return `segment format version ${version}; this build reads version ${SEGMENT_VERSION}`;
  const seq = readU64(payload, 16);
  const firstIndex = readU64(payload, 24);
  if (seq !== id.seq || firstIndex !== id.firstIndex) {
    return `header says seq ${seq} first index ${firstIndex}, the file name says seq ${id.seq} first index ${id.firstIndex}`;
  }
  return undefined;
}

export interface WalEntry {
  readonly index: number;
  readonly data: Uint8Array;
}

/**
 * The log as replay rebuilds it: live entries (contiguous) and where the log ends.
 * Invariant: entries are contiguous and, if any, the last has index lastIndex.
 */
export class LogModel {
  entries: WalEntry[] = [];
  lastIndex: number;
  state: Uint8Array | undefined = undefined;

  constructor(lastIndex: number) {
    this.lastIndex = lastIndex;
  }

  /** An entry at index <= lastIndex replaces that entry and everything after it. */
  canAppend(index: number): boolean {
    return index >= 1 && index <= this.lastIndex + 1;
  }

  append(entry: WalEntry): void {
    assert(this.canAppend(entry.index), 'appends leave no gap');
    const first = this.entries[0]?.index;
    if (first !== undefined) {
      // Keep the entries before entry.index; the rest are replaced (conflict truncation).
      this.entries.length = Math.max(0, Math.min(this.entries.length, entry.index - first));
    }
    this.entries.push(entry);
    this.lastIndex = entry.index;
  }

  /**
   * The log now ends at `index`. Later entries are discarded; if `index` is past the end,
   * the old entries no longer connect to what follows and are discarded too (this is how
   * a snapshot that replaces the log is recorded).
   */
  truncateAfter(index: number): void {
    assert(index >= 0, 'truncation index is not negative');
    const first = this.entries[0]?.index;
    if (index > this.lastIndex || first === undefined) {
      this.entries = [];
    } else {
      this.entries.length = Math.max(0, Math.min(this.entries.length, index - first + 1));
    }
    this.lastIndex = index;
  }
}
