// The fault buttons' API (server/faults.ts) through the admin app (admin.ts, app.request(),
// no socket): a member without --allow-faults refuses every fault with 403; bad input gets a
// 400 that names the problem; each fault picks the right process, signal or link end and is
// logged. The platform edges (signals, other members' admin ports) are recorded here; the
// browser test (faults-browser.test.ts) presses the same buttons on a real `npm start` cluster.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adminApp } from '../../src/server/admin.js';
import { ConfigError, describeConfig, resolveConfig } from '../../src/server/config.js';
import { type FaultAction, type FaultAnswer, Faults, type FaultSignal, type FaultSources } from '../../src/server/faults.js';
import type { GroupName } from '../../src/server/membership.js';
import { nodeId, type NodeId } from '../../src/stdx/types.js';

interface Recorder {
  signals: [number, FaultSignal][];
  forwarded: [number, FaultAction, object][];
  warnings: string[];
  campaigns: GroupName[];
  cuts: Map<number, { outgoing: boolean; incoming: boolean }>;
}

function setup(overrides: Partial<FaultSources> = {}): { faults: Faults; rec: Recorder; app: ReturnType<typeof adminApp> } {
  const rec: Recorder = { signals: [], forwarded: [], warnings: [], campaigns: [], cuts: new Map() };
  const pids = new Map([
    [2, 2002],
    [3, 3003],
  ]);
  const sources: FaultSources = {
    self: nodeId(1),
    logger: { warn: (_fields, message) => rec.warnings.push(message) },
    groups: ['kv', 'zk', 'etcd'],
    members: () => [1, 2, 3].map(nodeId),
    adminOf: (id) => `127.0.0.1:${7300 + id}`,
    ownPid: () => 1001,
    askPid: async (id: NodeId) => {
      const pid = pids.get(id);
      if (pid === undefined) throw new Error('connection refused');
      return pid;
    },
    lastPid: (id) => pids.get(id),
    signal: (pid, signal) => {
      rec.signals.push([pid, signal]);
    },
    campaign: (group) => {
      rec.campaigns.push(group);
      return 'campaigning';
    },
    linkCuts: () => ({
      outgoing: [...rec.cuts].filter(([, c]) => c.outgoing).map(([id]) => id),
      incoming: [...rec.cuts].filter(([, c]) => c.incoming).map(([id]) => id),
    }),
    setLinkCut: (peer, cut) => {
      rec.cuts.set(peer, cut);
    },
    forward: async (id, action, body): Promise<FaultAnswer> => {
      rec.forwarded.push([id, action, body]);
      return { status: 200, body: { ok: true } };
    },
    ...overrides,
  };
  const faults = new Faults(sources);
  const app = adminApp({
    status: async () => ({}),
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    backup: async () => new Uint8Array(),
    members: () => ({}),
    changeMembers: async () => ({ status: 200, body: {} }),
    faults,
  });
  return { faults, rec, app };
}

async function post(app: ReturnType<typeof adminApp>, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

test('a member started without --allow-faults refuses every fault with 403 and says why', async () => {
  const app = adminApp({
    status: async () => ({}),
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    backup: async () => new Uint8Array(),
    members: () => ({}),
    changeMembers: async () => ({ status: 200, body: {} }),
  });
  for (const action of ['stop', 'restart', 'pause', 'resume', 'campaign', 'link', 'link-end', 'anything']) {
    const answer = await post(app, `/faults/${action}`, { member: 2 });
    assert.equal(answer.status, 403, action);
    assert.match(String(answer.body['error']), /not allowed on this member: it was started without --allow-faults/);
  }
});

test('bad fault requests get a 400 that names the problem', async () => {
  const { app, rec } = setup();
  const cases: [string, unknown, RegExp][] = [
    ['/faults/stop', '{not json', /the body is not JSON/],
    ['/faults/explode', { member: 2 }, /unknown fault "explode" \(known: stop, restart, pause, resume, campaign, link, link-end\)/],
    ['/faults/stop', [2], /the body must be a JSON object/],
    ['/faults/stop', {}, /member must be a member id \(a positive integer\), not undefined/],
    ['/faults/stop', { member: '2' }, /member must be a member id .*not "2"/],
    ['/faults/stop', { member: 1.5 }, /member must be a member id/],
    ['/faults/pause', { member: 9 }, /member: member 9 is not in this cluster \(members: 1, 2, 3\)/],
    ['/faults/stop', { member: 2, signal: 'SIGHUP' }, /unknown field "signal" \(expected member\)/],
    ['/faults/campaign', { member: 2, group: 'mysql' }, /group must be one of kv, zk, etcd, not "mysql"/],
    ['/faults/link', { from: 2, to: 2, cut: true }, /from and to must be two different members/],
    ['/faults/link', { from: 2, to: 3 }, /cut must be true \(cut the link\) or false \(heal it\)/],
    ['/faults/link', { from: 2, to: 3, cut: true, both: 'yes' }, /both must be true or false/],
    ['/faults/link-end', { member: 2, peer: 3, outgoing: true }, /link-end is carried out by member 2 itself; this is member 1/],
    ['/faults/link-end', { member: 1, peer: 3, outgoing: 'drop' }, /outgoing must be true \(drop\) or false \(deliver\)/],
  ];
  for (const [path, body, error] of cases) {
    const answer = await post(app, path, body);
    assert.equal(answer.status, 400, `${path} ${JSON.stringify(body)}`);
    assert.match(String(answer.body['error']), error);
  }
  assert.deepEqual([rec.signals, rec.forwarded, rec.campaigns, [...rec.cuts]], [[], [], [], []], 'nothing was done');
});

test('stop, restart, pause and resume signal the pid the member reported, and are logged', async () => {
  const { app, rec, faults } = setup();
  assert.equal((await post(app, '/faults/stop', { member: 2 })).status, 200);
  assert.equal((await post(app, '/faults/restart', { member: 3 })).status, 200);
  const paused = await post(app, '/faults/pause', { member: 3 });
  assert.equal(paused.status, 200);
  assert.equal(paused.body['done'], 'member 3 paused (SIGSTOP)');
  assert.deepEqual(faults.describe(), { paused: [3] });
  // A paused member is restarted with SIGTERM, then SIGCONT so it can handle it.
  assert.equal((await post(app, '/faults/restart', { member: 3 })).status, 200);
  assert.deepEqual(faults.describe(), { paused: [] });
  assert.equal((await post(app, '/faults/pause', { member: 2 })).status, 200);
  assert.equal((await post(app, '/faults/resume', { member: 2 })).status, 200);
  // Stopping itself: its own pid.
  assert.equal((await post(app, '/faults/stop', { member: 1 })).status, 200);
  assert.deepEqual(rec.signals, [
    [2002, 'SIGKILL'],
    [3003, 'SIGTERM'],
    [3003, 'SIGSTOP'],
    [3003, 'SIGTERM'],
    [3003, 'SIGCONT'],
    [2002, 'SIGSTOP'],
    [2002, 'SIGCONT'],
    [1001, 'SIGKILL'],
  ]);
  assert.equal(rec.warnings.length, 7, 'each of the seven faults is logged');
  assert.match(rec.warnings[0]!, /fault injected: member 2 killed \(SIGKILL\)/);
});

test('faults that cannot be carried out are refused with 409 and the reason', async () => {
  const { app, rec } = setup({
    askPid: async () => {
      throw new Error('connection refused');
    },
    lastPid: () => undefined,
    adminOf: (id) => (id === 3 ? '10.0.0.3:7303' : `127.0.0.1:${7300 + id}`),
  });
  const cases: [string, object, RegExp][] = [
    ['/faults/pause', { member: 1 }, /member 1 serves this page and could not resume itself/],
    ['/faults/stop', { member: 2 }, /member 2 did not say its pid \(connection refused\): it is down or paused/],
    ['/faults/resume', { member: 2 }, /member 2's pid is not known/],
    ['/faults/stop', { member: 3 }, /member 3 is not on this machine \(admin 10\.0\.0\.3:7303\)/],
  ];
  for (const [path, body, error] of cases) {
    const answer = await post(app, path, body);
    assert.equal(answer.status, 409, `${path} ${JSON.stringify(body)}`);
    assert.match(String(answer.body['error']), error);
  }
  assert.deepEqual(rec.signals, []);
});

test('campaign runs here for this member and is forwarded for another; link cuts each end, one direction or both', async () => {
  const { app, rec } = setup();
  const here = await post(app, '/faults/campaign', { member: 1, group: 'zk' });
  assert.deepEqual([here.status, here.body['outcomes']], [200, ['zk: campaigning']]);
  assert.equal((await post(app, '/faults/campaign', { member: 1 })).status, 200);
  assert.deepEqual(rec.campaigns, ['zk', 'kv', 'zk', 'etcd']);
  assert.equal((await post(app, '/faults/campaign', { member: 3 })).status, 200);
  assert.deepEqual(rec.forwarded, [[3, 'campaign', { member: 3 }]]);

  // 1 -> 2, one way: member 1 drops what it sends to 2 (here), member 2 what it gets from 1 (forwarded).
  const cut = await post(app, '/faults/link', { from: 1, to: 2, cut: true });
  assert.deepEqual([cut.status, cut.body['link'], cut.body['applied']], [200, '1 -> 2', [1, 2]]);
  assert.deepEqual(rec.cuts.get(2), { outgoing: true, incoming: false });
  assert.deepEqual(rec.forwarded[1], [2, 'link-end', { member: 2, peer: 1, incoming: true }]);
  // 3 <-> 1, both ways: this member is the `to` end.
  assert.equal((await post(app, '/faults/link', { from: 3, to: 1, cut: true, both: true })).status, 200);
  assert.deepEqual(rec.cuts.get(3), { outgoing: true, incoming: true });
  assert.deepEqual(rec.forwarded[2], [3, 'link-end', { member: 3, peer: 1, outgoing: true, incoming: true }]);
  // Healing one side leaves the other side as it was.
  assert.equal((await post(app, '/faults/link-end', { member: 1, peer: 3, incoming: false })).status, 200);
  assert.deepEqual(rec.cuts.get(3), { outgoing: true, incoming: false });
  assert.ok(rec.warnings.every((line) => line.startsWith('fault injected')));
});

test('a link whose far end does not answer is cut at the near end; with neither end reachable it is a 502', async () => {
  const down = setup({ forward: async () => ({ status: 502, body: { error: 'member 2 (127.0.0.1:7302) did not answer: timed out' } }) });
  const half = await post(down.app, '/faults/link', { from: 1, to: 2, cut: true });
  assert.equal(half.status, 200);
  assert.deepEqual(half.body['applied'], [1]);
  assert.deepEqual(half.body['failed'], [{ member: 2, error: 'member 2 (127.0.0.1:7302) did not answer: timed out' }]);
  const neither = await post(down.app, '/faults/link', { from: 2, to: 3, cut: true });
  assert.equal(neither.status, 502);
  assert.match(String(neither.body['error']), /neither end of 2 -> 3 could be reached/);
});

test('allowFaults (--allow-faults) is off unless given, shows in the logged configuration, and must be true or false', () => {
  const base = { id: 1, peers: ['1=127.0.0.1:7001'], dataDir: '/d' };
  const secret = 'sixteen-bytes-or-more';
  assert.equal(resolveConfig(base, {}, secret).allowFaults, undefined);
  const allowed = resolveConfig(base, { allowFaults: true }, secret);
  assert.equal(allowed.allowFaults, true);
  assert.equal((describeConfig(allowed) as { allowFaults?: boolean }).allowFaults, true);
  assert.equal(resolveConfig({ ...base, allowFaults: false }, {}, secret).allowFaults, undefined);
  assert.throws(
    () => resolveConfig({ ...base, allowFaults: 'yes' }, {}, secret),
    (error: Error) => error instanceof ConfigError && /allowFaults: "yes" is not true or false/.test(error.message),
  );
});
