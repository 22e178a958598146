// Intermediate files: map task X writes one file per reduce bucket, `mr-X-Y`, holding that
// bucket's keys in byte order with their (combined) values. MessagePack in plain mode (no
// shared structures, DESIGN.md §4). The reader validates every field, because a file left
// by another program or a different version must give an error, not a wrong answer.

import { Packr, Unpackr } from 'msgpackr';
import { IntermediateFileError } from './errors.js';
import { compareKeys } from './types.js';

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

export function encodeGroups(groups: Groups): Uint8Array {
  const keys = [...groups.keys()].sort(compareKeys);
  const values = keys.map((key) => groups.get(key)!);
  return packr.pack([FORMAT_VERSION, keys, values]);
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
