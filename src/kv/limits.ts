// Every limit of the key/value state machine, named (STYLE.md 7). They are part of the
// replicated state machine's definition: every member of a group must run with the same
// values, or the members could answer the same command differently.

export interface KvLimits {
  /** Bytes of a key, UTF-8 encoded. Keys are non-empty. */
  readonly keyBytesMax: number;
  /** Bytes of a value, including the value an append would produce. */
  readonly valueBytesMax: number;
  /** Keys held at most; a write that would create one more is refused (keys-full). */
  readonly keysMax: number;
  /** Entries one scan returns at most; a scan asking for more is refused (invalid). */
  readonly scanLimitMax: number;
  /** Client sessions held at most; a new one evicts the least recently used. */
  readonly sessionsMax: number;
  /**
   * Replies a session keeps for requests the client has not acknowledged yet: how many
   * requests one client may have outstanding. Beyond it a request is refused (session-window-full).
   */
  readonly sessionRepliesMax: number;
  /**
   * A session with no command for this long, in the leader-stamped time of the log, expires
   * (Raft thesis §6.3). Log time, never a member's own clock, so every member agrees.
   */
  readonly sessionIdleMsMax: number;
}

export const kvDefaults: KvLimits = {
  keyBytesMax: 1024,
  // Leaves room for the command's other fields under the replica's 1 MiB commandBytesMax.
  valueBytesMax: 512 * 1024,
  keysMax: 1_000_000,
  scanLimitMax: 1000,
  sessionsMax: 100_000,
  sessionRepliesMax: 64,
  sessionIdleMsMax: 60 * 60 * 1000,
};
