// The on-disk record framing shared by log segments and snapshot files.
//
//   offset  bytes  field
//   0       4      headerCrc     crc32 of bytes [4, 16): a flipped length is caught before it is used
//   4       4      payloadBytes  little-endian
//   8       1      type
//   9       3      zero
//   12      4      payloadCrc    crc32 of the payload
//   16      n      payload
//   16+n    0..7   zero padding, so every record starts at a multiple of 8
//
// The 8-byte alignment bounds the search that tells a torn tail from mid-file corruption:
// after a bad record, only aligned offsets need to be tried for a valid record behind it.

import { crc32 } from 'node:zlib';
import { assert } from '../stdx/assert.js';

export const RECORD_HEADER_BYTES = 16;
export const RECORD_ALIGNMENT_BYTES = 8;
/** The payload length field is 32 bits. */
export const RECORD_PAYLOAD_BYTES_LIMIT = 0xffff_ffff - RECORD_HEADER_BYTES - RECORD_ALIGNMENT_BYTES;

export const RecordType = {
  segmentHeader: 1,
  entry: 2,
  state: 3,
  truncate: 4,
  snapshot: 5,
  /** The log every group of a process shares (shared-wal.ts): one group's entry, state, truncation, base. */
  groupEntry: 6,
  groupState: 7,
  groupTruncate: 8,
  groupBase: 9,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export function isRecordType(value: number): value is RecordType {
  return value >= RecordType.segmentHeader && value <= RecordType.groupBase;
}

export function paddedRecordBytes(payloadBytes: number): number {
  const raw = RECORD_HEADER_BYTES + payloadBytes;
  return Math.ceil(raw / RECORD_ALIGNMENT_BYTES) * RECORD_ALIGNMENT_BYTES;
}

/**
 * One buffer holding the whole record. `prefix` (written before `body`) lets a caller put
 * a fixed field such as an index in front of the data without a second copy.
 */
export function encodeRecord(type: RecordType, body: Uint8Array, prefix?: Uint8Array): Buffer {
  const prefixBytes = prefix?.length ?? 0;
  const payloadBytes = prefixBytes + body.length;
  assert(payloadBytes <= RECORD_PAYLOAD_BYTES_LIMIT, 'record payload fits the 32-bit length field');
  const total = paddedRecordBytes(payloadBytes);
  const record = Buffer.allocUnsafe(total);
  record.fill(0, 8, RECORD_HEADER_BYTES);
  if (prefix !== undefined) record.set(prefix, RECORD_HEADER_BYTES);
  record.set(body, RECORD_HEADER_BYTES + prefixBytes);
  record.fill(0, RECORD_HEADER_BYTES + payloadBytes);
  record.writeUInt32LE(payloadBytes, 4);
  record.writeUInt8(type, 8);
  record.writeUInt32LE(crc32(record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + payloadBytes)), 12);
  record.writeUInt32LE(crc32(record.subarray(4, RECORD_HEADER_BYTES)), 0);
  return record;
}

export interface DecodedRecord {
  readonly type: number;
  readonly payload: Buffer;
  /** Byte offset of the record in its file. */
  readonly offset: number;
}

export type DecodeResult = { readonly ok: true; readonly record: DecodedRecord; readonly next: number } | { readonly ok: false; readonly reason: string; readonly incomplete: boolean };

/** Decodes the record at `offset` of `bytes`, checking both checksums and the padding. */
export function decodeRecordAt(bytes: Buffer, offset: number): DecodeResult {
  assert(offset % RECORD_ALIGNMENT_BYTES === 0, 'records are aligned');
  if (bytes.length - offset < RECORD_HEADER_BYTES) {
    return { ok: false, reason: 'incomplete record header', incomplete: true };
  }
  const headerCrc = bytes.readUInt32LE(offset);
  if (crc32(bytes.subarray(offset + 4, offset + RECORD_HEADER_BYTES)) !== headerCrc) {
    return { ok: false, reason: 'record header checksum mismatch', incomplete: false };
  }
  const payloadBytes = bytes.readUInt32LE(offset + 4);
  if (bytes.readUInt8(offset + 9) !== 0 || bytes.readUInt16LE(offset + 10) !== 0) {
    return { ok: false, reason: 'nonzero reserved header bytes', incomplete: false };
  }
  const next = offset + paddedRecordBytes(payloadBytes);
  if (next > bytes.length) {
    return { ok: false, reason: `record of ${payloadBytes} payload bytes runs past the end of the file`, incomplete: true };
  }
  const payload = bytes.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + payloadBytes);
  if (crc32(payload) !== bytes.readUInt32LE(offset + 12)) {
    return { ok: false, reason: 'record payload checksum mismatch', incomplete: false };
  }
  for (let i = offset + RECORD_HEADER_BYTES + payloadBytes; i < next; i++) {
    if (bytes[i] !== 0) return { ok: false, reason: 'nonzero record padding', incomplete: false };
  }
  return { ok: true, record: { type: bytes.readUInt8(offset + 8), payload, offset }, next };
}

/** Whether any aligned offset after `offset` holds a complete, valid record. */
export function hasValidRecordAfter(bytes: Buffer, offset: number): boolean {
  // Bounded by the file length; only taken on the failure path.
  for (let at = offset + RECORD_ALIGNMENT_BYTES; at + RECORD_HEADER_BYTES <= bytes.length; at += RECORD_ALIGNMENT_BYTES) {
    if (decodeRecordAt(bytes, at).ok) return true;
  }
  return false;
}

export interface ScanResult {
  readonly records: DecodedRecord[];
  /** Where valid records end: the file length, or the offset of the first bad record. */
  readonly validBytes: number;
  /** Why the record at validBytes failed, if one did. */
  readonly failure: { readonly reason: string; readonly followedByValidRecord: boolean } | undefined;
}

/** Decodes records from the start of `bytes` until the end or the first bad record. */
export function scanRecords(bytes: Buffer): ScanResult {
  const records: DecodedRecord[] = [];
  let offset = 0;
  const recordsMax = Math.ceil(bytes.length / RECORD_HEADER_BYTES);
  for (let count = 0; offset < bytes.length; count++) {
    assert(count <= recordsMax, 'the scan advances');
    const result = decodeRecordAt(bytes, offset);
    if (!result.ok) {
      return { records, validBytes: offset, failure: { reason: result.reason, followedByValidRecord: hasValidRecordAfter(bytes, offset) } };
    }
    records.push(result.record);
    offset = result.next;
  }
  return { records, validBytes: offset, failure: undefined };
}

// ---- Fixed-width fields inside payloads ----

export const U64_BYTES = 8;

/** Writes a safe non-negative integer as 64 bits little-endian. */
export function writeU64(target: Buffer, value: number, offset: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `u64 field holds a safe non-negative integer: ${value}`);
  target.writeUInt32LE(value % 0x1_0000_0000, offset);
  target.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

/** Reads a 64-bit little-endian integer; undefined if it is not a safe integer. */
export function readU64(source: Buffer, offset: number): number | undefined {
  const low = source.readUInt32LE(offset);
  const high = source.readUInt32LE(offset + 4);
  if (high > 0x1f_ffff) return undefined;
  return high * 0x1_0000_0000 + low;
}

export function u64Bytes(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(U64_BYTES);
  writeU64(bytes, value, 0);
  return bytes;
}
