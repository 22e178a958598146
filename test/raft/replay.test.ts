// `flotilla sim --seed N --html FILE`: the recording of a simulator run (testbed/sim-recorder.ts)
// and its self-contained HTML replay (testbed/replay-html.ts). The browser side is tested in
// test/dashboard/ (a real Chromium moves the slider).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation } from '../../src/testbed/raft-sim.js';
import { renderReplayHtml } from '../../src/testbed/replay-html.js';
import { yieldToHost } from '../../src/platform/host.js';

test('recording a run does not change it: the same trace with and without the recorder', async () => {
  for (const seed of [1, 2, 3]) {
    const plain = await runSimulation({ seed, yieldToHost });
    const recorded = await runSimulation({ seed, yieldToHost, record: true });
    assert.equal(recorded.traceHash, plain.traceHash, `seed ${seed}`);
    assert.equal(plain.recording, undefined);
    const events = recorded.recording!.events;
    assert.ok(events.some((e) => e.kind === 'send') && events.some((e) => e.kind === 'deliver'), 'messages are recorded');
    const leaders = events.filter((e) => e.kind === 'state' && e.state.role === 'leader');
    assert.ok(leaders.length > 0, 'a leader is recorded');
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.t >= events[i - 1]!.t, 'events in time order');
  }
});

test("a failing run's recording ends in the checker's complaint, and its page opens there", async () => {
  const result = await runSimulation({ seed: 1, yieldToHost, unsafe: { smallQuorum: true }, record: true });
  assert.equal(result.ok, false, 'the planted bug fails seed 1');
  const recording = result.recording!;
  const violations = recording.events.filter((e) => e.kind === 'violation');
  assert.equal(violations.length, 1);
  assert.equal(recording.failure, result.failure);
  // Two servers believe they lead, in different terms, before the complaint: the picture of the bug.
  const html = renderReplayHtml(recording);
  assert.match(html, /Flotilla simulator — seed 1/);
  assert.match(html, /failed/);
  assert.match(html, /show\(failStep >= 0 \? failStep : 0\)/);
});

test('the page embeds any recording safely: a "</script>" in a failure message cannot end the script early', () => {
  const html = renderReplayHtml({
    seed: 9,
    servers: 3,
    settings: 'x <b>',
    events: [{ t: 0, kind: 'violation', text: '</script><img src=x onerror=alert(1)>' }],
    truncated: false,
    failure: '</script>',
  });
  assert.equal(html.match(/<\/script>/g)?.length, 2, 'only the two closing tags of the page');
  assert.ok(!html.includes('<img src=x'), 'the markup stays inside the JSON, escaped');
  assert.match(html, /x &lt;b&gt;/);
});
