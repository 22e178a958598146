// Recovery of the log's segments at startup.
//
// What is repaired and what is refused (DESIGN.md §3):
//
//   where the bad bytes are                          | verdict
//   -------------------------------------------------+-------------------------------------
//   last segment, and no valid record after them     | torn final write: truncate, report event
//   last segment, a valid record somewhere after     | corruption: refuse (corrupt-record)
//   any earlier segment                              | corruption: refuse (corrupt-record)
//   last segment holds no valid header at all        | crash while rolling: remove it, report
//   a sequence number missing between two segments   | refuse (missing-segment)
//
// An earlier segment can never be torn: the log rolls only after the previous segment's
// last write was synced.

import type { Disk } from '../io/disk.js';
import { DiskError } from '../io/disk.js';
import { REPAIR_ADVICE, StorageError, type RecoveryEvent } from './errors.js';
import { RecordType, U64_BYTES, readU64, scanRecords, type DecodedRecord, type ScanResult } from './record.js';
import { LogModel, checkSegmentHeader, parseSegmentName, segmentName, type SegmentId } from './segment.js';

export interface SegmentInfo {
  readonly id: SegmentId;
  readonly name: string;
  sizeBytes: number;
}

export interface RecoveredSegments {
  readonly segments: SegmentInfo[];
  readonly model: LogModel;
  readonly events: RecoveryEvent[];
}

export const TEMP_SUFFIX = '.tmp';

export async function recoverSegments(disk: Disk, dir: string): Promise<RecoveredSegments> {
  let model: LogModel | undefined;
  const { segments, events } = await scanSegmentFiles(disk, dir, {
    begin(id, file) {
      model ??= new LogModel(id.firstIndex - 1);
      if (model.lastIndex !== id.firstIndex - 1) {
        throw corrupt(file, 0, `the segment starts after index ${id.firstIndex - 1} but the log before it ends at ${model.lastIndex}`);
      }
    },
    record: (record, file) => replayRecord(model!, record, file),
  });
  return { segments, model: model ?? new LogModel(0), events };
}

/** What a log does with the records of its segments, in log order. */
export interface SegmentReplay {
  /** A segment with a valid header starts (throw a StorageError to refuse it). */
  begin(id: SegmentId, file: string): void;
  /** A record after the header (throw a StorageError to refuse it). */
  record(record: DecodedRecord, file: string): void;
}

/**
 * Reads every segment in `dir` (created if missing) in order, checks headers and the
 * sequence, repairs a torn tail of the last segment, and hands each record to `replay`.
 */
export async function scanSegmentFiles(disk: Disk, dir: string, replay: SegmentReplay): Promise<{ segments: SegmentInfo[]; events: RecoveryEvent[] }> {
  await disk.mkdirp(dir);
  const events: RecoveryEvent[] = [];
  const ids = await listSegments(disk, dir, events);
  const segments: SegmentInfo[] = [];
  for (const [position, id] of ids.entries()) {
    const file = `${dir}/${segmentName(id)}`;
    const isLast = position === ids.length - 1;
    const bytes = await readWhole(disk, file);
    const scan = scanRecords(bytes);
    checkScan(file, scan, isLast);
    const header = scan.records[0];
    if (header === undefined) {
      if (!isLast) throw corrupt(file, 0, 'an empty segment that is not the last');
      // The last segment's header never became durable: a crash while rolling to it.
      await disk.remove(file);
      await disk.syncDir(dir);
      events.push({ kind: 'empty-segment-removed', file });
      continue;
    }
    const headerProblem = checkSegmentHeader(header, id);
    if (headerProblem !== undefined) throw corrupt(file, 0, headerProblem);
    replay.begin(id, file);
    for (const record of scan.records.slice(1)) replay.record(record, file);
    if (scan.failure !== undefined) {
      await truncateTornTail(disk, file, scan.validBytes);
      events.push({ kind: 'torn-tail-truncated', file, offset: scan.validBytes, discardedBytes: bytes.length - scan.validBytes, reason: scan.failure.reason });
    }
    segments.push({ id, name: segmentName(id), sizeBytes: scan.validBytes });
  }
  return { segments, events };
}

/** Segment ids in sequence order; removes temp files; refuses a gap in the sequence. */
async function listSegments(disk: Disk, dir: string, events: RecoveryEvent[]): Promise<SegmentId[]> {
  const ids: SegmentId[] = [];
  for (const name of await disk.list(dir)) {
    if (name.endsWith(TEMP_SUFFIX)) {
      await disk.remove(`${dir}/${name}`);
      events.push({ kind: 'temp-file-removed', file: `${dir}/${name}` });
      continue;
    }
    const id = parseSegmentName(name);
    if (id !== undefined) ids.push(id);
  }
  ids.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < ids.length; i++) {
    const previous = ids[i - 1]!;
    const next = ids[i]!;
    if (next.seq !== previous.seq + 1) {
      throw new StorageError(
        'missing-segment',
        `${dir}/${segmentName(next)}`,
        undefined,
        `log segment ${previous.seq + 1} is missing from ${dir}: ${segmentName(previous)} is followed by ${segmentName(next)}. ${REPAIR_ADVICE}`,
      );
    }
  }
  return ids;
}

async function readWhole(disk: Disk, file: string): Promise<Buffer> {
  try {
    return Buffer.from(await disk.readFile(file));
  } catch (error) {
    const cause = error instanceof DiskError ? error.message : String(error);
    throw new StorageError('read-failed', file, undefined, `reading ${file} failed (${cause}); check the device, then restart the member`);
  }
}

/** Refuses a scan failure unless it is a torn tail of the last segment. */
function checkScan(file: string, scan: ScanResult, isLast: boolean): void {
  if (scan.failure === undefined) return;
  if (!isLast) throw corrupt(file, scan.validBytes, `${scan.failure.reason} in a segment that is not the last`);
  if (scan.failure.followedByValidRecord) throw corrupt(file, scan.validBytes, `${scan.failure.reason}, with valid records after it`);
}

function replayRecord(model: LogModel, record: DecodedRecord, file: string): void {
  switch (record.type) {
    case RecordType.entry: {
      const index = record.payload.length >= U64_BYTES ? readU64(record.payload, 0) : undefined;
      if (index === undefined) throw corrupt(file, record.offset, 'entry record without a valid index');
      if (!model.canAppend(index)) throw corrupt(file, record.offset, `entry ${index} leaves a gap after index ${model.lastIndex}`);
      // Copy: the segment's buffer is large and must not stay alive for one entry.
      model.append({ index, data: Buffer.from(record.payload.subarray(U64_BYTES)) });
      return;
    }
    case RecordType.state:
      model.state = Buffer.from(record.payload);
      return;
    case RecordType.truncate: {
      const index = record.payload.length === U64_BYTES ? readU64(record.payload, 0) : undefined;
      if (index === undefined) throw corrupt(file, record.offset, 'truncation record without a valid index');
      model.truncateAfter(index);
      return;
    }
    default:
      throw corrupt(file, record.offset, `record type ${record.type} does not belong in a log segment (written by a newer version?)`);
  }
}

async function truncateTornTail(disk: Disk, file: string, validBytes: number): Promise<void> {
  const handle = await disk.open(file, { create: false });
  try {
    await handle.truncate(validBytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function corrupt(file: string, offset: number, reason: string): StorageError {
  return new StorageError('corrupt-record', file, offset, `${file}: corrupt log record at byte offset ${offset}: ${reason}. ${REPAIR_ADVICE}`);
}
