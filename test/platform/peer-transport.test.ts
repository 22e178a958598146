// The TCP peer transport on real sockets (127.0.0.1, port 0). Every test closes what it opens.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { PeerTransport, type PeerLogger, type PeerTransportLimits } from '../../src/platform/peer-transport.js';
import { nodeId, type NodeId } from '../../src/stdx/types.js';

interface Message {
  readonly text: string;
}

const SECRET = 'a-cluster-secret-of-enough-length';

function encode(message: Message): Uint8Array {
  return Buffer.from(JSON.stringify(message));
}

function decode(bytes: Uint8Array): Message {
  const value: unknown = JSON.parse(Buffer.from(bytes).toString());
  if (typeof value !== 'object' || value === null || typeof (value as { text?: unknown }).text !== 'string') throw new Error('not a Message');
  return { text: (value as { text: string }).text };
}

class CapturingLogger implements PeerLogger {
  lines: string[] = [];
  info(fields: object, message: string): void {
    this.lines.push(`info ${message} ${JSON.stringify(fields)}`);
  }
  warn(fields: object, message: string): void {
    this.lines.push(`warn ${message} ${JSON.stringify(fields)}`);
  }
  debug(): void {}
}

interface Member {
  readonly id: NodeId;
  readonly transport: PeerTransport<Message>;
  readonly received: string[];
  readonly logger: CapturingLogger;
}

async function member(id: number, options: { secret?: string; limits?: Partial<PeerTransportLimits>; encode?: (m: Message) => Uint8Array } = {}): Promise<Member> {
  const received: string[] = [];
  const logger = new CapturingLogger();
  const transport = await PeerTransport.start<Message>({
    selfId: nodeId(id),
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map(),
    clusterSecret: options.secret ?? SECRET,
    encode: options.encode ?? encode,
    decode,
    onMessage: (from, groupId, message) => received.push(`${from}/${groupId}:${message.text}`),
    logger,
    limits: { reconnectDelayMsMin: 10, reconnectDelayMsMax: 100, handshakeTimeoutMs: 1000, ...options.limits },
  });
  return { id: nodeId(id), transport, received, logger };
}

/** Makes every member know every other member's address. */
function introduce(members: readonly Member[]): void {
  for (const a of members) for (const b of members) if (a !== b) a.transport.setPeer(b.id, b.transport.address());
}

async function until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function closeAll(members: readonly Member[]): Promise<void> {
  await Promise.all(members.map((m) => m.transport.close()));
}

/** A raw client socket to a member's port. */
async function rawSocket(target: Member): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect(target.transport.address());
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed };
}

function frame(body: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

test('three members exchange messages of several groups over one connection per pair', async () => {
  const members = await Promise.all([1, 2, 3].map((id) => member(id)));
  try {
    introduce(members);
    const [a, b, c] = members as [Member, Member, Member];
    for (const group of [0, 7, 42]) {
      a.transport.group(group).send(b.id, { text: `a->b g${group}` });
      b.transport.group(group).send(a.id, { text: `b->a g${group}` });
      c.transport.group(group).send(a.id, { text: `c->a g${group}` });
    }
    await until(() => a.received.length === 6 && b.received.length === 3, 'all messages');
    assert.deepEqual(b.received, ['1/0:a->b g0', '1/7:a->b g7', '1/42:a->b g42']);
    assert.deepEqual([...a.received].sort(), ['2/0:b->a g0', '2/42:b->a g42', '2/7:b->a g7', '3/0:c->a g0', '3/42:c->a g42', '3/7:c->a g7']);
    // Dialling is eager (the lower id dials), so every pair ends up with one connection.
    await until(() => members.every((m) => m.transport.connectedPeers().length === 2), 'a connection per pair');
    assert.deepEqual(a.transport.connectedPeers(), [2, 3]);
    assert.deepEqual(c.transport.connectedPeers(), [1, 2]);
  } finally {
    await closeAll(members);
  }
});

test('many messages are batched and arrive in order', async () => {
  const members = await Promise.all([1, 2].map((id) => member(id)));
  try {
    introduce(members);
    const [a, b] = members as [Member, Member];
    for (let i = 0; i < 2000; i++) b.transport.send(a.id, 1, { text: String(i) });
    await until(() => a.received.length === 2000, '2000 messages');
    assert.deepEqual(
      a.received,
      Array.from({ length: 2000 }, (_, i) => `2/1:${i}`),
    );
  } finally {
    await closeAll(members);
  }
});

test('the messages of a hundred groups to one peer in one turn share one frame (coalescing)', async () => {
  const members = await Promise.all([1, 2].map((id) => member(id)));
  try {
    introduce(members);
    const [a, b] = members as [Member, Member];
    a.transport.send(b.id, 0, { text: 'hello' });
    await until(() => b.received.length === 1, 'the connection');
    const before = a.transport.stats();
    for (let group = 1; group <= 100; group++) a.transport.group(group).send(b.id, { text: `heartbeat ${group}` });
    await until(() => b.received.length === 101, 'a hundred messages');
    const after = a.transport.stats();
    assert.equal(after.messagesSent - before.messagesSent, 100);
    assert.equal(after.framesSent - before.framesSent, 1, 'one frame for the hundred messages');
    assert.deepEqual(
      b.received.slice(1),
      Array.from({ length: 100 }, (_, i) => `1/${i + 1}:heartbeat ${i + 1}`),
    );
    // A batch never exceeds frameBytesMax: 2000 messages of 1 KiB take several frames, in order.
    const big = 'x'.repeat(1024);
    for (let i = 0; i < 2000; i++) b.transport.send(a.id, 9, { text: `${i}${big}` });
    await until(() => a.received.length === 2000, '2000 large messages', 10_000);
    assert.ok(a.received.every((line, i) => line.startsWith(`2/9:${i}x`)));
  } finally {
    await closeAll(members);
  }
});

test('a member without the cluster secret can neither join nor inject', async () => {
  const good = await member(1);
  const intruder = await member(2, { secret: 'a-different-secret-entirely!!' });
  try {
    introduce([good, intruder]);
    good.transport.send(intruder.id, 0, { text: 'secret' });
    intruder.transport.send(good.id, 0, { text: 'injected' });
    await until(() => good.logger.lines.some((line) => line.includes('authentication failed')), 'the failed handshake to be logged');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(good.received, []);
    assert.deepEqual(intruder.received, []);
    assert.deepEqual(good.transport.connectedPeers(), []);
  } finally {
    await closeAll([good, intruder]);
  }
});

test('garbage, oversized and unauthenticated frames close that connection; the member keeps serving', async () => {
  const [a, b] = (await Promise.all([1, 2].map((id) => member(id, { limits: { frameBytesMax: 4096 } })))) as [Member, Member];
  try {
    introduce([a, b]);
    const attacks: [string, Buffer][] = [
      ['garbage', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
      ['oversized', frame(Buffer.alloc(5000))],
      ['unauthenticated message', frame(Buffer.from([4, 0, 0, 0, 1, 0x7b, 0x7d]))],
      ['empty frame', frame(Buffer.alloc(0))],
    ];
    for (const [name, bytes] of attacks) {
      const { socket, closed } = await rawSocket(b);
      socket.write(bytes);
      await closed;
      assert.ok(
        b.logger.lines.some((line) => line.startsWith('warn closed a peer connection')),
        name,
      );
    }
    a.transport.send(b.id, 3, { text: 'still works' });
    await until(() => b.received.length === 1, 'a legitimate message after the attacks');
    assert.deepEqual(b.received, ['1/3:still works']);
  } finally {
    await closeAll([a, b]);
  }
});

test('a message that fails validation closes the connection, which is then re-established', async () => {
  let poison = true;
  const a = await member(1, { encode: (m) => (m.text === 'bad' && poison ? Buffer.from('not json') : encode(m)) });
  const b = await member(2);
  try {
    introduce([a, b]);
    a.transport.send(b.id, 0, { text: 'bad' });
    await until(() => b.logger.lines.some((line) => line.includes('invalid message in group 0')), 'the invalid message to be logged');
    poison = false;
    // A new connection, not the one being closed (a may not have seen that close yet).
    await until(() => a.logger.lines.filter((line) => line.includes('peer connection authenticated')).length >= 2 && a.transport.connectedPeers().length === 1, 'reconnection');
    a.transport.send(b.id, 0, { text: 'good' });
    await until(() => b.received.includes('1/0:good'), 'a good message after reconnecting');
  } finally {
    await closeAll([a, b]);
  }
});

test('an invalid message inside a batch closes the connection there: the messages after it in the batch are not delivered', async () => {
  let poison = true;
  const a = await member(1, { encode: (m) => (m.text === 'bad' && poison ? Buffer.from('not json') : encode(m)) });
  const b = await member(2);
  try {
    introduce([a, b]);
    for (const text of ['ok1', 'bad', 'ok2']) a.transport.send(b.id, 4, { text });
    await until(() => b.logger.lines.some((line) => line.includes('invalid message in group 4')), 'the invalid message to be logged');
    assert.ok(a.transport.stats().framesSent >= 1 && a.transport.stats().messagesSent >= 3);
    assert.deepEqual(b.received, ['1/4:ok1']);
    poison = false;
    // Messages sent while the broken connection is noticed are lost (Raft retries): resend.
    await until(() => {
      a.transport.send(b.id, 4, { text: 'good' });
      return b.received.includes('1/4:good');
    }, 'a good message after reconnecting');
    assert.ok(!b.received.includes('1/4:ok2'));
  } finally {
    await closeAll([a, b]);
  }
});

test('the dialer reconnects with backoff after its peer restarts on the same port', async () => {
  const a = await member(1);
  let b = await member(2);
  try {
    introduce([a, b]);
    a.transport.send(b.id, 0, { text: 'one' });
    await until(() => b.received.length === 1, 'the first message');
    const port = b.transport.address().port;
    await b.transport.close();
    a.transport.send(b.id, 0, { text: 'queued while down' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const received: string[] = [];
    const logger = new CapturingLogger();
    const transport = await PeerTransport.start<Message>({
      selfId: nodeId(2),
      listen: { host: '127.0.0.1', port },
      peers: new Map([[nodeId(1), a.transport.address()]]),
      clusterSecret: SECRET,
      encode,
      decode,
      logger,
      onMessage: (from, group, m) => received.push(`${from}/${group}:${m.text}`),
    });
    b = { id: nodeId(2), transport, received, logger };
    a.transport.send(b.id, 0, { text: 'two' });
    await until(() => received.includes('1/0:two'), 'a message after the restart');
  } finally {
    await closeAll([a, b]);
  }
});

test('send queues are bounded: overflow is dropped and counted', async () => {
  const a = await member(1, { limits: { sendQueueMessagesMax: 10 } });
  try {
    // Member 2 is unreachable (nothing listens there), so everything queues.
    a.transport.setPeer(nodeId(2), { host: '127.0.0.1', port: 1 });
    for (let i = 0; i < 25; i++) a.transport.send(nodeId(2), 0, { text: String(i) });
    a.transport.send(nodeId(9), 0, { text: 'unknown peer' });
    assert.equal(a.transport.stats().messagesDropped, 16);
  } finally {
    await a.transport.close();
  }
});

test('a cut link drops messages per direction while the connection stays up; healing it restores delivery', async () => {
  const members = await Promise.all([1, 2, 3].map((id) => member(id)));
  try {
    introduce(members);
    const [a, b, c] = members as [Member, Member, Member];
    await until(() => members.every((m) => m.transport.connectedPeers().length === 2), 'a connection per pair');
    // One direction, on the sender: a drops what it sends to b; b still reaches a, c still reaches b.
    a.transport.setLinkCut(b.id, { outgoing: true, incoming: false });
    assert.deepEqual(a.transport.linkCuts(), { outgoing: [2], incoming: [] });
    const droppedBefore = a.transport.stats().messagesDropped;
    a.transport.group(1).send(b.id, { text: 'lost a->b' });
    b.transport.group(1).send(a.id, { text: 'b->a' });
    c.transport.group(1).send(b.id, { text: 'c->b' });
    a.transport.group(1).send(c.id, { text: 'a->c' });
    await until(() => a.received.length === 1 && b.received.length === 1 && c.received.length === 1, 'the uncut messages');
    assert.deepEqual([a.received, b.received, c.received], [['2/1:b->a'], ['3/1:c->b'], ['1/1:a->c']]);
    assert.equal(a.transport.stats().messagesDropped, droppedBefore + 1, 'the cut message is counted as dropped');

    // The other direction, on the receiver: b drops what arrives from c (c still sends it).
    b.transport.setLinkCut(c.id, { outgoing: false, incoming: true });
    const cSentBefore = c.transport.stats().messagesSent;
    c.transport.group(1).send(b.id, { text: 'lost c->b' });
    await until(() => c.transport.stats().messagesSent === cSentBefore + 1, 'c to send it');
    await until(() => b.transport.stats().messagesDropped >= 1, 'b to drop it');
    assert.deepEqual(b.received, ['3/1:c->b']);
    assert.deepEqual(b.transport.connectedPeers(), [1, 3], 'cutting a link does not close connections');

    // Heal both: everything flows again, and nothing cut earlier arrives late.
    a.transport.setLinkCut(b.id, { outgoing: false, incoming: false });
    b.transport.setLinkCut(c.id, { outgoing: false, incoming: false });
    assert.deepEqual(a.transport.linkCuts(), { outgoing: [], incoming: [] });
    a.transport.group(2).send(b.id, { text: 'a->b healed' });
    c.transport.group(2).send(b.id, { text: 'c->b healed' });
    await until(() => b.received.length === 3, 'the healed messages');
    assert.deepEqual([...b.received].sort(), ['1/2:a->b healed', '3/1:c->b', '3/2:c->b healed']);
  } finally {
    await closeAll(members);
  }
});

test('cutting the outgoing side drops what is already queued for that peer', async () => {
  const members = await Promise.all([1, 2].map((id) => member(id)));
  try {
    const [a, b] = members as [Member, Member];
    // b's address as a knows it is a closed port: no connection opens, and the message waits in a's queue.
    a.transport.setPeer(b.id, { host: '127.0.0.1', port: 1 });
    a.transport.group(0).send(b.id, { text: 'queued' });
    a.transport.setLinkCut(b.id, { outgoing: true, incoming: true });
    assert.equal(a.transport.stats().messagesDropped, 1, 'the queued message is dropped');
    assert.throws(() => a.transport.setLinkCut(a.id, { outgoing: true, incoming: false }), /another member/);
  } finally {
    await closeAll(members);
  }
});
