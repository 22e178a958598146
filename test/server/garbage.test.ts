// Garbage, malformed and oversized frames on every port of every member (peer, client,
// admin): each bad connection is closed with a log line, and the cluster keeps serving
// (DESIGN.md §4; issue 4, item 5).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Packr } from 'msgpackr';
import { getText, TestCluster, waitFor } from './helpers.js';

const CLOSE_TIMEOUT_MS = 5_000;

/** Sends `bytes` and resolves with what came back once the member closed the connection. */
function sendAndAwaitClose(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const received: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`port ${port} did not close the connection within ${CLOSE_TIMEOUT_MS} ms`));
    }, CLOSE_TIMEOUT_MS);
    socket.on('data', (chunk) => received.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(received));
    });
    socket.on('connect', () => socket.write(bytes));
  });
}

function frame(body: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

function lengthOnly(length: number): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(length, 0);
  return header;
}

/** A deterministic pseudo-random buffer (xorshift), so a failure replays. */
function garbage(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const plain = new Packr({ useRecords: false });
const badRequests: [string, Buffer][] = [
  ['random bytes', garbage(4096, 7)],
  ['an oversized frame header', lengthOnly(0xffff_fff0)],
  ['a frame just over the limit', lengthOnly((1 << 20) + 1)],
  ['a frame of malformed MessagePack', frame(Buffer.from([1, 0xc1, 0xc1, 0xc1]))],
  ['a frame with a wrong protocol version', frame(Buffer.from([9, 0x80]))],
  ['a well-formed request of an unknown type', frame(Buffer.concat([Buffer.from([1]), plain.pack({ id: 1, type: 'drop-tables' })]))],
  ['a request with a negative id', frame(Buffer.concat([Buffer.from([1]), plain.pack({ id: -5, type: 'leader' })]))],
  ['a kv request whose command is not bytes', frame(Buffer.concat([Buffer.from([1]), plain.pack({ id: 2, type: 'kv', command: 'text', consistency: 'linearizable' })]))],
];

const badPeerFrames: [string, Buffer][] = [
  ['random bytes', garbage(4096, 11)],
  ['an oversized frame header', lengthOnly(0xffff_fff0)],
  ['a MESSAGE frame before authentication', frame(Buffer.from([4, 0, 0, 0, 1, 1, 2, 3]))],
  ['a HELLO with a bad length', frame(Buffer.from([1, 1, 0, 0]))],
  ['an empty frame', frame(Buffer.alloc(0))],
];

const badHttp: [string, Buffer][] = [
  ['random bytes', garbage(2048, 13)],
  ['a request line that is not HTTP', Buffer.from('HELLO THERE\r\n\r\n')],
  ['headers over the size limit', Buffer.from(`GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`)],
];

test('garbage and oversized frames on the peer, client and admin ports of every member: the connections close and the cluster keeps serving', { timeout: 60_000 }, async (t) => {
  const cluster = await TestCluster.start(t);
  await cluster.waitForLeader();
  const client = cluster.client();
  await client.put('before', 'garbage');

  for (const id of cluster.ids) {
    const ports = cluster.ports.get(id)!;
    for (const [what, bytes] of badRequests) {
      await assert.doesNotReject(sendAndAwaitClose(ports.client, bytes), `client port of member ${id}: ${what}`);
    }
    for (const [what, bytes] of badPeerFrames) {
      await assert.doesNotReject(sendAndAwaitClose(cluster.peerPort(id), bytes), `peer port of member ${id}: ${what}`);
    }
    for (const [what, bytes] of badHttp) {
      const reply = await sendAndAwaitClose(ports.admin, bytes);
      assert.match(reply.toString('latin1'), /^HTTP\/1\.1 4\d\d/, `admin port of member ${id}: ${what} gets a 4xx`);
    }
  }

  // Every member is alive, answers /status, and the cluster takes writes and reads.
  assert.deepEqual(cluster.running(), cluster.ids);
  for (const id of cluster.ids) assert.equal((await cluster.status(id)).id, id);
  await client.put('after', 'garbage');
  assert.equal(await getText(client, 'before'), 'garbage');
  assert.equal(await getText(client, 'after'), 'garbage');

  // Each bad connection left a log line saying why it was closed.
  for (const id of cluster.ids) {
    const messages = cluster.members
      .get(id)!
      .entries()
      .map((entry) => entry.msg);
    await waitFor(`member ${id}'s log lines`, 2_000, () => {
      const all = cluster.members
        .get(id)!
        .entries()
        .map((entry) => entry.msg);
      return all.filter((msg) => msg === 'closed a client connection').length >= badRequests.length ? true : undefined;
    });
    assert.ok(
      messages.some((msg) => msg === 'closed a peer connection'),
      `member ${id} logs closed peer connections`,
    );
    assert.ok(
      messages.some((msg) => msg.startsWith('closed an admin connection')),
      `member ${id} logs closed admin connections`,
    );
  }
});
