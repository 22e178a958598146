// `npm run bench -- zk [--seconds N] [--clients N] [--window N] [--out file.json]`: the
// ZooKeeper workload of ZooKeeper's own GenerateLoad (docs/zookeeper.md
// §6.2) — every client owns one znode and keeps `window` requests outstanding, 1 KiB values
// — run against a real Apache ZooKeeper 3.8 (standalone, Debian's package, the baseline)
// and against Flotilla (one member, the like-for-like case, and three `flotilla server`
// processes with the clients spread over the members),
// on this machine in the same run. The same client drives both: node-zookeeper-client.
// Printed as ops/s and as the ratio Flotilla / ZooKeeper (STYLE.md 19), saved as JSON.
//
// Three Flotilla members replicate every write to a quorum of processes that each fsync,
// on the same two cores as the clients: compare the one-member column with ZooKeeper.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { loadavg } from 'node:os';
import type zookeeper from 'node-zookeeper-client';
import { startRealZooKeeper } from '../test/zk/real-zookeeper.js';
import { FlotillaZkCluster } from '../test/zk/flotilla-cluster.js';
import { connectZk, zkCreate, zkGetData, zkSetData } from './common.js';

const VALUE = Buffer.alloc(1024, 'x');

interface Phase {
  readonly opsPerSecond: number;
  readonly errors: number;
}

interface Result {
  readonly target: string;
  readonly create: Phase;
  readonly write: Phase;
  readonly read: Phase;
  readonly mixed: Phase;
}

function op(client: zookeeper.Client, kind: 'create' | 'write' | 'read', path: string, i: number): Promise<void> {
  if (kind === 'create') return zkCreate(client, `${path}/c-${i}`, VALUE);
  if (kind === 'write') return zkSetData(client, path, VALUE);
  return zkGetData(client, path);
}

/** Every client keeps `window` requests outstanding for `seconds`; `writePercent` of them writes. */
async function phase(clients: readonly zookeeper.Client[], paths: readonly string[], seconds: number, window: number, pick: (i: number) => 'create' | 'write' | 'read'): Promise<Phase> {
  let ops = 0;
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    clients.flatMap((client, c) =>
      Array.from({ length: window }, async (_, w) => {
        for (let i = w; performance.now() < end; i += window) {
          try {
            await op(client, pick(i), paths[c]!, i);
            ops++;
          } catch {
            errors++;
          }
        }
      }),
    ),
  );
  return { opsPerSecond: ops / ((performance.now() - start) / 1000), errors };
}

async function measure(target: string, connectStrings: readonly string[], options: Options): Promise<Result> {
  const clients = await Promise.all(Array.from({ length: options.clients }, (_, i) => connectZk(connectStrings[i % connectStrings.length]!)));
  try {
    const paths = clients.map((_, i) => `/bench-${i}`);
    await Promise.all(clients.map((client, i) => zkCreate(client, paths[i]!, VALUE)));
    const create = await phase(clients, paths, options.seconds, options.window, () => 'create');
    const write = await phase(clients, paths, options.seconds, options.window, () => 'write');
    const read = await phase(clients, paths, options.seconds, options.window, () => 'read');
    // ZooKeeper's "most ZooKeeper-like" mix (YCSB workload B): 5 % writes.
    const mixed = await phase(clients, paths, options.seconds, options.window, (i) => (i % 20 === 0 ? 'write' : 'read'));
    return { target, create, write, read, mixed };
  } finally {
    for (const client of clients) client.close();
  }
}

interface Options {
  seconds: number;
  clients: number;
  window: number;
  out: string;
}

function parseArgs(args: string[]): Options {
  const options: Options = { seconds: 5, clients: 16, window: 8, out: 'data/bench-zk.json' };
  for (let i = 0; i < args.length; i += 2) {
    const value = args[i + 1];
    if (value === undefined) throw new Error(`${args[i]} needs a value`);
    if (args[i] === '--seconds') options.seconds = Number(value);
    else if (args[i] === '--clients') options.clients = Number(value);
    else if (args[i] === '--window') options.window = Number(value);
    else if (args[i] === '--out') options.out = value;
    else throw new Error(`unknown option ${args[i]} (--seconds, --clients, --window, --out)`);
  }
  return options;
}

export async function run(args: string[]): Promise<void> {
  const options = parseArgs(args);
  console.log(
    `${options.clients} clients × ${options.window} outstanding, 1 KiB values, ${options.seconds} s per phase; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const real = await startRealZooKeeper({ tickTimeMs: 2000 });
  let baseline: Result;
  try {
    baseline = await measure('zookeeper 3.8.0 standalone', [real.connectString], options);
  } finally {
    await real.stop();
  }
  const flotilla: Result[] = [];
  for (const size of [1, 3]) {
    const cluster = await FlotillaZkCluster.start({ size, tickTimeMs: 2000 });
    try {
      flotilla.push(await measure(`flotilla, ${size} member${size === 1 ? '' : 's'}`, cluster.connectStrings(), options));
    } finally {
      await cluster.stop();
    }
  }
  const rows: [string, keyof Omit<Result, 'target'>][] = [
    ['create', 'create'],
    ['setData (100 % writes)', 'write'],
    ['getData (100 % reads)', 'read'],
    ['5 % writes', 'mixed'],
  ];
  console.log(`${'ops/s'.padEnd(24)} ${'zookeeper'.padStart(10)} ${'flotilla×1'.padStart(11)} ${'ratio'.padStart(6)} ${'flotilla×3'.padStart(11)} ${'ratio'.padStart(6)}`);
  for (const [label, key] of rows) {
    const z = baseline[key];
    const cells = flotilla.map((f) => `${f[key].opsPerSecond.toFixed(0).padStart(11)} ${(f[key].opsPerSecond / z.opsPerSecond).toFixed(2).padStart(6)}`);
    const errors = [z, ...flotilla.map((f) => f[key])].map((p) => p.errors);
    console.log(`${label.padEnd(24)} ${z.opsPerSecond.toFixed(0).padStart(10)} ${cells.join(' ')}${errors.some((e) => e > 0) ? `  (errors: ${errors.join('/')})` : ''}`);
  }
  await mkdir(dirname(options.out), { recursive: true });
  await writeFile(options.out, JSON.stringify({ options, baseline, flotilla }, null, 2));
  console.log(`saved ${options.out}`);
}
