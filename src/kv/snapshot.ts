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
// runtime/sectioned-snapshot.ts does the encoding a batch at a time; this names the sections.

import { assert } from '../stdx/assert.js';
import { arrayHeader, SectionedSnapshotEncoder } from '../runtime/sectioned-snapshot.js';
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

/** The key/value state machine's snapshot, encoded a batch of keys and sessions per step. */
export class KvSnapshotEncoder extends SectionedSnapshotEncoder {
  constructor(
    private readonly capture: StoreCapture,
    /** Copied at the snapshot index, least recently used first. */
    sessions: readonly SessionRecord[],
    /** The state machine's applied index when the snapshot began. */
    readonly index: number,
    clockMs: number,
    formatVersion: number,
    /** Releases the capture (its preimages) once the snapshot is finished or aborted. */
    release: () => void,
  ) {
    super(
      [formatVersion, index, clockMs],
      [
        {
          count: capture.keys.length,
          fields: 3,
          push: (flat, i) => {
            const entry = capture.entryAt(i);
            flat.push(entry.key, entry.value, entry.version);
          },
        },
        { count: sessions.length, fields: 4, push: (flat, i) => flat.push(...sessions[i]!) },
      ],
      pack,
      release,
    );
  }

  /** Keys encoded so far (a step encodes at most its budget of keys and sessions together). */
  get keysDone(): number {
    return this.encoded(0);
  }

  get sessionsDone(): number {
    return this.encoded(1);
  }

  get keysTotal(): number {
    return this.capture.keys.length;
  }

  override step(budget: number): boolean {
    assert(!this.encoding || this.capture.active, 'the store was cleared under an unfinished snapshot (abort it first)');
    return super.step(budget);
  }
}

export { arrayHeader };
