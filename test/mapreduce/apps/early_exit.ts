// The lab's early_exit: two reduce calls are slow, so a worker or coordinator that exits
// before every output is final shows up as a difference between two snapshots.

import { setTimeout as sleep } from 'node:timers/promises';
import type { KeyValue } from '../../../src/mapreduce/types.js';

export function map(filename: string, _contents: string): KeyValue[] {
  return [{ key: filename, value: '1' }];
}

export async function reduce(key: string, values: string[]): Promise<string> {
  if (key.includes('sherlock') || key.includes('tom')) await sleep(3000);
  return String(values.length);
}
