// Operating errors of storage/ (STYLE.md 9): values the caller must handle, each naming the
// file, the byte offset when there is one, and what an operator can do about it.

import { unreachable } from '../stdx/assert.js';

export type StorageErrorCode =
  /** A record that fails its checksum (or is malformed) with valid data after it. */
  | 'corrupt-record'
  /** A segment file is missing from the middle of the log, or the log does not reach back to the snapshot. */
  | 'missing-segment'
  /** The hard state says entries are committed that the log does not hold. */
  | 'missing-entries'
  /** The newest snapshot file cannot be decoded. */
  | 'unreadable-snapshot'
  /** The disk failed a read during recovery. */
  | 'read-failed'
  /** The disk failed a write or a sync: nothing after it is acknowledged; restart to recover. */
  | 'write-failed'
  /** A record larger than the configured limit was refused. */
  | 'record-too-large'
  /** The log was closed. */
  | 'closed';

export class StorageError extends Error {
  override name = 'StorageError';
  constructor(
    readonly code: StorageErrorCode,
    /** The file concerned, relative to the disk root. */
    readonly file: string,
    /** The byte offset in `file`, when the problem has one. */
    readonly offset: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** What an operator can do when the data directory is damaged. */
export const REPAIR_ADVICE =
  'Acknowledged data may be affected, so this member refuses to start. Restore its data directory ' +
  'from a backup, or move the directory away and re-add the member to the cluster so that it ' +
  'catches up from the leader (by snapshot).';

/** Something recovery repaired on its own; the caller logs it. */
export type RecoveryEvent =
  | { readonly kind: 'torn-tail-truncated'; readonly file: string; readonly offset: number; readonly discardedBytes: number; readonly reason: string }
  | { readonly kind: 'empty-segment-removed'; readonly file: string }
  | { readonly kind: 'temp-file-removed'; readonly file: string };

export function describeRecoveryEvent(event: RecoveryEvent): string {
  switch (event.kind) {
    case 'torn-tail-truncated':
      return `${event.file}: truncated a torn final record at byte offset ${event.offset} (${event.reason}; ${event.discardedBytes} bytes discarded, never acknowledged)`;
    case 'empty-segment-removed':
      return `${event.file}: removed a log segment whose header was never made durable (a crash while rolling to it)`;
    case 'temp-file-removed':
      return `${event.file}: removed a temporary file left by a crash`;
    default:
      return unreachable(event, 'recovery event');
  }
}
