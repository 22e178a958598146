// Incremental snapshots of the key/value state machine (issue 5 item 3): the state at one
// log index is encoded a batch at a time across event-loop turns while applies go on.
//
// The store keeps copy-on-write preimages (store.ts, StoreCapture): the first write to a
// key after the snapshot began saves the key's old value, so the encoder reads every key as
// it was at the snapshot index. Sessions are small and bounded (sessionsMax ×
// sessionRepliesMax), so they are copied when the snapshot begins.
//
// The bytes equal KvStateMachine.snapshot()'s at the same state, so restore() reads both:
//
//   [format, applied, clockMs, [key, value, version, ...], [client, lastMs, ack, [seq, reply, ...], ...]]
//
// A MessagePack array is a header holding its length followed by its elements, each encoded
// on its own, so the outer arrays' headers are written from the known counts and each batch
// is msgpackr's encoding of a flat array with that array's own header cut off.

import { assert } from '../stdx/assert.js';
import type { IncrementalSnapshot } from '../runtime/replica.js';
import { pack } from './codec.js';
import type { Session } from './sessions.js';
import type { StoreCapture } from './store.js';

/** A session as a snapshot holds it: [client, lastMs, ack, [seq, reply, ...]]. */
export type SessionRecord = [number, number, number, unknown[]];

/** Copies a session's fields now (they change as the session is used). O(kept replies). */
export function sessionRecord(session: Session): SessionRecord {
  const replies: unknown[] = [];
  for (const [seq, reply] of session.replies) replies.push(seq, reply);
  return [session.client, session.lastMs, session.ack, replies];
}

type EncoderState = 'encoding' | 'encoded' | 'finished' | 'aborted';

export class KvSnapshotEncoder implements IncrementalSnapshot {
  /** Encoded pieces in order. Invariant: their concatenation is a prefix of the snapshot. */
  private readonly chunks: Uint8Array[] = [];
  /** Invariant: 0 <= keysEncoded <= capture.keys.length. */
  private keysEncoded = 0;
  /** Invariant: 0 <= sessionsEncoded <= sessions.length; > 0 only once every key is encoded. */
  private sessionsEncoded = 0;
  private state: EncoderState = 'encoding';

  constructor(
    private readonly capture: StoreCapture,
    /** Copied at the snapshot index, least recently used first. */
    private readonly sessions: readonly SessionRecord[],
    /** The state machine's applied index when the snapshot began. */
    readonly index: number,
    clockMs: number,
    formatVersion: number,
    /** Releases the capture (its preimages) once the snapshot is finished or aborted. */
    private readonly release: () => void,
  ) {
    this.chunks.push(arrayHeader(5), withoutArrayHeader(pack([formatVersion, index, clockMs])));
    this.chunks.push(arrayHeader(capture.keys.length * 3));
    if (capture.keys.length === 0) this.chunks.push(arrayHeader(sessions.length * 4));
  }

  /** Keys encoded so far (a step encodes at most its budget of keys and sessions together). */
  get keysDone(): number {
    return this.keysEncoded;
  }

  get sessionsDone(): number {
    return this.sessionsEncoded;
  }

  get keysTotal(): number {
    return this.capture.keys.length;
  }

  /**
   * Encodes up to `budget` more keys and sessions (together); true once all are encoded.
   * A step's cost is proportional to its budget and the sizes of the values it encodes.
   */
  step(budget: number): boolean {
    assert(budget >= 1, 'a step encodes at least one key or session');
    assert(this.state === 'encoding' || this.state === 'encoded', `step() on a ${this.state} snapshot`);
    if (this.state === 'encoded') return true;
    assert(this.capture.active, 'the store was cleared under an unfinished snapshot (abort it first)');
    const keyCount = this.capture.keys.length;
    const keyBatch = Math.min(budget, keyCount - this.keysEncoded);
    if (keyBatch > 0) this.encodeKeys(keyBatch);
    const sessionBatch = Math.min(budget - keyBatch, this.sessions.length - this.sessionsEncoded);
    if (sessionBatch > 0) this.encodeSessions(sessionBatch);
    if (this.keysEncoded === keyCount && this.sessionsEncoded === this.sessions.length) {
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

  /** Gives up (the state is being replaced, or the host stops); the store stops saving preimages. */
  abort(): void {
    if (this.state === 'finished' || this.state === 'aborted') return;
    if (this.state === 'encoding') this.release();
    this.state = 'aborted';
    this.chunks.length = 0;
  }

  private encodeKeys(batch: number): void {
    const flat: unknown[] = [];
    const end = this.keysEncoded + batch;
    for (let i = this.keysEncoded; i < end; i++) {
      const entry = this.capture.entryAt(i);
      flat.push(entry.key, entry.value, entry.version);
    }
    this.chunks.push(withoutArrayHeader(pack(flat)));
    this.keysEncoded = end;
    if (end === this.capture.keys.length) this.chunks.push(arrayHeader(this.sessions.length * 4));
  }

  private encodeSessions(batch: number): void {
    assert(this.keysEncoded === this.capture.keys.length, 'sessions follow the keys');
    const flat: unknown[] = [];
    const end = this.sessionsEncoded + batch;
    for (let i = this.sessionsEncoded; i < end; i++) flat.push(...this.sessions[i]!);
    this.chunks.push(withoutArrayHeader(pack(flat)));
    this.sessionsEncoded = end;
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
