// The replay layer on the simulator (harness.ts): replay fidelity (the backup's state hash
// equals the primary's at every log position both reached), the Output Rule checked from
// the primary's trace, a crash right after a reply (the backup goes live with that reply's
// effect), each seed run twice to prove determinism, and a planted bug — replies released
// before the backup's ack — that the trace check must catch (STYLE.md 17, 18).
//
//   SEEDS=50 node --test dist/test/pb/sim.test.js     a longer sweep
//   SEED=17 node --test dist/test/pb/sim.test.js      replays one seed

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { yieldToHost } from '../../src/platform/host.js';
import { runPbSimulation } from './harness.js';

const replaySeed = process.env['SEED'] === undefined ? undefined : Number(process.env['SEED']);
const seedCount = Number(process.env['SEEDS'] ?? 8);
const seedStart = Number(process.env['SEED_START'] ?? 1 + randomInt(2 ** 31));
const seeds = replaySeed === undefined ? Array.from({ length: seedCount }, (_, k) => seedStart + k) : [replaySeed];

test(`replay fidelity and the Output Rule on ${seeds.length} seed(s) from ${seeds[0]}`, async (t) => {
  const failures: string[] = [];
  let compared = 0;
  let replies = 0;
  for (const seed of seeds) {
    const result = await runPbSimulation({ seed, yieldToHost });
    const again = await runPbSimulation({ seed, yieldToHost });
    compared += result.checkpointsCompared;
    replies += result.replies;
    const replay = `\n  replay: SEED=${seed} node --test dist/test/pb/sim.test.js`;
    if (result.mismatches.length > 0) failures.push(`seed ${seed}: the backup's state diverged: ${result.mismatches.slice(0, 3).join('; ')}${replay}`);
    if (result.violations > 0) failures.push(`seed ${seed}: Output Rule broken: ${result.outputRule}${replay}`);
    if (result.fingerprint !== again.fingerprint) failures.push(`seed ${seed} is not deterministic: ${result.fingerprint} then ${again.fingerprint}${replay}`);
    if (result.checkpointsCompared < 100) failures.push(`seed ${seed}: only ${result.checkpointsCompared} checkpoints compared${replay}`);
  }
  t.diagnostic(`${compared} checkpoints compared, ${replies} replies checked`);
  assert.deepEqual(failures, []);
});

test(`kill the primary right after a reply: the live backup holds every released write (${seeds.length} seeds)`, async () => {
  const failures: string[] = [];
  for (const seed of seeds) {
    for (const crashAfterReplyMs of [0, 1, 3]) {
      const result = await runPbSimulation({ seed, yieldToHost, crashAfterReplyMs });
      if (!result.wentLive) failures.push(`seed ${seed}: the primary never crashed`);
      if (result.lostWrites.length > 0)
        failures.push(`seed ${seed} (crash ${crashAfterReplyMs} ms after a reply): released writes missing on the new primary: ${result.lostWrites.slice(0, 5).join(', ')}`);
      if (result.mismatches.length > 0) failures.push(`seed ${seed}: diverged: ${result.mismatches[0]}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('the planted bug — replies released before the backup acked — is caught by the trace check, and loses writes at a crash', async () => {
  let caught = 0;
  let lost = 0;
  for (const seed of seeds) {
    const result = await runPbSimulation({ seed, yieldToHost, plantedBugReplyBeforeAck: true });
    if (result.violations > 0) caught++;
    assert.match(result.outputRule === '' ? 'none' : result.outputRule, /left when the backup had acked only|none/);
    const crash = await runPbSimulation({ seed, yieldToHost, plantedBugReplyBeforeAck: true, crashAfterReplyMs: 0 });
    if (crash.lostWrites.length > 0) lost++;
  }
  assert.equal(caught, seeds.length, 'every run with the planted bug breaks the Output Rule in its trace');
  assert.ok(lost > 0, 'with the planted bug, a crash right after a reply loses an acknowledged write in some seed');
});
