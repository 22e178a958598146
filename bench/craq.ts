// `npm run bench -- craq [--seconds N] [--out file.json]`: read throughput of CRAQ against
// plain chain replication (reads at the tail only), chains of 1, 3 and 5 nodes, read-only
// and 10 %-write workloads, in the same run (the paper's Figure 5 and Figure 6 shapes).
//
// Why on the simulator: the paper's result is about where reads are served — every node
// (CRAQ) or the tail alone (CR) — when each node has its own CPU and NIC. This machine has
// two cores for every process, so real processes would measure the two cores, not the
// chain: five node processes cannot serve more than two can. So the real CraqNode and
// CraqHost code runs on src/sim's virtual time, and each node is given its own capacity,
// a single-server queue that every request and peer message waits in:
//
//   a client read or write   50 µs   (the paper's CR-3: ~20,000 reads/s at one node)
//   a peer message           25 µs   (propagate, ack, version query and its answer)
//
// with 1–5 ms links between nodes (src/sim's reliable network) and 0.2 ms between a client
// and a node. Throughput is counted in virtual time, and everything is reported as ratios
// to the same run's baseline (STYLE.md 19): CR with one node.
//
// `npm run bench -- craq --processes [--seconds N] [--node-rate N]` measures real processes
// instead (see runProcesses below): what two shared cores allow, unthrottled, and with each
// node's client requests limited to --node-rate per second (`craq node --serve-rate-max`).

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CraqClient } from '../src/craq/client.js';
import { spawnServerChild, type ServerChild } from '../src/platform/server-children.js';
import { TestCluster } from '../test/server/helpers.js';
import { CraqHost, memoryStorage } from '../src/craq/host.js';
import { CraqNode } from '../src/craq/node.js';
import { decodePeerMessage } from '../src/craq/codec.js';
import type { ClientReply, ClientRequest, PeerMessage } from '../src/craq/types.js';
import { Scheduler } from '../src/sim/scheduler.js';
import { SimNetwork } from '../src/sim/network.js';
import { yieldToHost } from '../src/platform/host.js';
import { Prng } from '../src/stdx/prng.js';
import { nodeId, type NodeId } from '../src/stdx/types.js';

const CLIENT_OP_MS = 0.05;
const PEER_MESSAGE_MS = 0.025;
const CLIENT_LINK_MS = 0.2;
const WARMUP_MS = 300;
/** Closed-loop clients per node of the chain: enough to keep every node's queue busy. */
const CLIENTS_PER_NODE = 200;

interface RunResult {
  readonly mode: 'CR' | 'CRAQ';
  readonly chainLength: number;
  readonly writeFraction: number;
  readonly readsPerSecond: number;
  readonly writesPerSecond: number;
  readonly dirtyReadFraction: number;
  readonly readLatencyMsMedian: number;
  readonly writeLatencyMsMedian: number;
  /** Each node's busy share of the run, head first. */
  readonly utilization: readonly number[];
}

/** One node's capacity: work runs one item at a time, each taking its cost in virtual ms. */
class ServiceQueue {
  private busyUntilMs = 0;
  busyMs = 0;
  constructor(private readonly scheduler: Scheduler) {}
  run(costMs: number, fn: () => void): void {
    this.busyMs += costMs;
    const start = Math.max(this.scheduler.nowMs, this.busyUntilMs);
    this.busyUntilMs = start + costMs;
    this.scheduler.at(this.busyUntilMs, fn);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function runOnce(mode: 'CR' | 'CRAQ', chainLength: number, writeFraction: number, measureMs: number, seed: number): Promise<RunResult> {
  const scheduler = new Scheduler(yieldToHost);
  const prng = new Prng(seed);
  const network = new SimNetwork<PeerMessage>(scheduler, prng.fork(), {
    encode: (message) => encoder.encode(JSON.stringify(message)),
    decode: (bytes) => decodePeerMessage(JSON.parse(decoder.decode(bytes))),
    isRequest: () => true,
  });
  const ids = Array.from({ length: chainLength }, (_, k) => nodeId(k + 1));
  const hosts = new Map<NodeId, CraqHost>();
  const queues = new Map<NodeId, ServiceQueue>();
  for (const id of ids) {
    const host = new CraqHost(new CraqNode(id), { clock: scheduler.clock(), storage: memoryStorage, tickMs: 10, transport: { send: (to, message) => network.send(id, to, message) } });
    const queue = new ServiceQueue(scheduler);
    hosts.set(id, host);
    queues.set(id, queue);
    network.attach(id, (message) => queue.run(PEER_MESSAGE_MS, () => host.receive(message)));
    network.connect(id);
    host.setLease(Number.MAX_SAFE_INTEGER);
    host.start();
  }
  for (const host of hosts.values()) host.setConfig({ epoch: 1, members: ids });
  await scheduler.sleep(50);

  const call = (id: NodeId, request: ClientRequest): Promise<ClientReply> =>
    new Promise((resolve) => {
      scheduler.after(CLIENT_LINK_MS, () =>
        queues.get(id)!.run(CLIENT_OP_MS, () => {
          void hosts
            .get(id)!
            .request(request)
            .then((reply) => scheduler.after(CLIENT_LINK_MS, () => resolve(reply)));
        }),
      );
    });

  const endMs = scheduler.nowMs + WARMUP_MS + measureMs;
  const measureFromMs = scheduler.nowMs + WARMUP_MS;
  const counts = { reads: 0, writes: 0, dirty: 0 };
  const readLatencies: number[] = [];
  const writeLatencies: number[] = [];
  const runStartMs = scheduler.nowMs;
  const client = async (clientPrng: Prng): Promise<void> => {
    let n = 0;
    while (scheduler.nowMs < endMs) {
      const key = `k${clientPrng.int(100)}`;
      const startMs = scheduler.nowMs;
      if (clientPrng.chance(writeFraction)) {
        const reply = await call(ids[0]!, { type: 'write', key, value: `v${n++}` });
        if (reply.type === 'write' && startMs >= measureFromMs && scheduler.nowMs < endMs) {
          counts.writes++;
          writeLatencies.push(scheduler.nowMs - startMs);
        }
      } else {
        const at = mode === 'CR' ? ids.at(-1)! : clientPrng.pick(ids);
        const reply = await call(at, { type: 'read', key, mode: { kind: 'strong' } });
        if (reply.type === 'read' && startMs >= measureFromMs && scheduler.nowMs < endMs) {
          counts.reads++;
          if (!reply.clean) counts.dirty++;
          readLatencies.push(scheduler.nowMs - startMs);
        }
      }
    }
  };
  const clients = Array.from({ length: CLIENTS_PER_NODE * Math.max(chainLength, 3) }, () => client(prng.fork()));
  await scheduler.waitOn(Promise.all(clients));
  for (const host of hosts.values()) host.stop();
  readLatencies.sort((a, b) => a - b);
  writeLatencies.sort((a, b) => a - b);
  const elapsedMs = scheduler.nowMs - runStartMs;
  return {
    mode,
    chainLength,
    writeFraction,
    readsPerSecond: (counts.reads * 1000) / measureMs,
    writesPerSecond: (counts.writes * 1000) / measureMs,
    dirtyReadFraction: counts.reads === 0 ? 0 : counts.dirty / counts.reads,
    readLatencyMsMedian: readLatencies[Math.floor(readLatencies.length / 2)] ?? Number.NaN,
    writeLatencyMsMedian: writeLatencies[Math.floor(writeLatencies.length / 2)] ?? Number.NaN,
    utilization: ids.map((id) => queues.get(id)!.busyMs / elapsedMs),
  };
}

function flag(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  return index < 0 ? undefined : args[index + 1];
}

export async function run(args: string[]): Promise<void> {
  if (args.includes('--processes')) {
    await runProcesses(Number(flag(args, '--seconds') ?? '3') * 1000, Number(flag(args, '--node-rate') ?? '3000'));
    return;
  }
  const measureMs = Number(flag(args, '--seconds') ?? '1') * 1000;
  const out = flag(args, '--out');
  if (!Number.isFinite(measureMs) || measureMs <= 0) throw new Error('--seconds must be a positive number');
  const results: RunResult[] = [];
  const realStart = performance.now();
  for (const writeFraction of [0, 0.1]) {
    for (const chainLength of [1, 3, 5]) {
      for (const mode of ['CR', 'CRAQ'] as const) results.push(await runOnce(mode, chainLength, writeFraction, measureMs, 1000 + chainLength));
    }
  }
  const baseline = results.find((result) => result.mode === 'CR' && result.chainLength === 1 && result.writeFraction === 0)!.readsPerSecond;
  console.log(`CRAQ vs chain replication on the simulator (virtual time; each node ${CLIENT_OP_MS * 1000} µs per client request, ${PEER_MESSAGE_MS * 1000} µs per peer message)`);
  console.log(`baseline: CR, one node, read-only = ${baseline.toFixed(0)} reads/s\n`);
  console.log('workload     chain  CR reads/s (× base)   CRAQ reads/s (× base)   CRAQ/CR  writes/s CRAQ  dirty reads  read p50 CRAQ  write p50 CRAQ  node busy CRAQ (head first)');
  for (const writeFraction of [0, 0.1]) {
    for (const chainLength of [1, 3, 5]) {
      const cr = results.find((r) => r.mode === 'CR' && r.chainLength === chainLength && r.writeFraction === writeFraction)!;
      const craq = results.find((r) => r.mode === 'CRAQ' && r.chainLength === chainLength && r.writeFraction === writeFraction)!;
      console.log(
        `${(writeFraction === 0 ? 'read-only' : '10% writes').padEnd(12)} ${String(chainLength).padStart(5)}  ${cr.readsPerSecond.toFixed(0).padStart(9)} (${(cr.readsPerSecond / baseline).toFixed(2)})     ${craq.readsPerSecond.toFixed(0).padStart(9)} (${(craq.readsPerSecond / baseline).toFixed(2)})       ${(craq.readsPerSecond / cr.readsPerSecond).toFixed(2).padStart(5)}  ${craq.writesPerSecond.toFixed(0).padStart(12)}  ${(craq.dirtyReadFraction * 100).toFixed(1).padStart(10)}%  ${craq.readLatencyMsMedian.toFixed(2).padStart(10)} ms  ${craq.writeLatencyMsMedian.toFixed(2).padStart(11)} ms  ${craq.utilization.map((u) => `${(u * 100).toFixed(0)}%`).join(' ')}`,
      );
    }
  }
  console.log(`\n(${((performance.now() - realStart) / 1000).toFixed(1)} s of real time)`);
  if (out !== undefined) await writeFile(out, `${JSON.stringify({ baseline, results }, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------
// `--processes`: the same comparison with real processes — one `flotilla server` member as
// the coordination service, `flotilla craq node` processes, and closed-loop clients in this
// process. Unthrottled, every process shares the same cores, so CRAQ's reads cannot grow
// with the chain: that measures the cores, not the chain. With each node limited to
// --node-rate requests per second (a per-node capacity, as each of the paper's machines
// had), the real chain's scaling shows while the cores have room.

async function runProcesses(measureMs: number, nodeRate: number): Promise<void> {
  const cluster = await TestCluster.createDetached(1);
  const root = await mkdtemp(join(tmpdir(), 'flotilla-craq-bench-'));
  const children: ServerChild[] = [];
  try {
    cluster.extraArgs = ['--zk-tick-ms', '250'];
    await cluster.startMember(1);
    const zk = [`127.0.0.1:${cluster.ports.get(1)!.zk}`];
    console.log(`real processes on ${availableParallelism()} cores, ${PROCESS_CLIENTS} concurrent clients, ${measureMs / 1000} s per cell, read-only, 100 keys of 500 bytes`);
    console.log('node capacity        chain  CR reads/s  CRAQ reads/s  CRAQ/CR   (× CR, one node)');
    for (const rate of [undefined, nodeRate]) {
      let baseline: number | undefined;
      for (const chainLength of rate === undefined ? [1, 3] : [1, 3, 5]) {
        const chain = `bench-${rate ?? 'free'}-${chainLength}`;
        const started: ServerChild[] = [];
        for (let k = 0; k < chainLength; k++) started.push(await startNodeProcess(zk, join(root, `${chain}-${k}`), chain, rate));
        children.push(...started);
        const client = await CraqClient.connect({ zkServers: zk, chains: [chain], seed: chainLength });
        try {
          await waitUntil(() => client.view(chain)?.config.members.length === chainLength);
          for (let k = 0; k < 100; k++) await client.write(`k${k}`, 'x'.repeat(500));
          const tail = client.view(chain)!.config.members.at(-1)!;
          const cr = await measureReads(measureMs, async (key) => (await client.readAt(chain, tail, key)).type === 'read');
          const craq = await measureReads(measureMs, async (key) => (await client.read(key)).version > 0);
          baseline ??= cr;
          const capacity = rate === undefined ? 'unthrottled' : `${rate} req/s per node`;
          console.log(
            `${capacity.padEnd(20)} ${String(chainLength).padStart(5)}  ${cr.toFixed(0).padStart(10)}  ${craq.toFixed(0).padStart(12)}  ${(craq / cr).toFixed(2).padStart(7)}   (${(cr / baseline).toFixed(2)}, ${(craq / baseline).toFixed(2)})`,
          );
        } finally {
          await client.close();
          for (const child of started) child.kill('SIGKILL');
          await Promise.all(started.map((child) => child.exited));
        }
      }
    }
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(children.map((child) => child.exited));
    await cluster.dispose();
    await rm(root, { recursive: true, force: true });
  }
}

const PROCESS_CLIENTS = 64;

/** Reads per second that succeeded (a refusal does not count), from closed-loop clients. */
async function measureReads(measureMs: number, read: (key: string) => Promise<boolean>): Promise<number> {
  let count = 0;
  const endMs = performance.now() + measureMs;
  const prng = new Prng(7);
  await Promise.all(
    Array.from({ length: PROCESS_CLIENTS }, async () => {
      while (performance.now() < endMs) {
        if (await read(`k${prng.int(100)}`)) count++;
      }
    }),
  );
  return (count * 1000) / measureMs;
}

async function waitUntil(predicate: () => boolean): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error('the chain did not form within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function startNodeProcess(zk: string[], dataDir: string, chain: string, rate: number | undefined): Promise<ServerChild> {
  return new Promise((resolve, reject) => {
    const child = spawnServerChild({
      args: ['craq', 'node', '--zk', zk.join(','), '--data', dataDir, '--chain', chain, '--session-timeout-ms', '2000', ...(rate === undefined ? [] : ['--serve-rate-max', String(rate)])],
      onStdoutLine: (line) => {
        if (line.includes('"msg":"listening"')) resolve(child);
      },
      onStderrLine: (line) => console.error(line),
    });
    void child.exited.then((exit) => reject(new Error(`craq node exited: ${JSON.stringify(exit)}`)));
  });
}
