// The lab's crash/nocrash apps share everything except maybeCrash().

import type { KeyValue } from '../../../src/mapreduce/types.js';

export function crashMap(filename: string, contents: string): KeyValue[] {
  return [
    { key: 'a', value: filename },
    { key: 'b', value: String(Buffer.byteLength(filename)) },
    { key: 'c', value: String(Buffer.byteLength(contents)) },
    { key: 'd', value: 'xyzzy' },
  ];
}

export function crashReduce(values: string[]): string {
  return [...values].sort().join(' ');
}
