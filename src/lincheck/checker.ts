// The checker's entry point: split the history into partitions, search each, combine.
//
// Porcupine checks partitions on parallel goroutines and cancels the rest when one is
// illegal. Here the searches are resumable, so one thread interleaves them in slices of
// `sliceSteps`: a partition that fails fast is found fast even when another partition's
// search is hopeless (c50-bad's keys "0" and "9"), and the order stays deterministic.

import { assert, unreachable } from '../stdx/assert.js';
import { MemoryBudget } from './tables.js';
import { PartitionSearch } from './search.js';
import type { CheckOptions, CheckResult, Model, Operation, PartitionOutcome, PartitionResult, SearchStats, Verdict } from './types.js';

/** Steps one partition runs before the next gets its turn (and the clock is read). */
const sliceSteps = 1 << 14;
/** Default bound on all the caches of one check. */
export const cacheBytesMaxDefault = 512 * 1024 * 1024;

interface Group<I, O> {
  readonly key: string;
  readonly operations: Operation<I, O>[];
}

/** Groups operations by partition key (sorted), each group in call order. */
export function partitionHistory<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[], noPartition: boolean): Group<I, O>[] {
  const byKey = new Map<string, Operation<I, O>[]>();
  for (const operation of history) {
    const key = noPartition || model.partitionKey === undefined ? '' : model.partitionKey(operation.input);
    let group = byKey.get(key);
    if (group === undefined) {
      group = [];
      byKey.set(key, group);
    }
    group.push(operation);
  }
  const keys = [...byKey.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return keys.map((key) => {
    const operations = byKey.get(key)!;
    // Array.prototype.sort is stable, so equal call times keep the history's order.
    operations.sort((a, b) => a.callTime - b.callTime);
    return { key, operations };
  });
}

/** Checks `history` against `model`. Deterministic given the same clock readings. */
export function check<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[], options: CheckOptions = {}): CheckResult<S, I, O> {
  const { timeBudgetMs, nowMs } = options;
  assert(timeBudgetMs === undefined || nowMs !== undefined, 'a time budget needs a clock (nowMs)');
  assert(timeBudgetMs === undefined || timeBudgetMs >= 0, 'time budget must not be negative');
  const deadlineMs = timeBudgetMs === undefined ? undefined : nowMs!() + timeBudgetMs;
  const stopAtFirstIllegal = options.stopAtFirstIllegal ?? true;
  const budget = new MemoryBudget(options.cacheBytesMax ?? cacheBytesMaxDefault);

  const groups = partitionHistory(model, history, options.noPartition ?? false);
  // Searches are created on their first turn, so that a history of many small partitions
  // never holds the caches of more than the unfinished ones at once.
  const searches: (PartitionSearch<S, I, O> | undefined)[] = groups.map(() => undefined);
  const searchOf = (index: number): PartitionSearch<S, I, O> => (searches[index] ??= new PartitionSearch(model, groups[index]!.operations, budget));
  const outcomes: (PartitionOutcome | undefined)[] = groups.map(() => undefined);
  const stats: (SearchStats | undefined)[] = groups.map(() => undefined);
  const finish = (index: number, outcome: PartitionOutcome): void => {
    const search = searches[index];
    outcomes[index] = outcome;
    stats[index] = search?.stats() ?? { steps: 0, visitedCount: 0, stateCount: 0, transitionCount: 0, cacheBytes: 0 };
    search?.release();
  };

  let active = groups.map((_, index) => index);
  let stopped: PartitionOutcome | undefined;
  // Every round either finishes a partition or spends sliceSteps on each active one; the
  // searches are finite (each configuration is visited once), so this loop ends.
  while (active.length > 0 && stopped === undefined) {
    for (const index of active) {
      const status = searchOf(index).run(sliceSteps);
      if (status !== 'running') finish(index, status);
      if (status === 'illegal' && stopAtFirstIllegal) stopped = 'cancelled';
      else if (deadlineMs !== undefined && nowMs!() >= deadlineMs) stopped = 'time';
      if (stopped !== undefined) break;
    }
    active = active.filter((index) => outcomes[index] === undefined);
  }
  for (const index of active) finish(index, stopped!);
  assert(budget.used === 0, 'every partition gives its memory back');

  const partitions = groups.map((group, index) => describePartition(searches[index], group, outcomes[index]!, stats[index]!));
  const firstIllegal = partitions.findIndex((partition) => partition.outcome === 'illegal');
  return {
    verdict: combineOutcomes(partitions.map((partition) => partition.outcome)),
    partitions,
    failingPartition: firstIllegal < 0 ? undefined : firstIllegal,
  };
}

function describePartition<S, I, O>(search: PartitionSearch<S, I, O> | undefined, group: Group<I, O>, outcome: PartitionOutcome, stats: SearchStats): PartitionResult<S, I, O> {
  // A partition that never got a turn (cancelled, or out of time) has placed nothing.
  const prefix = search?.bestPrefix() ?? { operations: [], states: [] };
  const frontier = outcome === 'illegal' ? search!.frontier() : { candidates: [], blocking: undefined };
  if (outcome === 'ok') assert(prefix.operations.length === group.operations.length, 'ok means all placed');
  return {
    key: group.key,
    outcome,
    operations: group.operations,
    linearization: prefix.operations,
    states: prefix.states,
    unplaceable: frontier.candidates,
    blocking: frontier.blocking,
    stats,
  };
}

/** Illegal anywhere wins; then any unfinished partition makes the answer unknown. */
export function combineOutcomes(outcomes: readonly PartitionOutcome[]): Verdict {
  let verdict: Verdict = 'ok';
  for (const outcome of outcomes) {
    switch (outcome) {
      case 'illegal':
        return 'illegal';
      case 'time':
      case 'memory':
      case 'cancelled':
        verdict = 'unknown';
        break;
      case 'ok':
        break;
      default:
        unreachable(outcome, 'partition outcome');
    }
  }
  return verdict;
}
