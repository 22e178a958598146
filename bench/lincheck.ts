// `npm run bench -- lincheck [--rounds N] [--brief]`: the linearizability checker on
// Porcupine's corpus. Prints the time per file (parse + check) and the totals, for the first
// (cold) round and the best of N rounds, next to Porcupine's figures measured on this
// machine (Go, `go test`): 102 Jepsen logs in 0.45 s, six key/value files in 4.2 s.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CheckResult, type Model, type Operation, type ParseResult, check, etcdModel, kvModel, kvModelWhole, parseJepsenEtcd, parseJepsenKv } from '../src/lincheck/index.js';
import { etcdLinearizable, etcdName, etcdNumbers, findCorpusDir, kvFiles, kvWholeFiles } from '../test/lincheck/corpus.js';

const porcupineEtcdSeconds = 0.45;
const porcupineKvSeconds = 4.2;
const fileBudgetMs = 60_000;

interface Row {
  readonly group: 'etcd' | 'kv' | 'kv-whole';
  readonly name: string;
  readonly operations: number;
  readonly verdict: string;
  readonly expected: string;
  readonly ms: number;
  /** CPU time (user + system) of this process: steadier than wall time on a shared machine. */
  readonly cpuMs: number;
}

function timeFile<S, I, O>(group: Row['group'], name: string, text: string, parse: (text: string) => ParseResult<Operation<I, O>[]>, model: Model<S, I, O>, expected: string): Row {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const parsed = parse(text);
  if (!parsed.ok) throw new Error(`${name}:${parsed.line}: ${parsed.message}`);
  const result: CheckResult<S, I, O> = check(model, parsed.value, { timeBudgetMs: fileBudgetMs, nowMs: () => performance.now() });
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  return { group, name, operations: parsed.value.length, verdict: result.verdict, expected, ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

function oneRound(texts: Map<string, string>): Row[] {
  const rows: Row[] = [];
  for (const number of etcdNumbers) {
    const name = `jepsen/${etcdName(number)}`;
    rows.push(timeFile('etcd', name, texts.get(name)!, parseJepsenEtcd, etcdModel(), etcdLinearizable.has(number) ? 'ok' : 'illegal'));
  }
  for (const file of kvFiles) {
    const name = `kv/${file}.txt`;
    rows.push(timeFile('kv', name, texts.get(name)!, parseJepsenKv, kvModel(), file.endsWith('-ok') ? 'ok' : 'illegal'));
  }
  for (const file of kvWholeFiles) {
    const name = `kv/${file}.txt`;
    rows.push(timeFile('kv-whole', name, texts.get(name)!, parseJepsenKv, kvModelWhole(), file.endsWith('-ok') ? 'ok' : 'illegal'));
  }
  return rows;
}

function total(rows: readonly Row[], field: 'ms' | 'cpuMs', group: Row['group'], only?: (row: Row) => boolean): number {
  const selected = rows.filter((row) => row.group === group && (only === undefined || only(row)));
  return selected.reduce((sum, row) => sum + row[field], 0) / 1000;
}

function printTotals(label: string, rows: readonly Row[]): void {
  const ratio = (ours: number, theirs: number): string => `${(ours / theirs).toFixed(2)}x`;
  console.log(`${label}:`);
  console.log(`  ${''.padEnd(44)}  wall s   cpu s   wall vs Porcupine`);
  const line = (name: string, groups: [Row['group'], ((row: Row) => boolean)?][], porcupine?: number): void => {
    const wall = groups.reduce((sum, [group, only]) => sum + total(rows, 'ms', group, only), 0);
    const cpu = groups.reduce((sum, [group, only]) => sum + total(rows, 'cpuMs', group, only), 0);
    const versus = porcupine === undefined ? '' : `${ratio(wall, porcupine)} of ${porcupine} s`;
    console.log(`  ${name.padEnd(44)} ${wall.toFixed(3).padStart(7)} ${cpu.toFixed(3).padStart(7)}   ${versus}`);
  };
  const c01 = (row: Row): boolean => row.name.includes('c01');
  line('102 etcd logs', [['etcd']], porcupineEtcdSeconds);
  line('6 kv files, by key', [['kv']]);
  line('6 kv files + c01 whole (go test -short)', [['kv'], ['kv-whole', c01]], porcupineKvSeconds);
  line('6 kv files + c01 and c10 whole (all tests)', [['kv'], ['kv-whole']]);
}

export async function run(args: string[]): Promise<void> {
  const roundsIndex = args.indexOf('--rounds');
  const roundsArgument = roundsIndex >= 0 ? Number(args[roundsIndex + 1]) : 3;
  const rounds = Number.isSafeInteger(roundsArgument) && roundsArgument >= 1 ? roundsArgument : 3;
  const brief = args.includes('--brief');
  const dir = findCorpusDir();
  const texts = new Map<string, string>();
  for (const number of etcdNumbers) texts.set(`jepsen/${etcdName(number)}`, readFileSync(join(dir, 'jepsen', etcdName(number)), 'utf8'));
  for (const file of kvFiles) texts.set(`kv/${file}.txt`, readFileSync(join(dir, 'kv', `${file}.txt`), 'utf8'));

  const all: Row[][] = [];
  for (let round = 0; round < rounds; round++) all.push(oneRound(texts));
  const cold = all[0]!;
  const best = cold.map((row, index) => ({
    ...row,
    ms: Math.min(...all.map((rowsOfRound) => rowsOfRound[index]!.ms)),
    cpuMs: Math.min(...all.map((rowsOfRound) => rowsOfRound[index]!.cpuMs)),
  }));
  const wrong = all.flat().filter((row) => row.verdict !== row.expected);

  if (!brief) {
    console.log('model     file                  ops  verdict   cold ms   best ms');
    cold.forEach((row, index) => {
      const mark = row.verdict === row.expected ? '' : `   WRONG, expected ${row.expected}`;
      console.log(
        `${row.group.padEnd(9)} ${row.name.padEnd(20)} ${String(row.operations).padStart(5)}  ${row.verdict.padEnd(8)} ${row.ms.toFixed(2).padStart(8)}  ${best[index]!.ms.toFixed(2).padStart(8)}${mark}`,
      );
    });
  }
  printTotals('cold (first round, includes JIT warm-up)', cold);
  printTotals(`best of ${rounds} rounds, per file`, best);
  if (wrong.length > 0) {
    console.log(`${wrong.length} WRONG verdicts`);
    process.exitCode = 1;
  } else {
    console.log(`all ${cold.length} verdicts as Porcupine's tests expect, in every round`);
  }
}
