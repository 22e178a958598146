// The vocabulary of CRAQ (Terrace & Freedman, USENIX ATC 2009): the chain configuration,
// the writes that travel down a chain, the messages between chain nodes, and what clients
// ask and are told.
//
// Every write gets two numbers at the head: `seq`, its position in the chain's one stream
// of writes (contiguous, so a node can tell a gap and a duplicate apart, and a predecessor
// knows exactly what to re-send after a repair), and `version`, the object's own version
// (contiguous per key: 1, 2, 3, ...). Version numbers are what reads and version queries
// speak about, as in the paper; sequence numbers are what propagation and
// acknowledgements speak about, as in chain replication's Sent list.

import type { NodeId } from '../stdx/types.js';

/**
 * A chain as given from outside (the coordinator): its members in chain order, head
 * first, tail last, and an epoch that grows with every change. Messages carry the epoch;
 * a node drops a message from another epoch, so a node removed from the chain (a zombie)
 * can never be taken as head or tail by anyone who has moved on.
 */
export interface ChainConfig {
  readonly epoch: number;
  readonly members: readonly NodeId[];
}

/** One write as it travels down the chain. Invariant: seq >= 1, version >= 1. */
export interface ChainWrite {
  readonly seq: number;
  readonly key: string;
  readonly version: number;
  readonly value: string;
}

/** A committed object in a state transfer. */
export interface ObjectVersion {
  readonly key: string;
  readonly version: number;
  readonly value: string;
}

/** The committed state at `seq`: every object's clean version. */
export interface ChainSnapshot {
  readonly seq: number;
  readonly objects: readonly ObjectVersion[];
}

/** Messages between chain nodes. All are one-way; losses are healed by the next tick. */
export type PeerMessage =
  /** Predecessor → successor: writes in seq order, and how far the sender's stream goes. */
  | { readonly type: 'propagate'; readonly epoch: number; readonly from: NodeId; readonly writes: readonly ChainWrite[]; readonly highestSeq: number }
  /** Predecessor → successor, when the successor is behind the sender's log (a join). */
  | { readonly type: 'snapshot'; readonly epoch: number; readonly from: NodeId; readonly snapshot: ChainSnapshot; readonly highestSeq: number }
  /** Successor → predecessor: what it holds and what it knows to be committed (cumulative). */
  | { readonly type: 'ack'; readonly epoch: number; readonly from: NodeId; readonly receivedSeq: number; readonly committedSeq: number }
  /** Any node → tail: which version of `key` is committed? */
  | { readonly type: 'query'; readonly epoch: number; readonly from: NodeId; readonly queryId: number; readonly key: string }
  /** Tail → asker. `version` 0: the key has no committed version. */
  | { readonly type: 'query-reply'; readonly epoch: number; readonly from: NodeId; readonly queryId: number; readonly key: string; readonly version: number };

export type PeerMessageType = PeerMessage['type'];

/**
 * How a read may be answered (the paper's §2.4).
 * - strong: linearizable. A clean object is answered at once; a dirty one after asking the
 *   tail which version is committed.
 * - eventual: the newest version this node holds, committed or not (monotonic only for a
 *   client that keeps reading from the same node).
 * - bounded: the newest version this node holds that is at most `versionsMax` versions
 *   newer than the newest version it knows to be committed (0: the local committed one).
 */
export type ReadMode = { readonly kind: 'strong' } | { readonly kind: 'eventual' } | { readonly kind: 'bounded'; readonly versionsMax: number };

export type ClientRequest =
  | { readonly type: 'read'; readonly key: string; readonly mode: ReadMode }
  | { readonly type: 'write'; readonly key: string; readonly value: string }
  /** Which chain this node is in, as it sees it (for clients and tests). */
  | { readonly type: 'status' };

/**
 * Why a request was refused. `not-head`, `not-serving` and `overloaded` are certain: the
 * request had no effect, so a client may try elsewhere. `unknown`: a write may or may not
 * take effect (its head left the chain before the write committed).
 */
export type ClientErrorCode = 'not-head' | 'not-serving' | 'overloaded' | 'unknown' | 'bad-request';

export type ClientReply =
  /** `clean`: answered from this node's committed version alone (false: a dirty read, which asked the tail, or a weak read of an uncommitted version). */
  | { readonly type: 'read'; readonly key: string; readonly version: number; readonly value: string | null; readonly clean: boolean }
  | { readonly type: 'write'; readonly key: string; readonly version: number; readonly seq: number }
  | { readonly type: 'status'; readonly id: NodeId; readonly epoch: number; readonly members: readonly NodeId[]; readonly serving: boolean; readonly highestSeq: number; readonly committedSeq: number }
  | { readonly type: 'error'; readonly code: ClientErrorCode; readonly message: string };
