// Three real `flotilla server` processes on 127.0.0.1 (tick 100 ms), crashed with kill -9
// (DESIGN.md §7; issue 4, item 5).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getText, sleep, TestCluster, waitFor, Writers } from './helpers.js';

/** The bound: writes resume within this long after the leader is killed. */
const RESUME_MS_MAX = 5_000;
const WRITERS = 4;

test('kill -9 the leader while clients write: a new leader takes writes within 5 s, and the killed member catches up from its own log', { timeout: 60_000 }, async (t) => {
  const cluster = await TestCluster.start(t);
  const oldLeader = await cluster.waitForLeader();
  const writers = new Writers(cluster.client(), WRITERS, 'a');
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

  const client = cluster.client();
  for (const ack of writers.acks.slice(-20)) assert.equal(await getText(client, ack.key), ack.value);
  t.diagnostic(`${writers.acks.length} writes acknowledged, ${writers.failures.length} failed or unknown`);
});

test('kill -9 all three members mid-load and restart them: every acknowledged write is still there', { timeout: 60_000 }, async (t) => {
  const cluster = await TestCluster.start(t);
  await cluster.waitForLeader();
  const writers = new Writers(cluster.client(), WRITERS, 'b');
  await waitFor('writes before the crash', 10_000, () => (writers.acks.length >= 200 ? true : undefined));
  await Promise.all(cluster.ids.map((id) => cluster.kill(id)));
  await writers.stop();
  const acks = [...writers.acks];

  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  await cluster.waitForLeader();
  const client = cluster.client();
  const chunk = 64;
  for (let start = 0; start < acks.length; start += chunk) {
    const slice = acks.slice(start, start + chunk);
    const values = await Promise.all(slice.map((ack) => getText(client, ack.key)));
    for (const [i, ack] of slice.entries()) {
      assert.ok(values[i] !== null, `acknowledged write of ${ack.key} (index ${ack.index}) was lost`);
      assert.equal(values[i], ack.value);
    }
  }
  t.diagnostic(`${acks.length} acknowledged writes checked after restarting all members`);
});
