// Word count: map emits (word, "1") per occurrence; reduce returns how many. The combiner
// sums counts on the map side, so reduce sums counts rather than counting values — which
// is the same number when every value is "1".

import type { KeyValue } from '../types.js';
import { forEachWord } from './words.js';

export function map(_filename: string, contents: string): KeyValue[] {
  const pairs: KeyValue[] = [];
  forEachWord(contents, (word) => pairs.push({ key: word, value: '1' }));
  return pairs;
}

export function combine(_key: string, values: string[]): string[] {
  return [String(sum(values))];
}

export function reduce(_key: string, values: string[]): string {
  return String(sum(values));
}

function sum(values: string[]): number {
  let total = 0;
  for (const value of values) total += value === '1' ? 1 : Number(value);
  return total;
}
