// The lab's rtiming: reduce parallelism. Ten keys, so ten reduce calls spread over the
// buckets; each reports how many workers were reducing at once.

import type { KeyValue } from '../../../src/mapreduce/types.js';
import { nparallel } from './parallel.js';

export function map(_filename: string, _contents: string): KeyValue[] {
  return 'abcdefghij'.split('').map((key) => ({ key, value: '1' }));
}

export async function reduce(_key: string, _values: string[]): Promise<string> {
  return String(await nparallel('reduce'));
}
