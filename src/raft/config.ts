// Every limit and timing of the core, named (STYLE.md 7). Time is counted in ticks; the
// shell decides how long a tick is.

import type { NodeId } from '../stdx/types.js';

export interface RaftConfig {
  readonly id: NodeId;
  /**
   * The voting members of a new cluster (the bootstrap configuration). A node that
   * restarts from a snapshot takes its membership from the snapshot instead, and config
   * entries in the log change it as they apply.
   */
  readonly voters: readonly NodeId[];
  /** Non-voting members of a new cluster. */
  readonly learners?: readonly NodeId[];
  /** Ticks between heartbeats. */
  readonly heartbeatTicks: number;
  /** Base election timeout; each term draws a timeout in [electionTicks, 2 * electionTicks). */
  readonly electionTicks: number;
  /** Pre-vote (thesis §9.6): a partitioned node does not disturb the cluster when it returns. */
  readonly preVote: boolean;
  /** Leaders step down without a quorum of recent contact; followers keep a leader lease. */
  readonly checkQuorum: boolean;
  /** Append an empty entry of the new term on election (needed by ReadIndex, thesis §6.4). */
  readonly noopOnElection: boolean;
  /** Append messages in flight per follower in the replicate state. */
  readonly inflightMessagesMax: number;
  /** Bytes of entries per Append message (at least one entry is always sent). */
  readonly appendBytesMax: number;
  /** Bytes of committed entries handed to the shell per Ready. */
  readonly applyBytesMax: number;
  /** Bytes of proposed but uncommitted entries a leader accepts before refusing more. */
  readonly uncommittedBytesMax: number;
  /** Bytes of snapshot data per InstallSnapshot chunk. */
  readonly snapshotChunkBytes: number;
  /**
   * How linearizable reads are confirmed (thesis §6.4): 'safe' runs one heartbeat round
   * per batch of reads (ReadIndex); 'lease' answers from the leader lease without a round,
   * which requires checkQuorum and assumes ticks run at about the same rate on every node.
   */
  readonly readMode: 'safe' | 'lease';
  /**
   * Deliberately broken variants, for proving that the checkers bite (STYLE.md 18). Never
   * set outside tests.
   */
  readonly unsafe?: {
    /** Grant votes without the election restriction (Raft §5.4.1). */
    readonly grantVoteWithoutLogCheck?: boolean;
    /** Commit an entry of an earlier term by counting replicas (Raft §5.4.2, Figure 8). */
    readonly commitPreviousTermByCounting?: boolean;
    /** Answer reads from the leader's commit index without confirming leadership. */
    readonly readWithoutConfirmation?: boolean;
    /** Back a rejected follower up one entry per round trip, ignoring its conflict hint (thesis §5.3). */
    readonly backtrackOneEntry?: boolean;
    /** The runtime hands the first entry of every applied batch to the service twice. */
    readonly applyTwice?: boolean;
    /** The runtime persists every hard state with vote 0, so a restarted node can vote twice in a term. */
    readonly forgetVote?: boolean;
    /** A follower replaces conflicting entries but keeps the old entries after them (Figure 2, AppendEntries step 3). */
    readonly keepConflictingSuffix?: boolean;
    /** Elections and commitment count ⌊n/2⌋ as a majority instead of ⌊n/2⌋ + 1. */
    readonly smallQuorum?: boolean;
    /** With lease reads, the runtime ticks once per timer callback, so a paused leader wakes with its lease intact. */
    readonly noTickCatchUp?: boolean;
  };
}

export const defaultTiming = {
  heartbeatTicks: 1,
  electionTicks: 10,
  preVote: true,
  checkQuorum: true,
  noopOnElection: false,
  inflightMessagesMax: 64,
  appendBytesMax: 1 << 20,
  applyBytesMax: 4 << 20,
  uncommittedBytesMax: 64 << 20,
  snapshotChunkBytes: 1 << 20,
  readMode: 'safe',
} as const;

export function validateConfig(config: RaftConfig): string | undefined {
  if (config.heartbeatTicks < 1) return 'heartbeatTicks must be at least 1';
  if (config.electionTicks <= config.heartbeatTicks) return 'electionTicks must exceed heartbeatTicks';
  if (config.inflightMessagesMax < 1) return 'inflightMessagesMax must be at least 1';
  if (new Set(config.voters).size !== config.voters.length) return 'voters must be distinct';
  if (config.voters.some((id) => id <= 0)) return 'node ids must be positive';
  if ((config.learners ?? []).some((id) => config.voters.includes(id))) return 'a node cannot be both voter and learner';
  if (config.snapshotChunkBytes < 1) return 'snapshotChunkBytes must be at least 1';
  if (config.readMode === 'lease' && !config.checkQuorum) return 'lease reads require checkQuorum';
  if (config.readMode === 'lease' && config.electionTicks < 3) return 'lease reads need electionTicks >= 3';
  return undefined;
}
