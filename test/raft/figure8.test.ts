// The Raft paper's Figure 8, scripted step by step on five cores (no randomness): an entry
// of an earlier term that has reached a majority must not be committed by counting
// replicas (§5.4.2), because a later leader may still overwrite it. The correct core
// leaves it uncommitted; the planted bug commits it, and the entry it committed is lost.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Interaction } from '../../src/testbed/interaction.js';
import { nodeId } from '../../src/stdx/types.js';

const nodes = [1, 2, 3, 4, 5].map(nodeId);

/** Runs the figure's steps; returns the first committed entry later lost, or undefined. */
function figure8(unsafe: string | undefined): string | undefined {
  const net = new Interaction();
  // Committed (index → term) as any node has seen it, checked against every log after each step.
  const committed = new Map<number, number>();
  const step = (...commands: string[]): string | undefined => {
    for (const command of commands) {
      try {
        net.run(command);
      } catch (error) {
        return `${command}: ${String(error)}`;
      }
    }
    for (const id of nodes) {
      const log = net.core(id).log;
      for (let i = log.firstIndex(); i <= log.lastIndex(); i++) {
        const known = committed.get(i);
        if (known !== undefined && known !== log.term(i)) return `index ${i} was committed in term ${known}, but node ${id} now holds term ${log.term(i)}`;
        if (i <= log.committed) committed.set(i, log.term(i)!);
      }
    }
    return undefined;
  };
  const scenario: string[][] = [
    [`add-nodes 5 prevote=false checkquorum=false${unsafe === undefined ? '' : ` unsafe=${unsafe}`}`, 'campaign 1', 'stabilize', 'propose 1 a', 'stabilize'],
    // (a) Leader 1 (term 1) gets index 2 to node 2 only.
    ['isolate 3', 'isolate 4', 'isolate 5', 'propose 1 b', 'stabilize'],
    // (b) 1 is gone; 5 wins term 2 with 3 and 4, and writes a different index 2 it keeps alone.
    ['recover', 'isolate 1', 'isolate 2', 'campaign 5', 'stabilize', 'isolate 3', 'isolate 4', 'propose 5 c', 'stabilize'],
    // (c) 5 is gone; 1 comes back (its heartbeat meets term 2 and it steps down), wins term
    // 3 with 2 and 3, and copies its index 2 of term 1 to 3: a majority holds it now, but
    // no entry of term 3 does.
    ['recover', 'isolate 4', 'isolate 5', 'tick 1', 'stabilize', 'campaign 1', 'stabilize'],
    // (d) 1 is gone; 5 comes back (its heartbeat meets term 3), wins term 4 with 2, 3 and 4
    // (its last term, 2, beats their 1) and replaces index 2 everywhere it reaches.
    ['recover', 'isolate 1', 'tick 5', 'stabilize', 'campaign 5', 'stabilize'],
  ];
  for (const commands of scenario) {
    const violation = step(...commands);
    if (violation !== undefined) return violation;
  }
  // The script did what the figure shows: 5 leads term 4 and index 2 holds its term-2 entry.
  const leader = net.core(nodeId(5));
  assert.equal(leader.role, 'leader');
  assert.equal(leader.term, 4);
  assert.equal(net.core(nodeId(3)).log.term(2), 2, 'node 3 now holds the term-2 entry at index 2');
  return undefined;
}

test('Figure 8: an earlier term entry on a majority is not committed by counting, so overwriting it loses nothing', () => {
  assert.equal(figure8(undefined), undefined);
});

test('planted bug: committing an earlier term entry by counting loses a committed entry in Figure 8', () => {
  const violation = figure8('commitPreviousTermByCounting');
  assert.ok(violation !== undefined, 'the overwritten committed entry went unnoticed');
  assert.match(violation, /committed/);
});
