// Deterministic one-line descriptions of messages, entries and Readies, for interaction
// tests with golden output and for debugging (the describe* verb, STYLE.md 11).

import type { Ready } from './core.js';
import { decodeConfEntry } from './membership.js';
import type { Message } from './messages.js';
import type { Entry, HardState } from './types.js';

const decoder = new TextDecoder();

export function describeEntry(entry: Entry): string {
  if (entry.type === 'config') {
    const { change } = decodeConfEntry(entry.data);
    return `${entry.term}/${entry.index} EntryConfig ${change.type} ${change.node}`;
  }
  const data = entry.data.length === 0 ? '' : ` ${JSON.stringify(decoder.decode(entry.data))}`;
  return `${entry.term}/${entry.index} EntryNormal${data}`;
}

export function describeEntries(entries: readonly Entry[]): string {
  return `[${entries.map(describeEntry).join(', ')}]`;
}

export function describeHardState(hs: HardState): string {
  return `term=${hs.term} vote=${hs.vote} commit=${hs.commit}`;
}

export function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'PreVote':
    case 'Vote':
      return `${head} last=${m.lastTerm}/${m.lastIndex}${m.transfer ? ' transfer' : ''}`;
    case 'PreVoteResp':
    case 'VoteResp':
      return `${head}${m.reject ? ' rejected' : ' granted'}`;
    case 'App':
      return `${head} prev=${m.prevTerm}/${m.prevIndex} commit=${m.commit} entries=${describeEntries(m.entries)}`;
    case 'AppResp':
      return m.reject ? `${head} rejected=${m.index} hint=${m.hintTerm}/${m.hintIndex}` : `${head} index=${m.index}`;
    case 'Heartbeat':
      return `${head} commit=${m.commit}${m.context === 0 ? '' : ` context=${m.context}`}`;
    case 'HeartbeatResp':
      return `${head}${m.context === 0 ? '' : ` context=${m.context}`}`;
    case 'Snap':
      return `${head} snapshot=${m.meta.term}/${m.meta.index} voters=${m.meta.voters.join(',')}${m.meta.learners.length > 0 ? ` learners=${m.meta.learners.join(',')}` : ''} offset=${m.offset} bytes=${m.data.length}${m.done ? ' done' : ''}`;
    case 'SnapResp':
      return `${head} snapshot=${m.index} offset=${m.offset}`;
    case 'TimeoutNow':
      return head;
    case 'ReadIndex':
      return `${head} context=${m.context}`;
    case 'ReadIndexResp':
      return `${head} context=${m.context} index=${m.index}`;
  }
}

export function describeReady(ready: Ready): string[] {
  const lines: string[] = [];
  if (ready.hardState !== undefined) lines.push(`HardState ${describeHardState(ready.hardState)}`);
  if (ready.snapshot !== undefined) {
    const meta = ready.snapshot.meta;
    lines.push(
      `Snapshot ${meta.term}/${meta.index} voters=${meta.voters.join(',')}${meta.learners.length > 0 ? ` learners=${meta.learners.join(',')}` : ''} bytes=${ready.snapshot.data.length}${ready.applySnapshot ? ' (restore)' : ''}`,
    );
  }
  if (ready.entries.length > 0) lines.push(`Entries: ${describeEntries(ready.entries)}`);
  if (ready.committedEntries.length > 0) lines.push(`CommittedEntries: ${describeEntries(ready.committedEntries)}`);
  if (ready.readStates.length > 0) lines.push(`ReadStates: ${ready.readStates.map((r) => `context=${r.context} index=${r.index}`).join(', ')}`);
  if (ready.messages.length > 0) {
    lines.push('Messages:');
    for (const m of ready.messages) lines.push(`  ${describeMessage(m)}`);
  }
  return lines;
}
