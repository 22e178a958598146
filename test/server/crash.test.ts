// Three real `flotilla server` processes on 127.0.0.1 (tick 100 ms), crashed with kill -9
// (DESIGN.md §7; issue 4, item 5).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lostWrites, sleep, TestCluster, waitFor, Writers } from './helpers.js';

/** The bound: writes resume within this long after the leader is killed. */
const RESUME_MS_MAX = 5_000;
const WRITERS = 4;

test('kill -9 the leader while clients write: a new leader takes writes within 5 s, and the killed member catches up from its own log', { timeout: 60_000 }, async (t) => {
  const cluster = await TestCluster.start(t);
  const oldLeader = await cluster.waitForLeader();
  const writers = new Writers(cluster.client(), WRITERS, 'a');
  // A failed assertion must not leave the writers looping (the test would never end).
  t.after(() => {
    writers.stop().catch(() => undefined);
  });
  await waitFor('writes before the kill', 10_000, () => (writers.acks.length >= 50 ? true : undefined));
  const lastIndexBeforeKill = Math.max(...writers.acks.map((ack) => ack.index));

  const killedAt = Date.now();
  await cluster.kill(oldLeader);
  const resumed = await waitFor('a write acknowledged after the kill', RESUME_MS_MAX + 5_000, () => writers.acks.find((ack) => ack.atMs > killedAt));
  const resumeMs = resumed.atMs - killedAt;
  t.diagnostic(`writes resumed ${resumeMs} ms after kill -9 of leader ${oldLeader}`);
  assert.ok(resumeMs < RESUME_MS_MAX, `writes resumed after ${resumeMs} ms`);
  const newLeader = await cluster.waitForLeader();
  assert.notEqual(newLeader, oldLeader);
  await sleep(300);
  await writers.stop();

  const restarted = await cluster.startMember(oldLeader);
  const recovered = restarted.entries().find((entry) => entry.msg === 'recovered');
  assert.ok(recovered !== undefined, 'the restarted member logs what it recovered');
  assert.ok((recovered['lastIndex'] as number) >= lastIndexBeforeKill, `its own log holds index ${lastIndexBeforeKill} (recovered ${String(recovered['lastIndex'])})`);
  const leaderCommit = (await cluster.status(newLeader)).commit;
  await waitFor('the restarted member to apply everything committed', 10_000, async () => ((await cluster.status(oldLeader)).applied >= leaderCommit ? true : undefined));

  // Every acknowledged write, before and after the kill, not only the last few.
  const lost = await lostWrites(cluster.client(), writers.acks);
  t.diagnostic(`${writers.acks.length} writes acknowledged and read back, ${writers.failures.length} failed or unknown`);
  assert.equal(lost.length, 0, `${lost.length} of ${writers.acks.length} acknowledged writes were lost:\n${lost.slice(0, 10).join('\n')}`);
});

test('kill -9 all three members mid-load and restart them: every acknowledged write is still there', { timeout: 60_000 }, async (t) => {
  const cluster = await TestCluster.start(t);
  await cluster.waitForLeader();
  const writers = new Writers(cluster.client(), WRITERS, 'b');
  t.after(() => {
    writers.stop().catch(() => undefined);
  });
  await waitFor('writes before the crash', 10_000, () => (writers.acks.length >= 200 ? true : undefined));
  await Promise.all(cluster.ids.map((id) => cluster.kill(id)));
  await writers.stop();
  const acks = [...writers.acks];

  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  await cluster.waitForLeader();
  const lost = await lostWrites(cluster.client(), acks);
  t.diagnostic(`${acks.length} acknowledged writes checked after restarting all members`);
  assert.equal(lost.length, 0, `${lost.length} of ${acks.length} acknowledged writes were lost:\n${lost.slice(0, 10).join('\n')}`);
});
