// The dashboard in a real browser (playwright-core driving Debian's chromium) against a real
// three-member cluster: the page shows three members and one leader per group; after the
// kv leader is killed with SIGKILL it shows the member down and a new leader within a few
// seconds; after a restart the member is back as a follower that catches up. Started without
// --allow-faults, its members show no fault buttons and refuse them (403). Screenshots of
// each state go to a folder under the OS temp dir (printed), to be looked at.
//
// On CI a missing chromium is a failure; elsewhere the test is skipped with the reason.

import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { putEventually, TestCluster, waitFor } from '../server/helpers.js';
import { CHROMIUM_PATH, chromiumSkipReason } from './chromium.js';

/** Everything the test does, browser start included, within this. */
const TEST_TIMEOUT_MS = 150_000;
/** "Within a few seconds": the election itself takes 1–2.5 s at the tests' 100 ms tick, the page updates once a second. */
const NEW_LEADER_SHOWN_MS_MAX = 10_000;
const GROUPS = ['kv', 'zk', 'etcd'] as const;

interface GroupOnPage {
  leader: number;
  /** data-role of each member's row, by member id. */
  roles: Record<string, string>;
  lag: Record<string, string>;
}

interface PageState {
  membersUp: Record<string, boolean>;
  groups: Record<string, GroupOnPage>;
  events: { kind: string; text: string }[];
  live: string;
}

/**
 * What the page shows, read from its DOM (the data-* attributes the renderer sets). A string,
 * run in the page: the tests compile without the DOM's types.
 */
const READ_PAGE = `(() => {
  const membersUp = {};
  for (const card of document.querySelectorAll('.member')) membersUp[card.dataset.member] = card.dataset.up === 'true';
  const groups = {};
  for (const section of document.querySelectorAll('section.group')) {
    const roles = {};
    const lag = {};
    for (const row of section.querySelectorAll('tbody tr')) {
      roles[row.dataset.member] = row.dataset.role;
      lag[row.dataset.member] = row.cells[10] ? row.cells[10].textContent : '';
    }
    groups[section.dataset.group] = { leader: Number(section.dataset.leader), roles, lag };
  }
  const events = [...document.querySelectorAll('#events li')].map((li) => ({ kind: li.dataset.kind, text: li.textContent }));
  const live = document.getElementById('live');
  return { membersUp, groups, events, live: live ? live.dataset.state : '' };
})()`;

/** True when the page shows no fault controls (the member was started without --allow-faults). */
const NO_FAULT_BUTTONS = `document.getElementById('faults').hidden && document.querySelectorAll('.member-faults').length === 3 && [...document.querySelectorAll('.member-faults')].every((c) => c.hidden)`;

function readPage(page: Page): Promise<PageState> {
  return page.evaluate(READ_PAGE) as Promise<PageState>;
}

function leadersShown(group: GroupOnPage): string[] {
  return Object.entries(group.roles)
    .filter(([, role]) => role === 'leader')
    .map(([id]) => id);
}

test('dashboard in chromium: three members, one leader per group; a killed leader is replaced on the page and comes back as a follower', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const skip = chromiumSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const shots = await mkdtemp(join(tmpdir(), 'flotilla-dashboard-'));
  t.diagnostic(`screenshots in ${shots}`);
  console.log(`dashboard screenshots in ${shots}`);
  const cluster = await TestCluster.start(t, 3);
  const leader = await cluster.waitForLeader(15_000);
  // The page must outlive the leader: watch from member 1 unless it leads kv.
  const viewer = cluster.ids.find((id) => id !== leader)!;
  const client = cluster.client();
  for (let i = 0; i < 20; i++) await putEventually(client, `before-${i}`, `value-${i}`, 'a write before the kill');

  let browser: Browser | undefined;
  t.after(async () => {
    await browser?.close();
  });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, timeout: 30_000, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: { width: 1500, height: 1150 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`${message.text()} (${message.location().url})`);
  });
  const url = `http://127.0.0.1:${cluster.ports.get(viewer)!.admin}/`;
  t.diagnostic(`watching ${url} (member ${viewer}); the kv leader is member ${leader}`);
  await page.goto(url, { timeout: 15_000 });
  assert.equal(await page.title(), 'Flotilla · dashboard');

  // Healthy: three members up, exactly one leader in each group, kv's the one /status names.
  const healthy = await waitFor('the page to show three members up and one leader per group', 15_000, async () => {
    const state = await readPage(page);
    const up = Object.values(state.membersUp).filter(Boolean).length;
    if (Object.keys(state.membersUp).length !== 3 || up !== 3) return undefined;
    if (!GROUPS.every((name) => state.groups[name] !== undefined && leadersShown(state.groups[name]!).length === 1)) return undefined;
    return state.groups['kv']!.leader === leader ? state : undefined;
  });
  for (const name of GROUPS) {
    const group = healthy.groups[name]!;
    assert.deepEqual(leadersShown(group), [String(group.leader)], `${name}: the one leader row is the group's leader`);
    assert.deepEqual(Object.keys(group.roles).sort(), ['1', '2', '3'], `${name}: a row per member`);
  }
  // Started without --allow-faults: no fault buttons on the page, and the API refuses them.
  assert.equal(await page.evaluate(NO_FAULT_BUTTONS), true, 'the page shows no fault buttons');
  const refused = await fetch(`${url}faults/stop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ member: leader }) });
  assert.equal(refused.status, 403);
  assert.match(((await refused.json()) as { error: string }).error, /not allowed on this member: it was started without --allow-faults/);
  await page.waitForTimeout(3000); // a few seconds of chart
  await page.screenshot({ path: join(shots, '1-healthy.png'), fullPage: true });

  // Kill the kv leader: the page shows it down and a new leader within a few seconds.
  await cluster.kill(leader);
  const killedAt = Date.now();
  const failedOver = await waitFor('the page to show the killed leader down and a new kv leader', NEW_LEADER_SHOWN_MS_MAX, async () => {
    const state = await readPage(page);
    const kv = state.groups['kv'];
    if (state.membersUp[String(leader)] !== false || kv === undefined) return undefined;
    if (kv.leader === 0 || kv.leader === leader || kv.roles[String(leader)] !== 'down') return undefined;
    return leadersShown(kv).length === 1 ? state : undefined;
  });
  t.diagnostic(`the page showed member ${failedOver.groups['kv']!.leader} as the new kv leader ${Date.now() - killedAt} ms after the kill`);
  assert.ok(
    failedOver.events.some((event) => event.kind === 'down' && event.text.includes(`member ${leader} stopped answering`)),
    'the timeline says the leader went down',
  );
  assert.ok(
    failedOver.events.some((event) => event.kind === 'leader' && event.text.includes(`(was member ${leader})`)),
    'the timeline has the leader change',
  );
  for (let i = 0; i < 20; i++) await putEventually(client, `during-${i}`, `value-${i}`, 'a write with the old leader down');
  await page.waitForTimeout(1500);
  await page.screenshot({ path: join(shots, '2-leader-killed.png'), fullPage: true });

  // Restart it: back up, a follower in every group it led, caught up (lag 0 as the new leader sees it).
  await cluster.startMember(leader);
  const back = await waitFor('the page to show the restarted member up, a follower, caught up', 20_000, async () => {
    const state = await readPage(page);
    const kv = state.groups['kv'];
    if (state.membersUp[String(leader)] !== true || kv === undefined) return undefined;
    if (kv.roles[String(leader)] !== 'follower' || kv.lag[String(leader)] !== '0') return undefined;
    return GROUPS.every((name) => leadersShown(state.groups[name]!).length === 1) ? state : undefined;
  });
  assert.ok(
    back.events.some((event) => event.kind === 'up' && event.text.includes(`member ${leader} is back`)),
    'the timeline says it is back',
  );
  assert.equal(back.live, 'live');
  await page.screenshot({ path: join(shots, '3-restarted.png'), fullPage: true });
  assert.deepEqual(pageErrors, [], 'no script errors on the page');

  // The member serving the page dies: the page says so and keeps what it showed; once the
  // member is back, the browser's event stream reconnects by itself.
  await cluster.kill(viewer);
  await waitFor('the page to show that its member is gone', 10_000, async () => {
    const state = await readPage(page);
    return state.live === 'lost' && state.events.some((event) => event.kind === 'stream-lost') ? true : undefined;
  });
  await page.screenshot({ path: join(shots, '4-own-member-down.png'), fullPage: true });
  await cluster.startMember(viewer);
  await waitFor('the page to reconnect to its restarted member', 20_000, async () => {
    const state = await readPage(page);
    return state.live === 'live' && state.membersUp[String(viewer)] === true && state.events.some((event) => event.kind === 'stream-back') ? true : undefined;
  });
});
