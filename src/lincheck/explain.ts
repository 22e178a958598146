// Plain-text account of a check: the verdict, and for a violation which partition failed,
// the end of the longest linearizable prefix, and the operations that could not be placed.

import { unreachable } from '../stdx/assert.js';
import type { CheckResult, Model, Operation, PartitionOutcome, PartitionResult } from './types.js';

/** Prefix operations shown before the failing point; earlier ones are summarized. */
const prefixShownMax = 12;
/** Unplaceable operations listed; the rest are counted. */
const unplaceableShownMax = 20;

function describeOutcome(outcome: PartitionOutcome): string {
  switch (outcome) {
    case 'ok':
      return 'linearizable';
    case 'illegal':
      return 'NOT linearizable';
    case 'time':
      return 'unknown (time budget ran out)';
    case 'memory':
      return 'unknown (memory budget ran out)';
    case 'cancelled':
      return 'not checked (another partition already failed)';
    default:
      return unreachable(outcome, 'partition outcome');
  }
}

function describeTimes<I, O>(operation: Operation<I, O>): string {
  const returned = operation.returnTime === undefined ? 'never returned' : String(operation.returnTime);
  return `[${operation.callTime}, ${returned}]`;
}

/** One line per operation: `#index client N [call, return] description`. */
export function describeOperationLine<S, I, O>(model: Model<S, I, O>, operations: readonly Operation<I, O>[], index: number): string {
  const operation = operations[index]!;
  return `#${index} client ${operation.clientId} ${describeTimes(operation)} ${model.describeOperation(operation.input, operation.output)}`;
}

function partitionName(key: string): string {
  return key === '' ? 'the history' : `partition ${JSON.stringify(key)}`;
}

function describeViolation<S, I, O>(model: Model<S, I, O>, partition: PartitionResult<S, I, O>): string[] {
  const lines: string[] = [];
  const { operations, linearization, states } = partition;
  lines.push(`${partitionName(partition.key)} is not linearizable (${operations.length} operations).`);
  lines.push(`Longest linearizable prefix: ${linearization.length} of ${operations.length} operations.`);
  const shownFrom = Math.max(0, linearization.length - prefixShownMax);
  if (shownFrom > 0) lines.push(`  ... ${shownFrom} earlier operations`);
  for (let i = shownFrom; i < linearization.length; i++) {
    const line = describeOperationLine(model, operations, linearization[i]!);
    lines.push(`  ${i + 1}. ${line}  => ${model.describeState(states[i]!)}`);
  }
  const stateAfter = linearization.length === 0 ? model.init() : states[linearization.length - 1]!;
  lines.push(`State after the prefix: ${model.describeState(stateAfter)}`);
  if (partition.blocking !== undefined) {
    lines.push(`Stuck at the return of ${describeOperationLine(model, operations, partition.blocking)}:`);
    lines.push('every operation that could take effect next is impossible in that state:');
  }
  for (const index of partition.unplaceable.slice(0, unplaceableShownMax)) {
    lines.push(`  ${describeOperationLine(model, operations, index)}`);
  }
  const hidden = partition.unplaceable.length - unplaceableShownMax;
  if (hidden > 0) lines.push(`  ... and ${hidden} more`);
  return lines;
}

/** A deterministic, human-readable report of `result`. */
export function describeResult<S, I, O>(model: Model<S, I, O>, result: CheckResult<S, I, O>): string {
  const lines: string[] = [];
  const operationCount = result.partitions.reduce((sum, partition) => sum + partition.operations.length, 0);
  const verdictText = result.verdict === 'ok' ? 'linearizable' : result.verdict === 'illegal' ? 'NOT linearizable' : 'unknown';
  lines.push(`${verdictText}: ${operationCount} operations, ${result.partitions.length} partition(s), model ${model.name}`);
  if (result.verdict === 'unknown') lines.push('A budget ran out before the search finished; this is not a proof of linearizability.');
  const failing = result.failingPartition === undefined ? undefined : result.partitions[result.failingPartition];
  if (failing !== undefined) lines.push(...describeViolation(model, failing));
  if (result.partitions.length > 1) {
    lines.push('Partitions:');
    for (const partition of result.partitions) {
      lines.push(`  ${JSON.stringify(partition.key)}: ${describeOutcome(partition.outcome)}, ${partition.operations.length} operations, ${partition.stats.steps} steps`);
    }
  } else if (result.partitions.length === 1 && failing === undefined) {
    lines.push(`Outcome: ${describeOutcome(result.partitions[0]!.outcome)}, ${result.partitions[0]!.stats.steps} steps`);
  }
  return `${lines.join('\n')}\n`;
}
