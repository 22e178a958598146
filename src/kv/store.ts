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

/**
 * The store as it was when a snapshot began, read while applies go on (copy-on-write):
 * every key that existed then, in ascending order, and the first value each key had before
 * a later write changed it (its preimage). Reading key k gives `preimages.get(k) ?? live k`,
 * which is k at the snapshot index however the store changed since.
 */
export class StoreCapture {
  /**
   * The key's value at the snapshot index, saved by its first mutation after it; null: the
   * key did not exist then. Invariant: a key is saved at most once, before that mutation.
   */
  private readonly preimages = new Map<string, Item | null>();
  private ended = false;

  constructor(
    private readonly items: ReadonlyMap<string, Item>,
    /** Every key at the snapshot index, ascending. Never mutated (the store replaces its sorted list). */
    readonly keys: readonly string[],
  ) {}

  get active(): boolean {
    return !this.ended;
  }

  /** Keys whose pre-snapshot value was saved so far (for tests and metrics). */
  get preimageCount(): number {
    return this.preimages.size;
  }

  /** The entry of `keys[i]` at the snapshot index. */
  entryAt(i: number): KvEntry {
    assert(!this.ended, 'a capture is read only while it is active');
    const key = this.keys[i]!;
    const item = this.preimages.has(key) ? this.preimages.get(key) : this.items.get(key);
    assert(item !== undefined && item !== null, 'every captured key existed at the snapshot index');
    return { key, value: item.value, version: item.version };
  }

  /** Called by the store before it changes `key`. */
  preserve(key: string): void {
    if (this.preimages.has(key)) return;
    this.preimages.set(key, this.items.get(key) ?? null);
  }

  end(): void {
    this.ended = true;
    this.preimages.clear();
  }
}

export class KvStore {
  private readonly items = new Map<string, Item>();
  /** The snapshot in progress, if any. Invariant: undefined or active. */
  private capture: StoreCapture | undefined = undefined;
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
    this.capture?.preserve(key);
    if (!this.items.has(key)) this.sortedKeys = undefined;
    this.items.set(key, new Item(value, version));
  }

  /** Appends `suffix` (which the store now owns) to the key's value ('' if absent). */
  append(key: string, suffix: Uint8Array, version: number): void {
    assert(version > 0, 'versions are log indices');
    const item = this.items.get(key);
    if (item === undefined) this.set(key, suffix, version);
    else {
      this.capture?.preserve(key);
      this.items.set(key, item.appended(suffix, version));
    }
  }

  delete(key: string): boolean {
    if (this.items.has(key)) this.capture?.preserve(key);
    const existed = this.items.delete(key);
    if (existed) this.sortedKeys = undefined;
    return existed;
  }

  /** Empties the store; a snapshot in progress ends (its state is gone). */
  clear(): void {
    this.endCapture();
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

  /**
   * Starts a copy-on-write capture of the current state (one at a time). Cost: O(1) when the
   * sorted key list is current (after a scan or an earlier snapshot with no key created or
   * deleted since), else one sort of the key set, O(n log n) — far cheaper than encoding the
   * values, and the list is shared with scans, not copied. Each later mutation of a captured
   * key costs one map insertion until endCapture().
   */
  beginCapture(): StoreCapture {
    assert(this.capture === undefined, 'one snapshot in progress at a time');
    this.capture = new StoreCapture(this.items, this.keys());
    return this.capture;
  }

  /**
   * Ends `capture` (default: the one in progress) and drops its preimages. A capture that
   * clear() already ended is not the current one, so ending it again leaves a newer one be.
   */
  endCapture(capture: StoreCapture | undefined = this.capture): void {
    capture?.end();
    if (capture === this.capture) this.capture = undefined;
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
