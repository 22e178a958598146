// A rolling restart with real processes, as an operator does one (deploy/README.md): three
// members, clients writing all the time, and each member in turn stopped and started again —
// a round with SIGTERM (a clean stop) and a round with kill -9 — waiting for each to catch up
// before the next. At the end every key holds its last acknowledged value, read through every
// member with linearizable reads; and the restarts really happened (new pids) with writes
// acknowledged during each one.
//
// The writers overwrite a fixed set of keys, so a lost write shows as an older value. A write
// whose outcome is unknown (a connection cut mid-call) may or may not have applied: a key may
// then hold that value instead, but never one older than its last acknowledged write.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FlotillaClient } from '../../src/server/client.js';
import { getText, sleep, TestCluster, waitFor } from '../server/helpers.js';

const WRITERS = 4;
const KEYS_PER_WRITER = 16;
/** A restarted member counts as caught up once it has applied the leader's commit index. */
const CATCH_UP_TIMEOUT_MS = 20_000;

interface KeyState {
  /** The sequence number of the last acknowledged write (-1: none). */
  lastAcked: number;
  /** Writes after it that failed: each may have applied (unknown outcome). */
  readonly unknownAfter: Set<number>;
}

/** Writers that overwrite their own keys until stopped, keeping each key's history. */
class OverwritingWriters {
  readonly keys = new Map<string, KeyState>();
  /** When each acknowledged write was acknowledged (ms since the epoch). */
  readonly ackTimes: number[] = [];
  failures = 0;
  private stopped = false;
  private readonly loops: Promise<void>[];

  constructor(client: FlotillaClient) {
    this.loops = Array.from({ length: WRITERS }, (_, writer) => this.run(client, writer));
  }

  private async run(client: FlotillaClient, writer: number): Promise<void> {
    for (let seq = 0; !this.stopped; seq++) {
      const key = `rolling-${writer}-${seq % KEYS_PER_WRITER}`;
      const state = this.keys.get(key) ?? { lastAcked: -1, unknownAfter: new Set<number>() };
      this.keys.set(key, state);
      try {
        await client.put(key, String(seq));
        state.lastAcked = seq;
        state.unknownAfter.clear();
        this.ackTimes.push(Date.now());
      } catch {
        state.unknownAfter.add(seq);
        this.failures++;
        if (!this.stopped) await sleep(20);
      }
    }
  }

  acksBetween(fromMs: number, toMs: number): number {
    return this.ackTimes.filter((at) => at >= fromMs && at <= toMs).length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

/** A line for each key whose value read through `client` is not what its history allows. */
async function wrongKeys(client: FlotillaClient, keys: ReadonlyMap<string, KeyState>): Promise<string[]> {
  const wrong: string[] = [];
  for (const [key, state] of keys) {
    const value = await getText(client, key);
    const seq = value === null ? -1 : Number(value);
    if (seq === state.lastAcked || state.unknownAfter.has(seq)) continue;
    wrong.push(`${key}: read ${value === null ? 'nothing' : value}, last acknowledged ${state.lastAcked}${state.unknownAfter.size > 0 ? ` (or one of ${[...state.unknownAfter].join(',')})` : ''}`);
  }
  return wrong;
}

test('rolling restart, SIGTERM then kill -9, under continuous writes: no acknowledged write is lost', { timeout: 240_000 }, async (t) => {
  const cluster = await TestCluster.start(t, 3);
  await cluster.waitForLeader();
  const writers = new OverwritingWriters(cluster.client());
  t.after(() => {
    writers.stop().catch(() => undefined);
  });
  await waitFor('writes before the first restart', 10_000, () => (writers.ackTimes.length >= 50 ? true : undefined));

  const restarts: string[] = [];
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    let leaderRestarted = false;
    for (const id of cluster.ids) {
      const pidBefore = await pidOf(cluster, id);
      const wasLeader = (await cluster.waitForLeader()) === id;
      leaderRestarted ||= wasLeader;
      const stoppedAt = Date.now();
      const exit = await cluster.kill(id, signal);
      // A clean stop exits 0; kill -9 leaves no exit code.
      if (signal === 'SIGTERM') assert.equal(exit.code, 0, `member ${id} stopped cleanly on SIGTERM`);
      else assert.equal(exit.signal, 'SIGKILL');
      // Down for a moment, while the others carry on.
      await sleep(500);
      await cluster.startMember(id);
      const pidAfter = await pidOf(cluster, id);
      assert.notEqual(pidAfter, pidBefore, `member ${id} is a new process`);
      await caughtUp(cluster, id);
      const backAt = Date.now();
      const acked = writers.acksBetween(stoppedAt, backAt);
      restarts.push(`${signal} member ${id}: pid ${pidBefore} -> ${pidAfter}, back in ${backAt - stoppedAt} ms, ${acked} writes acknowledged meanwhile`);
      if (wasLeader) {
        // The others had to elect a leader first (1–2.5 s), which may outlast a quick restart.
        await waitFor(`writes acknowledged after leader ${id} stopped (${signal})`, 10_000, () => (writers.acksBetween(stoppedAt, Date.now()) > 0 ? true : undefined));
      } else {
        assert.ok(acked > 0, `writes were acknowledged while member ${id} restarted (${signal})`);
      }
    }
    // Every member restarted once, so the round stopped whichever member led when its turn came.
    assert.ok(leaderRestarted, `the ${signal} round restarted the leader`);
  }
  await writers.stop();
  for (const line of restarts) t.diagnostic(line);
  t.diagnostic(`${writers.ackTimes.length} writes acknowledged, ${writers.failures} failed or unknown, over ${writers.keys.size} keys`);

  // Linearizable reads through each member in turn (a client's reads land on its first endpoint).
  for (const [index, id] of cluster.ids.entries()) {
    const wrong = await wrongKeys(cluster.client({}, index), writers.keys);
    assert.equal(wrong.length, 0, `through member ${id}, ${wrong.length} keys lost their last acknowledged write:\n${wrong.slice(0, 10).join('\n')}`);
  }
});

/** The pid member `id` reports on /status, which must be the process the test started. */
async function pidOf(cluster: TestCluster, id: number): Promise<number> {
  const { pid } = (await cluster.status(id)) as unknown as { pid: number };
  assert.equal(pid, cluster.members.get(id)!.child.pid, `member ${id}'s /status is the process started for it`);
  return pid;
}

/** Member `id` knows a leader in both groups and has applied everything the key/value leader had committed. */
async function caughtUp(cluster: TestCluster, id: number): Promise<void> {
  const leader = await cluster.waitForLeader(CATCH_UP_TIMEOUT_MS);
  const commit = (await cluster.status(leader)).commit;
  await waitFor(`member ${id} to catch up to index ${commit}`, CATCH_UP_TIMEOUT_MS, async () => {
    const status = (await cluster.status(id)) as unknown as { applied: number; leader: number; zk: { leader: number } };
    return status.applied >= commit && status.leader !== 0 && status.zk.leader !== 0 ? true : undefined;
  });
}
