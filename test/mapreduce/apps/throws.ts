// A faulty application: map throws on one input (Grimm's fairy tales), works on the rest.

import type { KeyValue } from '../../../src/mapreduce/types.js';

export function map(filename: string, _contents: string): KeyValue[] {
  if (filename.includes('grimm')) throw new Error('the wolf ate the input');
  return [{ key: 'ok', value: '1' }];
}

export function reduce(_key: string, values: string[]): string {
  return String(values.length);
}
