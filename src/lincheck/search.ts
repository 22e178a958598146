// The search for one partition: Wing & Gong's backtracking with Lowe's memoization
// (G. Lowe, "Testing for linearizability", 2017), the algorithm Porcupine also uses.
//
// Every operation becomes a call event and a return event, sorted by time (calls before
// returns at equal times). The events form a doubly linked list. From the front of the list,
// each call met before the first return is a candidate to take effect next:
//
//   list:   call a   call b   ret a   call c   ret b   ret c
//           ^^^^^^   ^^^^^^   stop: a must be linearized before anything after ret a
//
// Linearizing a candidate whose step the model accepts "lifts" its call and return out of the
// list and pushes it on a stack. Reaching a return means no candidate before it worked: pop
// the last choice, put it back, and try the candidate after it. A configuration (set of
// linearized operations, state) seen before is skipped: whatever follows it already failed.
//
// The search is an explicit loop over typed arrays (no recursion, no allocation per step)
// and can be suspended after any number of steps, so the checker can interleave partitions.

import { assert } from '../stdx/assert.js';
import type { Model, Operation, SearchStats } from './types.js';
import { type MemoryBudget, StateInterner, TransitionTable, VisitedSet, mix32, transitionIllegal, transitionMissing, visitedFull, visitedInserted } from './tables.js';

/** A transition could not be cached because the memory budget is exhausted. */
const transitionNoMemory = -3;
/**
 * States with ids below this keep their transitions in a dense array indexed by
 * stateId * n + operation, one load in the hot loop. Small models (a register: a handful of
 * states) never leave it; the rest spill into the hash table.
 */
const denseStatesMax = 16;
/** Bound on the dense array of one partition (a long unpartitioned history gets fewer dense states). */
const denseBytesMax = 4 * 1024 * 1024;

/** The event order: by time, calls before returns at equal times, then by operation. */
interface Event {
  readonly time: number;
  readonly isCall: boolean;
  readonly operation: number;
}

function compareEvents(a: Event, b: Event): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1;
  if (a.isCall !== b.isCall) return a.isCall ? -1 : 1;
  return a.operation - b.operation;
}

export type SearchStatus = 'running' | 'ok' | 'illegal' | 'memory';

/** twinBefore for each operation (see PartitionSearch.twinBefore); all -1 without Model.inputKey. */
function findTwins<S, I, O>(model: Model<S, I, O>, operations: readonly Operation<I, O>[]): Int32Array {
  const twinBefore = new Int32Array(operations.length).fill(-1);
  if (model.inputKey === undefined) return twinBefore;
  const order = operations.map((_, index) => index);
  order.sort((a, b) => operations[a]!.callTime - operations[b]!.callTime || a - b);
  const lastWithKey = new Map<string, number>();
  for (const index of order) {
    const operation = operations[index]!;
    if (operation.output !== undefined) continue;
    const key = model.inputKey(operation.input);
    const previous = lastWithKey.get(key);
    if (previous !== undefined) twinBefore[index] = previous;
    lastWithKey.set(key, index);
  }
  return twinBefore;
}

export class PartitionSearch<S, I, O> {
  private readonly operationCount: number;
  private readonly head: number;
  private readonly tail: number;
  /** Dancing links over event positions 0..2n-1 plus head (2n) and tail (2n+1). */
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly eventOperation: Int32Array;
  private readonly eventIsCall: Uint8Array;
  /** For a call event, the position of its return event. */
  private readonly returnOf: Int32Array;
  /** Zobrist keys: the hash of a set of operations is the XOR of its members' keys. */
  private readonly setKey: Int32Array;
  /**
   * Symmetry reduction for twins: for a pending operation (one with an unknown result),
   * the previous pending operation with the same input (by call order), or -1. Twins are
   * interchangeable (same step, both free to take effect any time after their calls up to
   * the end), so any linearization can be reordered to place twins in call order; the search
   * only tries a twin once its predecessor is placed. This collapses the n! orders of n
   * identical timed-out writes in the Jepsen logs.
   */
  private readonly twinBefore: Int32Array;

  private readonly bits: Int32Array;
  /** stackCall[i]: the call event linearized i-th; stackState[i]: the state before it. */
  private readonly stackCall: Int32Array;
  private readonly stackState: Int32Array;
  /** Invariant: depth = number of linearized operations = number of set bits. */
  private depth = 0;
  private stateId = 0;
  private setHash = 0;
  private cursor: number;

  /** The longest linearizable prefix seen: operations and the state after each. */
  private bestDepth = 0;
  private readonly bestOperations: Int32Array;
  private readonly bestStates: Int32Array;

  private interner: StateInterner<S> | undefined;
  /** What stats() and bestPrefix() said when the caches were released. */
  private final: { stats: SearchStats; prefix: { operations: number[]; states: S[] } } | undefined;
  /** Transitions of states below denseStates; transitionMissing where not yet known. */
  private dense: Int32Array | undefined;
  private readonly denseStates: number;
  private denseCount = 0;
  private transitions: TransitionTable | undefined;
  private visited: VisitedSet | undefined;
  private steps = 0;
  private status: SearchStatus = 'running';
  private released = false;

  constructor(
    private readonly model: Model<S, I, O>,
    private readonly operations: readonly Operation<I, O>[],
    private readonly budget: MemoryBudget,
  ) {
    const n = operations.length;
    this.operationCount = n;
    this.head = 2 * n;
    this.tail = 2 * n + 1;
    this.next = new Int32Array(2 * n + 2);
    this.prev = new Int32Array(2 * n + 2);
    this.eventOperation = new Int32Array(2 * n);
    this.eventIsCall = new Uint8Array(2 * n);
    this.returnOf = new Int32Array(2 * n);
    this.setKey = new Int32Array(n);
    this.twinBefore = findTwins(model, operations);
    this.bits = new Int32Array(Math.max(1, Math.ceil(n / 32)));
    this.stackCall = new Int32Array(n);
    this.stackState = new Int32Array(n);
    this.bestOperations = new Int32Array(n);
    this.bestStates = new Int32Array(n);
    this.buildEvents();
    this.cursor = this.next[this.head]!;
    this.interner = new StateInterner<S>(
      (s) => model.hash(s),
      (a, b) => model.equal(a, b),
      model.stateBytes === undefined ? undefined : (s) => model.stateBytes!(s),
      budget,
    );
    this.transitions = TransitionTable.create(budget);
    this.visited = VisitedSet.create(this.bits.length, budget);
    this.denseStates = Math.min(denseStatesMax, Math.floor(denseBytesMax / 4 / Math.max(1, n)));
    const denseBytes = this.denseStates * n * 4;
    if (budget.maybeTake(denseBytes)) this.dense = new Int32Array(this.denseStates * n).fill(transitionMissing);
    const initial = this.interner.intern(model.init());
    const ready = this.transitions !== undefined && this.visited !== undefined && this.dense !== undefined;
    if (initial < 0 || !ready) this.status = 'memory';
    else assert(initial === 0, 'the initial state must get id 0');
    if (n === 0 && this.status === 'running') this.status = 'ok';
  }

  private buildEvents(): void {
    const events: Event[] = [];
    this.operations.forEach((operation, index) => {
      assert(Number.isFinite(operation.callTime), 'call time must be a finite number');
      assert(operation.returnTime === undefined || operation.returnTime >= operation.callTime, 'an operation returned before it was called');
      assert(operation.returnTime !== undefined || operation.output === undefined, 'an operation that never returned has no output');
      // An unknown result may still be applied later: the operation stays pending to the end.
      const returnTime = operation.output === undefined ? Number.POSITIVE_INFINITY : operation.returnTime!;
      events.push({ time: operation.callTime, isCall: true, operation: index });
      events.push({ time: returnTime, isCall: false, operation: index });
      this.setKey[index] = mix32(Math.imul(index + 1, 0x9e3779b9) ^ 0x5bd1e995);
    });
    events.sort(compareEvents);
    const callPosition = new Int32Array(this.operationCount);
    events.forEach((event, position) => {
      this.eventOperation[position] = event.operation;
      this.eventIsCall[position] = event.isCall ? 1 : 0;
      if (event.isCall) callPosition[event.operation] = position;
      else this.returnOf[callPosition[event.operation]!] = position;
      this.next[position] = position + 1;
      this.prev[position] = position - 1;
    });
    const last = events.length - 1;
    this.next[this.head] = events.length === 0 ? this.tail : 0;
    this.prev[this.head] = -1;
    this.prev[this.tail] = events.length === 0 ? this.head : last;
    this.next[this.tail] = -1;
    if (events.length > 0) {
      this.prev[0] = this.head;
      this.next[last] = this.tail;
    }
  }

  get outcome(): SearchStatus {
    return this.status;
  }

  /**
   * Runs at most `stepsMax` steps. Returns 'running' if the search is not finished yet.
   * This is the hot loop: locals only, typed arrays only, no allocation. It is longer than
   * the usual 70 lines on purpose: lift and unlift are written out in place, because
   * splitting them into methods would move the loop's state back into fields.
   */
  run(stepsMax: number): SearchStatus {
    if (this.status !== 'running') return this.status;
    assert(!this.released, 'search resumed after its caches were released');
    const { next, prev, eventOperation, eventIsCall, returnOf, setKey, twinBefore, bits, stackCall, stackState } = this;
    const head = this.head;
    const tail = this.tail;
    const visited = this.visited!;
    const dense = this.dense!;
    const denseStates = this.denseStates;
    const n = this.operationCount;
    let cursor = this.cursor;
    let depth = this.depth;
    let stateId = this.stateId;
    let setHash = this.setHash;
    let status: SearchStatus = 'running';
    let step = 0;
    for (; step < stepsMax; step++) {
      if (next[head] === tail) {
        status = 'ok';
        break;
      }
      const event = cursor;
      const operation = eventOperation[event]!;
      if (eventIsCall[event] === 1) {
        const twin = twinBefore[operation]!;
        if (twin >= 0 && (bits[twin >>> 5]! & (1 << (twin & 31))) === 0) {
          cursor = next[event]!;
          continue;
        }
        let nextState = stateId < denseStates ? dense[stateId * n + operation]! : transitionMissing;
        if (nextState === transitionMissing) nextState = this.transition(stateId, operation);
        if (nextState >= 0) {
          const word = operation >>> 5;
          const bit = 1 << (operation & 31);
          bits[word]! |= bit;
          const nextHash = setHash ^ setKey[operation]!;
          const inserted = visited.insert(nextHash, nextState, bits);
          if (inserted === visitedInserted) {
            stackCall[depth] = event;
            stackState[depth] = stateId;
            depth++;
            stateId = nextState;
            setHash = nextHash;
            // Lift the call and its return out of the list (dancing links: the removed
            // nodes keep their own links, which is how unlifting puts them back).
            next[prev[event]!] = next[event]!;
            prev[next[event]!] = prev[event]!;
            const ret = returnOf[event]!;
            next[prev[ret]!] = next[ret]!;
            prev[next[ret]!] = prev[ret]!;
            cursor = next[head]!;
            if (depth > this.bestDepth) this.recordBest(depth, stateId);
            continue;
          }
          bits[word]! &= ~bit;
          if (inserted === visitedFull) {
            status = 'memory';
            break;
          }
        } else if (nextState === transitionNoMemory) {
          status = 'memory';
          break;
        }
        cursor = next[event]!;
      } else {
        // A return: every candidate before it has been tried from this configuration.
        if (depth === 0) {
          status = 'illegal';
          break;
        }
        depth--;
        const call = stackCall[depth]!;
        stateId = stackState[depth]!;
        const undone = eventOperation[call]!;
        bits[undone >>> 5]! &= ~(1 << (undone & 31));
        setHash ^= setKey[undone]!;
        const ret = returnOf[call]!;
        next[prev[ret]!] = ret;
        prev[next[ret]!] = ret;
        next[prev[call]!] = call;
        prev[next[call]!] = call;
        cursor = next[call]!;
      }
    }
    this.steps += step;
    this.cursor = cursor;
    this.depth = depth;
    this.stateId = stateId;
    this.setHash = setHash;
    this.status = status;
    return status;
  }

  /** The next state id after `operation` from `stateId`; may call the model once. */
  private transition(stateId: number, operation: number): number {
    const transitions = this.transitions!;
    const isDense = stateId < this.denseStates;
    const known = isDense ? transitionMissing : transitions.get(stateId, operation);
    if (known !== transitionMissing) return known;
    const { input, output } = this.operations[operation]!;
    const interner = this.interner!;
    const before = interner.states[stateId]!;
    const after = this.model.step(before, input, output);
    let nextState: number;
    // A read returns the very state it was given: skip hashing it (a long string, say).
    if (after === before) nextState = stateId;
    else if (after !== undefined) nextState = interner.intern(after);
    // An unknown result may mean the operation never took effect: let it be a no-op.
    else nextState = output === undefined ? stateId : transitionIllegal;
    if (nextState === -1 && after !== undefined) return transitionNoMemory;
    if (isDense) {
      this.dense![stateId * this.operationCount + operation] = nextState;
      this.denseCount++;
    } else if (!transitions.set(stateId, operation, nextState)) return transitionNoMemory;
    return nextState;
  }

  private recordBest(depth: number, stateId: number): void {
    // Only the part of the stack that changed since the last record needs copying, but the
    // stack may have been popped below it in between; copy from where they first differ.
    let from = 0;
    while (from < this.bestDepth && from < depth - 1 && this.bestOperations[from] === this.eventOperation[this.stackCall[from]!]) {
      from++;
    }
    for (let i = from; i < depth; i++) {
      this.bestOperations[i] = this.eventOperation[this.stackCall[i]!]!;
      this.bestStates[i] = i + 1 < depth ? this.stackState[i + 1]! : stateId;
    }
    this.bestDepth = depth;
  }

  /** The longest linearizable prefix found (the full linearization once 'ok'). */
  bestPrefix(): { operations: number[]; states: S[] } {
    if (this.final !== undefined) return this.final.prefix;
    const interner = this.interner!;
    const operations: number[] = [];
    const states: S[] = [];
    for (let i = 0; i < this.bestDepth; i++) {
      operations.push(this.bestOperations[i]!);
      states.push(interner.states[this.bestStates[i]!]!);
    }
    return { operations, states };
  }

  /**
   * After the best prefix: the candidates (calls before the first remaining return, in
   * event order) and the operation of that return. Meaningful once the status is 'illegal'.
   */
  frontier(): { candidates: number[]; blocking: number | undefined } {
    const placed = new Uint8Array(this.operationCount);
    for (let i = 0; i < this.bestDepth; i++) placed[this.bestOperations[i]!] = 1;
    const candidates: number[] = [];
    for (let position = 0; position < 2 * this.operationCount; position++) {
      const operation = this.eventOperation[position]!;
      if (placed[operation] === 1) continue;
      if (this.eventIsCall[position] === 0) return { candidates, blocking: operation };
      candidates.push(operation);
    }
    return { candidates, blocking: undefined };
  }

  stats(): SearchStats {
    if (this.final !== undefined) return this.final.stats;
    return {
      steps: this.steps,
      visitedCount: this.visited?.count ?? 0,
      stateCount: this.interner!.states.length,
      transitionCount: (this.transitions?.count ?? 0) + this.denseCount,
      cacheBytes: this.cacheBytes(),
    };
  }

  private cacheBytes(): number {
    const denseBytes = this.dense === undefined ? 0 : this.dense.length * 4;
    return this.interner!.bytes + denseBytes + (this.transitions?.bytes ?? 0) + (this.visited?.bytes ?? 0);
  }

  /**
   * Gives the caches' memory back to the budget and drops them; the search cannot run
   * afterwards, and keeps only its statistics and best prefix (O(n)).
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.final = { stats: this.stats(), prefix: this.bestPrefix() };
    this.budget.give(this.cacheBytes());
    this.interner = undefined;
    this.transitions = undefined;
    this.visited = undefined;
    this.dense = undefined;
  }
}
