// Cluster membership: voters, which elect and count toward every quorum, and learners,
// which receive the log but do not vote (thesis §4.2.1, etcd's learners).
//
// Changes are single-server (thesis §4.1): each adds a learner, promotes a learner to
// voter, or removes a member, so any two consecutive configurations have overlapping
// majorities. As in etcd, a change takes effect when its entry is applied, and a leader
// proposes no new change until the previous one is applied (at most one pending).

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
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encodeConfChange(change: ConfChange): Uint8Array {
  return packr.pack({ type: change.type, node: change.node });
}

/** Decodes a config entry; throws on anything malformed (it came from the log). */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const raw = packr.unpack(data) as { type?: unknown; node?: unknown };
  const type = raw.type;
  const node = raw.node;
  if (type !== 'add-learner' && type !== 'promote' && type !== 'remove') throw new Error(`bad conf change type ${String(type)}`);
  if (typeof node !== 'number' || !Number.isSafeInteger(node) || node <= 0) throw new Error('bad conf change node');
  return { type, node: nodeId(node) };
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
