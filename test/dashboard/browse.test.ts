// The dashboard's data browsers: GET /browse/kv and /browse/zk (server/browse.ts) on their own
// (bad parameters are a 400 naming the parameter; values shown as text, JSON or base64, cut at
// 4 KiB), then in a real Chromium against a real three-member cluster: keys written through
// the client library appear under their prefix with their versions, a JSON value is
// pretty-printed, "follow changes" shows a key written afterwards, and the znode browser
// shows a znode written through the ZooKeeper client with its data, Stat, ephemeral owner
// and ACL. Screenshots go to a folder under the OS temp dir (printed).

import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import type { KvEntry } from '../../src/kv/codec.js';
import { browseKeys, browseZnode, describePerms, showValue } from '../../src/server/browse.js';
import { ZkClient } from '../../src/zkclient/client.js';
import { putEventually, TestCluster, waitFor } from '../server/helpers.js';
import { CHROMIUM_PATH, chromiumSkipReason } from './chromium.js';

const bytes = (text: string) => new TextEncoder().encode(text);

test('browseKeys: prefix, paging and limits; bad parameters are a 400 naming them', () => {
  const keys: KvEntry[] = ['a/1', 'a/2', 'a/3', 'b/1'].map((key, i) => ({ key, value: bytes(`v${i}`), version: 10 + i }));
  const source = {
    member: 2,
    applied: () => 42,
    scan: (prefix: string, after: string, limit: number) => {
      const matching = keys.filter((e) => e.key.startsWith(prefix) && (after === '' || e.key > after));
      return { entries: matching.slice(0, limit), next: matching.length > limit ? matching[limit - 1]!.key : null };
    },
  };
  const first = browseKeys(source, new URLSearchParams({ prefix: 'a/', limit: '2' }));
  assert.equal(first.status, 200);
  assert.deepEqual(first.body, {
    member: 2,
    applied: 42,
    prefix: 'a/',
    entries: [
      { key: 'a/1', version: 10, value: { bytes: 2, text: 'v0', base64: null, truncated: false } },
      { key: 'a/2', version: 11, value: { bytes: 2, text: 'v1', base64: null, truncated: false } },
    ],
    next: 'a/2',
  });
  const second = browseKeys(source, new URLSearchParams({ prefix: 'a/', after: 'a/2' }));
  assert.deepEqual(
    (second.body as { entries: { key: string }[] }).entries.map((e) => e.key),
    ['a/3'],
  );
  for (const [params, error] of [
    [{ limit: '0' }, /limit must be an integer from 1 to 200, not "0"/],
    [{ limit: '201' }, /limit must be an integer from 1 to 200/],
    [{ limit: 'ten' }, /limit must be an integer from 1 to 200, not "ten"/],
    [{ prefix: 'x'.repeat(1025) }, /prefix is longer than 1024 bytes/],
  ] as const) {
    const answer = browseKeys(source, new URLSearchParams(params));
    assert.equal(answer.status, 400, JSON.stringify(params).slice(0, 40));
    assert.match((answer.body as { error: string }).error, error);
  }
});

test('showValue: UTF-8 as text, other bytes as base64, large values cut at 4 KiB', () => {
  assert.deepEqual(showValue(bytes('héllo')), { bytes: 6, text: 'héllo', base64: null, truncated: false });
  assert.deepEqual(showValue(new Uint8Array([0xff, 0x00, 0x01])), { bytes: 3, text: null, base64: '/wAB', truncated: false });
  assert.equal(showValue(null), null);
  const big = showValue(bytes('é'.repeat(3000)))!;
  assert.equal(big.bytes, 6000);
  assert.equal(big.truncated, true);
  assert.equal(big.text, 'é'.repeat(2048), 'cut on a character boundary');
  assert.equal(describePerms(31), 'cdrwa');
  assert.equal(describePerms(1), '--r--');
});

test('browseZnode: a znode with its Stat, ACL and children; a missing one is 404, a bad path 400', () => {
  const stat = { czxid: 5, mzxid: 6, ctime: 1, mtime: 2, version: 1, cversion: 2, aversion: 0, ephemeralOwner: 0x1234, dataLength: 5, numChildren: 2, pzxid: 7 };
  const source = {
    member: 1,
    lastZxid: () => 9,
    node: (path: string) => (path === '/app' ? { data: bytes('hello'), acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }], children: new Set(['b', 'a']) } : undefined),
    stat: (path: string) => (path === '/app' ? stat : undefined),
  };
  const answer = browseZnode(source, new URLSearchParams({ path: '/app' }));
  assert.equal(answer.status, 200);
  const body = answer.body as Record<string, unknown>;
  assert.deepEqual(body['children'], ['a', 'b']);
  assert.deepEqual(body['acl'], [{ perms: 'cdrwa', scheme: 'world', id: 'anyone' }]);
  assert.equal(body['ephemeralOwner'], '0x1234');
  assert.deepEqual(body['stat'], stat);
  assert.equal(browseZnode(source, new URLSearchParams({ path: '/nope' })).status, 404);
  for (const path of ['app', '/app/', '/a//b']) {
    const bad = browseZnode(source, new URLSearchParams({ path }));
    assert.equal(bad.status, 400, path);
    assert.match((bad.body as { error: string }).error, /path must be an absolute znode path/);
  }
});

test('key and znode browsers in chromium: keys by prefix with versions, JSON pretty-printed, followed changes, a znode with Stat, ephemeral owner and ACL', { timeout: 120_000 }, async (t) => {
  const skip = chromiumSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const shots = await mkdtemp(join(tmpdir(), 'flotilla-browse-'));
  t.diagnostic(`screenshots in ${shots}`);
  console.log(`browser screenshots in ${shots}`);
  const cluster = await TestCluster.start(t, 3);
  await cluster.waitForLeader(15_000);
  const client = cluster.client();
  await putEventually(client, 'config/cluster', JSON.stringify({ name: 'flotilla', members: 3, groups: ['kv', 'zk', 'etcd'] }), 'a JSON value');
  await putEventually(client, 'config/greeting', 'hello, world', 'a text value');
  await putEventually(client, 'other/key', 'not listed', 'a key under another prefix');
  const zkServers = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.zk}`);
  const zk = await ZkClient.connect({ servers: zkServers, sessionTimeoutMs: 10_000 });
  let browser: Browser | undefined;
  t.after(async () => {
    await zk.close();
    await browser?.close();
  });
  await zk.create('/app', 'app config');
  await zk.create('/app/lock', 'held', { mode: 'ephemeral' });
  await zk.create('/app/settings', '{"retries":3}');
  const owner = `0x${zk.sessionId.toString(16)}`;

  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, timeout: 30_000, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: { width: 1500, height: 1400 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  const viewer = cluster.ids[0]!;
  await page.goto(`http://127.0.0.1:${cluster.ports.get(viewer)!.admin}/`, { timeout: 15_000 });

  // Keys: list the prefix; the rows are the two keys under it, with versions, and the JSON value pretty-printed.
  await page.fill('#kv-prefix', 'config/');
  await waitFor('the two keys under config/ (the member applies them)', 10_000, async () => {
    await page.click('#kv-form button[type="submit"]');
    await page.waitForTimeout(200);
    const keys = (await page.evaluate(`[...document.querySelectorAll('#kv-rows tr[data-key]')].map((tr) => tr.dataset.key)`)) as string[];
    return keys.join() === 'config/cluster,config/greeting' ? keys : undefined;
  });
  const rows = (await page.evaluate(`[...document.querySelectorAll('#kv-rows tr[data-key]')].map((tr) => [...tr.cells].map((c) => c.textContent))`)) as string[][];
  assert.ok(Number(rows[0]![1]) > 0 && Number(rows[1]![1]) > Number(rows[0]![1]), `versions are log indexes, in write order: ${JSON.stringify(rows)}`);
  assert.equal(rows[1]![3], 'hello, world');
  const json = (await page.evaluate(`document.querySelector('#kv-rows tr[data-key="config/cluster"] pre.json')?.textContent ?? null`)) as string | null;
  assert.equal(json, JSON.stringify({ name: 'flotilla', members: 3, groups: ['kv', 'zk', 'etcd'] }, null, 2), 'the JSON value is pretty-printed');
  assert.match((await page.textContent('#kv-info')) ?? '', new RegExp(`member ${viewer} · applied index \\d+`));

  // Follow changes: a key written now shows up in the tail and in the list.
  await page.check('#kv-follow');
  await page.waitForTimeout(2500);
  await putEventually(client, 'config/new', 'fresh', 'a key written while following');
  await waitFor('the new key in the tail', 10_000, async () => {
    const tail = (await page.textContent('#kv-tail')) ?? '';
    return tail.includes('config/new created') && tail.includes('= fresh') ? tail : undefined;
  });
  await waitFor('the new key in the list', 5_000, async () => ((await page.$('#kv-rows tr[data-key="config/new"]')) === null ? undefined : true));
  await page.locator('#browser').screenshot({ path: join(shots, '1-key-browser.png') });

  // Znodes: open /app from the root, then the ephemeral child.
  await page.click('#tab-zk');
  await waitFor('the root znode', 10_000, async () => ((await page.$('#zk-node a[data-path="/app"]')) === null ? undefined : true));
  await page.click('#zk-node a[data-path="/app"]');
  await waitFor('/app with its two children', 10_000, async () => ((await page.$('#zk-node[data-path="/app"] a[data-path="/app/lock"]')) === null ? undefined : true));
  const app = (await page.textContent('#zk-node')) ?? '';
  assert.ok(app.includes('app config') && app.includes('settings') && app.includes('none (persistent)') && app.includes('cdrwa world:anyone'), app);
  await page.click('#zk-node a[data-path="/app/lock"]');
  await waitFor('the ephemeral znode with its owner', 10_000, async () => {
    const text = (await page.textContent('#zk-node[data-path="/app/lock"]')) ?? '';
    return text.includes(`session ${owner}`) && text.includes('held') ? text : undefined;
  });
  const crumbs = (await page.textContent('#zk-crumbs')) ?? '';
  assert.equal(crumbs.replace(/\s+/g, ''), '/app/lock');
  await page.locator('#browser').screenshot({ path: join(shots, '2-znode-browser.png') });
  await page.screenshot({ path: join(shots, '3-whole-page.png'), fullPage: true });
  assert.deepEqual(pageErrors, [], 'no script errors on the page');
});
