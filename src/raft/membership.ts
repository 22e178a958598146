// Cluster membership: voters, which elect and count toward every quorum, and learners,
// which receive the log but do not vote (thesis §4.2.1, etcd's learners).
//
// Changes are single-server (thesis §4.1): each adds a learner, promotes a learner to
// voter, or removes a member, so any two consecutive configurations have overlapping
// majorities. As in etcd, a change takes effect when its entry is applied, and a leader
// proposes no new change until the previous one is applied (at most one pending).
//
// A config entry carries the whole configuration it results in, not just the change: a
// member that joins later replays the log from wherever it starts and must not depend on
// a bootstrap configuration it never saw.

import { Packr } from 'msgpackr';
import { type NodeId, nodeId } from '../stdx/types.js';

export interface Membership {
  /** Sorted, distinct, disjoint from learners. */
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export type ConfChangeType = 'add-learner' | 'promote' | 'remove';

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly node: NodeId;
  /**
   * Opaque to Raft, for the shell: the server puts the new member's peer address here, so
   * that every member learns it from the log when it applies the entry (etcd's context).
   */
  readonly context?: Uint8Array;
}

/** The largest context a change may carry. */
export const confContextBytesMax = 4096;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** A config entry: the change and the configuration after it. */
export interface ConfEntry {
  readonly change: ConfChange;
  readonly membership: Membership;
}

export function encodeConfEntry(entry: ConfEntry): Uint8Array {
  const { change, membership } = entry;
  const context = change.context === undefined ? {} : { context: change.context };
  return packr.pack({ type: change.type, node: change.node, voters: membership.voters, learners: membership.learners, ...context });
}

/** Decodes a config entry; throws on anything malformed (it came from the log). */
export function decodeConfEntry(data: Uint8Array): ConfEntry {
  const raw = packr.unpack(data) as { type?: unknown; node?: unknown; voters?: unknown; learners?: unknown; context?: unknown };
  const type = raw.type;
  if (type !== 'add-learner' && type !== 'promote' && type !== 'remove') throw new Error(`bad conf change type ${String(type)}`);
  if (raw.context !== undefined && !(raw.context instanceof Uint8Array && raw.context.length <= confContextBytesMax)) throw new Error('bad context in a config entry');
  const change: ConfChange = raw.context === undefined ? { type, node: memberId(raw.node) } : { type, node: memberId(raw.node), context: new Uint8Array(raw.context) };
  const membership = { voters: memberIds(raw.voters), learners: memberIds(raw.learners) };
  if (membership.voters.length === 0) throw new Error('a configuration needs a voter');
  return { change, membership };
}

function memberId(raw: unknown): NodeId {
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw <= 0) throw new Error('bad member id in a config entry');
  return nodeId(raw);
}

function memberIds(raw: unknown): NodeId[] {
  if (!Array.isArray(raw)) throw new Error('bad member list in a config entry');
  return sorted(raw.map(memberId));
}

/** The configuration after `change`, or a reason why the change is not allowed. */
export function applyConfChange(m: Membership, change: ConfChange): Membership | string {
  const { node } = change;
  const isVoter = m.voters.includes(node);
  const isLearner = m.learners.includes(node);
  switch (change.type) {
    case 'add-learner':
      if (isVoter || isLearner) return `node ${node} is already a member`;
      return { voters: m.voters, learners: sorted([...m.learners, node]) };
    case 'promote':
      if (!isLearner) return `node ${node} is not a learner`;
      return { voters: sorted([...m.voters, node]), learners: m.learners.filter((id) => id !== node) };
    case 'remove':
      if (!isVoter && !isLearner) return `node ${node} is not a member`;
      if (isVoter && m.voters.length === 1) return 'cannot remove the last voter';
      return { voters: m.voters.filter((id) => id !== node), learners: m.learners.filter((id) => id !== node) };
  }
}

export function describeMembership(m: Membership): string {
  return `voters=${m.voters.join(',')}${m.learners.length > 0 ? ` learners=${m.learners.join(',')}` : ''}`;
}

function sorted(ids: NodeId[]): NodeId[] {
  return ids.sort((a, b) => a - b);
}
