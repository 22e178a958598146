// `npm run bench -- pb [--seconds N] [--streams N]`: what the Output Rule costs. Real
// processes on loopback: three `flotilla server` members (the coordination service, and
// the 3-member Raft key/value group used as the comparison), then `flotilla pb serve`
// replicas of one service. Closed-loop clients put 64-byte values for --seconds each:
//
//   pb, primary alone     no backup attached: outputs leave at once (the baseline)
//   pb, with backup       every output waits for the backup's ack: one primary→backup round trip
//   raft kv (3 members)   the same puts on Flotilla's Raft key/value group (replicated + fsynced)
//
// Reported as ratios to the first row (STYLE.md 19). On two shared cores every process
// competes for CPU, so the absolute numbers say little; the latency difference between the
// first two rows is the Output Rule's round trip plus the backup's receive work.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { spawnServerChild, type ServerChild } from '../src/platform/server-children.js';
import { PbClient } from '../src/pb/client.js';
import { TestCluster } from '../test/server/helpers.js';
import { closedLoop, describeLoad, type LoadResult } from './common.js';

const VALUE = 'v'.repeat(64);

function startReplica(zk: string, dir: string, onLine: (line: string) => void): ServerChild {
  return spawnServerChild({ args: ['pb', 'serve', '--zk', zk, '--data', dir, '--service', 'bench', '--session-timeout-ms', '4000'], onStdoutLine: onLine, onStderrLine: onLine });
}

function waitForLine(lines: string[], pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (lines.some((line) => pattern.test(line))) return resolve();
      if (performance.now() > deadline) return reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${lines.slice(-10).join('\n')}`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

export async function run(args: string[]): Promise<void> {
  let seconds = 5;
  let streams = 16;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--seconds') seconds = Number(args[++i]);
    else if (args[i] === '--streams') streams = Number(args[++i]);
  }
  const cleanups: (() => unknown)[] = [];
  const context = { after: (fn: () => unknown) => void cleanups.push(fn) } as unknown as TestContext;
  const root = await mkdtemp(join(tmpdir(), 'flotilla-bench-pb-'));
  const children: ServerChild[] = [];
  try {
    const cluster = await TestCluster.start(context, 3);
    await cluster.waitForLeader();
    const zk = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.zk}`).join(',');
    const linesA: string[] = [];
    children.push(startReplica(zk, join(root, 'a'), (line) => linesA.push(line)));
    await waitForLine(linesA, /"msg":"role","role":"primary"/, 20_000);
    const clients = await Promise.all(Array.from({ length: streams }, () => PbClient.connect({ zkServers: zk.split(','), service: 'bench' })));
    const put = (stream: number, i: number): Promise<unknown> => clients[stream]!.call({ type: 'put', key: `key-${i % 1000}`, value: VALUE });
    const rows: [string, LoadResult][] = [];
    await closedLoop(streams, 1, put); // Warm-up.
    rows.push(['pb, primary alone', await closedLoop(streams, seconds, put)]);
    const linesB: string[] = [];
    children.push(startReplica(zk, join(root, 'b'), (line) => linesB.push(line)));
    await waitForLine(linesA, /"msg":"backup in sync"/, 20_000);
    await closedLoop(streams, 1, put);
    rows.push(['pb, with backup (Output Rule)', await closedLoop(streams, seconds, put)]);
    await Promise.all(clients.map((client) => client.close()));
    const kvClients = Array.from({ length: streams }, () => cluster.client());
    const kvPut = (stream: number, i: number): Promise<unknown> => kvClients[stream]!.put(`key-${i % 1000}`, Buffer.from(VALUE));
    await closedLoop(streams, 1, kvPut);
    rows.push(['raft kv, 3 members', await closedLoop(streams, seconds, kvPut)]);
    for (const client of kvClients) client.close();

    const base = rows[0]![1];
    console.log(`${streams} closed-loop streams, ${seconds} s each, 64-byte puts; ${describeLoad()}`);
    console.log('| setup | puts/s | ratio | p50 ms | p50 ratio | p99 ms | errors |');
    console.log('|---|---|---|---|---|---|---|');
    for (const [name, result] of rows) {
      console.log(
        `| ${name} | ${result.opsPerSecond.toFixed(0)} | ${(result.opsPerSecond / base.opsPerSecond).toFixed(2)} | ${result.p50Ms.toFixed(2)} | ${(result.p50Ms / base.p50Ms).toFixed(2)} | ${result.p99Ms.toFixed(2)} | ${result.errors}${result.firstError === undefined ? '' : ` (${result.firstError})`} |`,
      );
    }
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(children.map((child) => child.exited));
    for (const cleanup of cleanups.reverse()) await cleanup();
    await rm(root, { recursive: true, force: true });
  }
}
