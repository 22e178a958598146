// `npm run bench -- kv [--seconds N] [--out file.json]`: the key/value service on three real
// `flotilla server` processes on loopback, driven through FlotillaClient by 1, 16 and 64
// concurrent clients (each one request at a time), with 256-byte values. Writes (put) and
// linearizable reads (get) are measured in separate phases. Printed as a table, throughput
// also as a ratio against the 1-client run measured here (STYLE.md 19), and saved as JSON.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { TestContext } from 'node:test';
import { TestCluster } from '../test/server/helpers.js';
import type { FlotillaClient } from '../src/server/client.js';

const CONCURRENCY = [1, 16, 64];
const VALUE_BYTES = 256;
const KEYS = 1024;

interface PhaseResult {
  readonly ops: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

interface Row {
  readonly clients: number;
  readonly write: PhaseResult;
  readonly read: PhaseResult;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function phase(clients: readonly FlotillaClient[], seconds: number, op: (client: FlotillaClient, i: number) => Promise<unknown>): Promise<PhaseResult> {
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    clients.map(async (client, c) => {
      for (let i = c; performance.now() < end; i += clients.length) {
        const t0 = performance.now();
        try {
          await op(client, i);
          latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { ops: latencies.length, opsPerSecond: latencies.length / elapsed, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), errors };
}

function parseArgs(args: string[]): { seconds: number; out: string } {
  let seconds = 5;
  // data/ is git-ignored (npm start keeps its members there too).
  let out = 'data/bench-kv.json';
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--seconds') seconds = Number(args[++i]);
    else if (args[i] === '--out') out = args[++i]!;
  }
  return { seconds, out };
}

export async function run(args: string[]): Promise<void> {
  const { seconds, out } = parseArgs(args);
  const cleanups: (() => unknown)[] = [];
  // TestCluster registers its cleanup (kill every member, remove the data) with a test context.
  const context = { after: (fn: () => unknown) => void cleanups.push(fn) } as unknown as TestContext;
  const rows: Row[] = [];
  try {
    const cluster = await TestCluster.start(context, 3);
    await cluster.waitForLeader();
    const value = Buffer.alloc(VALUE_BYTES, 'v');
    for (const count of CONCURRENCY) {
      const clients = Array.from({ length: count }, () => cluster.client());
      const write = await phase(clients, seconds, (client, i) => client.put(`key-${i % KEYS}`, value));
      const read = await phase(clients, seconds, (client, i) => client.get(`key-${i % KEYS}`));
      for (const client of clients) client.close();
      rows.push({ clients: count, write, read });
      console.log(`  ${count} clients done`);
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
  printTable(rows);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({ benchmark: 'kv', members: 3, valueBytes: VALUE_BYTES, seconds, rows }, null, 2)}\n`);
  console.log(`saved ${out}`);
}

function printTable(rows: readonly Row[]): void {
  const base = rows[0]!;
  const f = (n: number, digits = 1) => n.toFixed(digits).padStart(9);
  console.log('clients | writes/s (×1-client) | w p50 ms | w p99 ms | reads/s (×1-client) | r p50 ms | r p99 ms | errors');
  for (const row of rows) {
    const wRatio = row.write.opsPerSecond / base.write.opsPerSecond;
    const rRatio = row.read.opsPerSecond / base.read.opsPerSecond;
    console.log(
      `${String(row.clients).padStart(7)} | ${f(row.write.opsPerSecond, 0)} (${wRatio.toFixed(1).padStart(5)}×) | ${f(row.write.p50Ms, 2)} | ${f(row.write.p99Ms, 2)} | ${f(row.read.opsPerSecond, 0)} (${rRatio.toFixed(1).padStart(5)}×) | ${f(row.read.p50Ms, 2)} | ${f(row.read.p99Ms, 2)} | ${row.write.errors + row.read.errors}`,
    );
  }
}
