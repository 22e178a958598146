// The kvraft tests' scenarios (kvraft/test_test.go; docs/6824-tests.md §5.3–5.5):
// GenericTest with its clients, partitioner, crashes and checks, GenericTestSpeed, and the
// append checks. Each returns what it measured, for the test to print.

import { assert } from '../stdx/assert.js';
import type { Clerk } from './kv-clerk.js';
import { type KvCluster, electionTimeoutMs } from './kv-cluster.js';
import { TestFailure } from './raft-cluster.js';

export interface GenericParams {
  readonly nclients: number;
  readonly unreliable: boolean;
  readonly crash: boolean;
  readonly partitions: boolean;
  readonly maxraftstate: number;
  readonly randomkeys: boolean;
}

/** The clients run this long in each iteration (2020–2024). */
export const clientPhaseMs = 5000;
export const genericIterations = 3;
/** The partitioner waits electionTimeout + rand(0..199) ms between partitions. */
const partitionJitterMs = 200;
/** SnapshotSize4B's bound on the KV snapshot. */
export const maxSnapshotStateBytes = 500;

export interface GenericReport {
  /** Logged clerk operations. */
  operations: number;
  /** Largest LogSize() and SnapshotSize() seen at the end of an iteration (bytes). */
  logSizeMax: number;
  snapshotSizeMax: number;
}

/** The title the lab prints, built from the flags. */
export function genericTitle(params: GenericParams, nservers: number, part: string): string {
  const parts: string[] = [];
  if (params.unreliable) parts.push('unreliable net');
  if (params.crash) parts.push('restarts');
  if (params.partitions) parts.push('partitions');
  if (params.maxraftstate !== -1) parts.push('snapshots');
  if (params.randomkeys) parts.push('random keys');
  parts.push(params.nclients > 1 ? 'many clients' : 'one client');
  return `Test: ${parts.join(', ')} (${part}), ${nservers} servers`;
}

/** GenericTest: three iterations of clients (and faults), then the lab's checks. */
export async function genericTest(cfg: KvCluster, params: GenericParams): Promise<GenericReport> {
  const ck = cfg.makeClient(cfg.all());
  const report: GenericReport = { operations: 0, logSizeMax: 0, snapshotSizeMax: 0 };
  for (let iteration = 0; iteration < genericIterations; iteration++) {
    await genericIteration(cfg, ck, params, report);
  }
  report.operations = cfg.history.length;
  return report;
}

async function genericIteration(cfg: KvCluster, ck: Clerk, params: GenericParams, report: GenericReport): Promise<void> {
  const stop = { clients: false, partitioner: false };
  // Background tasks go through cfg.go(): a client that finds a wrong value fails the run at once.
  const clients = Array.from({ length: params.nclients }, (_, cli) => cfg.go(runClient(cfg, cli, params, stop)));
  let partitioner: Promise<void> | undefined;
  if (params.partitions) {
    // Let the clients make some progress without interruption.
    await cfg.sleep(1000);
    partitioner = cfg.go(runPartitioner(cfg, stop));
  }
  await cfg.sleep(clientPhaseMs);
  stop.clients = true;
  stop.partitioner = true;
  if (partitioner !== undefined) {
    await cfg.scheduler.waitOn(partitioner);
    cfg.connectAll();
    // Wait for a new term, so a clerk stuck on a minority server hears of it.
    await cfg.sleep(electionTimeoutMs);
  }
  if (params.crash) {
    for (let i = 0; i < cfg.n; i++) cfg.shutdownServer(i);
    await cfg.sleep(electionTimeoutMs);
    for (let i = 0; i < cfg.n; i++) await cfg.startServer(i);
    cfg.connectAll();
  }
  const counts = await cfg.scheduler.waitOn(Promise.all(clients));
  for (let i = 0; i < params.nclients; i++) {
    const value = await cfg.get(ck, String(i), 0);
    if (!params.randomkeys) checkClntAppends(i, value, counts[i]!);
  }
  checkSizes(cfg, params.maxraftstate, report);
}

function checkSizes(cfg: KvCluster, maxraftstate: number, report: GenericReport): void {
  const logSize = cfg.logSize();
  const snapshotSize = cfg.snapshotSize();
  report.logSizeMax = Math.max(report.logSizeMax, logSize);
  report.snapshotSizeMax = Math.max(report.snapshotSizeMax, snapshotSize);
  if (maxraftstate > 0 && logSize > 8 * maxraftstate) {
    throw new TestFailure(`logs were not trimmed (${logSize} > 8*${maxraftstate})`);
  }
  if (maxraftstate < 0 && snapshotSize > 0) throw new TestFailure('snapshot too large');
}

/** One GenericTest client; resolves with how many of its values it wrote (j). */
async function runClient(cfg: KvCluster, cli: number, params: GenericParams, stop: { clients: boolean }): Promise<number> {
  const myck = cfg.makeClient(cfg.all());
  let j = 0;
  let last = '';
  if (!params.randomkeys) await cfg.put(myck, String(cli), last, cli);
  while (!stop.clients) {
    const key = params.randomkeys ? String(cfg.prng.int(params.nclients)) : String(cli);
    const nv = `x ${cli} ${j} y`;
    if (cfg.prng.int(1000) < 500) {
      await cfg.append(myck, key, nv, cli);
      if (!params.randomkeys) last += nv;
      j++;
    } else if (params.randomkeys && cfg.prng.int(1000) < 100) {
      await cfg.put(myck, key, nv, cli);
      j++;
    } else {
      const value = await cfg.get(myck, key, cli);
      if (!params.randomkeys && value !== last) {
        throw new TestFailure(`get wrong value, key ${key}, wanted:\n${last}\n, got\n${value}`);
      }
    }
  }
  cfg.deleteClient(myck);
  return j;
}

/** Moves the servers between two random sides (either may be empty) every 1–1.2 s. */
async function runPartitioner(cfg: KvCluster, stop: { partitioner: boolean }): Promise<void> {
  while (!stop.partitioner) {
    const sides: number[][] = [[], []];
    for (let i = 0; i < cfg.n; i++) sides[cfg.prng.int(2)]!.push(i);
    cfg.partition(sides[0]!, sides[1]!);
    await cfg.sleep(electionTimeoutMs + cfg.prng.int(partitionJitterMs));
  }
}

/** checkClntAppends: every "x clnt j y" for j < count appears exactly once, in order. */
export function checkClntAppends(clnt: number, value: string, count: number): void {
  let lastOff = -1;
  for (let j = 0; j < count; j++) {
    const wanted = `x ${clnt} ${j} y`;
    const off = value.indexOf(wanted);
    if (off < 0) throw new TestFailure(`${clnt} missing element ${wanted} in Append result ${value}`);
    const off1 = value.lastIndexOf(wanted);
    if (off1 !== off) throw new TestFailure(`duplicate element ${wanted} in Append result`);
    if (off <= lastOff) throw new TestFailure(`wrong order for element ${wanted} in Append result`);
    lastOff = off;
  }
}

/** checkConcurrentAppends: each client's elements appear exactly once, in order. */
export function checkConcurrentAppends(value: string, counts: readonly number[]): void {
  for (let i = 0; i < counts.length; i++) checkClntAppends(i, value, counts[i]!);
}

export interface SpeedReport {
  readonly ops: number;
  readonly totalMs: number;
  readonly msPerOp: number;
}

export const speedOps = 1000;
/** "heartbeat interval should be ~100 ms; require at least 3 ops per interval". */
export const speedMsPerOpMax = 100 / 3;

/** GenericTestSpeed: 1000 sequential appends at 33.3 ms/op at most (virtual time). */
export async function genericTestSpeed(cfg: KvCluster): Promise<SpeedReport> {
  assert(cfg.n === 3, 'the speed test runs on 3 servers');
  const ck = cfg.makeClient(cfg.all());
  // Wait for the first op: a leader is elected and the servers are ready.
  await cfg.get(ck, 'x');
  const start = cfg.nowMs();
  for (let i = 0; i < speedOps; i++) await cfg.append(ck, 'x', `x 0 ${i} y`);
  const totalMs = cfg.nowMs() - start;
  const value = await cfg.get(ck, 'x');
  checkClntAppends(0, value, speedOps);
  const msPerOp = totalMs / speedOps;
  if (msPerOp > speedMsPerOpMax) {
    throw new TestFailure(`Operations completed too slowly ${msPerOp.toFixed(2)} ms/op > ${speedMsPerOpMax.toFixed(2)} ms/op`);
  }
  return { ops: speedOps, totalMs, msPerOp };
}
