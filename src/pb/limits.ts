// The bounds of the primary/backup layer (STYLE.md 7), checked where data enters.

export const pbLimits = {
  /** Log entries shipped but not yet acknowledged; past it the primary refuses new inputs ('overloaded'): a slow backup throttles the primary instead of growing its buffer. */
  unackedEntriesMax: 8192,
  /** Outputs held by the Output Rule at once. */
  heldOutputsMax: 8192,
  /** Reads (clock, random) one event may make. */
  readsPerEventMax: 1024,
  /** Entries in one 'entries' message. */
  entriesPerMessageMax: 4096,
  /** Timers the machine may have pending. */
  timersMax: 1024,
  /** Trace lines kept (oldest dropped). */
  traceLinesMax: 200_000,
} as const;
