// The key/value map itself: byte values, each with a version (the log index of its last
// write), and ordered scans. Pure data structure; the state machine decides what to write.

import { assert } from '../stdx/assert.js';
import type { KvEntry } from './codec.js';

/**
 * A value kept as the parts appended to it, joined when first read: an append then costs
 * O(appended bytes) on every member instead of a copy of the whole value, and only the
 * member that serves a read pays for joining (once, until the next append).
 */
class Item {
  private parts: Uint8Array[];
  /** Invariant: the sum of the parts' lengths. */
  length: number;

  constructor(
    value: Uint8Array,
    /** Invariant: > 0, the index of the entry that last wrote the key. */
    readonly version: number,
  ) {
    this.parts = [value];
    this.length = value.length;
  }

  get value(): Uint8Array {
    if (this.parts.length !== 1) {
      const joined = new Uint8Array(this.length);
      let offset = 0;
      for (const part of this.parts) {
        joined.set(part, offset);
        offset += part.length;
      }
      this.parts = [joined];
    }
    return this.parts[0]!;
  }

  appended(suffix: Uint8Array, version: number): Item {
    const item = new Item(suffix, version);
    item.parts = suffix.length === 0 ? this.parts.slice() : [...this.parts, suffix];
    item.length = this.length + suffix.length;
    return item;
  }
}

export interface ScanPage {
  readonly entries: KvEntry[];
  /** The last key returned if more keys with the prefix follow it, else null. */
  readonly next: string | null;
}

export class KvStore {
  private readonly items = new Map<string, Item>();
  /**
   * All keys in ascending order, built on the first scan after the key set changed (an
   * overwrite keeps it). Invariant: undefined, or exactly the keys of `items`, sorted.
   */
  private sortedKeys: string[] | undefined = undefined;

  get size(): number {
    return this.items.size;
  }

  get(key: string): Item | undefined {
    return this.items.get(key);
  }

  /** Sets `key` to `value` (which the store now owns). */
  set(key: string, value: Uint8Array, version: number): void {
    assert(version > 0, 'versions are log indices');
    if (!this.items.has(key)) this.sortedKeys = undefined;
    this.items.set(key, new Item(value, version));
  }

  /** Appends `suffix` (which the store now owns) to the key's value ('' if absent). */
  append(key: string, suffix: Uint8Array, version: number): void {
    assert(version > 0, 'versions are log indices');
    const item = this.items.get(key);
    if (item === undefined) this.set(key, suffix, version);
    else this.items.set(key, item.appended(suffix, version));
  }

  delete(key: string): boolean {
    const existed = this.items.delete(key);
    if (existed) this.sortedKeys = undefined;
    return existed;
  }

  clear(): void {
    this.items.clear();
    this.sortedKeys = undefined;
  }

  /** Keys starting with `prefix`, greater than `after` (if not ''), ascending, at most `limit`. */
  scan(prefix: string, after: string, limit: number): ScanPage {
    assert(limit >= 1, 'scan limit >= 1');
    const keys = this.keys();
    const from = after === '' || after < prefix ? prefix : after;
    let i = lowerBound(keys, from);
    if (i < keys.length && keys[i] === after) i++;
    const entries: KvEntry[] = [];
    for (; i < keys.length && entries.length < limit; i++) {
      const key = keys[i]!;
      if (!key.startsWith(prefix)) break;
      const item = this.items.get(key)!;
      entries.push({ key, value: item.value, version: item.version });
    }
    const more = i < keys.length && keys[i]!.startsWith(prefix);
    return { entries, next: more && entries.length > 0 ? entries[entries.length - 1]!.key : null };
  }

  /** Every entry in ascending key order (for snapshots: equal stores encode equally). */
  entries(): KvEntry[] {
    return this.keys().map((key) => {
      const item = this.items.get(key)!;
      return { key, value: item.value, version: item.version };
    });
  }

  private keys(): string[] {
    this.sortedKeys ??= [...this.items.keys()].sort(compareKeys);
    return this.sortedKeys;
  }
}

/** Keys order by UTF-16 code units: deterministic, and what JavaScript's < does. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The first position in sorted `keys` whose key is >= `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (keys[mid]! < key) low = mid + 1;
    else high = mid;
  }
  return low;
}
