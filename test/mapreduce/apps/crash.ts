// The lab's crash app: at the start of every map and reduce call, a third of the time the
// worker process exits at once, a third of the time it sleeps up to 10 s.

import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KeyValue } from '../../../src/mapreduce/types.js';
import { crashMap, crashReduce } from './crashlib.js';

async function maybeCrash(): Promise<void> {
  const roll = randomInt(1000);
  if (roll < 330) process.exit(1);
  if (roll < 660) await sleep(randomInt(10_000));
}

export async function map(filename: string, contents: string): Promise<KeyValue[]> {
  await maybeCrash();
  return crashMap(filename, contents);
}

export async function reduce(_key: string, values: string[]): Promise<string> {
  await maybeCrash();
  return crashReduce(values);
}
