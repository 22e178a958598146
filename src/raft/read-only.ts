// Linearizable reads without writing to the log (thesis §6.4). ReadIndex: the leader
// records its commit index, confirms with one round of heartbeats that it still leads,
// and then the read may be served once the state machine has applied that index.
//
// Each heartbeat round carries a sequence number; a follower echoes it. A request
// registered before round s is confirmed once a quorum has answered a round >= s. The
// same acknowledgements give the leader lease: a quorum answered round s sent at tick t,
// and each of those followers refuses to vote until it has gone an election timeout
// without hearing from us, so no other leader can exist before t + electionTicks
// (assuming ticks run at the same rate everywhere: the lease's clock assumption).

import type { Index, NodeId } from '../stdx/types.js';
import { committedIndex } from './quorum.js';

export interface ReadRequest {
  /** Who asked: the leader itself, or a follower that forwarded the read. */
  readonly from: NodeId;
  readonly context: number;
  readonly index: Index;
  /** The first heartbeat round that can confirm it. */
  readonly round: number;
}

export class ReadOnly {
  /** Rounds sent so far; the next broadcast is round sentRound + 1. */
  sentRound = 0;
  private pending: ReadRequest[] = [];
  private readonly acked = new Map<NodeId, number>();
  /** Tick at which each unconfirmed round was sent, oldest first. */
  private roundTicks: { round: number; tick: number }[] = [];
  private leaseStartTick = -Infinity;

  constructor(private readonly self: NodeId) {}

  /** Queues a read that the next round will confirm. */
  add(from: NodeId, context: number, readIndex: Index): void {
    this.pending.push({ from, context, index: readIndex, round: this.sentRound + 1 });
  }

  hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Records that round `round` went out at `tick`; returns the round number. */
  startRound(tick: number): number {
    this.sentRound++;
    this.roundTicks.push({ round: this.sentRound, tick });
    return this.sentRound;
  }

  /** A follower answered round `round`; returns the reads now confirmed, oldest first. */
  ack(from: NodeId, round: number, voters: readonly NodeId[]): ReadRequest[] {
    if (round > (this.acked.get(from) ?? 0)) this.acked.set(from, round);
    const confirmed = committedIndex(voters, (id) => (id === this.self ? this.sentRound : (this.acked.get(id) ?? 0)));
    while (this.roundTicks.length > 0 && this.roundTicks[0]!.round <= confirmed) {
      const head = this.roundTicks.shift()!;
      if (head.round === confirmed) this.leaseStartTick = head.tick;
    }
    let released = 0;
    while (released < this.pending.length && this.pending[released]!.round <= confirmed) released++;
    return this.pending.splice(0, released);
  }

  /** Whether the lease holds at `tick` for a lease of `leaseTicks`. */
  leaseValid(tick: number, leaseTicks: number): boolean {
    return tick < this.leaseStartTick + leaseTicks;
  }
}
