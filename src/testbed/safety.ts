// Raft's safety properties (Raft Figure 3), checked after every Ready any node handles:
//
//   election safety       at most one leader per term
//   log matching          two entries with the same index and term hold the same command
//                         and follow the same previous term (so whole prefixes agree)
//   leader completeness   a new leader of term T holds every entry committed before T
//   state machine safety  no two nodes apply different commands at one index
//
// Each check is O(1) per entry except leader completeness, which runs once per election.

import type { NodeId } from '../stdx/types.js';
import type { Ready } from '../raft/core.js';
import type { RaftNode } from '../runtime/node.js';

interface Committed {
  readonly term: number;
  readonly hash: number;
  /** An upper bound on the term in which the entry became committed. */
  readonly commitTerm: number;
}

export class SafetyChecker {
  readonly violations: string[] = [];
  private readonly leaders = new Map<number, NodeId>();
  private readonly entries = new Map<string, { hash: number; prevTerm: number }>();
  private readonly committed = new Map<number, Committed>();
  private readonly applied = new Map<number, number>();
  private readonly commitSeen = new Map<NodeId, number>();

  firstViolation(): string | undefined {
    return this.violations[0];
  }

  observe(node: RaftNode, ready: Ready): void {
    this.checkEntries(node, ready);
    this.checkCommitted(node);
    this.checkApplied(node, ready);
    this.checkLeader(node);
  }

  private violation(message: string): void {
    if (this.violations.length < 100) this.violations.push(message);
  }

  private checkLeader(node: RaftNode): void {
    const core = node.core;
    if (core.role !== 'leader') return;
    const known = this.leaders.get(core.term);
    if (known === undefined) {
      this.leaders.set(core.term, core.id);
      this.checkLeaderCompleteness(node);
    } else if (known !== core.id) {
      this.violation(`election safety: nodes ${known} and ${core.id} both lead term ${core.term}`);
    }
  }

  private checkLeaderCompleteness(node: RaftNode): void {
    const log = node.core.log;
    for (const [index, entry] of this.committed) {
      if (entry.commitTerm >= node.core.term || index <= log.snapshotIndex) continue;
      const term = log.term(index);
      if (term !== entry.term) {
        this.violation(`leader completeness: leader ${node.core.id} of term ${node.core.term} lacks committed entry ${index} (term ${entry.term}), has term ${term}`);
      }
    }
  }

  private checkEntries(node: RaftNode, ready: Ready): void {
    const log = node.core.log;
    ready.entries.forEach((entry, k) => {
      const prevTerm = k > 0 ? ready.entries[k - 1]!.term : log.matchTerm(entry.index, entry.term) ? log.term(entry.index - 1) : undefined;
      if (prevTerm === undefined) return;
      const key = `${entry.index}:${entry.term}`;
      const hash = hashBytes(entry.data);
      const known = this.entries.get(key);
      if (known === undefined) this.entries.set(key, { hash, prevTerm });
      else if (known.hash !== hash || known.prevTerm !== prevTerm) {
        this.violation(`log matching: node ${node.core.id} holds a different entry at index ${entry.index} term ${entry.term}`);
      }
    });
  }

  private checkCommitted(node: RaftNode): void {
    const core = node.core;
    const log = core.log;
    const from = Math.max(this.commitSeen.get(core.id) ?? 0, log.snapshotIndex) + 1;
    for (let index = from; index <= log.committed; index++) {
      const entry = log.entry(index);
      const hash = hashBytes(entry.data);
      const known = this.committed.get(index);
      if (known === undefined) this.committed.set(index, { term: entry.term, hash, commitTerm: core.term });
      else if (known.term !== entry.term || known.hash !== hash) {
        this.violation(`state machine safety: node ${core.id} committed a different entry at index ${index}`);
      }
    }
    this.commitSeen.set(core.id, Math.max(this.commitSeen.get(core.id) ?? 0, log.committed));
  }

  private checkApplied(node: RaftNode, ready: Ready): void {
    for (const entry of ready.committedEntries) {
      const hash = hashBytes(entry.data);
      const known = this.applied.get(entry.index);
      if (known === undefined) this.applied.set(entry.index, hash);
      else if (known !== hash) this.violation(`state machine safety: node ${node.core.id} applied a different command at index ${entry.index}`);
    }
  }
}

export function hashBytes(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}
