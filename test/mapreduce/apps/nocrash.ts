// The lab's nocrash app: crash without the crashes, for the crash test's reference output.

import type { KeyValue } from '../../../src/mapreduce/types.js';
import { crashMap, crashReduce } from './crashlib.js';

export function map(filename: string, contents: string): KeyValue[] {
  return crashMap(filename, contents);
}

export function reduce(_key: string, values: string[]): string {
  return crashReduce(values);
}
