// Scripted key/value scenarios that the planted state-machine bugs (kv/ KvUnsafe) cannot
// slip through, whatever the seed (STYLE.md 18; test/kv/planted.test.ts). Random runs
// catch them only when a retry happens to meet the bug; these make the retry happen.
//
// A retried write: a clerk's first write (seq 1, ack 0) reaches the servers and applies,
// but every reply to that clerk is lost, so it keeps retrying it, as after a lost reply on
// the lab's unreliable network:
//
//   step                                   | correct service    | noDuplicateDetection | sessionsNotInSnapshot
//   ---------------------------------------+--------------------+----------------------+-------------------------
//   append(k, "x") applies, replies lost    | k = "x"            | k = "x"              | k = "x"
//   the clerk retries for a while          | replies from the   | every retry appends  | replies from the session
//                                          | session            | again: "xx..."       |
//   (restart) every server snapshots past  | sessions restored  |                      | sessions forgotten: the
//   the write and restarts from it         |                    |                      | next retry (ack 0) runs
//                                          |                    |                      | again: "xx"
//   replies flow; a Get of k               | "x"                | "xx..."              | "xx"
//
// The Get is logged, so both the lab's value check and the linearizability checker see it.

import type { KvStateMachine } from '../kv/state-machine.js';
import type { Clerk } from './kv-clerk.js';
import { type KvCluster, electionTimeoutMs } from './kv-cluster.js';
import { TestFailure } from './raft-cluster.js';

export const retriedKey = 'k';
export const retriedValue = 'x';
/** How long the clerk retries without a restart (virtual ms): dozens of retries. */
export const retryPhaseMs = 1000;
/** At most this many filler puts to make every server snapshot (each adds a log entry). */
const fillerPutsMax = 500;

export interface RetriedWriteOptions {
  /** Make every server snapshot past the write and restart from its snapshot (needs maxraftstate > 0). */
  readonly restartFromSnapshot: boolean;
}

export interface RetriedWriteReport {
  /** The value of `retriedKey` a Get returned at the end: `retriedValue` if the write ran once. */
  readonly value: string;
  /** RPCs the retrying clerk sent (more than one round of the servers: it did retry). */
  readonly retryingClerkRpcs: number;
}

/** Runs the retried-write scenario on a started cluster (see the table above). */
export async function retriedWrite(cfg: KvCluster, options: RetriedWriteOptions): Promise<RetriedWriteReport> {
  const ck = cfg.makeClient(cfg.all());
  const retrying = cfg.makeClient(cfg.all());
  cfg.loseReplies(retrying, true);
  const write = cfg.go(cfg.append(retrying, retriedKey, retriedValue, 1));
  const applied = await cfg.scheduler.waitFor(() => cfg.services.every((service) => service !== undefined && valueOn(service.machine) !== ''), 10 * electionTimeoutMs);
  if (!applied) throw new TestFailure(`the write did not apply on every server within 10 s\n${cfg.describe()}`);
  if (options.restartFromSnapshot) await restartFromSnapshots(cfg, ck);
  else await cfg.sleep(retryPhaseMs);
  const retryingClerkRpcs = retrying.rpcCount;
  if (retryingClerkRpcs <= cfg.n) throw new TestFailure(`the clerk sent only ${retryingClerkRpcs} RPCs: it did not retry`);
  cfg.loseReplies(retrying, false);
  await cfg.scheduler.waitOn(write);
  // Strictly after: a call at the instant another returns counts as concurrent with it.
  await cfg.sleep(1);
  const value = await cfg.get(ck, retriedKey, 0);
  return { value, retryingClerkRpcs };
}

/** Puts until every server took a snapshot since now, then restarts every server from its storage. */
async function restartFromSnapshots(cfg: KvCluster, ck: Clerk): Promise<void> {
  if (cfg.maxraftstate <= 0) throw new TestFailure('restartFromSnapshot needs snapshots: set maxraftstate');
  const before = cfg.services.map((service) => service!.replica.snapshotsTaken);
  const snapshotted = (): boolean => cfg.services.every((service, i) => service!.replica.snapshotsTaken > before[i]!);
  for (let n = 0; !snapshotted(); n++) {
    if (n >= fillerPutsMax) throw new TestFailure(`no snapshot on every server after ${fillerPutsMax} puts\n${cfg.describe()}`);
    await cfg.put(ck, 'filler', String(n), 0);
  }
  for (let i = 0; i < cfg.n; i++) cfg.shutdownServer(i);
  await cfg.sleep(electionTimeoutMs);
  for (let i = 0; i < cfg.n; i++) await cfg.startServer(i);
  cfg.connectAll();
}

/** The retried key's value in one server's state machine ('' while absent). */
function valueOn(machine: KvStateMachine): string {
  const result = machine.query({ kind: 'get', key: retriedKey });
  return result.kind === 'value' && result.value !== null ? Buffer.from(result.value).toString('utf8') : '';
}
