// The objects of one CRAQ node: per key, the newest clean (committed) version and the
// dirty versions above it, in version order (the paper's §2.3).
//
//   key "x":  clean v3 "c"  |  dirty v4 "d", v5 "e"      ← newest is v5, dirty
//
// A dirty version arrives from the predecessor (or is made by the head); it turns clean
// when the tail's acknowledgement passes this node, and every older version is dropped
// then. Invariant: every dirty version of a key is newer than its clean one, and the
// versions of a key are contiguous from clean + 1 to the newest.

import { assert } from '../stdx/assert.js';
import type { ChainWrite, ObjectVersion } from './types.js';

export interface StoredVersion {
  readonly version: number;
  readonly value: string;
}

interface StoredObject {
  clean: StoredVersion | undefined;
  /** Ascending by version, each one more than the last. */
  dirty: StoredVersion[];
}

export class ObjectStore {
  private readonly objects = new Map<string, StoredObject>();

  keyCount(): number {
    return this.objects.size;
  }

  has(key: string): boolean {
    return this.objects.has(key);
  }

  /** The newest version of `key`, clean or dirty; 0 if it has none. */
  newestVersion(key: string): number {
    const object = this.objects.get(key);
    if (object === undefined) return 0;
    return object.dirty.at(-1)?.version ?? object.clean?.version ?? 0;
  }

  cleanVersion(key: string): number {
    return this.objects.get(key)?.clean?.version ?? 0;
  }

  isDirty(key: string): boolean {
    return (this.objects.get(key)?.dirty.length ?? 0) > 0;
  }

  /** Version `version` of `key` (0: the absent object), if this node still holds it. */
  find(key: string, version: number): StoredVersion | null | undefined {
    if (version === 0) return this.cleanVersion(key) === 0 ? null : undefined;
    const object = this.objects.get(key);
    if (object === undefined) return undefined;
    if (object.clean?.version === version) return object.clean;
    return object.dirty.find((stored) => stored.version === version);
  }

  /** Adds a dirty version. Precondition: it is the next version of its key. */
  addDirty(write: ChainWrite): void {
    assert(write.version === this.newestVersion(write.key) + 1, `version ${write.version} of ${write.key} follows ${this.newestVersion(write.key)}`);
    let object = this.objects.get(write.key);
    if (object === undefined) {
      object = { clean: undefined, dirty: [] };
      this.objects.set(write.key, object);
    }
    object.dirty.push({ version: write.version, value: write.value });
  }

  /** Marks `write` clean and drops every older version of its key. Precondition: held dirty. */
  commit(write: ChainWrite): void {
    const object = this.objects.get(write.key);
    assert(object !== undefined, `committed key ${write.key} is held`);
    const first = object.dirty[0];
    assert(first !== undefined && first.version === write.version, `version ${write.version} of ${write.key} is the oldest dirty one`);
    object.clean = first;
    object.dirty.shift();
  }

  /** Every clean object, sorted by key (the deterministic state transfer). */
  cleanObjects(): ObjectVersion[] {
    const keys = [...this.objects.keys()].sort();
    const objects: ObjectVersion[] = [];
    for (const key of keys) {
      const clean = this.objects.get(key)!.clean;
      if (clean !== undefined) objects.push({ key, version: clean.version, value: clean.value });
    }
    return objects;
  }

  /** Replaces everything with `objects`, all clean. */
  restore(objects: readonly ObjectVersion[]): void {
    this.objects.clear();
    for (const object of objects) this.objects.set(object.key, { clean: { version: object.version, value: object.value }, dirty: [] });
  }

  /** Drops every dirty version (a restarted node keeps only what it knows is committed). */
  dropDirty(): void {
    for (const [key, object] of this.objects) {
      object.dirty = [];
      if (object.clean === undefined) this.objects.delete(key);
    }
  }
}
