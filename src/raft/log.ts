// The Raft log in memory: the entries after the last snapshot, which of them are durable,
// and the commit and apply positions.
//
//   snapshotIndex   applied        committed      stableIndex     lastIndex
//        |------------|--------------|---------------|---------------|
//        compacted     applied to the  committed, not  durable, not    not yet
//                      service         yet applied     yet committed   durable
//
// (committed may also pass stableIndex on a follower: a quorum elsewhere holds them.)
// Invariants: snapshotIndex <= applied <= committed <= lastIndex;
//             snapshotIndex <= stableIndex <= lastIndex;
//             entries[i].index === snapshotIndex + 1 + i.

import { assert } from '../stdx/assert.js';
import { type Index, type Term, index, term } from '../stdx/types.js';
import type { Entry } from './types.js';

export class RaftLog {
  private entries: Entry[];
  snapshotIndex: Index;
  snapshotTerm: Term;
  committed: Index;
  applied: Index;
  stableIndex: Index;
  /** Planted bug, tests only (RaftConfig.unsafe.keepConflictingSuffix). */
  keepConflictingSuffix = false;

  constructor(snapshotIndex: Index, snapshotTerm: Term, entries: readonly Entry[], committed: Index) {
    this.snapshotIndex = snapshotIndex;
    this.snapshotTerm = snapshotTerm;
    this.entries = [...entries];
    entries.forEach((entry, i) => {
      assert(entry.index === snapshotIndex + 1 + i, 'persisted entries are contiguous');
    });
    this.stableIndex = this.lastIndex();
    this.committed = index(Math.max(snapshotIndex, Math.min(committed, this.lastIndex())));
    this.applied = snapshotIndex;
  }

  firstIndex(): Index {
    return index(this.snapshotIndex + 1);
  }

  lastIndex(): Index {
    return index(this.snapshotIndex + this.entries.length);
  }

  lastTerm(): Term {
    return this.term(this.lastIndex())!;
  }

  /** The term of the entry at `i`, or undefined if it is compacted away or beyond the end. */
  term(i: number): Term | undefined {
    if (i === this.snapshotIndex) return this.snapshotTerm;
    if (i < this.snapshotIndex || i > this.lastIndex()) return undefined;
    return this.entries[i - this.snapshotIndex - 1]!.term;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  entry(i: number): Entry {
    assert(i > this.snapshotIndex && i <= this.lastIndex(), `entry ${i} is not in the log`);
    return this.entries[i - this.snapshotIndex - 1]!;
  }

  /** Entries [low, high], cut after `bytesMax` bytes of data (at least one entry). */
  slice(low: number, high: number, bytesMax: number): Entry[] {
    assert(low > this.snapshotIndex, 'slice starts inside the snapshot');
    assert(high <= this.lastIndex(), 'slice ends beyond the log');
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = low; i <= high; i++) {
      const entry = this.entry(i);
      bytes += entry.data.length;
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(entry);
    }
    return out;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up-to-date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Appends entries that follow the last one (the leader's own proposals). */
  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      assert(entry.index === this.lastIndex() + 1, 'appended entries follow the log');
      this.entries.push(entry);
    }
  }

  /**
   * A follower's append (Raft Figure 2, AppendEntries steps 2–4): if the entry at prevIndex
   * has prevTerm, keep the matching prefix of `entries`, truncate at the first conflict and
   * append the rest. Returns the last index now known to match the leader, or undefined.
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: readonly Entry[]): Index | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = index(prevIndex + entries.length);
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k]!;
      if (entry.index <= this.snapshotIndex) continue;
      if (this.matchTerm(entry.index, entry.term)) continue;
      assert(entry.index > this.committed, `conflict at committed index ${entry.index}`);
      // Planted bug (tests only): the old entries after the new ones survive the conflict.
      const kept = this.keepConflictingSuffix ? this.entries.filter((e) => e.index > lastNew) : [];
      this.truncateFrom(entry.index);
      this.append(entries.slice(k));
      for (const old of kept) this.append([old]);
      break;
    }
    return lastNew;
  }

  /**
   * The fast-backtracking hint (thesis §5.3): the largest index <= `i` whose term is <= `t`.
   * Bounded by the log length.
   */
  findConflictByTerm(i: number, t: number): [Index, Term] {
    let at = Math.min(i, this.lastIndex());
    for (; at > this.snapshotIndex; at--) {
      if (this.term(at)! <= t) break;
    }
    return [index(at), this.term(at) ?? term(0)];
  }

  commitTo(i: number): boolean {
    if (i <= this.committed) return false;
    assert(i <= this.lastIndex(), `commit ${i} beyond the last index ${this.lastIndex()}`);
    this.committed = index(i);
    return true;
  }

  /** Entries not yet durable. */
  unstableEntries(): Entry[] {
    return this.entries.slice(this.stableIndex - this.snapshotIndex);
  }

  /** Records that entries through `i` (with term `t` at `i`) are durable. */
  stableTo(i: number, t: number): void {
    // A conflicting append may have replaced the entry while the write was in flight;
    // then the replacement is not durable yet and stays unstable.
    if (this.matchTerm(i, t) && i > this.stableIndex) this.stableIndex = index(i);
  }

  /** Committed entries after `after` (default: applied), up to `bytesMax` bytes (at least one). */
  nextCommittedEntries(bytesMax: number, after: number = this.applied): Entry[] {
    if (this.committed <= after) return [];
    return this.slice(after + 1, this.committed, bytesMax);
  }

  /** Discards the entries up to `i`, which a durable snapshot now covers. */
  compact(i: number): void {
    if (i <= this.snapshotIndex) return;
    assert(i <= this.applied, `compact ${i} beyond applied ${this.applied}`);
    const t = this.term(i);
    assert(t !== undefined, `compact ${i}: no such entry`);
    this.entries = this.entries.slice(i - this.snapshotIndex);
    this.snapshotIndex = index(i);
    this.snapshotTerm = t;
  }

  /**
   * Installs a snapshot received from the leader (Raft Figure 13, steps 6–7): if we hold
   * its last entry with the same term, the entries after it stay; otherwise the log is
   * discarded. Either way everything up to `i` is committed.
   */
  restore(i: number, t: number): void {
    assert(i > this.committed, 'a snapshot older than the commit index is never installed');
    if (this.matchTerm(i, t)) {
      this.entries = this.entries.slice(i - this.snapshotIndex);
    } else {
      this.entries = [];
    }
    this.snapshotIndex = index(i);
    this.snapshotTerm = term(t);
    this.stableIndex = index(Math.max(i, Math.min(this.stableIndex, this.lastIndex())));
    this.committed = index(i);
  }

  appliedTo(i: number): void {
    assert(i <= this.committed, `apply ${i} beyond commit ${this.committed}`);
    assert(i >= this.applied, 'applied never moves backwards');
    this.applied = index(i);
  }

  /** The service restored a snapshot at `i`: everything up to it is applied. */
  appliedSnapshot(i: number): void {
    assert(i <= this.committed, `snapshot ${i} beyond commit ${this.committed}`);
    if (i > this.applied) this.applied = index(i);
  }

  private truncateFrom(i: number): void {
    this.entries.length = i - this.snapshotIndex - 1;
    if (this.stableIndex >= i) this.stableIndex = index(i - 1);
  }
}
