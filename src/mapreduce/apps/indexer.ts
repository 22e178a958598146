// Inverted index: for each distinct word of a document, emit (word, document name); reduce
// returns "<count> <doc1>,<doc2>,..." with the documents in byte order.

import { compareKeys, type KeyValue } from '../types.js';
import { forEachWord } from './words.js';

export function map(filename: string, contents: string): KeyValue[] {
  const words = new Set<string>();
  forEachWord(contents, (word) => words.add(word));
  return [...words].map((word) => ({ key: word, value: filename }));
}

export function reduce(_key: string, values: string[]): string {
  const sorted = [...values].sort(compareKeys);
  return `${sorted.length} ${sorted.join(',')}`;
}
