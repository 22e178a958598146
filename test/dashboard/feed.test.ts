// The dashboard's data, without a browser: the progress text it parses, the validation of a
// peer's view, how views combine into a snapshot (leader, lag, quorum, down members), the
// feed's rounds and limits, and the admin routes that serve the page and the event stream.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Clock, Timer } from '../../src/io/clock.js';
import { dashboardAsset, dashboardAssetTypes } from '../../src/platform/dashboard-assets.js';
import { Progress } from '../../src/raft/progress.js';
import { adminApp, type DashboardRoutes } from '../../src/server/admin.js';
import { combineViews, DashboardFeed, dashboardLimits, decodeMemberView, type GroupView, type KnownMember, type MemberView, parseProgress, type Subscriber } from '../../src/server/dashboard.js';
import { index, nodeId } from '../../src/stdx/types.js';

function groupView(overrides: Partial<GroupView> = {}): GroupView {
  return { name: 'kv', raftGroup: 1, role: 'follower', term: 3, leader: 2, commit: 10, applied: 10, lastIndex: 10, voters: [1, 2, 3], learners: [], progress: [], ...overrides };
}

function memberView(id: number, groups: GroupView[]): MemberView {
  return { id, pid: 1000 + id, groups };
}

const known: KnownMember[] = [1, 2, 3].map((id) => ({ id: nodeId(id), admin: `127.0.0.1:${7300 + id}`, connected: true }));

test("parseProgress reads raft/progress.ts's describe() in each state", () => {
  const progress = new Progress(index(8), 4);
  progress.maybeUpdate(7);
  assert.deepEqual(parseProgress(2, progress.describe()), { id: 2, state: 'probe', match: 7, next: 8 });
  progress.becomeReplicate();
  progress.sentAppend(12, 5);
  assert.deepEqual(parseProgress(2, progress.describe()), { id: 2, state: 'replicate', match: 7, next: 13 });
  progress.becomeSnapshot(index(20));
  assert.deepEqual(parseProgress(3, progress.describe()), { id: 3, state: 'snapshot', match: 7, next: 13 });
  assert.equal(parseProgress(3, 'something else'), undefined);
});

test('decodeMemberView accepts a real view and names what is wrong with a bad one', () => {
  const good = memberView(2, [groupView({ role: 'leader', progress: [{ id: 1, state: 'replicate', match: 9, next: 11 }] })]);
  assert.deepEqual(decodeMemberView(JSON.parse(JSON.stringify(good))), good);
  const bad: [unknown, RegExp][] = [
    [null, /not an object/],
    [{ id: 2 }, /needs id and pid/],
    [{ id: -1, pid: 3, groups: [] }, /needs id and pid/],
    [{ id: 2, pid: 3, groups: 'x' }, /groups is not a list/],
    [{ id: 2, pid: 3, groups: [1, 2, 3, 4] }, /groups is not a list/],
    [memberView(2, [groupView({ name: 'nope' as 'kv' })]), /unknown group "nope"/],
    [memberView(2, [groupView({ role: 'king' as 'leader' })]), /unknown role "king"/],
    [memberView(2, [groupView({ term: 1.5 })]), /term is not a count/],
    [memberView(2, [groupView({ voters: [1, -2] })]), /voters and learners/],
    [memberView(2, [groupView({ voters: Array.from({ length: dashboardLimits.membersPerGroupMax + 1 }, (_, i) => i + 1) })]), /voters and learners/],
    [memberView(2, [groupView({ progress: [{ id: 1, state: 'sleeping', match: 1, next: 2 }] })]), /unknown state/],
    [memberView(2, [groupView({ progress: [{ id: 1, state: 'probe', match: 1 } as never] })]), /needs id, match and next/],
  ];
  for (const [raw, reason] of bad) {
    const decoded = decodeMemberView(raw);
    assert.equal(typeof decoded, 'string', JSON.stringify(raw));
    assert.match(decoded as string, reason);
  }
});

test('combineViews: the leader of the highest term, lag from its progress, quorum, and a down member with its last values', () => {
  const leader = groupView({
    role: 'leader',
    term: 4,
    leader: 2,
    commit: 50,
    applied: 50,
    lastIndex: 52,
    progress: [
      { id: 1, state: 'replicate', match: 52, next: 53 },
      { id: 3, state: 'probe', match: 20, next: 21 },
    ],
  });
  const seen = new Map([
    [1, { view: memberView(1, [groupView({ term: 4, leader: 2, commit: 50, applied: 49, lastIndex: 52 })]), atMs: 1000 }],
    [2, { view: memberView(2, [leader]), atMs: 1000 }],
    // Member 3 answered last 4 s before this round, as the leader of an older term.
    [3, { view: memberView(3, [groupView({ role: 'leader', term: 3, leader: 3, commit: 20, applied: 20, lastIndex: 21 })]), atMs: -3000 }],
  ]);
  const snapshot = combineViews(nodeId(1), known, seen, new Map([[3, 'connection refused']]), 1000, 1100);
  assert.deepEqual(
    snapshot.members.map((m) => [m.id, m.up, m.lastContactAgoMs, m.error]),
    [
      [1, true, 100, null],
      [2, true, 100, null],
      [3, false, 4100, 'connection refused'],
    ],
  );
  const kv = snapshot.groups[0]!;
  assert.equal(kv.leader, 2, 'the up leader of term 4, not the stale claim of term 3');
  assert.equal(kv.term, 4);
  assert.deepEqual([kv.commit, kv.applied], [50, 50]);
  assert.deepEqual([kv.quorum, kv.tolerated, kv.upVoters, kv.hasQuorum], [2, 1, 2, true]);
  const [one, two, three] = kv.members;
  assert.deepEqual([one!.role, one!.match, one!.lag, one!.applied], ['follower', 52, 0, 49]);
  assert.deepEqual([two!.role, two!.state, two!.match, two!.next, two!.lag], ['leader', 'leader', 52, 53, 0]);
  assert.deepEqual([three!.up, three!.role, three!.leader, three!.commit, three!.match, three!.lag], [false, null, null, 20, 20, 32]);

  // With two of three voters down there is no quorum, and no leader among the up members.
  seen.set(1, { view: seen.get(1)!.view, atMs: 5000 });
  const alone = combineViews(nodeId(1), known, seen, new Map(), 5000, 5000);
  assert.deepEqual([alone.groups[0]!.leader, alone.groups[0]!.upVoters, alone.groups[0]!.hasQuorum], [0, 1, false]);
  assert.equal(alone.members[1]!.error, 'no answer yet');
});

class ManualClock implements Clock {
  private now = 0;
  private timers: { atMs: number; fn: () => void; cancelled: boolean }[] = [];
  nowMs(): number {
    return this.now;
  }
  setTimer(delayMs: number, fn: () => void): Timer {
    const timer = { atMs: this.now + delayMs, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }
  pending(): number {
    return this.timers.filter((timer) => !timer.cancelled).length;
  }
  async advance(ms: number): Promise<void> {
    this.now += ms;
    const due = this.timers.filter((timer) => !timer.cancelled && timer.atMs <= this.now);
    this.timers = this.timers.filter((timer) => !due.includes(timer));
    for (const timer of due) timer.fn();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function collector(): Subscriber & { received: string[]; closed: boolean; queued: number } {
  return {
    received: [],
    closed: false,
    queued: 0,
    send(json) {
      this.received.push(json);
      return this.queued;
    },
    close() {
      this.closed = true;
    },
  };
}

test('DashboardFeed: rounds only while a page is open, a peer that fails is down with the reason, limits refuse and drop', async () => {
  const clock = new ManualClock();
  const asked: string[] = [];
  const peerAnswers = new Map<string, () => Promise<unknown>>([
    ['127.0.0.1:7302', async () => memberView(2, [groupView({ role: 'leader', leader: 2 })])],
    ['127.0.0.1:7303', async () => Promise.reject(new Error('connection refused'))],
  ]);
  const feed = new DashboardFeed({
    self: nodeId(1),
    clock,
    local: () => memberView(1, [groupView()]),
    members: () => known,
    fetchView: (admin) => {
      asked.push(admin);
      return peerAnswers.get(admin)!();
    },
  });
  assert.equal(clock.pending(), 0, 'nothing runs before a page opens');
  const page = collector();
  const unsubscribe = feed.subscribe(page)!;
  await clock.advance(0);
  assert.equal(page.received.length, 1);
  const snapshot = JSON.parse(page.received[0]!);
  assert.deepEqual(
    snapshot.members.map((m: { up: boolean; error: string | null }) => [m.up, m.error]),
    [
      [true, null],
      [true, null],
      [false, 'connection refused'],
    ],
  );
  assert.equal(snapshot.groups[0].leader, 2);
  await clock.advance(dashboardLimits.intervalMs);
  assert.equal(page.received.length, 2, 'one snapshot a second');
  assert.deepEqual(asked.sort(), ['127.0.0.1:7302', '127.0.0.1:7302', '127.0.0.1:7303', '127.0.0.1:7303']);

  // A peer that answers as someone else is refused.
  peerAnswers.set('127.0.0.1:7302', async () => memberView(9, []));
  await clock.advance(dashboardLimits.intervalMs);
  assert.equal(JSON.parse(page.received.at(-1)!).members[1].error, '127.0.0.1:7302 answered as member 9');

  // At subscribersMax the next page is refused; a page that stops reading is dropped.
  const others = Array.from({ length: dashboardLimits.subscribersMax - 1 }, () => collector());
  for (const other of others) assert.ok(feed.subscribe(other) !== undefined);
  assert.equal(feed.subscribe(collector()), undefined, 'one page too many');
  others[0]!.queued = dashboardLimits.queuedSnapshotsMax;
  await clock.advance(dashboardLimits.intervalMs);
  assert.ok(others[0]!.closed, 'the page that does not read is closed');
  assert.equal(feed.subscriberCount(), dashboardLimits.subscribersMax - 1);

  // Once every page has gone, the rounds stop: nobody asks the peers anything.
  unsubscribe();
  feed.stop();
  assert.ok(others.slice(1).every((other) => other.closed));
  await clock.advance(dashboardLimits.intervalMs);
  const askedAfterStop = asked.length;
  await clock.advance(5 * dashboardLimits.intervalMs);
  assert.equal(asked.length, askedAfterStop);
  assert.equal(clock.pending(), 0);
  assert.equal(feed.subscribe(collector()), undefined, 'a stopped feed takes no page');
});

test('DashboardFeed stops asking once the last page unsubscribes', async () => {
  const clock = new ManualClock();
  let rounds = 0;
  const feed = new DashboardFeed({
    self: nodeId(1),
    clock,
    local: () => {
      rounds++;
      return memberView(1, [groupView()]);
    },
    members: () => known.slice(0, 1),
    fetchView: () => Promise.reject(new Error('not asked')),
  });
  const unsubscribe = feed.subscribe(collector())!;
  await clock.advance(0);
  await clock.advance(dashboardLimits.intervalMs);
  assert.equal(rounds, 2);
  unsubscribe();
  await clock.advance(dashboardLimits.intervalMs);
  await clock.advance(dashboardLimits.intervalMs);
  assert.equal(rounds, 2);
  assert.equal(clock.pending(), 0);
});

function routes(subscribe: DashboardRoutes['subscribe']): DashboardRoutes {
  return { asset: dashboardAsset, member: () => memberView(1, []), snapshot: async () => ({ self: 1 }), subscribe };
}

function adminWith(dashboard: DashboardRoutes) {
  return adminApp({
    status: async () => ({}),
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    backup: async () => new Uint8Array(),
    members: () => ({}),
    changeMembers: async () => ({ status: 200, body: {} }),
    dashboard,
  });
}

test('admin routes: the page for a browser, JSON for anyone else, the assets, and an event stream', async () => {
  let subscriber: Subscriber | undefined;
  const app = adminWith(
    routes((s) => {
      subscriber = s;
      s.send('{"self":1}');
      return () => {
        subscriber = undefined;
      };
    }),
  );
  const page = await app.request('/', { headers: { accept: 'text/html,application/xhtml+xml' } });
  assert.match(page.headers.get('content-type')!, /^text\/html/);
  assert.match(await page.text(), /<script type="module" src="\/dashboard\/app.js">/);
  const json = (await (await app.request('/')).json()) as { endpoints: string[] };
  assert.ok(json.endpoints.includes('/dashboard/events'));
  for (const name of Object.keys(dashboardAssetTypes).filter((n) => n !== 'index.html')) {
    const asset = await app.request(`/dashboard/${name}`);
    assert.equal(asset.status, 200, name);
    assert.equal(asset.headers.get('content-type'), dashboardAssetTypes[name]);
  }
  assert.equal((await app.request('/dashboard/../package.json')).status, 404);
  assert.equal((await app.request('/dashboard/secret.txt')).status, 404);
  assert.deepEqual(await (await app.request('/dashboard/member')).json(), { id: 1, pid: 1001, groups: [] });
  assert.deepEqual(await (await app.request('/dashboard/snapshot')).json(), { self: 1 });

  const events = await app.request('/dashboard/events');
  assert.match(events.headers.get('content-type')!, /^text\/event-stream/);
  const reader = events.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('data: {"self":1}\n\n')) text += decoder.decode((await reader.read()).value);
  assert.match(text, /^retry: 1000\n\n/);
  subscriber!.send('{"self":2}');
  assert.equal(decoder.decode((await reader.read()).value), 'data: {"self":2}\n\n');
  await reader.cancel();
  assert.equal(subscriber, undefined, 'a closed page unsubscribes');

  const full = adminWith(routes(() => undefined));
  const refused = await full.request('/dashboard/events');
  assert.equal(refused.status, 503);
  assert.match(((await refused.json()) as { error: string }).error, /too many dashboards/);
});
