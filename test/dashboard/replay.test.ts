// The simulator's replay page (`flotilla sim --seed N --html FILE`) in a real browser
// (playwright-core driving Debian's chromium): the file opens with no network, draws the
// servers on the ring and their logs, the slider and the step buttons move through the run,
// and a failing seed opens at the checker's complaint. Screenshots go to a folder under the
// OS temp dir (printed), to be looked at.

import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { yieldToHost } from '../../src/platform/host.js';
import { runSimulation } from '../../src/testbed/raft-sim.js';
import { renderReplayHtml } from '../../src/testbed/replay-html.js';
import { CHROMIUM_PATH, chromiumSkipReason } from './chromium.js';

/** What the page shows now, read from its DOM (a string run in the page: the tests compile without the DOM's types). */
const READ_PAGE = `(() => ({
  servers: document.querySelectorAll('#ring g').length,
  logRows: document.querySelectorAll('#logs .logrow').length,
  entries: document.querySelectorAll('#logs .entry').length,
  step: Number(document.getElementById('slider').value),
  steps: Number(document.getElementById('slider').max) + 1,
  clock: document.getElementById('clock').textContent,
  failure: getComputedStyle(document.getElementById('failure')).display === 'none' ? '' : document.getElementById('failure').textContent,
  now: document.querySelector('#events .now') ? document.querySelector('#events .now').textContent : '',
}))()`;

interface PageState {
  servers: number;
  logRows: number;
  entries: number;
  step: number;
  steps: number;
  clock: string;
  failure: string;
  now: string;
}

test('the replay page of a simulator run works in a real browser: servers, logs, slider and steps; a failing seed opens at its complaint', { timeout: 120_000 }, async (t) => {
  const skip = chromiumSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const out = await mkdtemp(join(tmpdir(), 'flotilla-replay-'));
  t.diagnostic(`pages and screenshots in ${out}`);
  const passing = await runSimulation({ seed: 7, yieldToHost, record: true });
  const failing = await runSimulation({ seed: 1, yieldToHost, unsafe: { smallQuorum: true }, record: true });
  assert.equal(passing.ok, true);
  assert.equal(failing.ok, false);
  const files = { passing: join(out, 'seed-7.html'), failing: join(out, 'seed-1-small-quorum.html') };
  await writeFile(files.passing, renderReplayHtml(passing.recording!));
  await writeFile(files.failing, renderReplayHtml(failing.recording!));

  let browser: Browser | undefined;
  t.after(async () => {
    await browser?.close();
  });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, timeout: 30_000, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  // Nothing may be fetched: the page is one self-contained file.
  const requests: string[] = [];
  page.on('request', (request) => {
    if (!request.url().startsWith('file://')) requests.push(request.url());
  });
  const read = async () => (await page.evaluate(READ_PAGE)) as PageState;

  await page.goto(`file://${files.passing}`);
  const start = await read();
  assert.equal(start.step, 0, 'a passing run opens at its first step');
  assert.equal(start.steps, passing.recording!.events.length);
  // Move to the middle with the slider: servers on the ring, a log row for each member.
  await page.locator('#slider').fill(String(Math.floor(start.steps / 2)));
  const middle = await read();
  assert.equal(middle.step, Math.floor(start.steps / 2));
  assert.ok(middle.servers >= 3, `${middle.servers} servers drawn`);
  assert.ok(middle.logRows >= 3 && middle.entries > 0, `${middle.logRows} log rows, ${middle.entries} entries`);
  assert.notEqual(middle.clock, start.clock);
  await page.screenshot({ path: join(out, '1-middle.png') });
  // The step buttons move one step each way, and the event list follows.
  await page.click('#fwd');
  await page.click('#fwd');
  assert.equal((await read()).step, middle.step + 2);
  await page.click('#back');
  const back = await read();
  assert.equal(back.step, middle.step + 1);
  assert.ok(back.now.length > 0, 'the current event is highlighted');
  await page.keyboard.press('ArrowRight');
  assert.equal((await read()).step, middle.step + 2);

  await page.goto(`file://${files.failing}`);
  const failed = await read();
  const complaint = failing.recording!.events.findIndex((e) => e.kind === 'violation');
  assert.equal(failed.step, complaint, "a failing run opens at the checker's complaint");
  assert.match(failed.failure, /The checker failed this run/);
  assert.match(failed.now, /CHECKER/);
  await page.screenshot({ path: join(out, '2-failing.png') });
  assert.deepEqual(errors, [], 'no script errors');
  assert.deepEqual(requests, [], 'nothing fetched');
});
