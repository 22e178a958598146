// The sequential reference (the lab's mrsequential): map every input in order, group all
// pairs by key, call reduce once per key in byte order, write one file `mr-out-0`. The
// distributed job must produce the same lines, split over its mr-out-R files.
//
// With a combiner the pairs of each input file are combined before they join the others,
// exactly what a map task does; without one (`useCombiner: false`) this is the plain
// definition, which the tests use to check that a combiner does not change the result.

import type { Disk } from '../io/disk.js';
import { outputName, type Groups } from './intermediate.js';
import { addPair, applyCombiner, callMap, readInput, reduceGroups, writeAtomically } from './tasks.js';
import type { MapReduceApp } from './types.js';

export interface SequentialJob {
  app: MapReduceApp;
  inputs: readonly string[];
  inputDisk: Disk;
  /** Where mr-out-0 is written. */
  outDisk: Disk;
  useCombiner?: boolean;
  /** Called after each input file, for progress. */
  onInput?(file: string, bytes: number): void;
}

export interface SequentialStats {
  inputBytes: number;
  mapRecords: number;
  outputRecords: number;
}

export async function runSequential(job: SequentialJob): Promise<SequentialStats> {
  const all: Groups = new Map();
  const stats: SequentialStats = { inputBytes: 0, mapRecords: 0, outputRecords: 0 };
  const decoder = new TextDecoder('utf-8');
  for (const file of job.inputs) {
    const bytes = await readInput(job.inputDisk, file);
    const pairs = await callMap(job.app, file, decoder.decode(bytes));
    stats.inputBytes += bytes.length;
    stats.mapRecords += pairs.length;
    if (job.useCombiner === false || job.app.combine === undefined) {
      for (const pair of pairs) addPair(all, pair);
    } else {
      const local: Groups = new Map();
      for (const pair of pairs) addPair(local, pair);
      for (const [key, values] of applyCombiner(job.app, local)) {
        for (const value of values) addPair(all, { key, value });
      }
    }
    job.onInput?.(file, bytes.length);
  }
  const text = await reduceGroups(job.app, all);
  stats.outputRecords = all.size;
  const env = { app: job.app, workDisk: job.outDisk, inputDisk: job.inputDisk, temporaryName: () => '.mr-tmp-sequential' };
  await writeAtomically(env, outputName(0), new TextEncoder().encode(text), true);
  return stats;
}
