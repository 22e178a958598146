// RaftStorage on the write-ahead log of storage/: Raft entries and hard state as WAL
// records (a compact hand-written binary layout, validated when read back), snapshots as
// snapshot files. Layout under `dir`: wal/ (segments) and snap/ (snapshot files).
//
// Installing a snapshot follows the Raft paper, Figure 13: if the log holds the snapshot's
// last entry with the same term, the entries after it are kept; otherwise the whole log is
// discarded (a truncation record in the same durable write). The snapshot file is made
// durable first, and load() applies the same rule, so a crash between the two steps
// leaves a consistent state.

import { assert } from '../stdx/assert.js';
import { index as toIndex, nodeId as toNodeId, term as toTerm } from '../stdx/types.js';
import type { Disk } from '../io/disk.js';
import type { Entry, EntryType, HardState, Snapshot } from '../raft/types.js';
import { Wal, type WalOptions, type WalWrite } from '../storage/wal.js';
import { SnapshotFiles, type SnapshotFileOptions } from '../storage/snapshot-file.js';
import { REPAIR_ADVICE, StorageError, type RecoveryEvent } from '../storage/errors.js';
import type { PersistedState, RaftStorage, StorageUpdate } from './storage.js';

export interface WalStorageOptions {
  readonly wal?: Partial<WalOptions>;
  readonly snapshots?: Partial<SnapshotFileOptions>;
}

const FORMAT_VERSION = 1;
const ENTRY_HEADER_BYTES = 1 + 1 + 8;
const HARD_STATE_BYTES = 1 + 3 * 8;
const entryTypeCodes: Record<EntryType, number> = { normal: 1, config: 2 };
const emptyHardState: HardState = { term: toTerm(0), vote: toNodeId(0), commit: toIndex(0) };

export class WalStorage implements RaftStorage {
  /** Repairs made by the last load() (torn tails truncated, ...): the caller logs them. */
  recoveryEvents: RecoveryEvent[] = [];
  private wal: Wal | undefined = undefined;
  private readonly snapshots: SnapshotFiles;
  private readonly terms = new TermIndex();
  private saving = false;

  constructor(
    private readonly disk: Disk,
    private readonly dir: string,
    private readonly options: WalStorageOptions = {},
  ) {
    this.snapshots = new SnapshotFiles(disk, `${dir}/snap`, options.snapshots);
  }

  async load(): Promise<PersistedState> {
    assert(this.wal === undefined, 'load() runs once per WalStorage');
    const events = await this.snapshots.init();
    const stored = await this.snapshots.loadLatest();
    const snapshot = stored === undefined ? undefined : decodeSnapshot(stored.data, stored.file);
    const { wal, recovered } = await Wal.open(this.disk, `${this.dir}/wal`, this.options.wal);
    this.wal = wal;
    this.recoveryEvents = [...events, ...recovered.events];
    const walFile = `${this.dir}/wal`;
    if (recovered.created && stored !== undefined) {
      // The term and vote lived in the log: starting without them could vote twice in a term.
      throw new StorageError('missing-segment', walFile, undefined, `${stored.file} exists but the log in ${walFile} is gone (with the term and vote it held). ${REPAIR_ADVICE}`);
    }
    let entries = recovered.entries.map((entry) => decodeEntry(entry.index, entry.data, walFile));
    if (snapshot !== undefined) entries = entriesAfterSnapshot(entries, snapshot);
    const snapshotIndex = snapshot?.meta.index ?? 0;
    const firstIndex = entries[0]?.index;
    if (firstIndex !== undefined && firstIndex !== snapshotIndex + 1) {
      throw new StorageError(
        'missing-segment',
        walFile,
        undefined,
        `the log in ${walFile} starts at index ${firstIndex}, but the snapshot ends at ${snapshotIndex}: segments are missing. ${REPAIR_ADVICE}`,
      );
    }
    const hardState = recovered.state === undefined ? emptyHardState : decodeHardState(recovered.state, walFile);
    const lastIndex = entries.at(-1)?.index ?? snapshotIndex;
    if (hardState.commit > lastIndex) {
      throw new StorageError(
        'missing-entries',
        walFile,
        undefined,
        `the hard state in ${walFile} says index ${hardState.commit} is committed, but the log ends at ${lastIndex}: acknowledged entries were lost. ${REPAIR_ADVICE}`,
      );
    }
    this.terms.reset(snapshot === undefined ? [] : [snapshot.meta], entries);
    return { hardState, snapshot, entries };
  }

  async save(update: StorageUpdate): Promise<void> {
    const wal = this.wal;
    assert(wal !== undefined, 'load() before save()');
    assert(!this.saving, 'save() calls never overlap');
    this.saving = true;
    try {
      const write = await this.prepare(wal, update);
      await wal.append(write);
      if (update.snapshot !== undefined) await this.compact(update.snapshot.meta.index);
    } finally {
      this.saving = false;
    }
  }

  async compact(index: number): Promise<void> {
    assert(this.wal !== undefined, 'load() before compact()');
    await this.wal.compact(index);
    this.terms.compact(index);
  }

  sizeBytes(): number {
    return this.wal?.sizeBytes() ?? 0;
  }

  /** fsyncs of the log so far (one per group-committed flush). */
  syncCount(): number {
    return this.wal?.stats().flushCount ?? 0;
  }

  async close(): Promise<void> {
    await this.wal?.close();
  }

  /** Writes the snapshot file (if any) and builds the WAL write for the rest. */
  private async prepare(_wal: Wal, update: StorageUpdate): Promise<WalWrite> {
    let truncateAfterIndex: number | undefined;
    if (update.snapshot !== undefined) {
      const meta = update.snapshot.meta;
      await this.snapshots.save(meta.index, encodeSnapshot(update.snapshot));
      if (this.terms.termAt(meta.index) !== meta.term) truncateAfterIndex = meta.index;
      this.terms.installSnapshot(meta.index, meta.term);
    }
    for (const entry of update.entries) this.terms.append(entry.index, entry.term);
    return {
      truncateAfterIndex,
      entries: update.entries.map((entry) => ({ index: entry.index, data: encodeEntry(entry) })),
      state: update.hardState === undefined ? undefined : encodeHardState(update.hardState),
    };
  }
}

/** Figure 13: keep what follows the snapshot only if the log holds its last entry. */
export function entriesAfterSnapshot(entries: readonly Entry[], snapshot: Snapshot): Entry[] {
  const { index, term } = snapshot.meta;
  const first = entries[0]?.index;
  // A log that starts after the snapshot is kept as is; load() then refuses a gap.
  if (first === undefined || first > index) return [...entries];
  const atSnapshot = entries[index - first];
  if (atSnapshot === undefined || atSnapshot.term !== term) return [];
  return entries.slice(index - first + 1);
}

/** Terms of the log's entries, so a snapshot can be checked against the log. */
class TermIndex {
  /** Index of terms[0]. Invariant: terms holds firstIndex .. firstIndex + terms.length - 1. */
  private firstIndex = 1;
  private terms: number[] = [];

  reset(snapshots: readonly { index: number; term: number }[], entries: readonly Entry[]): void {
    const snapshot = snapshots[0];
    this.firstIndex = snapshot === undefined ? 1 : snapshot.index;
    this.terms = snapshot === undefined ? [] : [snapshot.term];
    for (const entry of entries) this.append(entry.index, entry.term);
  }

  termAt(index: number): number | undefined {
    return index >= this.firstIndex ? this.terms[index - this.firstIndex] : undefined;
  }

  append(index: number, term: number): void {
    if (this.terms.length === 0) this.firstIndex = index;
    assert(index >= this.firstIndex && index <= this.firstIndex + this.terms.length, `entry ${index} follows the log`);
    this.terms.length = index - this.firstIndex;
    this.terms.push(term);
  }

  installSnapshot(index: number, term: number): void {
    if (this.termAt(index) === term) {
      this.compact(index - 1);
    } else {
      this.firstIndex = index;
      this.terms = [term];
    }
  }

  compact(index: number): void {
    const drop = Math.min(this.terms.length - 1, index - this.firstIndex + 1);
    if (drop <= 0) return;
    this.terms.splice(0, drop);
    this.firstIndex += drop;
  }
}

// ---- Encodings (validated on the way in: STYLE.md 6) ----

export function encodeEntry(entry: Entry): Buffer {
  const encoded = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + entry.data.length);
  encoded.writeUInt8(FORMAT_VERSION, 0);
  encoded.writeUInt8(entryTypeCodes[entry.type], 1);
  writeUint(encoded, entry.term, 2);
  encoded.set(entry.data, ENTRY_HEADER_BYTES);
  return encoded;
}

export function decodeEntry(index: number, data: Uint8Array, file: string): Entry {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
  const fail = (reason: string) => undecodable(file, `entry ${index}: ${reason}`);
  if (bytes.length < ENTRY_HEADER_BYTES) throw fail(`${bytes.length} bytes is too short`);
  if (bytes.readUInt8(0) !== FORMAT_VERSION) throw fail(`format version ${bytes.readUInt8(0)}`);
  const code = bytes.readUInt8(1);
  const type = (Object.keys(entryTypeCodes) as EntryType[]).find((name) => entryTypeCodes[name] === code);
  if (type === undefined) throw fail(`entry type code ${code}`);
  const term = readUint(bytes, 2);
  if (term === undefined) throw fail('term is not a safe integer');
  return { index: toIndex(index), term: toTerm(term), type, data: bytes.subarray(ENTRY_HEADER_BYTES) };
}

export function encodeHardState(state: HardState): Buffer {
  const encoded = Buffer.allocUnsafe(HARD_STATE_BYTES);
  encoded.writeUInt8(FORMAT_VERSION, 0);
  writeUint(encoded, state.term, 1);
  writeUint(encoded, state.vote, 9);
  writeUint(encoded, state.commit, 17);
  return encoded;
}

export function decodeHardState(data: Uint8Array, file: string): HardState {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
  if (bytes.length !== HARD_STATE_BYTES || bytes.readUInt8(0) !== FORMAT_VERSION) throw undecodable(file, 'hard state has a bad length or version');
  const [term, vote, commit] = [readUint(bytes, 1), readUint(bytes, 9), readUint(bytes, 17)];
  if (term === undefined || vote === undefined || commit === undefined) throw undecodable(file, 'hard state field is not a safe integer');
  return { term: toTerm(term), vote: toNodeId(vote), commit: toIndex(commit) };
}

export function encodeSnapshot(snapshot: Snapshot): Buffer {
  const { meta } = snapshot;
  const headerBytes = 1 + 8 + 8 + 4 + 8 * meta.voters.length + 4 + 8 * meta.learners.length;
  const encoded = Buffer.allocUnsafe(headerBytes + snapshot.data.length);
  encoded.writeUInt8(FORMAT_VERSION, 0);
  writeUint(encoded, meta.index, 1);
  writeUint(encoded, meta.term, 9);
  let at = writeIds(encoded, meta.voters, 17);
  at = writeIds(encoded, meta.learners, at);
  assert(at === headerBytes, 'snapshot header size');
  encoded.set(snapshot.data, at);
  return encoded;
}

export function decodeSnapshot(data: Uint8Array, file: string): Snapshot {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
  const fail = (reason: string) => new StorageError('unreadable-snapshot', file, undefined, `${file}: the snapshot cannot be decoded: ${reason}. ${REPAIR_ADVICE}`);
  if (bytes.length < 21 || bytes.readUInt8(0) !== FORMAT_VERSION) throw fail('bad length or version');
  const index = readUint(bytes, 1);
  const term = readUint(bytes, 9);
  if (index === undefined || term === undefined) throw fail('index or term is not a safe integer');
  const voters = readIds(bytes, 17);
  const learners = voters === undefined ? undefined : readIds(bytes, voters.next);
  if (voters === undefined || learners === undefined) throw fail('bad member list');
  return {
    meta: { index: toIndex(index), term: toTerm(term), voters: voters.ids.map(toNodeId), learners: learners.ids.map(toNodeId) },
    data: bytes.subarray(learners.next),
  };
}

function writeIds(target: Buffer, ids: readonly number[], offset: number): number {
  target.writeUInt32LE(ids.length, offset);
  let at = offset + 4;
  for (const id of ids) {
    writeUint(target, id, at);
    at += 8;
  }
  return at;
}

function readIds(source: Buffer, offset: number): { ids: number[]; next: number } | undefined {
  if (offset + 4 > source.length) return undefined;
  const count = source.readUInt32LE(offset);
  if (offset + 4 + 8 * count > source.length) return undefined;
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = readUint(source, offset + 4 + 8 * i);
    if (id === undefined) return undefined;
    ids.push(id);
  }
  return { ids, next: offset + 4 + 8 * count };
}

function writeUint(target: Buffer, value: number, offset: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `a safe non-negative integer: ${value}`);
  target.writeBigUInt64LE(BigInt(value), offset);
}

function readUint(source: Buffer, offset: number): number | undefined {
  const value = source.readBigUInt64LE(offset);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

function undecodable(file: string, reason: string): StorageError {
  return new StorageError(
    'corrupt-record',
    file,
    undefined,
    `the log in ${file} holds a record that passes its checksum but cannot be decoded (${reason}); it was written by another version or a bug. ${REPAIR_ADVICE}`,
  );
}
