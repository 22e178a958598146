import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler } from '../../src/sim/scheduler.js';
import { yieldToHost } from '../../src/platform/host.js';
import { check, registerModel, type Operation, type RegisterInput, type RegisterOutput } from '../../src/lincheck/index.js';

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

test('history stamps strictly increase inside one virtual millisecond and keep the ms', async () => {
  const scheduler = new Scheduler(yieldToHost);
  const stamps: number[] = [scheduler.stampMs(), scheduler.stampMs()];
  await scheduler.sleep(3);
  stamps.push(scheduler.stampMs(), scheduler.stampMs());
  for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i]! > stamps[i - 1]!, `stamp ${i} does not follow stamp ${i - 1}: ${stamps.join(', ')}`);
  assert.deepEqual(stamps.map(Math.floor), [0, 0, 3, 3]);
});

// Why the stamps: a write that returns, then a read that starts in the same millisecond and
// sees the old value. In whole milliseconds the two look concurrent and the checker accepts
// the read as ordered first; with stamps it must (and does) reject it.
test('whole-millisecond times hide a stale read that stamps expose', async () => {
  const history = (times: number[]): Operation<RegisterInput, RegisterOutput>[] => [
    { clientId: 0, input: { kind: 'write', value: 1 }, output: 0, callTime: times[0]!, returnTime: times[1]! },
    { clientId: 1, input: { kind: 'read' }, output: 0, callTime: times[2]!, returnTime: times[3]! },
  ];
  const scheduler = new Scheduler(yieldToHost);
  await scheduler.sleep(5);
  const ms = [scheduler.nowMs, scheduler.nowMs, scheduler.nowMs, scheduler.nowMs];
  const stamped = [scheduler.stampMs(), scheduler.stampMs(), scheduler.stampMs(), scheduler.stampMs()];
  assert.equal(check(registerModel(0), history(ms)).verdict, 'ok', 'whole milliseconds: the read counts as concurrent');
  assert.equal(check(registerModel(0), history(stamped)).verdict, 'illegal', 'stamps: the read began after the write returned');
});

test('failAt ends a run stuck in virtual time with the given error', async () => {
  const scheduler = new Scheduler(yieldToHost);
  scheduler.failAt(120_000, () => new Error('took longer than 120 seconds'));
  const neverDone = async () => {
    for (;;) await scheduler.sleep(1000);
  };
  await assert.rejects(neverDone(), /took longer than 120 seconds/);
  assert.equal(scheduler.nowMs, 120_000);
});
