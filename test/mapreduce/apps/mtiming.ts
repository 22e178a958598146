// The lab's mtiming: map parallelism. Each map records when it ran and how many workers were
// mapping at once.

import type { KeyValue } from '../../../src/mapreduce/types.js';
import { nparallel } from './parallel.js';

export async function map(_filename: string, _contents: string): Promise<KeyValue[]> {
  const seconds = (Date.now() / 1000).toFixed(1);
  const count = await nparallel('map');
  return [
    { key: `times-${process.pid}`, value: seconds },
    { key: `parallel-${process.pid}`, value: String(count) },
  ];
}

export function reduce(_key: string, values: string[]): string {
  return [...values].sort().join(' ');
}
