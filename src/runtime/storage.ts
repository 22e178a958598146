// What the runtime needs from durable storage. Implemented in memory (the lab's
// Persister model, for the simulator's Raft tests) and on the write-ahead log of
// storage/ over io.Disk (for real servers and the full-stack simulator).

import type { Entry, HardState, Snapshot } from '../raft/types.js';

export interface PersistedState {
  readonly hardState: HardState;
  /** The latest snapshot, if any; `entries` continue right after it. */
  readonly snapshot: Snapshot | undefined;
  /** Entries after the snapshot (or from index 1), in order, without gaps. */
  readonly entries: readonly Entry[];
}

export interface StorageUpdate {
  /** Entries to write; any persisted entry at an index >= entries[0].index is replaced. */
  readonly entries: readonly Entry[];
  readonly hardState: HardState | undefined;
  /** A snapshot to install; entries up to its index may then be discarded. */
  readonly snapshot: Snapshot | undefined;
}

export interface RaftStorage {
  load(): Promise<PersistedState>;
  /** Resolves once everything in `update` is durable. Calls never overlap. */
  save(update: StorageUpdate): Promise<void>;
  /** Discards entries up to and including `index` (after a snapshot covers them). */
  compact?(index: number): Promise<void>;
  /** Bytes currently persisted for the Raft state (log + hard state), for the lab's limits. */
  sizeBytes(): number;
}
