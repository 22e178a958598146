import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler } from '../../src/sim/scheduler.js';
import { yieldToHost } from '../../src/platform/host.js';

test('events run in time order, ties in insertion order', async () => {
  const scheduler = new Scheduler(yieldToHost);
  const order: string[] = [];
  scheduler.after(20, () => order.push('b@20'));
  scheduler.after(10, () => order.push('a@10'));
  scheduler.after(20, () => order.push('c@20'));
  const cancelled = scheduler.after(15, () => order.push('cancelled'));
  cancelled.cancel();
  await scheduler.sleep(25);
  assert.deepEqual(order, ['a@10', 'b@20', 'c@20']);
  assert.equal(scheduler.nowMs, 25);
});

test('concurrent sleepers each wake at their own virtual time', async () => {
  const scheduler = new Scheduler(yieldToHost);
  const woke: [string, number][] = [];
  const sleeper = async (name: string, ms: number, times: number) => {
    for (let i = 0; i < times; i++) {
      await scheduler.sleep(ms);
      woke.push([name, scheduler.nowMs]);
    }
  };
  await Promise.all([sleeper('a', 30, 3), sleeper('b', 45, 2)]);
  assert.deepEqual(woke, [
    ['a', 30],
    ['b', 45],
    ['a', 60],
    ['b', 90], // scheduled at 45, before a's at 60: ties run in insertion order
    ['a', 90],
  ]);
});

test('microtasks queued by an event run before the next event', async () => {
  const scheduler = new Scheduler(yieldToHost);
  const order: string[] = [];
  scheduler.after(1, () => {
    void (async () => {
      await null;
      await null;
      order.push('continuation');
    })();
  });
  scheduler.after(1, () => order.push('next event'));
  await scheduler.sleep(5);
  assert.deepEqual(order, ['continuation', 'next event']);
});

test('an event that throws rejects the sleepers', async () => {
  const scheduler = new Scheduler(yieldToHost);
  scheduler.after(5, () => {
    throw new Error('boom');
  });
  await assert.rejects(scheduler.sleep(10), /boom/);
});
