// The lab's jobcount: every map execution leaves a marker file, so the reduce output counts
// how many times map tasks ran in total (it must equal the number of inputs).

import { readdirSync, writeFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KeyValue } from '../../../src/mapreduce/types.js';

let count = 0;

export async function map(_filename: string, _contents: string): Promise<KeyValue[]> {
  writeFileSync(`mr-worker-jobcount-${process.pid}-${count++}`, 'x');
  await sleep(2000 + randomInt(3000));
  return [{ key: 'a', value: 'x' }];
}

export function reduce(_key: string, _values: string[]): string {
  return String(readdirSync('.').filter((name) => name.startsWith('mr-worker-jobcount')).length);
}
