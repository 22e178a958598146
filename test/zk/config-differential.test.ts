// /zookeeper/config and reconfig, differentially: a real ZooKeeper 3.8.0 running as a
// one-server ensemble (standaloneEnabled=false, reconfigEnabled=true, a superuser) and a
// three-member Flotilla cluster get the same raw requests (docs/zookeeper.md §2.12).
//
// Compared: the shape of every line of the config text (`server.N=host:port:port:role;
// host:port`, then `version=HEX` equal to the node's mzxid), the node's Stat fields but mtime
// (ZooKeeper stamps the load time; Flotilla does not keep one), its ACL, the children of
// /zookeeper, and reconfig's error codes: NOAUTH without the superuser, BADVERSION for a stale
// curConfigId, NEWCONFIGNOQUORUM for a joiner that never connects. Not compared (intentional
// differences, §2.12): the number of servers, and requests that ZooKeeper accepts but Flotilla
// refuses as BADARGUMENTS (two changes at once, removing a non-member).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Err, errName } from '../../src/zk/constants.js';
import { ReconfigErr } from '../../src/zk/config-node.js';
import type { Request } from '../../src/zk/records.js';
import type { Stat } from '../../src/zk/types.js';
import { waitFor } from '../server/helpers.js';
import { FlotillaZkCluster } from './flotilla-cluster.js';
import { RawSession } from './raw-session.js';
import { realZooKeeperSkipReason, startRealZooKeeper } from './real-zookeeper.js';

const SUPER = 'super:differential-secret';
const superDigest = `super:${createHash('sha1').update(SUPER).digest('base64')}`;
const TIMEOUT_MS = 30_000;
const SERVER_LINE = /^server\.(\d+)=127\.0\.0\.1:(\d+):(\d+):participant;127\.0\.0\.1:(\d+)$/;

interface Observed {
  readonly lines: readonly string[];
  readonly stat: Stat;
  readonly existsStat: Stat;
  readonly children2Stat: Stat;
  readonly acl: string[];
  readonly zookeeperChildren: string[];
  readonly errors: Record<string, string>;
}

function errOf(code: number): string {
  return errName.get(code) ?? Object.entries(ReconfigErr).find(([, value]) => value === code)?.[0] ?? String(code);
}

async function call(session: RawSession, request: Request) {
  const reply = await session.request(request);
  return { err: reply.header.err, body: reply.body };
}

const reconfig = (fields: Partial<Extract<Request, { type: 'reconfig' }>>): Request => ({
  type: 'reconfig',
  joiningServers: null,
  leavingServers: null,
  newMembers: null,
  curConfigId: -1n,
  ...fields,
});

/** The same requests on one target, everything a client could see of them. */
async function observe(connectString: string, noAuthLeaving: string): Promise<Observed> {
  const plain = await RawSession.connect(connectString, { timeoutMs: TIMEOUT_MS });
  const admin = await RawSession.connect(connectString, { timeoutMs: TIMEOUT_MS });
  try {
    const data = await call(plain, { type: 'getData', path: '/zookeeper/config', watch: false });
    assert.equal(data.err, Err.ok);
    const text = new TextDecoder().decode(data.body.buffer('data') ?? new Uint8Array(0));
    const stat = data.body.stat();
    const existsStat = (await call(plain, { type: 'exists', path: '/zookeeper/config', watch: false })).body.stat();
    const children2 = (await call(plain, { type: 'getChildren2', path: '/zookeeper/config', watch: false })).body;
    children2.strings('children');
    const aclReply = (await call(plain, { type: 'getACL', path: '/zookeeper/config' })).body;
    const acl = aclReply.acls().map((entry) => `${entry.perms} ${entry.id.scheme}:${entry.id.id}`);
    aclReply.stat();
    const zookeeperChildren = (await call(plain, { type: 'getChildren', path: '/zookeeper', watch: false })).body.strings('children').sort();
    const errors: Record<string, string> = {};
    // A removal each server finds valid, so that only the ACL refuses it. ZooKeeper checks the
    // new configuration before the ACL, and removing its only server is BADARGUMENTS, so it is
    // asked to remove a non-member (a no-op it accepts); Flotilla, to remove member 3.
    errors['reconfig without the superuser'] = errOf((await call(plain, reconfig({ leavingServers: noAuthLeaving }))).err);
    await admin.request({ type: 'auth', authType: 0, scheme: 'digest', auth: new TextEncoder().encode(SUPER) });
    errors['reconfig with a stale curConfigId'] = errOf((await call(admin, reconfig({ leavingServers: '1', curConfigId: BigInt(stat.mzxid) + 1n }))).err);
    errors['reconfig adding a server that never connects'] = errOf((await call(admin, reconfig({ joiningServers: 'server.9=127.0.0.1:1:2:participant;127.0.0.1:3' }))).err);
    return { lines: text.split('\n'), stat, existsStat, children2Stat: children2.stat(), acl, zookeeperChildren, errors };
  } finally {
    plain.close();
    admin.close();
  }
}

/** The Stat without mtime (ZooKeeper's load time; 0 in Flotilla) and with dataLength checked separately. */
function comparable(stat: Stat): object {
  const { mtime: _mtime, dataLength: _dataLength, mzxid: _mzxid, ...rest } = stat;
  return rest;
}

function checkOwn(name: string, seen: Observed): void {
  const version = seen.lines[seen.lines.length - 1]!;
  assert.match(version, /^version=[0-9a-f]+$/, `${name}: the last line is version=HEX`);
  assert.equal(BigInt(`0x${version.slice('version='.length)}`), BigInt(seen.stat.mzxid), `${name}: the version is the node's mzxid`);
  const servers = seen.lines.slice(0, -1);
  assert.ok(servers.length > 0);
  for (const line of servers) assert.match(line, SERVER_LINE, `${name}: ${line}`);
  assert.equal(seen.stat.dataLength, Buffer.byteLength(seen.lines.join('\n')), `${name}: dataLength`);
  assert.deepEqual(seen.existsStat, seen.stat, `${name}: exists gives getData's Stat`);
  assert.deepEqual(seen.children2Stat, seen.stat, `${name}: getChildren2 gives getData's Stat`);
}

const skip = realZooKeeperSkipReason();

test('/zookeeper/config and reconfig: a ZooKeeper 3.8.0 ensemble vs a 3-member Flotilla cluster', { skip, timeout: 120_000 }, async (t) => {
  const real = await startRealZooKeeper({ ensemble: true, superDigest, tickTimeMs: 200 });
  t.after(() => real.stop());
  const flotilla = await FlotillaZkCluster.start({ extraArgs: ['--zk-super-digest', superDigest] });
  t.after(() => flotilla.cluster.dispose());
  // Members announce their ZooKeeper ports to each other every second.
  const connect = flotilla.address(1);
  await waitFor('every member in /zookeeper/config with its client port', 20_000, async () => {
    const session = await RawSession.connect(connect, { timeoutMs: TIMEOUT_MS });
    try {
      const reply = await session.request({ type: 'getData', path: '/zookeeper/config', watch: false });
      const text = new TextDecoder().decode(reply.body.buffer('data') ?? new Uint8Array(0));
      return text.split('\n').filter((line) => SERVER_LINE.test(line)).length === 3 ? true : undefined;
    } finally {
      session.close();
    }
  });

  const zookeeper = await observe(real.connectString, '7');
  assert.equal(real.exitDescription(), undefined, `the real ZooKeeper ran throughout:\n${real.describeOutput()}`);
  const ours = await observe(connect, '3');
  t.diagnostic(`zookeeper: ${JSON.stringify(zookeeper.lines)}; flotilla: ${JSON.stringify(ours.lines)}`);

  checkOwn('zookeeper', zookeeper);
  checkOwn('flotilla', ours);
  assert.equal(zookeeper.lines.length, 2, 'the real ensemble has one server');
  assert.equal(ours.lines.length, 4, 'the Flotilla cluster has three');
  assert.deepEqual(comparable(ours.stat), comparable(zookeeper.stat));
  assert.deepEqual(ours.acl, zookeeper.acl);
  assert.deepEqual(ours.zookeeperChildren, zookeeper.zookeeperChildren);
  assert.deepEqual(ours.errors, zookeeper.errors);
  assert.deepEqual(zookeeper.errors, {
    'reconfig without the superuser': 'noAuth',
    'reconfig with a stale curConfigId': 'badVersion',
    'reconfig adding a server that never connects': 'newConfigNoQuorum',
  });
});
