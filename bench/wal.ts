// Durable appends per second: the WAL's group commit against a naive write + fdatasync per
// append (one append at a time, as a log must be), both on the real disk (FsDisk) in a temp directory, measured in the same run with
// 1, 16 and 128 concurrent proposers. Each proposer appends one 256-byte entry, waits for
// it to be durable, and repeats.
//
//   npm run bench -- wal [--seconds 3] [--rounds 3] [--proposers 1,16,128] [--bytes 256]

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsDisk } from '../src/platform/fs-disk.js';
import { Wal } from '../src/storage/wal.js';
import { encodeRecord, RecordType } from '../src/storage/record.js';

interface Result {
  appends: number;
  appendsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  syncs: number;
  elapsedMs: number;
}

/** Sums slices: total appends over total time; latency percentiles are the slices' medians. */
function combine(slices: Result[]): Result {
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const appends = slices.reduce((sum, slice) => sum + slice.appends, 0);
  const elapsedMs = slices.reduce((sum, slice) => sum + slice.elapsedMs, 0);
  return {
    appends,
    elapsedMs,
    appendsPerSecond: (appends / elapsedMs) * 1000,
    p50Ms: median(slices.map((slice) => slice.p50Ms)),
    p99Ms: median(slices.map((slice) => slice.p99Ms)),
    syncs: slices.reduce((sum, slice) => sum + slice.syncs, 0),
  };
}

function flag(args: string[], name: string, fallback: string): string {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1]! : fallback;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Runs `proposers` loops of `appendOne` for `seconds`; returns the rate and latencies. */
async function measure(proposers: number, seconds: number, appendOne: () => Promise<void>): Promise<{ count: number; latencies: number[]; elapsedMs: number }> {
  const latencies: number[] = [];
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const loop = async () => {
    while (performance.now() < deadline) {
      const began = performance.now();
      await appendOne();
      latencies.push(performance.now() - began);
    }
  };
  await Promise.all(Array.from({ length: proposers }, loop));
  return { count: latencies.length, latencies: latencies.sort((a, b) => a - b), elapsedMs: performance.now() - start };
}

/**
 * The naive log: every append does its own write + fdatasync, one append at a time. The
 * serialisation is what makes it a log: an acknowledged append implies every earlier one
 * is durable. (`ordered: false` lets the appends overlap, as a shortcut would; the thread
 * pool then runs several fdatasyncs at once, but an acknowledged append no longer implies
 * its predecessors are durable, so a crash can leave a hole. Shown for comparison only.)
 */
async function naive(root: string, proposers: number, seconds: number, payload: Buffer, ordered: boolean): Promise<Result> {
  const disk = new FsDisk(root);
  const file = await disk.open(`naive-${ordered ? 'ordered' : 'unordered'}-${proposers}.log`, { create: true });
  let syncs = 0;
  let tail: Promise<void> = Promise.resolve();
  const appendOne = async () => {
    await file.append([encodeRecord(RecordType.entry, payload)]);
    await file.sync();
    syncs++;
  };
  const run = await measure(proposers, seconds, () => {
    if (!ordered) return appendOne();
    tail = tail.then(appendOne);
    return tail;
  });
  await file.close();
  return summarize(run, syncs);
}

async function groupCommit(root: string, proposers: number, seconds: number, payload: Buffer): Promise<Result> {
  const disk = new FsDisk(root);
  const { wal } = await Wal.open(disk, `wal-${proposers}`);
  const run = await measure(proposers, seconds, () => {
    // The index is taken synchronously, so concurrent proposers stay contiguous.
    const index = wal.lastIndex() + 1;
    return wal.append({ entries: [{ index, data: payload }] });
  });
  const syncs = wal.stats().flushCount;
  await wal.close();
  return summarize(run, syncs);
}

function summarize(run: { count: number; latencies: number[]; elapsedMs: number }, syncs: number): Result {
  return {
    appends: run.count,
    elapsedMs: run.elapsedMs,
    appendsPerSecond: (run.count / run.elapsedMs) * 1000,
    p50Ms: percentile(run.latencies, 0.5),
    p99Ms: percentile(run.latencies, 0.99),
    syncs,
  };
}

const fmt = (value: number, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export async function run(args: string[]): Promise<void> {
  const seconds = Number(flag(args, 'seconds', '3'));
  const proposerCounts = flag(args, 'proposers', '1,16,128').split(',').map(Number);
  const payload = Buffer.alloc(Number(flag(args, 'bytes', '256')), 0x61);
  const rounds = Number(flag(args, 'rounds', '3'));
  const root = await mkdtemp(join(tmpdir(), 'flotilla-bench-wal-'));
  console.log(`durable appends of ${payload.length} bytes, ${seconds} s per cell in ${rounds} alternating slices, directory ${root}`);
  const rows: string[][] = [['proposers', 'naive/s', 'naive p50/p99 ms', 'group commit/s', 'group p50/p99 ms', 'appends/sync', 'ratio', 'unordered naive/s (unsafe)']];
  try {
    for (const proposers of proposerCounts) {
      // Alternate short slices of each variant, so that load from other processes on a
      // shared machine lands on all of them alike.
      const slices: Result[][] = [[], [], []];
      for (let round = 0; round < rounds; round++) {
        slices[0]!.push(await naive(root, proposers, seconds / rounds, payload, true));
        slices[1]!.push(await groupCommit(root, proposers, seconds / rounds, payload));
        slices[2]!.push(await naive(root, proposers, seconds / rounds, payload, false));
      }
      const [baseline, grouped, unordered] = slices.map(combine) as [Result, Result, Result];
      const appends = grouped.appends / Math.max(1, grouped.syncs);
      rows.push([
        String(proposers),
        fmt(baseline.appendsPerSecond),
        `${fmt(baseline.p50Ms, 2)} / ${fmt(baseline.p99Ms, 2)}`,
        fmt(grouped.appendsPerSecond),
        `${fmt(grouped.p50Ms, 2)} / ${fmt(grouped.p99Ms, 2)}`,
        fmt(appends, 1),
        `${fmt(grouped.appendsPerSecond / baseline.appendsPerSecond, 1)}x`,
        fmt(unordered.appendsPerSecond),
      ]);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  printTable(rows);
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, column) => cell.padStart(widths[column]!)).join(' | ')} |`;
  console.log(line(rows[0]!));
  console.log(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
  for (const row of rows.slice(1)) console.log(line(row));
}
