import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler } from '../../src/sim/scheduler.js';
import { SimNetwork, reliableDelayMs, reliableDelayMsMax } from '../../src/sim/network.js';
import { Prng } from '../../src/stdx/prng.js';
import { nodeId } from '../../src/stdx/types.js';
import { yieldToHost } from '../../src/platform/host.js';

const codec = {
  encode: (n: number) => Uint8Array.of(n & 0xff, n >> 8),
  decode: (bytes: Uint8Array) => bytes[0]! | (bytes[1]! << 8),
  isRequest: () => true,
};

function twoNodes(seed: number) {
  const scheduler = new Scheduler(yieldToHost);
  const network = new SimNetwork<number>(scheduler, new Prng(seed), codec);
  const received: { n: number; atMs: number }[] = [];
  network.attach(nodeId(1), () => {});
  network.attach(nodeId(2), (n) => received.push({ n, atMs: scheduler.nowMs }));
  network.connect(nodeId(1));
  network.connect(nodeId(2));
  return { scheduler, network, received };
}

// labrpc's reliable network loses nothing but runs each call on its own goroutine, so
// concurrent calls on one link overtake each other; the simulator's must too.
test('a reliable link delivers every message within its delay bounds, not always in order', async () => {
  const { scheduler, network, received } = twoNodes(1);
  for (let n = 0; n < 200; n++) network.send(nodeId(1), nodeId(2), n);
  await scheduler.sleep(reliableDelayMsMax + 1);
  assert.deepEqual(
    received.map((r) => r.n).sort((a, b) => a - b),
    Array.from({ length: 200 }, (_, n) => n),
  );
  for (const r of received) assert.ok(r.atMs >= reliableDelayMs && r.atMs <= reliableDelayMsMax, `delivered at ${r.atMs} ms`);
  const overtaken = received.filter((r, k) => k > 0 && r.n < received[k - 1]!.n).length;
  assert.ok(overtaken > 0, 'no message overtook another on the reliable link');
});

test('nothing crosses a link that is down; a reconnected node gets only what is sent after', async () => {
  const { scheduler, network, received } = twoNodes(2);
  network.disconnect(nodeId(2));
  network.send(nodeId(1), nodeId(2), 1);
  await scheduler.sleep(10);
  network.connect(nodeId(2));
  network.send(nodeId(1), nodeId(2), 2);
  await scheduler.sleep(10);
  assert.deepEqual(
    received.map((r) => r.n),
    [2],
  );
});
