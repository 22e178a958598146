import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler } from '../../src/sim/scheduler.js';
import { ClerkNetwork, disabledFailureDelayMsMax, longFailureDelayMsMax } from '../../src/testbed/kv-rpc.js';
import { Prng } from '../../src/stdx/prng.js';
import { yieldToHost } from '../../src/platform/host.js';

/** How long each of `calls` concurrent calls to a disabled endpoint takes to fail. */
async function failureDelays(longDelays: boolean, calls: number): Promise<number[]> {
  const scheduler = new Scheduler(yieldToHost);
  const network = new ClerkNetwork<number, number>(scheduler, new Prng(9), 1);
  network.longDelays = longDelays;
  network.addServer(0, async (n) => n);
  const delays: number[] = [];
  const made = Array.from({ length: calls }, async () => {
    const start = scheduler.nowMs;
    const reply = await network.call(0, 0, 1);
    assert.equal(reply, undefined, 'a call to a disabled endpoint fails');
    delays.push(scheduler.nowMs - start);
  });
  await scheduler.waitOn(Promise.all(made));
  return delays;
}

test("a call to a disabled endpoint fails after 0-99 ms, or up to 7 s with labrpc's long delays", async () => {
  const short = await failureDelays(false, 100);
  assert.ok(Math.max(...short) <= disabledFailureDelayMsMax, `short delays: ${Math.max(...short)} ms`);
  const long = await failureDelays(true, 100);
  assert.ok(Math.max(...long) <= longFailureDelayMsMax, `long delays: ${Math.max(...long)} ms`);
  assert.ok(Math.max(...long) > 1000, `long delays never took long: at most ${Math.max(...long)} ms`);
});

test('concurrent calls on a reliable network all succeed, and their replies overtake each other', async () => {
  const scheduler = new Scheduler(yieldToHost);
  const network = new ClerkNetwork<number, number>(scheduler, new Prng(4), 1);
  network.addServer(0, async (n) => n);
  network.enable(0, 0, true);
  const order: number[] = [];
  await scheduler.waitOn(Promise.all(Array.from({ length: 50 }, async (_, n) => order.push((await network.call(0, 0, n))!))));
  assert.deepEqual(
    [...order].sort((a, b) => a - b),
    Array.from({ length: 50 }, (_, n) => n),
  );
  assert.notDeepEqual(
    order,
    Array.from({ length: 50 }, (_, n) => n),
    'replies came back in call order every time',
  );
});
