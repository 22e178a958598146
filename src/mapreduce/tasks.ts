// Running one map or one reduce task against the injected disk. Shared by the workers and
// the sequential reference, so both apply the application in exactly the same way.
//
// Outputs are written to a temporary file and renamed into place (rename(2) is atomic), so
// a worker that crashes or is slow and duplicated never leaves a partial or double output:
// readers see either no file or a complete one.

import type { Disk } from '../io/disk.js';
import { AssertionFailure, assert } from '../stdx/assert.js';
import { InputError, IntermediateFileError, UserCodeError, describeError } from './errors.js';
import { partitionOf } from './hash.js';
import { type Groups, type Partition, decodeGroupsInto, encodePartition, intermediateName, outputName } from './intermediate.js';
import { type KeyValue, type MapReduceApp, compareKeys, formatOutputLine } from './types.js';

export interface TaskStats {
  /** Map: pairs emitted by map. Reduce: output lines written. */
  records: number;
  /** Map: input file bytes. Reduce: intermediate bytes read. */
  bytesIn: number;
}

export interface TaskEnv {
  app: MapReduceApp;
  /** The shared job directory: intermediate files, outputs, temporary files. */
  workDisk: Disk;
  /** Where input paths are resolved. */
  inputDisk: Disk;
  /** A name for a temporary file in workDisk, unique among every writer of the job. */
  temporaryName(): string;
}

/** Intermediate files a map task writes at once. */
const intermediateWritesInFlightMax = 16;

const utf8Decoder = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

export async function runMapTask(env: TaskEnv, taskId: number, file: string, reduceCount: number): Promise<TaskStats> {
  assert(reduceCount >= 1, 'reduceCount must be positive');
  const bytes = await readInput(env.inputDisk, file);
  const pairs = await callMap(env.app, file, utf8Decoder.decode(bytes));
  const partitions = partitionGroups(applyCombiner(env.app, groupPairs(pairs)), reduceCount);
  // Intermediate files are not synced, as in the lab: a crashed worker process cannot tear
  // them (only complete files are renamed into place), and surviving the crash of a whole
  // machine is beyond this implementation anyway (finished map tasks are not re-executed).
  // Up to intermediateWritesInFlightMax writes go out together, so the file system
  // overlaps them without a job with many reduce tasks running out of file descriptors.
  for (let first = 0; first < reduceCount; first += intermediateWritesInFlightMax) {
    const batch = partitions.slice(first, first + intermediateWritesInFlightMax);
    await Promise.all(batch.map((partition, index) => writeAtomically(env, intermediateName(taskId, first + index), encodePartition(partition), false)));
  }
  return { records: pairs.length, bytesIn: bytes.length };
}

export async function runReduceTask(env: TaskEnv, taskId: number, mapCount: number): Promise<TaskStats> {
  const groups: Groups = new Map();
  let bytesIn = 0;
  for (let mapId = 0; mapId < mapCount; mapId++) {
    const name = intermediateName(mapId, taskId);
    const bytes = await readIntermediate(env.workDisk, name);
    bytesIn += bytes.length;
    decodeGroupsInto(bytes, name, groups);
  }
  const text = await reduceGroups(env.app, groups);
  await writeAtomically(env, outputName(taskId), utf8Encoder.encode(text), true);
  return { records: groups.size, bytesIn };
}

/** Calls reduce once per key, in byte order of the keys; returns the output text. */
export async function reduceGroups(app: MapReduceApp, groups: Groups): Promise<string> {
  const keys = [...groups.keys()].sort(compareKeys);
  const lines: string[] = [];
  for (const key of keys) {
    let output: unknown;
    try {
      const result = app.reduce(key, groups.get(key)!);
      output = result instanceof Promise ? await result : result;
    } catch (error) {
      throw userCodeError(error, `reduce(${JSON.stringify(key)}) threw`);
    }
    if (typeof output !== 'string') throw new UserCodeError(`reduce(${JSON.stringify(key)}) returned ${typeof output}, not a string`);
    lines.push(formatOutputLine(key, output));
  }
  return lines.join('');
}

export async function callMap(app: MapReduceApp, file: string, contents: string): Promise<readonly KeyValue[]> {
  let pairs: unknown;
  try {
    const result = app.map(file, contents);
    pairs = result instanceof Promise ? await result : result;
  } catch (error) {
    throw userCodeError(error, `map(${JSON.stringify(file)}) threw`);
  }
  if (!Array.isArray(pairs)) throw new UserCodeError(`map(${JSON.stringify(file)}) returned ${typeof pairs}, not an array`);
  for (const pair of pairs as unknown[]) {
    const ok = typeof pair === 'object' && pair !== null && typeof (pair as KeyValue).key === 'string' && typeof (pair as KeyValue).value === 'string';
    if (!ok) throw new UserCodeError(`map(${JSON.stringify(file)}) returned an element that is not {key: string, value: string}`);
  }
  return pairs as readonly KeyValue[];
}

function groupPairs(pairs: readonly KeyValue[]): Groups {
  const groups: Groups = new Map();
  for (const pair of pairs) addPair(groups, pair);
  return groups;
}

/**
 * Splits grouped (and combined) pairs into reduce buckets. Grouping first hashes each
 * distinct key once instead of once per occurrence, for apps that emit a key many times.
 */
function partitionGroups(groups: Groups, reduceCount: number): Partition[] {
  const partitions: Partition[] = Array.from({ length: reduceCount }, () => ({ keys: [], values: [] }));
  for (const [key, values] of groups) {
    const partition = partitions[partitionOf(key, reduceCount)]!;
    partition.keys.push(key);
    partition.values.push(values);
  }
  return partitions;
}

export function addPair(groups: Groups, pair: KeyValue): void {
  const values = groups.get(pair.key);
  if (values === undefined) groups.set(pair.key, [pair.value]);
  else values.push(pair.value);
}

/**
 * Replaces each key's values by combine's result, when the app has a combiner. A key with a
 * single value is left alone: a combiner may be applied any number of times, zero included
 * (types.ts), and with in-mapper combining (wc) that is almost every key.
 */
export function applyCombiner(app: MapReduceApp, groups: Groups): Groups {
  const combine = app.combine;
  if (combine === undefined) return groups;
  for (const [key, values] of groups) {
    if (values.length === 1) continue;
    let combined: unknown;
    try {
      combined = combine(key, values);
    } catch (error) {
      throw userCodeError(error, `combine(${JSON.stringify(key)}) threw`);
    }
    const ok = Array.isArray(combined) && combined.length > 0 && combined.every((value) => typeof value === 'string');
    if (!ok) throw new UserCodeError(`combine(${JSON.stringify(key)}) must return a non-empty array of strings`);
    groups.set(key, combined as string[]);
  }
  return groups;
}

/**
 * Input names are what the job was given: absolute paths from the command line (the input
 * disk is then rooted at '/') or names relative to the input disk in tests. Disk paths are
 * relative, so leading slashes go.
 */
export async function readInput(disk: Disk, file: string): Promise<Uint8Array> {
  try {
    return await disk.readFile(file.replace(/^\/+/, ''));
  } catch (error) {
    if (error instanceof AssertionFailure) throw error;
    throw new InputError(file, describeError(error));
  }
}

async function readIntermediate(disk: Disk, name: string): Promise<Uint8Array> {
  try {
    return await disk.readFile(name);
  } catch (error) {
    if (error instanceof AssertionFailure) throw error;
    throw new IntermediateFileError(`cannot read intermediate file ${name}: ${describeError(error)}`);
  }
}

/** Writes `name` via a temporary file and a rename. `durable` syncs before the rename. */
export async function writeAtomically(env: TaskEnv, name: string, data: Uint8Array, durable: boolean): Promise<void> {
  const temporary = env.temporaryName();
  const file = await env.workDisk.open(temporary, { create: true });
  try {
    // A temporary file left by an earlier run of the same name must not prefix our data.
    if (file.size() > 0) await file.truncate(0);
    await file.append([data]);
    if (durable) await file.sync();
  } finally {
    await file.close();
  }
  await env.workDisk.rename(temporary, name);
}

function userCodeError(error: unknown, what: string): Error {
  if (error instanceof AssertionFailure) return error;
  return new UserCodeError(`${what}: ${describeError(error)}`);
}
