// Snapshot files: one record (record.ts framing) per file, named by the last index the
// snapshot covers. Written as a temporary file, synced, renamed over its final name and
// the directory synced (the classic atomic replace): a crash leaves either the old
// snapshot or the new one, never half of one. Older snapshots are removed only after the
// new one is durable.
//
// An unreadable newest snapshot is refused rather than skipped: log segments before it
// were removed once it was durable, so an older snapshot would not connect to the log.

import { assert } from '../stdx/assert.js';
import { DiskError, type Disk } from '../io/disk.js';
import { REPAIR_ADVICE, StorageError, type RecoveryEvent } from './errors.js';
import { RecordType, U64_BYTES, decodeRecordAt, encodeRecord, readU64, writeU64 } from './record.js';
import { TEMP_SUFFIX } from './recovery.js';

const SNAPSHOT_MAGIC = Buffer.from('FLSNAP01', 'latin1');
const PREFIX_BYTES = SNAPSHOT_MAGIC.length + U64_BYTES;
const NAME_PATTERN = /^snapshot-([0-9a-f]{16})\.snap$/;

export interface SnapshotFileOptions {
  /** The largest snapshot accepted, in bytes (it is read into memory whole). */
  readonly snapshotBytesMax: number;
}

export const snapshotFileDefaults: SnapshotFileOptions = { snapshotBytesMax: 1024 * 1024 * 1024 };

export interface StoredSnapshot {
  readonly index: number;
  readonly data: Uint8Array;
  readonly file: string;
}

export function snapshotName(index: number): string {
  return `snapshot-${index.toString(16).padStart(16, '0')}.snap`;
}

export class SnapshotFiles {
  private readonly options: SnapshotFileOptions;

  constructor(
    private readonly disk: Disk,
    private readonly dir: string,
    options: Partial<SnapshotFileOptions> = {},
  ) {
    this.options = { ...snapshotFileDefaults, ...options };
  }

  /** Creates the directory and removes temporary files left by a crash. */
  async init(): Promise<RecoveryEvent[]> {
    await this.disk.mkdirp(this.dir);
    const events: RecoveryEvent[] = [];
    for (const name of await this.disk.list(this.dir)) {
      if (!name.endsWith(TEMP_SUFFIX)) continue;
      await this.disk.remove(`${this.dir}/${name}`);
      events.push({ kind: 'temp-file-removed', file: `${this.dir}/${name}` });
    }
    return events;
  }

  /** Makes the snapshot at `index` durable, then removes older ones. */
  async save(index: number, data: Uint8Array): Promise<void> {
    assert(data.length <= this.options.snapshotBytesMax, `snapshot of ${data.length} bytes exceeds snapshotBytesMax`);
    const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
    SNAPSHOT_MAGIC.copy(prefix, 0);
    writeU64(prefix, index, SNAPSHOT_MAGIC.length);
    const record = encodeRecord(RecordType.snapshot, data, prefix);
    const final = `${this.dir}/${snapshotName(index)}`;
    const temp = `${final}${TEMP_SUFFIX}`;
    await this.disk.remove(temp);
    const file = await this.disk.open(temp, { create: true });
    try {
      await file.append([record]);
      await file.sync();
    } finally {
      await file.close();
    }
    await this.disk.rename(temp, final);
    await this.disk.syncDir(this.dir);
    await this.removeOlderThan(index);
  }

  /** The newest snapshot, or undefined if there is none. */
  async loadLatest(): Promise<StoredSnapshot | undefined> {
    const indexes = await this.listIndexes();
    const index = indexes.at(-1);
    if (index === undefined) return undefined;
    const file = `${this.dir}/${snapshotName(index)}`;
    let bytes: Buffer;
    try {
      bytes = Buffer.from(await this.disk.readFile(file));
    } catch (error) {
      const cause = error instanceof DiskError ? error.message : String(error);
      throw new StorageError('read-failed', file, undefined, `reading ${file} failed (${cause}); check the device, then restart the member`);
    }
    return { index, data: decodeSnapshot(bytes, file, index), file };
  }

  private async listIndexes(): Promise<number[]> {
    const indexes: number[] = [];
    for (const name of await this.disk.list(this.dir)) {
      const match = NAME_PATTERN.exec(name);
      if (match !== null) indexes.push(Number.parseInt(match[1]!, 16));
    }
    return indexes.sort((a, b) => a - b);
  }

  private async removeOlderThan(index: number): Promise<void> {
    const older = (await this.listIndexes()).filter((other) => other < index);
    if (older.length === 0) return;
    for (const other of older) await this.disk.remove(`${this.dir}/${snapshotName(other)}`);
    await this.disk.syncDir(this.dir);
  }
}

function decodeSnapshot(bytes: Buffer, file: string, index: number): Uint8Array {
  const result = decodeRecordAt(bytes, 0);
  if (!result.ok) throw unreadable(file, 0, result.reason);
  const { record, next } = result;
  if (record.type !== RecordType.snapshot) throw unreadable(file, 0, `record type ${record.type} is not a snapshot`);
  if (next !== bytes.length) throw unreadable(file, next, `${bytes.length - next} unexpected bytes after the snapshot`);
  const payload = record.payload;
  if (payload.length < PREFIX_BYTES || !payload.subarray(0, SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC)) {
    throw unreadable(file, 16, 'bad snapshot magic');
  }
  const stored = readU64(payload, SNAPSHOT_MAGIC.length);
  if (stored !== index) throw unreadable(file, 16 + SNAPSHOT_MAGIC.length, `the file says index ${stored}, its name says ${index}`);
  return payload.subarray(PREFIX_BYTES);
}

function unreadable(file: string, offset: number, reason: string): StorageError {
  return new StorageError('unreadable-snapshot', file, offset, `${file}: unreadable snapshot at byte offset ${offset}: ${reason}. ${REPAIR_ADVICE}`);
}
