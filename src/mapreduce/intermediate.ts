// Intermediate files: map task X writes one file per reduce bucket, `mr-X-Y`, holding that
// bucket's keys with their (combined) values, in the order map first emitted them. They
// are not sorted: the reduce task merges every map task's keys into one table and sorts
// the keys once there, so sorting here as well was wasted work. MessagePack in plain mode
// (no shared structures, DESIGN.md §4). The reader validates every field, because a file left
// by another program or a different version must give an error, not a wrong answer.

import { Packr, Unpackr } from 'msgpackr';
import { IntermediateFileError } from './errors.js';

const FORMAT_VERSION = 1;
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

/** Pairs grouped by key. Invariant: no key maps to an empty array. */
export type Groups = Map<string, string[]>;

export function intermediateName(mapTaskId: number, reduceTaskId: number): string {
  return `mr-${mapTaskId}-${reduceTaskId}`;
}

export function outputName(reduceTaskId: number): string {
  return `mr-out-${reduceTaskId}`;
}

/** One map task's pairs for one reduce bucket. Invariant: keys[i] has values[i], non-empty. */
export interface Partition {
  keys: string[];
  values: string[][];
}

export function encodePartition(partition: Partition): Uint8Array {
  return packr.pack([FORMAT_VERSION, partition.keys, partition.values]);
}

/** Decodes an intermediate file and adds its pairs to `into`. */
export function decodeGroupsInto(bytes: Uint8Array, name: string, into: Groups): void {
  let decoded: unknown;
  try {
    decoded = unpackr.unpack(bytes);
  } catch (error) {
    throw new IntermediateFileError(`intermediate file ${name} does not decode: ${String(error)}`);
  }
  const [keys, values] = checkShape(decoded, name);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const list = values[i]!;
    const existing = into.get(key);
    if (existing === undefined) into.set(key, list);
    else for (const value of list) existing.push(value);
  }
}

function checkShape(decoded: unknown, name: string): [string[], string[][]] {
  const fail = (why: string): never => {
    throw new IntermediateFileError(`intermediate file ${name} is malformed: ${why}`);
  };
  if (!Array.isArray(decoded) || decoded.length !== 3) return fail('not a 3-element array');
  const [version, keys, values] = decoded as unknown[];
  if (version !== FORMAT_VERSION) return fail(`format version ${String(version)}, expected ${FORMAT_VERSION}`);
  if (!Array.isArray(keys) || !Array.isArray(values) || keys.length !== values.length) return fail('keys and values differ');
  for (let i = 0; i < keys.length; i++) {
    if (typeof keys[i] !== 'string') return fail(`key ${i} is not a string`);
    const list: unknown = values[i];
    if (!Array.isArray(list) || list.length === 0) return fail(`values of key ${i} are not a non-empty array`);
    for (const value of list) if (typeof value !== 'string') return fail(`a value of key ${i} is not a string`);
  }
  return [keys as string[], values as string[][]];
}
