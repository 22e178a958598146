// Quorum arithmetic in one place (STYLE.md 5): commit, elections, check-quorum and
// ReadIndex all count through these functions.

import type { NodeId } from '../stdx/types.js';

export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of `voters` has reached, given each voter's match
 * index (missing voters count as 0).
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number, quorum = majority(voters.length)): number {
  if (voters.length === 0) return 0;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[quorum - 1]!;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** The outcome of an election given the votes received so far (true = granted). */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>, needed = majority(voters.length)): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  if (granted >= needed) return 'won';
  if (rejected > voters.length - needed) return 'lost';
  return 'pending';
}

/** True if a majority of `voters` satisfy `active`. */
export function quorumActive(voters: readonly NodeId[], active: (id: NodeId) => boolean): boolean {
  let count = 0;
  for (const id of voters) if (active(id)) count++;
  return count >= majority(voters.length);
}
