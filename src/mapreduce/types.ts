// The application contract and the small value types shared by the coordinator, the
// workers and the sequential reference.

/** One intermediate pair emitted by an application's map function. */
export interface KeyValue {
  key: string;
  value: string;
}

/**
 * A MapReduce application: a plain module exporting `map` and `reduce` (the 6.824 lab's
 * Map/Reduce), and optionally `combine`.
 *
 * `combine` is the combiner of the MapReduce paper (§4.3): it may be applied any number of
 * times (zero included: a key with one value is left alone) to any subset of one key's
 * values on the map side, so it must be associative and commutative with respect to
 * `reduce` — `reduce(k, combine(k, vs))` must equal `reduce(k, vs)`. It pays off for
 * applications that emit a key many times per map task; word count sums inside its map
 * already (apps/wc.ts) and keeps its combiner as an example.
 *
 * `map` and `reduce` may return a promise (the lab's timing apps sleep inside them).
 */
export interface MapReduceApp {
  map(filename: string, contents: string): readonly KeyValue[] | Promise<readonly KeyValue[]>;
  reduce(key: string, values: string[]): string | Promise<string>;
  combine?(key: string, values: string[]): string[];
}

export type TaskKind = 'map' | 'reduce';

/**
 * Byte-wise (UTF-8) order of two strings, the order the lab's sort uses. JavaScript's `<`
 * compares UTF-16 code units, which agrees with UTF-8 byte order except when a surrogate
 * (an astral character) meets a code unit in U+E000..U+FFFF; that case is fixed up here.
 */
export function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return utf8Rank(x) - utf8Rank(y);
    return x - y;
  }
  return a.length - b.length;
}

/** Surrogates encode code points above U+FFFF, which sort after every BMP character. */
function utf8Rank(codeUnit: number): number {
  if (codeUnit >= 0xd800 && codeUnit <= 0xdfff) return codeUnit + 0x10000;
  return codeUnit;
}

/** One output line of a reduce task, the lab's `"%v %v\n"`. */
export function formatOutputLine(key: string, value: string): string {
  return `${key} ${value}\n`;
}
