// RaftStorage for one of many Raft groups in a process, on the log they all share
// (storage/shared-wal.ts): entries and hard state are records tagged with the group, so
// the writes of every group in a turn share one fsync; snapshots are files of the group's
// own (`<dir>/snap`). Records are encoded as in wal-storage.ts.
//
// The group keeps its live log in memory (the same Entry objects the Raft core holds, so
// nothing is copied) because it must be able to write it out again as a base: after a
// snapshot (the base records what the snapshot left), and when the shared log asks
// (rewrite(): the group pins the oldest segment). Installing a snapshot follows Figure 13,
// as in wal-storage.ts: entries after the snapshot survive only if the log holds the
// snapshot's last entry with its term.

import { assert } from '../stdx/assert.js';
import { index as toIndex, nodeId as toNodeId, term as toTerm } from '../stdx/types.js';
import type { Disk } from '../io/disk.js';
import type { Entry, HardState, SnapshotMeta } from '../raft/types.js';
import type { GroupRecovered, SharedWal } from '../storage/shared-wal.js';
import { SnapshotFiles } from '../storage/snapshot-file.js';
import { REPAIR_ADVICE, StorageError, type RecoveryEvent } from '../storage/errors.js';
import type { PersistedState, RaftStorage, StorageUpdate } from './storage.js';
import { decodeEntry, decodeHardState, decodeSnapshot, encodeEntry, encodeHardState, encodeSnapshot, entriesAfterSnapshot } from './wal-storage.js';

const emptyHardState: HardState = { term: toTerm(0), vote: toNodeId(0), commit: toIndex(0) };
/** What an entry costs on disk besides its data: record header, group, index, entry header, padding (about). */
const ENTRY_OVERHEAD_BYTES = 48;
/** The hard state's record, about. */
const HARD_STATE_RECORD_BYTES = 64;

export class SharedWalStorage implements RaftStorage {
  private recovered: PersistedState | undefined;
  /** Live entries, contiguous, right after the snapshot (or from index 1). */
  private entries: Entry[];
  private snapshot: Pick<SnapshotMeta, 'index' | 'term'> | undefined;
  private hardState: HardState;
  /** Bytes `entries` take on disk, about (what the replica compares with its snapshot threshold). */
  private entryBytes: number;

  private constructor(
    private readonly wal: SharedWal,
    private readonly group: number,
    private readonly snapshots: SnapshotFiles,
    recovered: PersistedState,
  ) {
    this.recovered = recovered;
    this.entries = [...recovered.entries];
    this.snapshot = recovered.snapshot?.meta;
    this.hardState = recovered.hardState;
    this.entryBytes = this.entries.reduce((sum, entry) => sum + entry.data.length + ENTRY_OVERHEAD_BYTES, 0);
    wal.register(group, () => this.rewrite());
  }

  /**
   * The group's state from what the shared log recovered for it and its latest snapshot
   * file in `snapDir`. Throws StorageError if the two do not fit together.
   */
  static async open(disk: Disk, wal: SharedWal, group: number, recovered: GroupRecovered | undefined, snapDir: string): Promise<{ storage: SharedWalStorage; events: RecoveryEvent[] }> {
    const snapshots = new SnapshotFiles(disk, snapDir);
    const events = await snapshots.init();
    const stored = await snapshots.loadLatest();
    const snapshot = stored === undefined ? undefined : decodeSnapshot(stored.data, stored.file);
    const where = `the shared log's records of group ${group}`;
    if (recovered === undefined && stored !== undefined) {
      // The term and vote lived in the log: starting without them could vote twice in a term.
      throw new StorageError('missing-segment', snapDir, undefined, `${stored.file} exists but ${where} are gone (with the term and vote they held). ${REPAIR_ADVICE}`);
    }
    let entries = (recovered?.entries ?? []).map((entry) => decodeEntry(entry.index, entry.data, where));
    if (snapshot !== undefined) entries = entriesAfterSnapshot(entries, snapshot);
    const snapshotIndex = snapshot?.meta.index ?? 0;
    const firstIndex = entries[0]?.index;
    if (firstIndex !== undefined && firstIndex !== snapshotIndex + 1) {
      throw new StorageError('missing-segment', snapDir, undefined, `${where} start at index ${firstIndex}, but the snapshot ends at ${snapshotIndex}: records are missing. ${REPAIR_ADVICE}`);
    }
    const hardState = recovered?.state === undefined ? emptyHardState : decodeHardState(recovered.state, where);
    const lastIndex = entries.at(-1)?.index ?? snapshotIndex;
    if (hardState.commit > lastIndex) {
      throw new StorageError(
        'missing-entries',
        snapDir,
        undefined,
        `the hard state in ${where} says index ${hardState.commit} is committed, but the log ends at ${lastIndex}: acknowledged entries were lost. ${REPAIR_ADVICE}`,
      );
    }
    return { storage: new SharedWalStorage(wal, group, snapshots, { hardState, snapshot, entries }), events };
  }

  /** The recovered state, handed over once (to RaftNode.open). */
  load(): Promise<PersistedState> {
    const state = this.recovered;
    assert(state !== undefined, 'load() runs once');
    this.recovered = undefined;
    return Promise.resolve(state);
  }

  async save(update: StorageUpdate): Promise<void> {
    if (update.snapshot === undefined) {
      if (update.hardState !== undefined) this.hardState = update.hardState;
      this.appendInMemory(update.entries);
      await this.wal.append(this.group, {
        entries: update.entries.map((entry) => ({ index: entry.index, data: encodeEntry(entry) })),
        ...(update.hardState === undefined ? {} : { state: encodeHardState(update.hardState) }),
      });
      return;
    }
    const meta = update.snapshot.meta;
    // The in-memory log changes only after this wait: a rewrite() meanwhile writes the old one.
    await this.snapshots.save(meta.index, encodeSnapshot(update.snapshot));
    if (update.hardState !== undefined) this.hardState = update.hardState;
    // Figure 13: keep what follows the snapshot only if the log holds its last entry.
    const kept = this.termAt(meta.index) === meta.term ? this.entries.filter((entry) => entry.index > meta.index) : [];
    this.snapshot = { index: meta.index, term: meta.term };
    this.entries = kept;
    this.entryBytes = kept.reduce((sum, entry) => sum + entry.data.length + ENTRY_OVERHEAD_BYTES, 0);
    this.appendInMemory(update.entries);
    await this.writeBase();
  }

  /** Bytes of the group's live log and hard state on disk, about (its share of the shared log). */
  sizeBytes(): number {
    return this.entryBytes + HARD_STATE_RECORD_BYTES;
  }

  /** The shared log's request: write the live log again as a base, so older segments can go. */
  private rewrite(): void {
    // A failure fails the shared log itself, which the next save() reports.
    this.writeBase().catch(() => {});
  }

  private writeBase(): Promise<void> {
    return this.wal.append(this.group, {
      baseIndex: this.snapshot?.index ?? 0,
      entries: this.entries.map((entry) => ({ index: entry.index, data: encodeEntry(entry) })),
      state: encodeHardState(this.hardState),
    });
  }

  private appendInMemory(entries: readonly Entry[]): void {
    const first = entries[0]?.index;
    if (first === undefined) return;
    const start = this.entries[0]?.index ?? first;
    const keep = Math.max(0, Math.min(this.entries.length, first - start));
    for (const dropped of this.entries.splice(keep)) this.entryBytes -= dropped.data.length + ENTRY_OVERHEAD_BYTES;
    const expected = this.entries.length === 0 ? (this.snapshot?.index ?? 0) + 1 : this.entries.at(-1)!.index + 1;
    assert(first === expected, `entry ${first} follows the log (expected ${expected})`);
    for (const entry of entries) {
      this.entries.push(entry);
      this.entryBytes += entry.data.length + ENTRY_OVERHEAD_BYTES;
    }
  }

  private termAt(index: number): number | undefined {
    if (this.snapshot !== undefined && index === this.snapshot.index) return this.snapshot.term;
    const first = this.entries[0]?.index;
    return first === undefined || index < first ? undefined : this.entries[index - first]?.term;
  }
}
