// An IncrementalSnapshot (replica.ts) whose bytes are one MessagePack array: a few head
// fields, then each section (keys, znodes, sessions, ...) as one flat array of its items'
// fields. The services' state machines describe their sections; this encodes them a budget
// of items per step, across event-loop turns, and joins the pieces at the end.
//
// A MessagePack array is a header holding its length followed by its elements, each encoded
// on its own, so every array header is written from the known counts and each batch is the
// packer's encoding of a flat array with that array's own header cut off. The result equals
// packing the whole array at once, so one decoder reads snapshots made either way.

import { assert } from '../stdx/assert.js';
import type { IncrementalSnapshot } from './replica.js';

export interface SnapshotSection {
  /** Items in the section. */
  readonly count: number;
  /** Fields each item adds to the section's flat array. */
  readonly fields: number;
  /** Pushes item `i`'s fields onto `flat` (as the item was when the snapshot began). */
  push(flat: unknown[], i: number): void;
}

type EncoderState = 'encoding' | 'encoded' | 'finished' | 'aborted';

export class SectionedSnapshotEncoder implements IncrementalSnapshot {
  /** Encoded pieces in order. Invariant: their concatenation is a prefix of the snapshot. */
  private readonly chunks: Uint8Array[] = [];
  /** Invariant: sections before `section` are encoded, and `item` items of `section`. */
  private section = 0;
  private item = 0;
  private state: EncoderState = 'encoding';

  constructor(
    head: readonly unknown[],
    private readonly sections: readonly SnapshotSection[],
    private readonly pack: (value: unknown[]) => Uint8Array,
    /** Called once when the snapshot is encoded or aborted (the state stops keeping preimages). */
    private readonly release: () => void,
  ) {
    this.chunks.push(arrayHeader(head.length + sections.length), withoutArrayHeader(pack([...head])));
    const first = sections[0];
    if (first !== undefined) this.chunks.push(arrayHeader(first.count * first.fields));
    this.skipFinished();
  }

  /** Whether items remain to encode (not yet encoded, finished or aborted). */
  protected get encoding(): boolean {
    return this.state === 'encoding';
  }

  /** Items of section `i` encoded so far. */
  encoded(i: number): number {
    return i < this.section ? this.sections[i]!.count : i === this.section ? this.item : 0;
  }

  /**
   * Encodes up to `budget` more items, across sections; true once all are encoded. A step's
   * cost is proportional to its budget and the sizes of what it encodes.
   */
  step(budget: number): boolean {
    assert(budget >= 1, 'a step encodes at least one item');
    assert(this.state === 'encoding' || this.state === 'encoded', `step() on a ${this.state} snapshot`);
    if (this.state === 'encoded') return true;
    let left = budget;
    while (left > 0 && this.section < this.sections.length) {
      const section = this.sections[this.section]!;
      const batch = Math.min(left, section.count - this.item);
      const flat: unknown[] = [];
      for (let i = this.item; i < this.item + batch; i++) section.push(flat, i);
      this.chunks.push(withoutArrayHeader(this.pack(flat)));
      this.item += batch;
      left -= batch;
      this.skipFinished();
    }
    if (this.section === this.sections.length) {
      this.state = 'encoded';
      this.release();
    }
    return this.state === 'encoded';
  }

  /** The whole snapshot, once step() returned true. One copy of its bytes. */
  finish(): Uint8Array {
    assert(this.state === 'encoded', `finish() on a ${this.state} snapshot`);
    this.state = 'finished';
    let length = 0;
    for (const chunk of this.chunks) length += chunk.length;
    const out = new Uint8Array(length);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    this.chunks.length = 0;
    return out;
  }

  /** Gives up (the state is being replaced, or the host stops). */
  abort(): void {
    if (this.state === 'finished' || this.state === 'aborted') return;
    if (this.state === 'encoding') this.release();
    this.state = 'aborted';
    this.chunks.length = 0;
  }

  /** Moves past finished (and empty) sections, writing each next section's array header. */
  private skipFinished(): void {
    while (this.section < this.sections.length && this.item === this.sections[this.section]!.count) {
      this.section++;
      this.item = 0;
      const next = this.sections[this.section];
      if (next !== undefined) this.chunks.push(arrayHeader(next.count * next.fields));
    }
  }
}

/** A MessagePack array header for `length` elements (fixarray, array 16 or array 32). */
export function arrayHeader(length: number): Uint8Array {
  assert(Number.isInteger(length) && length >= 0 && length <= 0xffffffff, 'a MessagePack array holds < 2^32 elements');
  if (length < 16) return Uint8Array.of(0x90 | length);
  if (length < 0x10000) return Uint8Array.of(0xdc, length >>> 8, length & 0xff);
  return Uint8Array.of(0xdd, length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
}

/** The elements of an encoded MessagePack array, without its header. */
function withoutArrayHeader(packed: Uint8Array): Uint8Array {
  const first = packed[0]!;
  const headerBytes = (first & 0xf0) === 0x90 ? 1 : first === 0xdc ? 3 : first === 0xdd ? 5 : 0;
  assert(headerBytes > 0, `not a MessagePack array (first byte ${first})`);
  return packed.subarray(headerBytes);
}
