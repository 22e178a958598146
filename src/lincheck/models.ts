// The sequential specifications the checker ships with. Services add their own models.

import { unreachable } from '../stdx/assert.js';
import { hashString, mix32 } from './tables.js';
import type { Model } from './types.js';

/** Longest text a description shows of a value before eliding the middle. */
const describedValueCharsMax = 60;

export function describeValue(value: string | number | null | undefined): string {
  if (value === undefined) return '?';
  if (value === null) return 'nil';
  if (typeof value === 'number') return String(value);
  const quoted = JSON.stringify(value);
  if (quoted.length <= describedValueCharsMax) return quoted;
  const half = Math.floor((describedValueCharsMax - 3) / 2);
  return `${quoted.slice(0, half)}…${quoted.slice(quoted.length - half)} (${value.length} chars)`;
}

// --- A single integer register -------------------------------------------------------

export type RegisterInput = { readonly kind: 'read' } | { readonly kind: 'write'; readonly value: number };
/** A read's result; writes have no result (give 0 or undefined). */
export type RegisterOutput = number;

/** A register holding a number, initially `initial`: read and write. */
export function registerModel(initial = 0): Model<number, RegisterInput, RegisterOutput> {
  return {
    name: 'register',
    init: () => initial,
    step(state, input, output) {
      switch (input.kind) {
        case 'read':
          return output === undefined || output === state ? state : undefined;
        case 'write':
          return input.value;
        default:
          return unknownInput(input);
      }
    },
    hash: (state) => mix32(state | 0) ^ mix32((state / 4294967296) | 0),
    inputKey: (input) => JSON.stringify(input),
    equal: (a, b) => a === b,
    describeOperation(input, output) {
      return input.kind === 'read' ? `read() -> ${describeValue(output)}` : `write(${input.value})`;
    },
    describeState: (state) => String(state),
  };
}

// --- The lab's key/value store (6.824 kvsrv / kvraft: Get, Put, Append) ---------------

export type KvInput =
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'put'; readonly key: string; readonly value: string }
  | { readonly kind: 'append'; readonly key: string; readonly value: string };
/** What a get returned; ignored for put and append. */
export type KvOutput = string;

/**
 * One key's value with its hash. Appends build `text` as a V8 rope (concatenation is O(1))
 * and extend `hash` incrementally over the appended part (FNV-1a is incremental), so a new
 * state costs O(appended length), not O(value length): without this, flattening and hashing
 * the ever longer values dominated the search, and its memory.
 * Invariant: hash === hashString(text).
 */
export interface KvValue {
  readonly text: string;
  readonly hash: number;
}

const emptyKvValue: KvValue = { text: '', hash: hashString('') };

/**
 * Get outputs' hashes are memoized per output string (V8 caches a string's own hash, so the
 * lookup is O(1) after the first). Bounded: the memo is cleared when it reaches this size.
 */
const outputHashesMax = 1 << 16;

type KvValueStep = (value: KvValue, input: KvInput, output: KvOutput | undefined) => KvValue | undefined;

function makeKvValueStep(): KvValueStep {
  const outputHashes = new Map<string, number>();
  const hashOutput = (output: string): number => {
    let h = outputHashes.get(output);
    if (h === undefined) {
      if (outputHashes.size >= outputHashesMax) outputHashes.clear();
      h = hashString(output);
      outputHashes.set(output, h);
    }
    return h;
  };
  return (value, input, output) => {
    switch (input.kind) {
      case 'get':
        // Length and hash first: comparing the strings would flatten the rope.
        if (output === undefined) return value;
        if (output.length !== value.text.length || hashOutput(output) !== value.hash) return undefined;
        return output === value.text ? value : undefined;
      case 'put':
        return { text: input.value, hash: hashString(input.value) };
      case 'append':
        return input.value === '' ? value : { text: value.text + input.value, hash: hashString(input.value, value.hash) };
      default:
        return unknownInput(input);
    }
  };
}

function describeKv(input: KvInput, output: KvOutput | undefined): string {
  switch (input.kind) {
    case 'get':
      return `get(${describeValue(input.key)}) -> ${describeValue(output)}`;
    case 'put':
      return `put(${describeValue(input.key)}, ${describeValue(input.value)})`;
    case 'append':
      return `append(${describeValue(input.key)}, ${describeValue(input.value)})`;
    default:
      return unknownInput(input);
  }
}

/** Bytes charged per remembered value: the objects and the rope node, not the shared text. */
const kvValueBytes = 96;

/**
 * Each key holds a string, initially "" (a missing key reads as ""). Partitioned by key:
 * each key's sub-history is checked on its own (docs/6824-tests.md §8.2).
 */
export function kvModel(): Model<KvValue, KvInput, KvOutput> {
  return {
    name: 'kv',
    init: () => emptyKvValue,
    step: makeKvValueStep(),
    hash: (state) => state.hash,
    equal: (a, b) => a === b || (a.hash === b.hash && a.text === b.text),
    partitionKey: (input) => input.key,
    inputKey: (input) => JSON.stringify(input),
    stateBytes: () => kvValueBytes,
    describeOperation: describeKv,
    describeState: (state) => describeValue(state.text),
  };
}

/** The whole store: values by key (absent = ""), and an order-independent hash of it. */
export interface KvStore {
  readonly values: ReadonlyMap<string, KvValue>;
  /** Invariant: the sum over the map's entries of entryHash(key, value). */
  readonly hash: number;
}

function entryHash(key: string, value: KvValue): number {
  return mix32(hashString(key) ^ Math.imul(value.hash, 0x9e3779b1));
}

/**
 * The same store checked as one object (Porcupine's kvNoPartitionModel): far slower, kept to
 * cross-check the partitioned model. Keys whose value is "" are left out of the map, so
 * equal stores have equal maps.
 */
export function kvModelWhole(): Model<KvStore, KvInput, KvOutput> {
  const stepValue = makeKvValueStep();
  return {
    name: 'kv-whole',
    init: () => ({ values: new Map<string, KvValue>(), hash: 0 }),
    step(state, input, output) {
      const before = state.values.get(input.key) ?? emptyKvValue;
      const after = stepValue(before, input, output);
      if (after === undefined) return undefined;
      if (after === before) return state;
      const values = new Map(state.values);
      let hash = state.hash;
      if (before.text !== '') hash = (hash - entryHash(input.key, before)) | 0;
      if (after.text === '') values.delete(input.key);
      else {
        values.set(input.key, after);
        hash = (hash + entryHash(input.key, after)) | 0;
      }
      return { values, hash };
    },
    hash: (state) => state.hash,
    equal(a, b) {
      if (a === b) return true;
      if (a.hash !== b.hash || a.values.size !== b.values.size) return false;
      for (const [key, value] of a.values) {
        const other = b.values.get(key);
        if (other === undefined || other.hash !== value.hash || other.text !== value.text) return false;
      }
      return true;
    },
    inputKey: (input) => JSON.stringify(input),
    stateBytes: (state) => 64 + state.values.size * 48,
    describeOperation: describeKv,
    describeState(state) {
      const keys = [...state.values.keys()].sort();
      return `{${keys.map((key) => `${describeValue(key)}: ${describeValue(state.values.get(key)!.text)}`).join(', ')}}`;
    },
  };
}

// --- The etcd register of the Jepsen logs (read, write, compare-and-set) ---------------

export type EtcdInput = { readonly kind: 'read' } | { readonly kind: 'write'; readonly value: number } | { readonly kind: 'cas'; readonly from: number; readonly to: number };
/**
 * read: the value read, null if the key was absent. write: true. cas: true if it swapped,
 * false if it definitely did not (the expected value did not match).
 */
export type EtcdOutput = number | null | boolean;
/** The register's value; null while the key is absent (its initial state). */
export type EtcdState = number | null;

export function etcdModel(): Model<EtcdState, EtcdInput, EtcdOutput> {
  return {
    name: 'etcd',
    init: () => null,
    step(state, input, output) {
      switch (input.kind) {
        case 'read':
          return output === undefined || output === state ? state : undefined;
        case 'write':
          return input.value;
        case 'cas': {
          const matches = state === input.from;
          if (output === undefined) return matches ? input.to : state;
          if (output === true) return matches ? input.to : undefined;
          return matches ? undefined : state;
        }
        default:
          return unknownInput(input);
      }
    },
    hash: (state) => (state === null ? 0x7fffffff : mix32(state | 0)),
    inputKey: (input) => JSON.stringify(input),
    equal: (a, b) => a === b,
    describeOperation(input, output) {
      switch (input.kind) {
        case 'read':
          return `read() -> ${describeValue(output as number | null | undefined)}`;
        case 'write':
          return `write(${input.value})`;
        case 'cas':
          return `cas(${input.from}, ${input.to}) -> ${output === undefined ? '?' : output === true ? 'ok' : 'fail'}`;
        default:
          return unknownInput(input);
      }
    },
    describeState: (state) => describeValue(state),
  };
}

function unknownInput(input: never): never {
  return unreachable(input, 'model input');
}
