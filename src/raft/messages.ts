// Messages between Raft peers. One-way: a response is a message of its own, matched by
// term and index, never by a call id, so the transport may drop, duplicate and reorder.

import type { Term, Index, NodeId } from '../stdx/types.js';
import type { Entry, SnapshotMeta } from './types.js';

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

/** One chunk of an InstallSnapshot transfer (Raft Figure 13, with offsets). */
export interface SnapshotChunk extends Header {
  readonly type: 'Snap';
  readonly meta: SnapshotMeta;
  /** Byte offset of `data` within the snapshot. */
  readonly offset: number;
  readonly data: Uint8Array;
  /** True on the last chunk. */
  readonly done: boolean;
}

/** Acknowledges snapshot chunks: the follower holds bytes [0, offset) of snapshot `index`. */
export interface SnapshotResponse extends Header {
  readonly type: 'SnapResp';
  readonly index: Index;
  readonly offset: number;
}

/** Asks the transfer target to campaign at once (thesis §3.10). */
export interface TimeoutNow extends Header {
  readonly type: 'TimeoutNow';
}

/** A follower forwards a linearizable read to the leader (thesis §6.4). */
export interface ReadIndexRequest extends Header {
  readonly type: 'ReadIndex';
  readonly context: number;
}

/** The leader's answer: reads are linearizable once the follower has applied `index`. */
export interface ReadIndexResponse extends Header {
  readonly type: 'ReadIndexResp';
  readonly context: number;
  readonly index: Index;
}

export type Message = VoteRequest | VoteResponse | Append | AppendResponse | Heartbeat | HeartbeatResponse | SnapshotChunk | SnapshotResponse | TimeoutNow | ReadIndexRequest | ReadIndexResponse;
export type MessageType = Message['type'];

/** Messages that start an exchange (the "RPC" of labrpc's counters). */
export function isRequest(message: Message): boolean {
  switch (message.type) {
    case 'Vote':
    case 'PreVote':
    case 'App':
    case 'Heartbeat':
    case 'Snap':
    case 'TimeoutNow':
    case 'ReadIndex':
      return true;
    case 'VoteResp':
    case 'PreVoteResp':
    case 'AppResp':
    case 'HeartbeatResp':
    case 'SnapResp':
    case 'ReadIndexResp':
      return false;
  }
}
