// `flotilla lincheck`: check a recorded history for linearizability.
//
//   flotilla lincheck --model kv history.jsonl [--html out.html] [--timeout-ms 10000]
//   flotilla lincheck --format jepsen-etcd etcd_070.log --html etcd_070.html
//
// Exit status: 0 linearizable, 1 not linearizable, 2 unknown (a budget ran out), 3 bad input.
// The JSONL format is documented in src/lincheck/README.md.

import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  type CheckResult,
  type Model,
  type Operation,
  type ParseResult,
  check,
  describeResult,
  etcdModel,
  kvModel,
  kvModelWhole,
  parseEtcdJsonl,
  parseJepsenEtcd,
  parseJepsenKv,
  parseKvJsonl,
  parseRegisterJsonl,
  registerModel,
  renderHtml,
} from '../lincheck/index.js';
import { realClock } from '../platform/clock.js';
import { readTextFile, writeTextFile } from '../platform/files.js';
import { setExitCode, writeErr, writeOut } from '../platform/process.js';
import { unreachable } from '../stdx/assert.js';

export const exitLinearizable = 0;
export const exitNotLinearizable = 1;
export const exitUnknown = 2;
export const exitBadInput = 3;

const timeoutMsDefault = 60_000;

export type LincheckModelName = 'register' | 'kv' | 'etcd';
export type LincheckFormat = 'jsonl' | 'jepsen-etcd' | 'jepsen-kv';

export interface LincheckOptions {
  readonly model: LincheckModelName | undefined;
  readonly format: LincheckFormat;
  readonly html: string | undefined;
  readonly timeoutMs: number;
  readonly noPartition: boolean;
  /** Check every partition to the end instead of stopping at the first illegal one. */
  readonly all: boolean;
}

/** The effects the command needs, injected so tests can run it without a process. */
export interface LincheckIo {
  readTextFile(path: string): string;
  writeTextFile(path: string, text: string): void;
  nowMs(): number;
  writeOut(text: string): void;
  writeErr(text: string): void;
}

const realIo: LincheckIo = { readTextFile, writeTextFile, nowMs: () => realClock.nowMs(), writeOut, writeErr };

function checkAndReport<S, I, O>(model: Model<S, I, O>, parsed: ParseResult<Operation<I, O>[]>, file: string, options: LincheckOptions, io: LincheckIo): number {
  if (!parsed.ok) {
    io.writeErr(`lincheck: ${file}:${parsed.line}: ${parsed.message}\n`);
    return exitBadInput;
  }
  const startMs = io.nowMs();
  const result: CheckResult<S, I, O> = check(model, parsed.value, {
    timeBudgetMs: options.timeoutMs,
    nowMs: io.nowMs,
    noPartition: options.noPartition,
    stopAtFirstIllegal: !options.all,
  });
  const elapsedMs = io.nowMs() - startMs;
  io.writeOut(describeResult(model, result));
  io.writeOut(`checked in ${elapsedMs.toFixed(1)} ms\n`);
  if (options.html !== undefined) {
    io.writeTextFile(options.html, renderHtml(model, result, file));
    io.writeOut(`visualization written to ${options.html}\n`);
  }
  switch (result.verdict) {
    case 'ok':
      return exitLinearizable;
    case 'illegal':
      return exitNotLinearizable;
    case 'unknown':
      return exitUnknown;
    default:
      return unreachable(result.verdict, 'verdict');
  }
}

/** Runs one check; returns the exit status. */
export function runLincheck(file: string, options: LincheckOptions, io: LincheckIo = realIo): number {
  const expected = options.format === 'jepsen-etcd' ? 'etcd' : options.format === 'jepsen-kv' ? 'kv' : undefined;
  const modelName = options.model ?? expected;
  if (modelName === undefined) {
    io.writeErr('lincheck: --model is required for JSONL histories (register, kv or etcd)\n');
    return exitBadInput;
  }
  if (expected !== undefined && modelName !== expected) {
    io.writeErr(`lincheck: format ${options.format} needs model ${expected}, not ${modelName}\n`);
    return exitBadInput;
  }
  let text: string;
  try {
    text = io.readTextFile(file);
  } catch (error) {
    io.writeErr(`lincheck: cannot read ${file}: ${(error as Error).message}\n`);
    return exitBadInput;
  }
  switch (modelName) {
    case 'register':
      return checkAndReport(registerModel(), parseRegisterJsonl(text), file, options, io);
    case 'etcd':
      return checkAndReport(etcdModel(), options.format === 'jsonl' ? parseEtcdJsonl(text) : parseJepsenEtcd(text), file, options, io);
    case 'kv': {
      const parsed = options.format === 'jsonl' ? parseKvJsonl(text) : parseJepsenKv(text);
      // The whole-store model checks the same semantics without splitting by key.
      if (options.noPartition) return checkAndReport(kvModelWhole(), parsed, file, options, io);
      return checkAndReport(kvModel(), parsed, file, options, io);
    }
    default:
      return unreachable(modelName, 'model');
  }
}

function parseTimeout(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError('must be a positive number of milliseconds');
  return parsed;
}

export function registerLincheck(program: Command): void {
  program
    .command('lincheck')
    .description('check a history of operations for linearizability (exit 0 ok, 1 not linearizable, 2 unknown, 3 bad input)')
    .argument('<history>', 'the history file (JSONL: one operation per line; see src/lincheck/README.md)')
    .addOption(new Option('--model <model>', 'the sequential specification').choices(['register', 'kv', 'etcd']))
    .addOption(new Option('--format <format>', 'the history file format').choices(['jsonl', 'jepsen-etcd', 'jepsen-kv']).default('jsonl'))
    .option('--html <file>', 'write a visualization of the history to this HTML file')
    .option('--timeout-ms <ms>', 'time budget; when it runs out the verdict is unknown', parseTimeout, timeoutMsDefault)
    .option('--no-partition', 'check the store as one object instead of key by key')
    .option('--all', 'check every partition to the end, even after one fails', false)
    .action((history: string, flags: { model?: LincheckModelName; format: LincheckFormat; html?: string; timeoutMs: number; partition: boolean; all: boolean }) => {
      const status = runLincheck(history, {
        model: flags.model,
        format: flags.format,
        html: flags.html,
        timeoutMs: flags.timeoutMs,
        noPartition: !flags.partition,
        all: flags.all,
      });
      setExitCode(status);
    });
}
