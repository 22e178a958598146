// Every limit of the shard controller's state machine, named (STYLE.md 7). Part of the
// replicated state machine's definition: every member must run with the same values.

export interface ShardCtrlerLimits {
  /** Groups one configuration holds at most; a Join beyond it is refused (groups-full). */
  readonly groupsMax: number;
  /** Servers one group lists at most (servers-invalid beyond it). */
  readonly serversPerGroupMax: number;
  /** Bytes of one server name, UTF-8 (servers-invalid beyond it; empty names too). */
  readonly serverNameBytesMax: number;
  /**
   * Configurations kept at most: every one is kept (Query(num) of any old one must work),
   * so at the bound Join, Leave and Move are refused (configs-full) rather than dropping one.
   */
  readonly configsMax: number;
  /** Client sessions held at most; a new one evicts the least recently used. */
  readonly sessionsMax: number;
}

export const shardCtrlerDefaults: ShardCtrlerLimits = {
  groupsMax: 1000,
  serversPerGroupMax: 64,
  serverNameBytesMax: 256,
  configsMax: 100_000,
  sessionsMax: 10_000,
};
