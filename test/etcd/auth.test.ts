// etcd's Auth on real `flotilla server` processes:
// - differential: one etcdctl 3.4 script of users, roles, permissions, auth enable/disable and
//   requests as different users, run against a real etcd 3.4 and a three-member Flotilla,
//   compared field by field (ids and terms normalized), errors by exit code and message;
// - a token issued by one member works at another (tokens are signed with a key derived from
//   the cluster secret), a forged one is refused, and the users, roles and the enabled flag
//   survive a kill -9 of every member;
// - a watch on keys the user may not read is created and cancelled at once, as etcd 3.4 does.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { TestCluster, waitFor } from '../server/helpers.js';
import { assertSameAnswers, type DifferentialStep, etcdctl, etcdSkipReason, RealEtcd } from './etcdctl.js';
import { call, type Services, services } from './grpc.js';

type Step = DifferentialStep;

const root = ['--user', 'root:rootpw'];
const alice = ['--user', 'alice:alicepw'];

/** Each step runs with -w json against both systems, in this order, from an empty store. */
const script: readonly Step[] = [
  { args: ['auth', 'enable'] }, // no root user yet
  { args: ['user', 'add', 'root:rootpw'] },
  { args: ['user', 'add', 'root:again'] },
  { args: ['user', 'add', 'alice:alicepw'] },
  { args: ['role', 'add', 'reader'] },
  { args: ['role', 'add', 'reader'] },
  { args: ['role', 'grant-permission', 'reader', 'read', 'foo'] },
  { args: ['role', 'grant-permission', 'reader', '--prefix', 'readwrite', 'app/'] },
  { args: ['role', 'grant-permission', 'reader', 'write', 'm', 'p'] },
  { args: ['role', 'grant-permission', 'reader', 'read', 'm', 'p'] },
  { args: ['role', 'grant-permission', 'nobody', 'read', 'foo'] },
  { args: ['role', 'get', 'reader'] },
  { args: ['role', 'get', 'nobody'] },
  { args: ['user', 'grant-role', 'alice', 'reader'] },
  { args: ['user', 'grant-role', 'alice', 'reader'] },
  { args: ['user', 'grant-role', 'alice', 'nobody'] },
  { args: ['user', 'grant-role', 'nobody', 'reader'] },
  { args: ['user', 'get', 'alice'] },
  { args: ['user', 'get', 'nobody'] },
  { args: ['user', 'list'] },
  { args: ['role', 'list'] },
  { args: ['put', 'foo', 'before'] },
  // etcdctl's auth enable adds the root role and grants it to root when root lacks it.
  { args: ['auth', 'enable'] },
  { args: ['role', 'get', 'root', ...root] },
  { args: ['get', 'foo'] },
  { args: ['get', 'foo', ...alice] },
  { args: ['get', 'foo', '--user', 'alice:wrong'] },
  { args: ['get', 'foo', '--user', 'nobody:pw'] },
  { args: ['put', 'foo', 'x', ...alice] },
  { args: ['put', 'app/x', '1', ...alice] },
  { args: ['put', 'app/y', '2', '--prev-kv', ...alice] },
  { args: ['get', 'app/', '--prefix', ...alice] },
  { args: ['get', 'a', 'z', ...alice] },
  { args: ['get', 'm', 'o', ...alice] },
  { args: ['get', 'm', 'q', ...alice] },
  { args: ['del', 'app/x', ...alice] },
  { args: ['del', 'foo', ...alice] },
  { args: ['put', 'foo', 'bar', ...root] },
  { args: ['get', 'foo', ...root] },
  { args: ['user', 'list', ...alice] },
  { args: ['user', 'get', 'alice', ...alice] },
  { args: ['user', 'get', 'root', ...alice] },
  { args: ['role', 'get', 'reader', ...alice] },
  { args: ['role', 'revoke-permission', 'reader', 'foo', ...root] },
  { args: ['role', 'revoke-permission', 'reader', 'foo', ...root] },
  { args: ['get', 'foo', ...alice] },
  { args: ['user', 'delete', 'root', ...root] },
  { args: ['user', 'revoke-role', 'root', 'root', ...root] },
  { args: ['role', 'delete', 'root', ...root] },
  { args: ['user', 'revoke-role', 'alice', 'nothing', ...root] },
  { args: ['user', 'passwd', 'alice', '--interactive=false', ...root] },
  { args: ['auth', 'disable', ...alice] },
  { args: ['auth', 'disable', ...root] },
  { args: ['get', 'foo'] },
  { args: ['role', 'delete', 'reader'] },
  { args: ['user', 'get', 'alice'] },
  { args: ['user', 'delete', 'alice'] },
  { args: ['user', 'delete', 'alice'] },
  { args: ['user', 'list'] },
];

/** `user passwd --interactive=false` reads the new password from standard input. */
const inputFor = (step: Step) => (step.args[1] === 'passwd' ? 'newpw\n' : '');

test('auth differential: the same etcdctl users, roles, permissions and requests as each user give the same answers from a real etcd 3.4 and from Flotilla', { timeout: 240_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const real = await RealEtcd.start();
  t.after(() => real.stop());
  const cluster = await TestCluster.start(t, 3);
  const flotilla = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`).join(',');
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(flotilla, ['endpoint', 'health'])).code === 0 ? true : undefined));
  await assertSameAnswers(
    script.map((step) => ({ ...step, input: inputFor(step) })),
    real.endpoint,
    flotilla,
  );
});

// ---- Tokens, watches and persistence, through gRPC directly (so the token can go to another member) ----

test('auth tokens work at every member and a forged one is refused; a watch the user may not read is cancelled at once; users, roles and the enabled flag survive kill -9 of every member', {
  timeout: 120_000,
}, async (t) => {
  const cluster = await TestCluster.start(t, 3);
  const endpoints = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.etcd}`);
  const [one, two, three] = endpoints.map(services) as [Services, Services, Services];
  t.after(() => {
    for (const s of [one, two, three]) s.close();
  });
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(endpoints.join(','), ['endpoint', 'health'])).code === 0 ? true : undefined));
  for (const args of [
    ['user', 'add', 'root:rootpw'],
    ['user', 'add', 'bob:bobpw'],
    ['role', 'add', 'web'],
    ['role', 'grant-permission', 'web', '--prefix', 'readwrite', 'web/'],
    ['user', 'grant-role', 'bob', 'web'],
    ['auth', 'enable'],
  ]) {
    const done = await etcdctl(endpoints.join(','), args);
    assert.equal(done.code, 0, `etcdctl ${args.join(' ')}: ${done.stderr}`);
  }

  // A token from member 1 works at members 2 and 3.
  const { token } = (await call(one.auth, 'Authenticate', { name: 'bob', password: 'bobpw' })) as { token: string };
  await call(two.kv, 'Put', { key: Buffer.from('web/a'), value: Buffer.from('1') }, token);
  const got = (await call(three.kv, 'Range', { key: Buffer.from('web/a') }, token)) as { kvs: Array<{ value: Buffer }> };
  assert.equal(got.kvs[0]?.value.toString(), '1');
  await assert.rejects(
    call(three.kv, 'Range', { key: Buffer.from('other') }, token),
    (error: ServiceError) => error.code === status.PERMISSION_DENIED && error.details === 'etcdserver: permission denied',
  );
  // A token with its MAC changed, or its payload claiming root, is refused.
  const [payload, mac] = token.split('.') as [string, string];
  const forgedMac = `${payload}.${mac.slice(0, -2)}${mac.endsWith('AA') ? 'BB' : 'AA'}`;
  const forgedPayload = `${Buffer.from(JSON.stringify(['root', 1e9, Date.now() + 60_000])).toString('base64url')}.${mac}`;
  for (const forged of [forgedMac, forgedPayload, 'not-a-token']) {
    await assert.rejects(
      call(two.kv, 'Range', { key: Buffer.from('web/a') }, forged),
      (error: ServiceError) => error.code === status.UNAUTHENTICATED && error.details === 'etcdserver: invalid auth token',
    );
  }
  // No token at all: etcd's "user name is empty".
  await assert.rejects(call(two.kv, 'Range', { key: Buffer.from('web/a') }), (error: ServiceError) => error.details === 'etcdserver: user name is empty');
  // A wrong password.
  await assert.rejects(
    call(one.auth, 'Authenticate', { name: 'bob', password: 'nope' }),
    (error: ServiceError) => error.code === status.INVALID_ARGUMENT && /authentication failed/.test(error.details),
  );

  // A watch on keys bob may not read: created and cancelled in one response; on keys he may, events arrive.
  const metadata = new Metadata();
  metadata.set('token', token);
  const stream = two.watch.Watch(metadata);
  t.after(() => stream.cancel());
  const replies: Array<Record<string, unknown>> = [];
  stream.on('data', (reply: Record<string, unknown>) => replies.push(reply));
  stream.on('error', () => {});
  stream.write({ create_request: { key: Buffer.from('secret'), watch_id: 7 } });
  await waitFor('the denied watch is answered', 10_000, () => (replies.length > 0 ? true : undefined));
  assert.equal(replies[0]!['canceled'], true);
  assert.equal(replies[0]!['created'], true);
  assert.equal(replies[0]!['watch_id'], '7');
  assert.match(String(replies[0]!['cancel_reason']), /permission denied/);
  stream.write({ create_request: { key: Buffer.from('web/'), range_end: Buffer.from('web0'), watch_id: 8 } });
  await waitFor('the allowed watch is created', 10_000, () => (replies.some((r) => r['watch_id'] === '8' && r['created'] === true && r['canceled'] === false) ? true : undefined));
  await call(one.kv, 'Put', { key: Buffer.from('web/b'), value: Buffer.from('2') }, token);
  await waitFor('the allowed watch sees the put', 10_000, () => (replies.some((r) => r['watch_id'] === '8' && Array.isArray(r['events']) && r['events'].length === 1) ? true : undefined));

  // A permission revoked after the token was issued: the old token is refused as old, a new one as denied.
  const revoke = await etcdctl(endpoints.join(','), ['role', 'revoke-permission', 'web', 'web/', '--prefix', ...root]);
  assert.equal(revoke.code, 0, revoke.stderr);
  await assert.rejects(call(one.kv, 'Put', { key: Buffer.from('web/c'), value: Buffer.from('3') }, token), (error: ServiceError) => error.details === 'etcdserver: revision of auth store is old');
  const fresh = ((await call(one.auth, 'Authenticate', { name: 'bob', password: 'bobpw' })) as { token: string }).token;
  await assert.rejects(call(one.kv, 'Put', { key: Buffer.from('web/c'), value: Buffer.from('3') }, fresh), (error: ServiceError) => error.code === status.PERMISSION_DENIED);

  // Every member killed and restarted: auth is still on, and the users and roles are still there.
  await cluster.killAll();
  for (const id of cluster.ids) await cluster.startMember(id);
  // With auth on, etcdctl's health check needs a user (a real etcd 3.4 says "user name is empty" too).
  await waitFor('the etcd group answers after the restart', 30_000, async () => ((await etcdctl(endpoints.join(','), ['endpoint', 'health', ...root])).code === 0 ? true : undefined));
  const anonymous = await etcdctl(endpoints.join(','), ['get', 'web/a']);
  assert.notEqual(anonymous.code, 0, 'auth is still enabled after the restart');
  assert.match(anonymous.stderr, /user name is empty/);
  const listed = await etcdctl(endpoints.join(','), ['user', 'list', ...root]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(listed.stdout.trim().split('\n'), ['bob', 'root']);
  const asBob = await etcdctl(endpoints.join(','), ['get', 'web/a', '--print-value-only', '--user', 'bob:bobpw']);
  assert.notEqual(asBob.code, 0, 'the revoked permission stays revoked');
  const asRoot = await etcdctl(endpoints.join(','), ['get', 'web/a', '--print-value-only', ...root]);
  assert.equal(asRoot.stdout.trim(), '1');
});
