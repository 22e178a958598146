// The vocabulary of the linearizability checker: operations, models, options, results.

/**
 * One client call in a concurrent history.
 *
 * Times are any monotonic numbers (nanoseconds, milliseconds, event counters): only their
 * order matters. An operation whose call time equals another's return time counts as
 * concurrent with it (calls sort before returns at equal times), which is the lenient reading.
 */
export interface Operation<I, O> {
  /** Who made the call; used only to draw one timeline per client. */
  readonly clientId: number;
  readonly input: I;
  /**
   * The observed result, or `undefined` when it is unknown: the call never returned, or the
   * client gave up waiting (a timeout). Either way the server may still apply it later, so an
   * operation with an unknown result is treated as pending whatever its `returnTime`: it may
   * take effect at any time after its call, or never (if the model rejects it in some state,
   * it is placed there as a no-op).
   */
  readonly output: O | undefined;
  readonly callTime: number;
  /**
   * When the call returned, or `undefined` if it never did (its output must then be
   * `undefined` too). Only drawn for an operation whose output is unknown (see `output`).
   * Invariant: callTime <= returnTime.
   */
  readonly returnTime: number | undefined;
}

/**
 * A sequential specification. It must be a pure function of its arguments: the checker
 * caches transitions, so `step` is called at most once per (state, operation) pair.
 */
export interface Model<S, I, O> {
  readonly name: string;
  init(): S;
  /**
   * The state after applying `input` with result `output` to `state`, or `undefined` if
   * that result is impossible in that state. States must never be `undefined` themselves.
   * `output === undefined` means the result is unknown; accept it if the input could run.
   */
  step(state: S, input: I, output: O | undefined): S | undefined;
  /** A hash of a state; equal states must hash equally. Any 32-bit integer. */
  hash(state: S): number;
  equal(a: S, b: S): boolean;
  /**
   * P-compositionality (Herlihy & Wing; Horn & Kroening): if the object is a set of
   * independent sub-objects (keys), return the key an input touches. The history is then
   * linearizable if and only if each key's sub-history is, and each is checked on its own.
   * Omit it for an object that cannot be split.
   */
  partitionKey?(input: I): string;
  /**
   * A key such that inputs with equal keys behave identically in `step`. Optional; with it,
   * the search treats pending operations with equal inputs as interchangeable and tries only
   * one order of them, which can save exponential work (many timed-out identical writes).
   */
  inputKey?(input: I): string;
  /**
   * Roughly how many bytes a state holds, charged to the memory budget when the search
   * remembers it. Omitted: a small constant, right for numbers and short strings.
   */
  stateBytes?(state: S): number;
  describeOperation(input: I, output: O | undefined): string;
  describeState(state: S): string;
}

export interface CheckOptions {
  /**
   * The whole check's time budget. When it runs out the verdict is 'unknown', never 'ok'.
   * Requires `nowMs`. Omitted: no time limit (memory is still bounded).
   */
  readonly timeBudgetMs?: number;
  /** A monotonic clock in milliseconds, injected so the checker itself stays deterministic. */
  readonly nowMs?: () => number;
  /**
   * Bound on the search's caches (visited configurations, transitions, states) for the
   * whole check, in bytes. Reaching it makes a partition 'unknown'.
   */
  readonly cacheBytesMax?: number;
  /**
   * Stop every other partition once one is found illegal (the verdict cannot change).
   * Default true; false checks every partition to the end, for a fuller explanation.
   */
  readonly stopAtFirstIllegal?: boolean;
  /** Check the whole history as one object even if the model can partition it. */
  readonly noPartition?: boolean;
}

export type Verdict = 'ok' | 'illegal' | 'unknown';

/**
 * How one partition ended: 'ok' and 'illegal' are proofs; 'time' and 'memory' mean a budget
 * ran out first; 'cancelled' means another partition was already illegal.
 */
export type PartitionOutcome = 'ok' | 'illegal' | 'time' | 'memory' | 'cancelled';

export interface SearchStats {
  /** Search steps taken (one per event visited, forward or backtrack). */
  readonly steps: number;
  /** Distinct (linearized set, state) configurations remembered. */
  readonly visitedCount: number;
  /** Distinct model states met. */
  readonly stateCount: number;
  /** Distinct (state, operation) pairs the model was asked about. */
  readonly transitionCount: number;
  /** Bytes held by the caches when the search ended. */
  readonly cacheBytes: number;
}

export interface PartitionResult<S, I, O> {
  /** The partition key ('' when the history is not partitioned). */
  readonly key: string;
  readonly outcome: PartitionOutcome;
  /** This partition's operations, in call order; the indices below refer to this array. */
  readonly operations: readonly Operation<I, O>[];
  /**
   * If 'ok', a full linearization (every operation, in linearization order). Otherwise the
   * longest linearizable prefix the search found.
   */
  readonly linearization: readonly number[];
  /** states[i] is the model state after linearization[i]. */
  readonly states: readonly S[];
  /**
   * If 'illegal': the operations that could be placed next after the longest prefix, none of
   * which the model accepts in the state the prefix leaves. Empty otherwise.
   */
  readonly unplaceable: readonly number[];
  /**
   * If 'illegal': the operation whose return ends the failed prefix. It had returned before
   * any of `unplaceable` could take effect, so the search could not go past that point.
   */
  readonly blocking: number | undefined;
  readonly stats: SearchStats;
}

export interface CheckResult<S, I, O> {
  readonly verdict: Verdict;
  /** One result per partition, sorted by key. */
  readonly partitions: readonly PartitionResult<S, I, O>[];
  /** Index into `partitions` of the first illegal partition, if any. */
  readonly failingPartition: number | undefined;
}
