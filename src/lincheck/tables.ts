// The search's caches, in typed arrays so the hot loop neither allocates nor hashes objects:
//
//   StateInterner    model state  -> dense state id   (model.hash + model.equal, once per new state)
//   TransitionTable  (state id, operation) -> next state id | ILLEGAL
//   VisitedSet       (linearized-operation bitset, state id), Lowe's memoization
//
// All three charge a shared MemoryBudget before they grow and refuse to grow past it, which
// is what keeps a hopeless partition from eating the machine (c50-bad's keys "0" and "9").

import { assert } from '../stdx/assert.js';

/** A byte count shared by every cache of one check. Invariant: 0 <= used <= max. */
export class MemoryBudget {
  used = 0;
  constructor(readonly max: number) {
    assert(max > 0, 'memory budget must be positive');
  }

  /** Takes `bytes` from the budget if they fit; says whether it did. */
  maybeTake(bytes: number): boolean {
    assert(bytes >= 0, 'negative allocation');
    if (this.used + bytes > this.max) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    assert(bytes >= 0 && bytes <= this.used, 'returning more memory than was taken');
    this.used -= bytes;
  }
}

/** Murmur3's 32-bit finalizer: spreads the bits of a hash over the whole word. */
export function mix32(value: number): number {
  let h = value | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

export const fnvOffsetBasis = 0x811c9dc5 | 0;

/**
 * FNV-1a over UTF-16 code units. It is incremental: hashString(a + b) equals
 * hashString(b, hashString(a)), which lets a model hash an appended-to string in time
 * proportional to the appended part (see the key/value model).
 */
export function hashString(text: string, seed: number = fnvOffsetBasis): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h | 0;
}

// Small, because a history may have thousands of tiny partitions; the tables double as needed.
const slotsInitial = 64;
/** The charge for one interned state when the model does not say (Model.stateBytes). */
const stateBytesDefault = 96;

/**
 * Dense ids for model states, 0, 1, 2, ... in order of first appearance. Open addressing
 * over typed arrays: a JS Map keyed by 32-bit hashes would box half of them (beyond the
 * small-integer range) on every lookup.
 */
export class StateInterner<S> {
  readonly states: S[] = [];
  /** stateHash[id] = hash(states[id]); kept so that growing never calls the model. */
  private stateHash = new Int32Array(slotsInitial / 2);
  /** State id + 1 per slot, 0 = empty. */
  private slots = new Int32Array(slotsInitial);
  bytes = 0;

  constructor(
    private readonly hash: (state: S) => number,
    private readonly equal: (a: S, b: S) => boolean,
    private readonly stateBytes: ((state: S) => number) | undefined,
    private readonly budget: MemoryBudget,
  ) {}

  /** The id of `state`, adding it if new; -1 if the memory budget is exhausted. */
  intern(state: S): number {
    const h = this.hash(state) | 0;
    let mask = this.slots.length - 1;
    let slot = mix32(h) & mask;
    for (;;) {
      const entry = this.slots[slot]!;
      if (entry === 0) break;
      if (this.stateHash[entry - 1] === h && this.equal(this.states[entry - 1]!, state)) return entry - 1;
      slot = (slot + 1) & mask;
    }
    const id = this.states.length;
    if ((id + 1) * 2 > this.slots.length) {
      if (!this.maybeGrow()) return -1;
      mask = this.slots.length - 1;
      slot = mix32(h) & mask;
      while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    }
    const bytes = this.stateBytes === undefined ? stateBytesDefault : this.stateBytes(state);
    if (!this.budget.maybeTake(bytes)) return -1;
    this.bytes += bytes;
    this.states.push(state);
    this.stateHash[id] = h;
    this.slots[slot] = id + 1;
    return id;
  }

  private maybeGrow(): boolean {
    const capacity = this.slots.length * 2;
    // Slots double (4 bytes per new slot) and hashes double (2 bytes per new slot).
    if (!this.budget.maybeTake(capacity * 3)) return false;
    this.bytes += capacity * 3;
    const stateHash = new Int32Array(capacity / 2);
    stateHash.set(this.stateHash);
    const slots = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let id = 0; id < this.states.length; id++) {
      let slot = mix32(stateHash[id]!) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = id + 1;
    }
    this.stateHash = stateHash;
    this.slots = slots;
    return true;
  }
}

export const transitionMissing = -2;
export const transitionIllegal = -1;

/**
 * Open addressing with linear probing over one Int32Array of triples
 * [stateId + 1, operation, next] (one cache line per probe); 0 marks an empty slot, so a new
 * table needs no fill pass (fresh typed arrays are zeroed already).
 */
export class TransitionTable {
  private table: Int32Array;
  count = 0;
  bytes: number;

  private constructor(
    private readonly budget: MemoryBudget,
    capacity: number,
  ) {
    this.table = new Int32Array(capacity * 3);
    this.bytes = capacity * 12;
  }

  /** undefined if even the initial table does not fit in the budget. */
  static create(budget: MemoryBudget): TransitionTable | undefined {
    return budget.maybeTake(slotsInitial * 12) ? new TransitionTable(budget, slotsInitial) : undefined;
  }

  /** The next state id, transitionIllegal, or transitionMissing if not yet known. */
  get(stateId: number, operation: number): number {
    const table = this.table;
    const mask = table.length / 3 - 1;
    const key = stateId + 1;
    let slot = mix32(Math.imul(stateId, 0x9e3779b1) ^ operation) & mask;
    for (;;) {
      const found = table[slot * 3]!;
      if (found === 0) return transitionMissing;
      if (found === key && table[slot * 3 + 1] === operation) return table[slot * 3 + 2]!;
      slot = (slot + 1) & mask;
    }
  }

  /** Records a transition not yet present; false if the table could not grow. */
  set(stateId: number, operation: number, next: number): boolean {
    if ((this.count + 1) * 2 > this.table.length / 3 && !this.maybeGrow()) return false;
    TransitionTable.place(this.table, stateId + 1, operation, next);
    this.count++;
    return true;
  }

  private static place(table: Int32Array, key: number, operation: number, next: number): void {
    const mask = table.length / 3 - 1;
    let slot = mix32(Math.imul(key - 1, 0x9e3779b1) ^ operation) & mask;
    while (table[slot * 3] !== 0) slot = (slot + 1) & mask;
    table[slot * 3] = key;
    table[slot * 3 + 1] = operation;
    table[slot * 3 + 2] = next;
  }

  private maybeGrow(): boolean {
    const old = this.table;
    const capacity = (old.length / 3) * 2;
    if (!this.budget.maybeTake(capacity * 12 - this.bytes)) return false;
    this.bytes = capacity * 12;
    const table = new Int32Array(capacity * 3);
    for (let from = 0; from < old.length; from += 3) {
      if (old[from] !== 0) TransitionTable.place(table, old[from]!, old[from + 1]!, old[from + 2]!);
    }
    this.table = table;
    return true;
  }
}

export const visitedInserted = 1;
export const visitedPresent = 0;
export const visitedFull = -1;

/**
 * The set of configurations already explored: (bitset of linearized operations, state id).
 * Entries live in one Int32Array pool, `stride` words each: [hash, stateId, bits...], and
 * `slots` (open addressing) holds entry number + 1, 0 meaning empty. The hash is kept per
 * entry so that a probe compares one word before the bitset, and a resize never rehashes.
 */
export class VisitedSet {
  private slots: Int32Array;
  private pool: Int32Array;
  private readonly stride: number;
  count = 0;
  bytes: number;

  private constructor(
    private readonly words: number,
    private readonly budget: MemoryBudget,
    bytes: number,
  ) {
    this.stride = words + 2;
    this.slots = new Int32Array(slotsInitial);
    this.pool = new Int32Array((slotsInitial / 2) * this.stride);
    this.bytes = bytes;
  }

  static create(words: number, budget: MemoryBudget): VisitedSet | undefined {
    const bytes = (slotsInitial + (slotsInitial / 2) * (words + 2)) * 4;
    return budget.maybeTake(bytes) ? new VisitedSet(words, budget, bytes) : undefined;
  }

  /**
   * Adds (bits, stateId) under `setHash` (a hash of the bitset alone) unless present.
   * Returns visitedInserted, visitedPresent, or visitedFull when the budget is exhausted.
   */
  insert(setHash: number, stateId: number, bits: Int32Array): number {
    const h = mix32(setHash ^ Math.imul(stateId, 0x9e3779b1));
    const words = this.words;
    const stride = this.stride;
    const pool = this.pool;
    let slots = this.slots;
    let mask = slots.length - 1;
    let slot = h & mask;
    for (;;) {
      const entry = slots[slot]!;
      if (entry === 0) break;
      let base = (entry - 1) * stride;
      if (pool[base] === h && pool[base + 1] === stateId) {
        base += 2;
        let w = 0;
        while (w < words && pool[base + w] === bits[w]) w++;
        if (w === words) return visitedPresent;
      }
      slot = (slot + 1) & mask;
    }
    if ((this.count + 1) * 2 > slots.length) {
      if (!this.maybeGrowSlots()) return visitedFull;
      slots = this.slots;
      mask = slots.length - 1;
      slot = h & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
    }
    if ((this.count + 1) * stride > this.pool.length && !this.maybeGrowPool()) return visitedFull;
    const target = this.pool;
    const base = this.count * stride;
    target[base] = h;
    target[base + 1] = stateId;
    for (let w = 0; w < words; w++) target[base + 2 + w] = bits[w]!;
    this.count++;
    slots[slot] = this.count;
    return visitedInserted;
  }

  private maybeGrowSlots(): boolean {
    const capacity = this.slots.length * 2;
    if (!this.budget.maybeTake(capacity * 2)) return false; // 4 bytes per new slot, minus the old half
    this.bytes += capacity * 2;
    const slots = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let entry = 0; entry < this.count; entry++) {
      let slot = this.pool[entry * this.stride]! & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = entry + 1;
    }
    this.slots = slots;
    return true;
  }

  private maybeGrowPool(): boolean {
    const length = this.pool.length * 2;
    if (!this.budget.maybeTake(this.pool.length * 4)) return false;
    this.bytes += this.pool.length * 4;
    const pool = new Int32Array(length);
    pool.set(this.pool);
    this.pool = pool;
    return true;
  }
}
