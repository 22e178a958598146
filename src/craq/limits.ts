// The bounds of a CRAQ node (STYLE.md 7). Each is checked where data enters: a client
// request over a bound is refused with 'bad-request' or 'overloaded', a peer message over
// one is dropped by the decoder.

export const craqLimits = {
  /** The longest key, in UTF-16 code units. */
  keyCharsMax: 1024,
  /** The longest value, in UTF-16 code units. */
  valueCharsMax: 256 * 1024,
  /** Writes in one propagate message. */
  propagateWritesMax: 256,
  /** Committed writes a node keeps after committing them, so a rejoining successor can catch up without a whole snapshot. */
  catchUpWritesMax: 4096,
  /** Uncommitted writes a head accepts before refusing with 'overloaded'. */
  uncommittedWritesMax: 16_384,
  /** Strong reads waiting for the tail's answer at one node. */
  pendingQueriesMax: 16_384,
  /** Distinct keys a chain holds (a snapshot carries them all in one message). */
  keysMax: 100_000,
  /** Objects in one snapshot message. */
  snapshotObjectsMax: 100_000,
} as const;
