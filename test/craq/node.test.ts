// The CRAQ chain node (src/craq/node.ts) driven by hand: messages are delivered only when
// a test says so, so each case holds the chain in exactly the state it is about — a write
// that reached the middle but not the tail, a tail that died with a write in flight, a
// node joining at the tail — and checks what the protocol answers there.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CraqNode, type CraqNodeOptions } from '../../src/craq/node.js';
import { CraqDecodeError, decodeClientRequest, decodePeerMessage } from '../../src/craq/codec.js';
import { craqLimits } from '../../src/craq/limits.js';
import { Throttle, throttleWaitMsMax } from '../../src/craq/throttle.js';
import type { ClientReply, PeerMessage } from '../../src/craq/types.js';
import { nodeId, type NodeId } from '../../src/stdx/types.js';

class Chain {
  readonly nodes = new Map<NodeId, CraqNode>();
  readonly inFlight: { to: NodeId; message: PeerMessage }[] = [];
  readonly replies = new Map<number, ClientReply>();
  epoch = 0;
  private nextRequest = 1;

  constructor(ids: number[], options: Partial<CraqNodeOptions> = {}) {
    for (const id of ids) this.add(id, options);
    this.configure(ids);
    // A new chain's nodes sync with their predecessors before they serve (ack, propagate).
    this.deliver();
  }

  add(id: number, options: Partial<CraqNodeOptions> = {}): CraqNode {
    const node = new CraqNode(nodeId(id), options);
    node.setLease(1e12);
    this.nodes.set(nodeId(id), node);
    return node;
  }

  node(id: number): CraqNode {
    return this.nodes.get(nodeId(id))!;
  }

  configure(members: number[]): void {
    this.epoch++;
    for (const node of this.nodes.values()) node.setConfig({ epoch: this.epoch, members: members.map(nodeId) });
    this.collect();
  }

  /** Moves every Ready's messages into flight and its replies into `replies`. */
  collect(): void {
    for (const node of this.nodes.values()) {
      while (node.hasReady()) {
        const ready = node.ready();
        this.inFlight.push(...ready.messages);
        for (const { requestId, reply } of ready.replies) this.replies.set(requestId, reply);
      }
    }
  }

  /** Delivers messages in flight that `filter` accepts, until none is left (bounded). */
  deliver(filter: (to: NodeId, message: PeerMessage) => boolean = () => true): void {
    for (let round = 0; round < 100_000; round++) {
      const index = this.inFlight.findIndex(({ to, message }) => filter(to, message));
      if (index < 0) return;
      const [{ to, message }] = this.inFlight.splice(index, 1) as [{ to: NodeId; message: PeerMessage }];
      this.nodes.get(to)?.step(message);
      this.collect();
    }
    assert.fail('messages kept flowing');
  }

  /** Drops messages in flight to `id` (it died). */
  drop(id: number): void {
    for (let i = this.inFlight.length - 1; i >= 0; i--) if (this.inFlight[i]!.to === id) this.inFlight.splice(i, 1);
  }

  write(id: number, key: string, value: string): number {
    const requestId = this.nextRequest++;
    this.node(id).write(requestId, key, value);
    this.collect();
    return requestId;
  }

  read(id: number, key: string, mode: Parameters<CraqNode['read']>[2] = { kind: 'strong' }): number {
    const requestId = this.nextRequest++;
    this.node(id).read(requestId, key, mode);
    this.collect();
    return requestId;
  }

  tick(times = 1): void {
    for (let k = 0; k < times; k++) for (const node of this.nodes.values()) node.tick(k);
    this.collect();
  }
}

function readValue(reply: ClientReply | undefined): string | null | undefined {
  assert.ok(reply !== undefined, 'the read was answered');
  assert.equal(reply.type, 'read', JSON.stringify(reply));
  return reply.type === 'read' ? reply.value : undefined;
}

test('a write is acknowledged only after the tail committed it, and every node ends clean', () => {
  const chain = new Chain([1, 2, 3]);
  const request = chain.write(1, 'x', 'a');
  chain.deliver((_to, message) => message.type === 'propagate');
  assert.equal(chain.replies.get(request), undefined, 'no answer before the acks return');
  assert.deepEqual(chain.node(3).describeKey('x'), { newest: 1, clean: 1 }, 'the tail commits on receipt');
  assert.deepEqual(chain.node(2).describeKey('x'), { newest: 1, clean: 0 }, 'the middle is dirty until the ack passes');
  chain.deliver();
  assert.deepEqual(chain.replies.get(request), { type: 'write', key: 'x', version: 1, seq: 1 });
  for (const id of [1, 2, 3]) assert.deepEqual(chain.node(id).describeKey('x'), { newest: 1, clean: 1 });
});

test('a dirty strong read asks the tail and answers the committed version; weak modes answer without asking', () => {
  const chain = new Chain([1, 2, 3]);
  chain.write(1, 'x', 'a');
  chain.deliver();
  chain.write(1, 'x', 'b');
  chain.deliver((to, message) => message.type === 'propagate' && to === 2); // b reaches the middle only
  const strong = chain.read(2, 'x');
  assert.equal(chain.replies.get(strong), undefined, 'a dirty read waits for the tail');
  assert.ok(
    chain.inFlight.some(({ to, message }) => to === 3 && message.type === 'query'),
    'the middle asked the tail',
  );
  chain.deliver((_to, message) => message.type === 'query' || message.type === 'query-reply');
  assert.equal(readValue(chain.replies.get(strong)), 'a');
  assert.equal(readValue(chain.replies.get(chain.read(2, 'x', { kind: 'eventual' }))), 'b');
  assert.equal(readValue(chain.replies.get(chain.read(2, 'x', { kind: 'bounded', versionsMax: 0 }))), 'a');
  assert.equal(readValue(chain.replies.get(chain.read(2, 'x', { kind: 'bounded', versionsMax: 1 }))), 'b');
  assert.equal(readValue(chain.replies.get(chain.read(3, 'x'))), 'a', 'the tail answers its committed version at once');
  assert.equal(readValue(chain.replies.get(chain.read(2, 'nothing'))), null, 'an unknown key reads as absent');
});

test('the planted bug: a dirty node answers a strong read with its newest version', () => {
  const chain = new Chain([1, 2, 3], { plantedDirtyReadBug: true });
  chain.write(1, 'x', 'a');
  chain.deliver((to, message) => message.type === 'propagate' && to === 2);
  assert.equal(readValue(chain.replies.get(chain.read(2, 'x'))), 'a', 'uncommitted, yet answered as strong');
});

test('a chain of one node commits every write at once', () => {
  const chain = new Chain([1]);
  const request = chain.write(1, 'x', 'a');
  assert.deepEqual(chain.replies.get(request), { type: 'write', key: 'x', version: 1, seq: 1 });
  assert.equal(readValue(chain.replies.get(chain.read(1, 'x'))), 'a');
});

test('tail failure: the new tail commits what it holds and the head answers the client', () => {
  const chain = new Chain([1, 2, 3]);
  const request = chain.write(1, 'x', 'a');
  chain.deliver((to, message) => message.type === 'propagate' && to === 2);
  chain.drop(3);
  chain.nodes.delete(nodeId(3));
  chain.configure([1, 2]);
  chain.deliver();
  assert.deepEqual(chain.replies.get(request), { type: 'write', key: 'x', version: 1, seq: 1 });
  assert.deepEqual(chain.node(2).describeKey('x'), { newest: 1, clean: 1 });
});

test('middle failure: the predecessor re-sends to its new successor what it may have missed', () => {
  const chain = new Chain([1, 2, 3]);
  const first = chain.write(1, 'x', 'a');
  const second = chain.write(1, 'y', 'b');
  chain.deliver((to, message) => message.type === 'propagate' && to === 2); // both reach the middle, neither the tail
  chain.drop(3);
  chain.inFlight.length = 0;
  chain.nodes.delete(nodeId(2));
  chain.configure([1, 3]);
  chain.deliver();
  assert.equal(chain.replies.get(first)?.type, 'write');
  assert.equal(chain.replies.get(second)?.type, 'write');
  assert.deepEqual(chain.node(3).describeKey('y'), { newest: 1, clean: 1 });
});

test('head failure: its successor becomes the head and continues the stream of writes', () => {
  const chain = new Chain([1, 2, 3]);
  chain.write(1, 'x', 'a');
  chain.deliver();
  chain.nodes.delete(nodeId(1));
  chain.inFlight.length = 0;
  chain.configure([2, 3]);
  const request = chain.write(2, 'x', 'b');
  chain.deliver();
  assert.deepEqual(chain.replies.get(request), { type: 'write', key: 'x', version: 2, seq: 2 });
  assert.equal(chain.replies.get(chain.write(3, 'x', 'c'))?.type, 'error', 'the tail is not the head');
});

test('a node joining at the tail serves only after copying its predecessor state', () => {
  const chain = new Chain([1, 2]);
  for (let k = 0; k < craqLimits.catchUpWritesMax + 10; k++) chain.write(1, `k${k % 50}`, `v${k}`);
  chain.deliver();
  const joiner = chain.add(3);
  chain.configure([1, 2, 3]);
  const early = chain.read(3, 'k1');
  assert.equal(chain.replies.get(early)?.type, 'error', 'a joining tail refuses strong reads');
  assert.equal(joiner.serving(), false);
  chain.deliver((_to, message) => message.type === 'ack');
  assert.ok(
    chain.inFlight.some(({ to, message }) => to === 3 && message.type === 'snapshot'),
    'the predecessor no longer holds the first writes (catchUpWritesMax), so it sends a snapshot',
  );
  chain.deliver();
  assert.equal(joiner.serving(), true);
  const lastK1 = Math.floor((craqLimits.catchUpWritesMax + 9 - 1) / 50) * 50 + 1;
  assert.equal(readValue(chain.replies.get(chain.read(3, 'k1'))), `v${lastK1}`);
  const later = chain.write(1, 'k1', 'new');
  chain.deliver();
  assert.equal(chain.replies.get(later)?.type, 'write');
  assert.equal(readValue(chain.replies.get(chain.read(3, 'k1'))), 'new');
});

test('lost messages are re-sent on ticks', () => {
  const chain = new Chain([1, 2, 3]);
  const request = chain.write(1, 'x', 'a');
  chain.inFlight.length = 0; // the propagate is lost
  chain.tick(5);
  chain.deliver();
  assert.equal(chain.replies.get(request)?.type, 'write');
});

test('messages from another epoch are dropped (a removed node cannot act as a member)', () => {
  const chain = new Chain([1, 2, 3]);
  const stale: PeerMessage = { type: 'propagate', epoch: chain.epoch - 1, from: nodeId(1), writes: [{ seq: 1, key: 'x', version: 1, value: 'zombie' }], highestSeq: 1 };
  chain.node(2).step(stale);
  assert.deepEqual(chain.node(2).describeKey('x'), { newest: 0, clean: 0 });
  const fromStranger: PeerMessage = { ...stale, epoch: chain.epoch, from: nodeId(9) };
  chain.node(2).step(fromStranger);
  assert.deepEqual(chain.node(2).describeKey('x'), { newest: 0, clean: 0 }, 'only the predecessor may propagate');
  const backwards: PeerMessage = { ...stale, epoch: chain.epoch, writes: [{ seq: 1, key: 'x', version: 3, value: 'skip' }] };
  chain.node(2).step(backwards);
  assert.deepEqual(chain.node(2).describeKey('x'), { newest: 0, clean: 0 }, 'a version that does not follow is refused');
});

test('writes go to the head only; strong reads need the lease', () => {
  const chain = new Chain([1, 2]);
  const notHead = chain.replies.get(chain.write(2, 'x', 'a'));
  assert.equal(notHead?.type === 'error' && notHead.code, 'not-head');
  const node = new CraqNode(nodeId(7));
  node.setConfig({ epoch: 1, members: [nodeId(7)] });
  node.read(1, 'x', { kind: 'strong' });
  node.write(2, 'x', 'a');
  node.read(3, 'x', { kind: 'eventual' });
  const replies = node.ready().replies.map(({ reply }) => (reply.type === 'error' ? reply.code : reply.type));
  assert.deepEqual(replies, ['not-serving', 'not-serving', 'read'], 'without a lease only eventual reads are served');
});

test('the decoders refuse malformed messages and requests with a reason', () => {
  const bad: [unknown, RegExp][] = [
    [
      {
        type: 'propagate',
        epoch: 1,
        from: 1,
        highestSeq: 2,
        writes: [
          { seq: 1, key: 'x', version: 1, value: 'a' },
          { seq: 3, key: 'x', version: 2, value: 'b' },
        ],
      },
      /contiguous/,
    ],
    [{ type: 'propagate', epoch: 1, from: 1, highestSeq: 1, writes: [{ seq: 1, key: 'x', version: 0, value: 'a' }] }, />= 1/],
    [{ type: 'ack', epoch: 1, from: 1, receivedSeq: 1, committedSeq: 2 }, /cannot commit more/],
    [{ type: 'query', epoch: -1, from: 1, queryId: 1, key: 'x' }, /epoch/],
    [{ type: 'gossip', epoch: 1, from: 1 }, /unknown message type/],
    [{ type: 'query', epoch: 1, from: 1, queryId: 1, key: '' }, /empty/],
  ];
  for (const [value, reason] of bad)
    assert.throws(
      () => decodePeerMessage(value),
      (error: unknown) => error instanceof CraqDecodeError && reason.test(error.message),
    );
  assert.throws(() => decodeClientRequest({ type: 'write', key: 'x', value: 'v'.repeat(craqLimits.valueCharsMax + 1) }), /limit is/);
  assert.throws(() => decodeClientRequest({ type: 'read', key: 'x', mode: { kind: 'bounded' } }), /versionsMax/);
  assert.throws(() => decodeClientRequest({ type: 'read', key: 'x', mode: { kind: 'sometimes' } }), /strong, eventual or bounded/);
  assert.deepEqual(decodeClientRequest({ type: 'read', key: 'x' }), { type: 'read', key: 'x', mode: { kind: 'strong' } });
});

test('the throttle starts requests at its rate and refuses one that would wait too long', async () => {
  let nowMs = 0;
  const timers: { atMs: number; fn: () => void }[] = [];
  const clock = {
    nowMs: () => nowMs,
    setTimer: (delayMs: number, fn: () => void) => {
      timers.push({ atMs: nowMs + delayMs, fn });
      return { cancel: () => undefined };
    },
  };
  const throttle = new Throttle(clock, 1000);
  assert.equal(await throttle.admit(), true, 'the first starts at once');
  const waiting = [throttle.admit(), throttle.admit()];
  assert.deepEqual(
    timers.map((timer) => timer.atMs),
    [1, 2],
    'the next ones wait 1 ms apart',
  );
  for (let k = 0; k < throttleWaitMsMax - 3; k++) waiting.push(throttle.admit());
  const last = throttle.admit();
  assert.equal(timers.at(-1)?.atMs, throttleWaitMsMax, 'the last one admitted waits exactly the bound');
  assert.equal(await throttle.admit(), false, 'one more would wait longer than throttleWaitMsMax');
  nowMs = throttleWaitMsMax;
  for (const timer of timers.splice(0)) timer.fn();
  assert.ok((await Promise.all([...waiting, last])).every((admitted) => admitted));
});
