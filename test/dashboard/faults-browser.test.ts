// The dashboard's fault buttons in a real browser (playwright-core driving Debian's chromium)
// on the cluster `npm start` runs (`flotilla start`, which starts its members with
// --allow-faults and restarts one that dies): "stop" on the kv leader makes the page show a
// new leader within a few seconds and the member come back as a follower that catches up;
// "pause" makes a member go silent until "resume"; "cut" on a link makes the follower behind
// it fall behind until "heal"; "force election" is carried out by the member it names.
// Screenshots of each state go to a folder under the OS temp dir (printed), to be looked at.
//
// The cluster runs on ports the OS picked (--ports) in its own process group, which t.after
// kills whole, members included, whatever happens in the test.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { flotillaCommand } from '../../src/platform/spawn.js';
import { FlotillaClient } from '../../src/server/client.js';
import { freePorts, putEventually, waitFor } from '../server/helpers.js';
import { CHROMIUM_PATH, chromiumSkipReason } from './chromium.js';

const TEST_TIMEOUT_MS = 240_000;
/** "Within a few seconds": an election at the 100 ms tick takes 1–2.5 s; the page updates once a second. */
const NEW_LEADER_SHOWN_MS_MAX = 10_000;
const GROUPS = ['kv', 'zk', 'etcd'] as const;

interface PageState {
  members: Record<string, { up: boolean; paused: boolean; buttons: boolean; cut: string }>;
  groups: Record<string, { leader: number; roles: Record<string, string>; lag: Record<string, string> }>;
  links: string[];
  faultsPanel: boolean;
  events: { kind: string; text: string }[];
  status: string;
}

/** What the page shows, read from its DOM. A string, run in the page: the tests compile without the DOM's types. */
const READ_PAGE = `(() => {
  const members = {};
  for (const card of document.querySelectorAll('.member')) {
    const controls = card.querySelector('.member-faults');
    const cut = card.querySelector('.member-line.cut');
    members[card.dataset.member] = { up: card.dataset.up === 'true', paused: card.dataset.paused === 'true', buttons: controls !== null && !controls.hidden, cut: cut ? cut.textContent : '' };
  }
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
  const links = [...document.querySelectorAll('#links li[data-link]')].map((li) => li.dataset.link);
  const events = [...document.querySelectorAll('#events li')].map((li) => ({ kind: li.dataset.kind, text: li.textContent }));
  return { members, groups, links, faultsPanel: !document.getElementById('faults').hidden, events, status: document.getElementById('fault-status').textContent };
})()`;

function readPage(page: Page): Promise<PageState> {
  return page.evaluate(READ_PAGE) as Promise<PageState>;
}

function leadersShown(state: PageState, group: string): string[] {
  return Object.entries(state.groups[group]?.roles ?? {})
    .filter(([, role]) => role === 'leader')
    .map(([id]) => id);
}

function healthy(state: PageState): boolean {
  const ids = Object.keys(state.members);
  return ids.length === 3 && ids.every((id) => state.members[id]!.up) && GROUPS.every((name) => leadersShown(state, name).length === 1);
}

test('fault buttons in chromium on the npm start cluster: stop, pause and resume a member, cut and heal a link, force an election', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const skip = chromiumSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const shots = await mkdtemp(join(tmpdir(), 'flotilla-faults-'));
  t.diagnostic(`screenshots in ${shots}`);
  console.log(`fault screenshots in ${shots}`);

  const data = await mkdtemp(join(tmpdir(), 'flotilla-faults-data-'));
  const ports = await freePorts(15);
  const plan = [0, 1, 2].map((member) => ports.slice(member * 5, member * 5 + 5).join(':')).join(',');
  const admin = (id: number) => ports[(id - 1) * 5 + 2]!;
  const { command, args } = flotillaCommand();
  const start = spawn(command, [...args, 'start', '--data', data, '--ports', plan], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const output = { stdout: '', stderr: '' };
  start.stdout.on('data', (chunk: Buffer) => (output.stdout += chunk.toString('utf8')));
  start.stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString('utf8')));
  let browser: Browser | undefined;
  const client = new FlotillaClient({ endpoints: [0, 1, 2].map((member) => ({ host: '127.0.0.1', port: ports[member * 5 + 1]! })), callDeadlineMs: 30_000 });
  t.after(async () => {
    client.close();
    await browser?.close();
    try {
      process.kill(-start.pid!, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
    await rm(data, { recursive: true, force: true });
  });
  const describe = () => `stdout:\n${output.stdout}\nstderr:\n${output.stderr}`;
  await waitFor('the banner', 40_000, () => (output.stdout.includes('Flotilla: a local cluster of 3 members is running (data') ? true : undefined)).catch((error: Error) => {
    throw new Error(`${error.message}\n${describe()}`);
  });
  const statusOf = async (id: number) => (await (await fetch(`http://127.0.0.1:${admin(id)}/status`)).json()) as { leader: number };
  const leader = await waitFor('a kv leader', 20_000, async () => {
    const status = await statusOf(1).catch(() => undefined);
    return status !== undefined && status.leader !== 0 ? status.leader : undefined;
  });
  for (let i = 0; i < 10; i++) await putEventually(client, `before-${i}`, `value-${i}`, 'a write before the faults');
  // The page must outlive the leader: watch from a member that does not lead kv.
  const viewer = [1, 2, 3].find((id) => id !== leader)!;

  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, timeout: 30_000, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: { width: 1500, height: 1250 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`${message.text()} (${message.location().url})`);
  });
  const url = `http://127.0.0.1:${admin(viewer)}/`;
  t.diagnostic(`watching ${url} (member ${viewer}); the kv leader is member ${leader}`);
  await page.goto(url, { timeout: 15_000 });
  const first = await waitFor('the page to show three members up, one leader per group, and the fault buttons', 15_000, async () => {
    const state = await readPage(page);
    return healthy(state) && state.faultsPanel && Object.values(state.members).every((m) => m.buttons) ? state : undefined;
  });
  assert.deepEqual(first.links, [], 'no link is cut');
  await page.screenshot({ path: join(shots, '1-fault-buttons.png'), fullPage: true });
  const press = async (member: number, action: string) => {
    await page.click(`.member[data-member="${member}"] button[data-fault="${action}"]`, { timeout: 5000 });
  };

  // ---- stop (kill -9) the kv leader: a new leader within seconds; npm start brings it back as a follower ----
  await press(leader, 'stop');
  const stoppedAt = Date.now();
  const failedOver = await waitFor('a new kv leader on the page, the stopped one down', NEW_LEADER_SHOWN_MS_MAX, async () => {
    const state = await readPage(page);
    const kv = state.groups['kv'];
    if (state.members[String(leader)]?.up !== false || kv === undefined || kv.leader === 0 || kv.leader === leader) return undefined;
    return leadersShown(state, 'kv').length === 1 ? state : undefined;
  });
  t.diagnostic(`the page showed member ${failedOver.groups['kv']!.leader} as the new kv leader ${Date.now() - stoppedAt} ms after "stop"`);
  assert.ok(
    failedOver.events.some((e) => e.kind === 'fault' && e.text.includes(`member ${leader} killed (SIGKILL)`)),
    `the timeline has the fault: ${JSON.stringify(failedOver.events)}`,
  );
  await page.screenshot({ path: join(shots, '2-leader-stopped.png'), fullPage: true });
  for (let i = 0; i < 10; i++) await putEventually(client, `during-${i}`, `value-${i}`, 'a write with the old leader down');
  const back = await waitFor('the stopped member back as a caught-up follower (restarted by npm start)', 30_000, async () => {
    const state = await readPage(page);
    const kv = state.groups['kv'];
    if (state.members[String(leader)]?.up !== true || kv?.roles[String(leader)] !== 'follower' || kv.lag[String(leader)] !== '0') return undefined;
    return healthy(state) ? state : undefined;
  });
  assert.ok(back.events.some((e) => e.kind === 'up' && e.text.includes(`member ${leader} is back`)));
  assert.match(output.stderr, new RegExp(`\\[member ${leader}\\] exited \\(signal SIGKILL\\); the other members keep serving; restarting it in 1 s`));
  assert.match(output.stdout, new RegExp(`\\[member ${viewer}\\] fault injected: member ${leader} killed \\(SIGKILL\\)`), 'the fault is logged (a warning, echoed by npm start)');
  await page.screenshot({ path: join(shots, '3-stopped-member-back.png'), fullPage: true });

  // ---- pause (SIGSTOP) a member other than the viewer, then resume it ----
  const kvLeader = back.groups['kv']!.leader;
  const paused = kvLeader !== viewer ? kvLeader : [1, 2, 3].find((id) => id !== viewer)!;
  assert.equal((await readPage(page)).members[String(viewer)]!.paused, false);
  assert.ok(await page.isDisabled(`.member[data-member="${viewer}"] button[data-fault="pause"]`), 'the member serving the page cannot pause itself');
  await press(paused, 'pause');
  const silent = await waitFor('the paused member shown down and paused, the others keeping a leader', NEW_LEADER_SHOWN_MS_MAX, async () => {
    const state = await readPage(page);
    const member = state.members[String(paused)];
    if (member?.up !== false || !member.paused) return undefined;
    return GROUPS.every((name) => state.groups[name]!.leader !== 0 && state.groups[name]!.leader !== paused) ? state : undefined;
  });
  assert.ok(silent.events.some((e) => e.kind === 'fault' && e.text.includes(`member ${paused} paused (SIGSTOP)`)));
  await putEventually(client, 'while-paused', 'x', 'a write with a member paused');
  await page.screenshot({ path: join(shots, '4-member-paused.png'), fullPage: true });
  await press(paused, 'resume');
  await waitFor('the resumed member up again, not paused', 15_000, async () => {
    const state = await readPage(page);
    const member = state.members[String(paused)];
    return member?.up === true && !member.paused && healthy(state) ? state : undefined;
  });

  // ---- cut the link between the kv leader and a follower, both ways: the follower falls behind; heal it ----
  const now = await readPage(page);
  const cutLeader = now.groups['kv']!.leader;
  const follower = [1, 2, 3].find((id) => id !== cutLeader)!;
  await page.selectOption('#link-from', String(cutLeader));
  await page.selectOption('#link-direction', 'both');
  await page.selectOption('#link-to', String(follower));
  await page.click('#link-cut');
  await waitFor('both directions listed as cut', 10_000, async () => {
    const state = await readPage(page);
    return state.links.length === 2 ? state : undefined;
  });
  const cutState = await readPage(page);
  assert.deepEqual([...cutState.links].sort(), [`${cutLeader}-${follower}`, `${follower}-${cutLeader}`].sort());
  const followerCard = cutState.members[String(follower)]!.cut;
  assert.ok(followerCard.startsWith('messages dropped: ') && followerCard.includes(`to ${cutLeader}`) && followerCard.includes(`from ${cutLeader}`), followerCard);
  for (let i = 0; i < 10; i++) await putEventually(client, `cut-${i}`, `value-${i}`, 'a write with a link cut');
  const behind = await waitFor('the cut-off follower shown behind the kv leader', 15_000, async () => {
    const state = await readPage(page);
    const kv = state.groups['kv']!;
    // The leader may change if the cut follower's election wins elsewhere; wait for the original one to report it.
    if (kv.leader !== cutLeader) return undefined;
    const lag = Number(kv.lag[String(follower)]);
    return Number.isFinite(lag) && lag >= 10 ? state : undefined;
  });
  t.diagnostic(`with the link cut, member ${follower} is ${behind.groups['kv']!.lag[String(follower)]} entries behind`);
  await page.screenshot({ path: join(shots, '5-link-cut.png'), fullPage: true });
  await page.click('#link-heal');
  const healed = await waitFor('no link cut, and the follower caught up', 20_000, async () => {
    const state = await readPage(page);
    if (state.links.length !== 0 || !healthy(state)) return undefined;
    const kv = state.groups['kv']!;
    return Object.entries(kv.lag).every(([, lag]) => lag === '0') ? state : undefined;
  });
  assert.ok(healed.events.some((e) => e.kind === 'fault' && e.text.includes(`heal ${cutLeader} ↔ ${follower}`)));
  await page.screenshot({ path: join(shots, '6-link-healed.png'), fullPage: true });

  // ---- force an election timeout on a follower: the member it names carries it out ----
  const elect = [1, 2, 3].find((id) => id !== healed.groups['kv']!.leader && id !== viewer) ?? viewer;
  await press(elect, 'campaign');
  const campaigned = await waitFor('the answer to "force election" in the timeline', 10_000, async () => {
    const state = await readPage(page);
    return state.events.find((e) => e.kind === 'fault' && e.text.includes(`force an election on member ${elect}`));
  });
  assert.match(campaigned.text, /kv[a-z, ]*: (campaigning|already the leader)/);
  await waitFor('every group with a leader again', 15_000, async () => {
    const state = await readPage(page);
    return healthy(state) ? state : undefined;
  });
  assert.match(output.stdout, new RegExp(`\\[member ${elect}\\] fault injected: the election timeout fired now`));
  await page.screenshot({ path: join(shots, '7-after-forced-election.png'), fullPage: true });
  assert.deepEqual(pageErrors, [], 'no script errors on the page');
  for (let i = 0; i < 10; i++) assert.equal(Buffer.from((await client.get(`during-${i}`)).value!).toString(), `value-${i}`);
});
