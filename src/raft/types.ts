// The values the Raft core exchanges with its shell: log entries, hard state, snapshots.

import type { Term, Index, NodeId } from '../stdx/types.js';

export type EntryType = 'normal' | 'config';

export interface Entry {
  readonly term: Term;
  readonly index: Index;
  readonly type: EntryType;
  /** The service's command (or, for 'config', the encoded configuration). */
  readonly data: Uint8Array;
}

/** What must be durable before the node answers anything that depends on it. */
export interface HardState {
  readonly term: Term;
  /** The candidate voted for in `term`, or 0 for none. */
  readonly vote: NodeId;
  readonly commit: Index;
}

export interface SnapshotMeta {
  /** The last log index the snapshot covers. */
  readonly index: Index;
  readonly term: Term;
  /** Voters and learners at `index`. */
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}
