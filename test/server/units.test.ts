// The server's pure parts, without processes: configuration, the client protocol and the
// peer codec (validation at the edge), the client handler's kv path, and the admin app.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { ConfigError, describeConfig, parseEnvFile, parsePeers, resolveConfig, secretFromEnvFile } from '../../src/server/config.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, ProtocolError } from '../../src/server/protocol.js';
import { decodePeerMessage, encodePeerMessage } from '../../src/server/peer-codec.js';
import { encodeCommand } from '../../src/kv/index.js';
import { adminApp } from '../../src/server/admin.js';
import { index, nodeId, term } from '../../src/stdx/types.js';

const SECRET = 'sixteen-bytes-or-more';

test('config: flags win over the file; defaults; the secret never appears in describeConfig', () => {
  const config = resolveConfig({ id: 2, peers: ['1=10.0.0.1:7001', '2=10.0.0.2:7002'], dataDir: '/d', tickMs: 50 }, { tickMs: '20', clientPort: '9000' }, SECRET);
  assert.equal(config.id, 2);
  assert.equal(config.tickMs, 20);
  assert.equal(config.clientPort, 9000);
  assert.equal(config.adminPort, 0);
  assert.equal(config.peerPort, 7002);
  assert.equal(config.host, '10.0.0.2');
  assert.ok(!JSON.stringify(describeConfig(config)).includes(SECRET));
  assert.deepEqual(
    [...parsePeers('3=h:3,1=[::1]:1').entries()],
    [
      [1, { host: '::1', port: 1 }],
      [3, { host: 'h', port: 3 }],
    ],
  );
});

test('config: refusals name the problem', () => {
  const base = { id: 1, peers: '1=127.0.0.1:1', dataDir: '/d' };
  assert.throws(() => resolveConfig({ ...base, id: 4 }, {}, SECRET), /member 4 is not in the peer list/);
  assert.throws(() => resolveConfig(base, {}, undefined), /no cluster secret/);
  assert.throws(() => resolveConfig(base, {}, 'short'), /at least 16 bytes/);
  assert.throws(() => resolveConfig({ ...base, peers: '1=127.0.0.1:1,1=x:2' }, {}, SECRET), /appears twice/);
  assert.throws(() => resolveConfig({ ...base, tickMs: 0 }, {}, SECRET), ConfigError);
  assert.throws(() => parsePeers('1=nohost'), /not host:port/);
  assert.equal(parseEnvFile('# c\nexport A="x y"\nB=z\n').get('A'), 'x y');
  assert.equal(secretFromEnvFile(`FLOTILLA_CLUSTER_SECRET=${SECRET}\n`, 'f'), SECRET);
  assert.throws(() => secretFromEnvFile('OTHER=1', 'f'), /FLOTILLA_CLUSTER_SECRET/);
});

test('client protocol: round trips, and every malformed request is a ProtocolError', () => {
  const command = Buffer.from(encodeCommand({ op: { kind: 'get', key: 'k' }, session: undefined, timeMs: 0 }));
  const request = { id: 7, type: 'kv', command, consistency: 'serializable' } as const;
  const decoded = decodeRequest(encodeRequest(request));
  assert.equal(decoded.id, 7);
  assert.ok(decoded.type === 'kv' && Buffer.from(decoded.command).equals(command) && decoded.consistency === 'serializable');
  const response = { id: 7, type: 'error', code: 'not-leader', message: 'go there', leader: 3, client: { host: '127.0.0.1', port: 7203 } } as const;
  assert.deepEqual(decodeResponse(encodeResponse(response)), response);
  const packr = new Packr({ useRecords: false });
  const framed = (value: unknown) => Buffer.concat([Buffer.from([1]), packr.pack(value)]);
  for (const bad of [
    Buffer.alloc(0),
    Buffer.from([2, 0x80]),
    Buffer.from([1, 0xc1]),
    framed([1, 2]),
    framed({ id: 1.5, type: 'leader' }),
    framed({ id: 1, type: 'kv', consistency: 'linearizable' }),
    framed({ id: 1, type: 'kv', command: 5, consistency: 'linearizable' }),
    framed({ id: 1, type: 'kv', command: Buffer.from([0x90]), consistency: 'sometimes' }),
    framed({ id: 1, type: 'propose', command: Buffer.from([1]) }),
    framed({ id: 1, type: 'nope' }),
  ]) {
    assert.throws(() => decodeRequest(bad), ProtocolError, bad.toString('hex'));
  }
});

test('peer codec: Raft messages and MemberInfo round trip; junk is refused', () => {
  const info = { type: 'MemberInfo', from: nodeId(2), client: { host: '127.0.0.1', port: 1 }, admin: { host: '127.0.0.1', port: 2 } } as const;
  assert.deepEqual(decodePeerMessage(encodePeerMessage(info)), info);
  // With the ZooKeeper port (for /zookeeper/config); a malformed one is refused.
  const withZk = { ...info, zk: { host: '127.0.0.1', port: 2181 } };
  assert.deepEqual(decodePeerMessage(encodePeerMessage(withZk)), withZk);
  assert.throws(() => decodePeerMessage(encodePeerMessage({ ...info, zk: { host: '127.0.0.1', port: 0 } })), /MemberInfo\.zk\.port/);
  const heartbeat = { type: 'Heartbeat', from: nodeId(1), to: nodeId(2), term: term(3), commit: index(4), context: 0 } as const;
  assert.deepEqual(decodePeerMessage(encodePeerMessage(heartbeat)), heartbeat);
  assert.throws(() => decodePeerMessage(Buffer.from([0xf1, 0x80])));
  assert.throws(() => decodePeerMessage(Buffer.from([0x77])));
});

test('config: the KV settings have named defaults and are validated', () => {
  const base = { id: 1, peers: '1=127.0.0.1:1', dataDir: '/d' };
  const config = resolveConfig(base, {}, SECRET);
  assert.equal(config.raftStateBytesMax, 64 * 1024 * 1024);
  assert.equal(config.readMode, 'read-index');
  assert.equal(resolveConfig(base, { raftStateBytesMax: '65536', readMode: 'unsafe-leader-local' }, SECRET).raftStateBytesMax, 65536);
  assert.throws(() => resolveConfig(base, { raftStateBytesMax: '10' }, SECRET), /raftStateBytesMax/);
  assert.throws(() => resolveConfig(base, { readMode: 'fast' }, SECRET), /readMode/);
});

test('admin app: /status is JSON, /metrics is Prometheus text, /backup bytes, anything else a 404', async () => {
  const app = adminApp({
    status: async () => ({ id: 1, role: 'leader' }),
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'flotilla_term 3\n' }),
    backup: async () => Uint8Array.of(1, 2, 3),
    members: () => ({ kv: { leader: 1 } }),
    changeMembers: async (body) => ({ status: 409, body: { error: 'refused', echo: body } }),
  });
  assert.deepEqual(await (await app.request('/members')).json(), { kv: { leader: 1 } });
  const change = await app.request('/members', { method: 'POST', body: JSON.stringify({ action: 'promote', id: 4 }) });
  assert.equal(change.status, 409);
  assert.deepEqual(await change.json(), { error: 'refused', echo: { action: 'promote', id: 4 } });
  assert.equal((await app.request('/members', { method: 'POST', body: 'not json' })).status, 400);
  const backup = await app.request('/backup');
  assert.equal(backup.headers.get('content-type'), 'application/octet-stream');
  assert.deepEqual(new Uint8Array(await backup.arrayBuffer()), Uint8Array.of(1, 2, 3));
  assert.deepEqual(await (await app.request('/status')).json(), { id: 1, role: 'leader' });
  const metrics = await app.request('/metrics');
  assert.match(metrics.headers.get('content-type')!, /text\/plain/);
  assert.equal(await metrics.text(), 'flotilla_term 3\n');
  assert.equal((await app.request('/nope')).status, 404);
});
