// The leader's view of one follower (etcd's Progress): how much of the log it holds and
// how the leader is sending to it.
//
//   probe      one Append at a time until the follower's position is known; paused
//              after each send until a response or a heartbeat response arrives
//   replicate  pipelined: Appends go out optimistically, at most inflightMessagesMax
//              unacknowledged at a time
//   snapshot   the entries it needs are compacted away: a snapshot goes out in chunks,
//              one unacknowledged chunk at a time
//
// Invariant: match < next.

import { assert } from '../stdx/assert.js';
import { type Index, index } from '../stdx/types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match: Index = index(0);
  next: Index;
  state: ProgressState = 'probe';
  /** In probe: an Append was sent and no answer has come back yet. */
  probeSent = false;
  /** The highest commit index sent to this follower (in an Append or a heartbeat). */
  commitSent: Index = index(0);
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** In snapshot: the index of the snapshot being sent and the bytes acknowledged. */
  snapshotIndex: Index = index(0);
  snapshotOffset = 0;
  /** In snapshot: a chunk was sent and not yet acknowledged. */
  chunkSent = false;
  /** Last index carried by each unacknowledged Append in replicate, oldest first. */
  private inflight: number[] = [];

  constructor(
    next: Index,
    private readonly inflightMax: number,
  ) {
    this.next = next;
  }

  becomeProbe(): void {
    // Restart from the last known match; a fresh probe costs one round trip at most.
    this.state = 'probe';
    this.next = index(this.match + 1);
    this.probeSent = false;
    this.inflight = [];
  }

  becomeSnapshot(snapshotIndex: Index): void {
    this.state = 'snapshot';
    this.snapshotIndex = snapshotIndex;
    this.snapshotOffset = 0;
    this.chunkSent = false;
    this.inflight = [];
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = index(this.match + 1);
    this.inflight = [];
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflight.length >= this.inflightMax;
      case 'snapshot':
        return this.chunkSent;
    }
  }

  /**
   * A heartbeat answer proves the follower is reachable. If the pipeline is full, its
   * Appends may all have been lost; freeing one slot lets the next Append through, and the
   * follower's rejection of it (a gap) starts a probe (etcd does the same).
   */
  onHeartbeatResponse(): void {
    this.probeSent = false;
    this.chunkSent = false;
    if (this.state === 'replicate' && this.inflight.length >= this.inflightMax) this.inflight.shift();
  }

  /** Records an Append carrying entries up to `lastIndex` (or none, if equal to next-1). */
  sentAppend(lastIndex: number, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.next = index(lastIndex + 1);
        this.inflight.push(lastIndex);
      }
    } else {
      this.probeSent = true;
    }
  }

  /** An acknowledgement up to `n`. Returns true if it told us something new. */
  maybeUpdate(n: number): boolean {
    const updated = n > this.match;
    if (updated) {
      this.match = index(n);
      this.probeSent = false;
    }
    if (n + 1 > this.next) this.next = index(n + 1);
    while (this.inflight.length > 0 && this.inflight[0]! <= n) this.inflight.shift();
    return updated;
  }

  /**
   * A rejection of the Append whose prevIndex was `rejected`; `hintIndex` is the
   * follower's best guess of the last index that might match. Returns false if the
   * rejection is stale (it answers an older Append).
   */
  maybeDecrease(rejected: number, hintIndex: number): boolean {
    if (this.state !== 'probe') {
      if (rejected <= this.match) return false;
      this.becomeProbe();
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = index(Math.max(Math.min(rejected, hintIndex + 1), this.match + 1));
    this.probeSent = false;
    assert(this.next > this.match, 'next stays above match');
    return true;
  }

  describe(): string {
    const snapshot = this.state === 'snapshot' ? ` snapshot=${this.snapshotIndex}@${this.snapshotOffset}` : '';
    return `${this.state} match=${this.match} next=${this.next}${snapshot}${this.isPaused() ? ' paused' : ''}`;
  }
}
