// Raft storage in memory, with the semantics of the 6.824 Persister: a save is durable as
// soon as it returns, and a crashed node's successor starts from a copy(), so a zombie
// instance can never change what the restarted node reads. The simulator's Raft tests use
// it; the full stack uses the write-ahead log instead.

import { Packr } from 'msgpackr';
import { index, nodeId, term } from '../stdx/types.js';
import type { Entry, HardState, Snapshot } from '../raft/types.js';
import type { PersistedState, RaftStorage, StorageUpdate } from './storage.js';

const packr = new Packr({ useRecords: false });

export class MemoryStorage implements RaftStorage {
  private hardState: HardState = { term: term(0), vote: nodeId(0), commit: index(0) };
  private entries: Entry[] = [];
  private entryBytes: number[] = [];
  private snapshot: Snapshot | undefined = undefined;
  private logBytes = 0;
  saveCount = 0;

  load(): Promise<PersistedState> {
    return Promise.resolve({ hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] });
  }

  save(update: StorageUpdate): Promise<void> {
    this.saveCount++;
    if (update.snapshot !== undefined) this.installSnapshot(update.snapshot);
    const first = update.entries[0];
    if (first !== undefined) {
      this.truncateFrom(first.index);
      for (const entry of update.entries) {
        const copy: Entry = { ...entry, data: new Uint8Array(entry.data) };
        const bytes = packr.pack(copy).length;
        this.entries.push(copy);
        this.entryBytes.push(bytes);
        this.logBytes += bytes;
      }
    }
    if (update.hardState !== undefined) this.hardState = update.hardState;
    return Promise.resolve();
  }

  /** Encoded bytes of hard state and log: what the lab's RaftStateSize() measures. */
  sizeBytes(): number {
    return packr.pack(this.hardState).length + this.logBytes;
  }

  snapshotBytes(): number {
    return this.snapshot?.data.length ?? 0;
  }

  /** An independent copy: the crashed instance keeps the old object. */
  copy(): MemoryStorage {
    const copy = new MemoryStorage();
    copy.hardState = this.hardState;
    copy.entries = [...this.entries];
    copy.entryBytes = [...this.entryBytes];
    copy.snapshot = this.snapshot;
    copy.logBytes = this.logBytes;
    return copy;
  }

  private firstIndex(): number {
    return (this.snapshot?.meta.index ?? 0) + 1;
  }

  private truncateFrom(at: number): void {
    const keep = Math.max(0, at - this.firstIndex());
    for (let i = keep; i < this.entries.length; i++) this.logBytes -= this.entryBytes[i]!;
    this.entries.length = Math.min(this.entries.length, keep);
    this.entryBytes.length = this.entries.length;
  }

  private installSnapshot(snapshot: Snapshot): void {
    const drop = Math.min(this.entries.length, snapshot.meta.index - this.firstIndex() + 1);
    const kept = this.entries[drop - 1];
    const keepsTail = drop > 0 && kept !== undefined && kept.term === snapshot.meta.term;
    this.snapshot = { meta: snapshot.meta, data: new Uint8Array(snapshot.data) };
    if (keepsTail) {
      for (let i = 0; i < drop; i++) this.logBytes -= this.entryBytes[i]!;
      this.entries = this.entries.slice(drop);
      this.entryBytes = this.entryBytes.slice(drop);
    } else {
      this.entries = [];
      this.entryBytes = [];
      this.logBytes = 0;
    }
  }
}
