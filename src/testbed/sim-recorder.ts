// A recording of one simulator run, for `flotilla sim --seed N --html FILE` (replay-html.ts):
// every change of a server's Raft state as its Readys show it, every message sent and
// delivered, every fault, and the checker's first complaint, each at its virtual time. The
// simulator is deterministic, so a recording is just what one seed did, step by step.
//
// Bounded (STYLE.md 7): at most eventsMax events; after that only state changes, faults and
// the failure are kept (messages are the bulk), and `truncated` says so.

import type { NodeStatus, RaftNode } from '../runtime/node.js';
import type { Message } from '../raft/messages.js';

/** One server's state at a step: what the Ready loop shows after handling a Ready. */
export interface RecordedState {
  readonly role: NodeStatus['role'];
  readonly term: number;
  readonly leader: number;
  readonly commit: number;
  readonly applied: number;
  readonly last: number;
  /** The index of logTerms[0]. */
  readonly first: number;
  /** The term of each of the last entries (at most logShownMax), from `first` on. */
  readonly logTerms: readonly number[];
}

export type RecordedEvent =
  | { readonly t: number; readonly kind: 'state'; readonly node: number; readonly state: RecordedState }
  | { readonly t: number; readonly kind: 'send'; readonly from: number; readonly to: number; readonly type: string; readonly term: number; readonly entries: number }
  | { readonly t: number; readonly kind: 'deliver'; readonly from: number; readonly to: number; readonly type: string; readonly term: number }
  | { readonly t: number; readonly kind: 'down' | 'up' | 'cut' | 'heal' | 'pause'; readonly node: number; readonly detail?: string }
  | { readonly t: number; readonly kind: 'violation'; readonly text: string };

export interface Recording {
  readonly seed: number;
  readonly servers: number;
  readonly settings: string;
  readonly events: readonly RecordedEvent[];
  readonly truncated: boolean;
  /** The run's verdict: undefined if it passed. */
  readonly failure: string | undefined;
}

/** Entries of each log the replay shows (the tail). */
export const logShownMax = 40;
export const eventsMax = 200_000;

export class SimRecorder {
  private readonly events: RecordedEvent[] = [];
  private readonly last = new Map<number, RecordedState>();
  truncated = false;
  private violated = false;

  constructor(private readonly now: () => number) {}

  /** A server's state after a Ready; recorded only if it changed. */
  observe(node: number, raft: RaftNode): void {
    const status = raft.status();
    const log = raft.core.log;
    const first = Math.max(log.firstIndex(), status.lastIndex - logShownMax + 1);
    const logTerms: number[] = [];
    for (let i = first; i <= status.lastIndex; i++) logTerms.push(log.term(i) ?? 0);
    const state: RecordedState = { role: status.role, term: status.term, leader: status.leader, commit: status.commit, applied: status.applied, last: status.lastIndex, first, logTerms };
    const before = this.last.get(node);
    if (before !== undefined && sameState(before, state)) return;
    this.last.set(node, state);
    this.push({ t: this.now(), kind: 'state', node, state }, true);
  }

  send(from: number, to: number, message: Message): void {
    const entries = message.type === 'App' ? message.entries.length : 0;
    this.push({ t: this.now(), kind: 'send', from, to, type: message.type, term: message.term, entries }, false);
  }

  deliver(to: number, message: Message): void {
    this.push({ t: this.now(), kind: 'deliver', from: message.from, to, type: message.type, term: message.term }, false);
  }

  fault(kind: 'down' | 'up' | 'cut' | 'heal' | 'pause', node: number, detail?: string): void {
    this.push({ t: this.now(), kind, node, ...(detail === undefined ? {} : { detail }) }, true);
  }

  /** The checker's first complaint (later ones are not recorded). */
  violation(text: string): void {
    if (this.violated) return;
    this.violated = true;
    this.push({ t: this.now(), kind: 'violation', text }, true);
  }

  finish(seed: number, servers: number, settings: string, failure: string | undefined): Recording {
    if (failure !== undefined) this.violation(failure);
    return { seed, servers, settings, events: this.events, truncated: this.truncated, failure };
  }

  private push(event: RecordedEvent, essential: boolean): void {
    if (this.events.length >= eventsMax) {
      this.truncated = true;
      if (!essential || this.events.length >= eventsMax * 2) return;
    }
    this.events.push(event);
  }
}

function sameState(a: RecordedState, b: RecordedState): boolean {
  return (
    a.role === b.role &&
    a.term === b.term &&
    a.leader === b.leader &&
    a.commit === b.commit &&
    a.applied === b.applied &&
    a.last === b.last &&
    a.first === b.first &&
    a.logTerms.length === b.logTerms.length &&
    a.logTerms.every((term, i) => term === b.logTerms[i])
  );
}
