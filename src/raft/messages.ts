// Messages between Raft peers. One-way: a response is a message of its own, matched by
// term and index, never by a call id, so the transport may drop, duplicate and reorder.

import type { Term, Index, NodeId } from '../stdx/types.js';
import type { Entry } from './types.js';

interface Header {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
}

/** Vote and PreVote requests. A PreVote carries the term the sender would campaign in. */
export interface VoteRequest extends Header {
  readonly type: 'Vote' | 'PreVote';
  readonly lastIndex: Index;
  readonly lastTerm: Term;
  /** Set when a leadership transfer asked for this election; it ignores leader leases. */
  readonly transfer: boolean;
}

export interface VoteResponse extends Header {
  readonly type: 'VoteResp' | 'PreVoteResp';
  readonly reject: boolean;
}

export interface Append extends Header {
  readonly type: 'App';
  readonly prevIndex: Index;
  readonly prevTerm: Term;
  readonly entries: readonly Entry[];
  readonly commit: Index;
}

/**
 * Accepts (index = last index now matching the leader) or rejects an Append. A rejection
 * carries a hint for fast backtracking (thesis §5.3 / etcd's findConflictByTerm): the
 * largest index <= the rejected prevIndex whose term is <= the leader's prevTerm.
 */
export interface AppendResponse extends Header {
  readonly type: 'AppResp';
  readonly index: Index;
  readonly reject: boolean;
  readonly hintIndex: Index;
  readonly hintTerm: Term;
}

export interface Heartbeat extends Header {
  readonly type: 'Heartbeat';
  /** min(follower's match, leader's commit): never commits past what the follower holds. */
  readonly commit: Index;
  /** Non-zero when the heartbeat confirms leadership for a ReadIndex request. */
  readonly context: number;
}

export interface HeartbeatResponse extends Header {
  readonly type: 'HeartbeatResp';
  readonly context: number;
}

export type Message = VoteRequest | VoteResponse | Append | AppendResponse | Heartbeat | HeartbeatResponse;
export type MessageType = Message['type'];

/** Messages that start an exchange (the "RPC" of labrpc's counters). */
export function isRequest(message: Message): boolean {
  switch (message.type) {
    case 'Vote':
    case 'PreVote':
    case 'App':
    case 'Heartbeat':
      return true;
    case 'VoteResp':
    case 'PreVoteResp':
    case 'AppResp':
    case 'HeartbeatResp':
      return false;
  }
}
