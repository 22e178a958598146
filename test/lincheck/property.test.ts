// Property tests (fast-check): histories produced by a sequential execution are always
// linearizable, and changing one returned value to an impossible one always makes them not.
// Then "test the tests" (STYLE.md 18): a store with a planted bug (reads served by a lagging
// replica) must be caught, and the same store without the bug must pass.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type KvInput, type KvOutput, type Operation, type RegisterInput, type RegisterOutput, check, kvModel, kvModelWhole, registerModel } from '../../src/lincheck/index.js';
import { Prng } from '../../src/stdx/prng.js';

const runs = 200;

/** One call: its place in the sequential order is its index; it may start before and end after. */
const plannedCall = fc.record({
  kind: fc.constantFrom('get', 'put', 'append'),
  key: fc.constantFrom('a', 'b', 'c'),
  client: fc.nat(5),
  /** How far the call starts before, and returns after, its linearization point. */
  before: fc.nat(350),
  after: fc.nat(350),
  pending: fc.nat(3).map((n) => n === 0),
});
type PlannedCall = typeof plannedCall extends fc.Arbitrary<infer T> ? T : never;

/** Executes the calls sequentially (point i at time 100 * (i + 1)) and records each result. */
function kvHistory(plan: readonly PlannedCall[]): Operation<KvInput, KvOutput>[] {
  const store = new Map<string, string>();
  return plan.map((call, index) => {
    const point = 100 * (index + 1);
    const value = `v${index};`;
    const before = store.get(call.key) ?? '';
    let input: KvInput;
    let output = '';
    if (call.kind === 'get') {
      input = { kind: 'get', key: call.key };
      output = before;
    } else {
      input = call.kind === 'put' ? { kind: 'put', key: call.key, value } : { kind: 'append', key: call.key, value };
      store.set(call.key, call.kind === 'put' ? value : before + value);
    }
    const pending = call.pending && call.kind !== 'get';
    return {
      clientId: call.client,
      input,
      output: pending ? undefined : output,
      callTime: point - call.before,
      returnTime: pending ? undefined : point + call.after,
    };
  });
}

test('property: kv histories from a sequential execution are linearizable', () => {
  fc.assert(
    fc.property(fc.array(plannedCall, { minLength: 0, maxLength: 40 }), (plan) => {
      const history = kvHistory(plan);
      assert.equal(check(kvModel(), history).verdict, 'ok');
      assert.equal(check(kvModelWhole(), history).verdict, 'ok');
    }),
    { numRuns: runs },
  );
});

test('property: one impossible get result makes the kv history not linearizable', () => {
  fc.assert(
    fc.property(fc.array(plannedCall, { minLength: 1, maxLength: 40 }), fc.nat(), (plan, pick) => {
      const history = kvHistory(plan);
      const gets = history.flatMap((op, index) => (op.input.kind === 'get' ? [index] : []));
      fc.pre(gets.length > 0);
      const victim = gets[pick % gets.length]!;
      // No written value contains '!', so no state can ever equal this.
      history[victim] = { ...history[victim]!, output: 'impossible!' };
      const result = check(kvModel(), history);
      assert.equal(result.verdict, 'illegal');
      assert.equal(check(kvModelWhole(), history).verdict, 'illegal');
      const failing = result.partitions[result.failingPartition!]!;
      assert.equal(failing.key, (history[victim]!.input as { key: string }).key);
      assert.ok(failing.unplaceable.includes(failing.operations.indexOf(history[victim]!)));
    }),
    { numRuns: runs },
  );
});

const plannedRegisterCall = fc.record({
  write: fc.boolean(),
  // Few distinct values, so that identical writes (twins) are common.
  value: fc.nat(3),
  pending: fc.nat(3).map((n) => n === 0),
  client: fc.nat(5),
  before: fc.nat(350),
  after: fc.nat(350),
});

test('property: register histories from a sequential execution are linearizable, and a wrong read is caught', () => {
  fc.assert(
    fc.property(fc.array(plannedRegisterCall, { minLength: 1, maxLength: 40 }), fc.nat(), (plan, pick) => {
      let value = 0;
      const history: Operation<RegisterInput, RegisterOutput>[] = plan.map((call, index) => {
        const point = 100 * (index + 1);
        if (!call.write) return { clientId: call.client, input: { kind: 'read' }, output: value, callTime: point - call.before, returnTime: point + call.after };
        value = call.value;
        const returnTime = call.pending ? undefined : point + call.after;
        return { clientId: call.client, input: { kind: 'write', value: call.value }, output: call.pending ? undefined : 0, callTime: point - call.before, returnTime };
      });
      assert.equal(check(registerModel(), history).verdict, 'ok');
      const reads = history.flatMap((op, index) => (op.input.kind === 'read' ? [index] : []));
      fc.pre(reads.length > 0);
      const victim = reads[pick % reads.length]!;
      history[victim] = { ...history[victim]!, output: -1 };
      assert.equal(check(registerModel(), history).verdict, 'illegal');
    }),
    { numRuns: runs },
  );
});

/** Arbitrary concurrent register histories, mostly not linearizable: random reads, many pending twins. */
const randomRegisterCall = fc.record({
  write: fc.boolean(),
  value: fc.nat(2),
  pending: fc.nat(2).map((n) => n === 0),
  client: fc.nat(4),
  call: fc.nat(20),
  length: fc.nat(8),
});

test('property: the symmetry reduction for identical pending calls never changes a verdict', () => {
  const plain = registerModel();
  const { inputKey: _dropped, ...withoutTwins } = plain;
  fc.assert(
    fc.property(fc.array(randomRegisterCall, { minLength: 1, maxLength: 24 }), (calls) => {
      const history: Operation<RegisterInput, RegisterOutput>[] = calls.map((call) => {
        const returnTime = call.pending && call.write ? undefined : call.call + call.length;
        const input: RegisterInput = call.write ? { kind: 'write', value: call.value } : { kind: 'read' };
        const output = call.write ? (returnTime === undefined ? undefined : 0) : call.value;
        return { clientId: call.client, input, output, callTime: call.call, returnTime };
      });
      assert.equal(check(plain, history).verdict, check(withoutTwins, history).verdict);
    }),
    { numRuns: runs * 2 },
  );
});

/**
 * A register replicated to a follower that applies writes `lagTicks` late. Clients call at
 * random ticks; each call takes effect at a random tick inside its interval. With
 * `staleReads`, reads are answered from the follower: the planted bug (etcd's quorum=false).
 */
function simulateRegister(seed: number, staleReads: boolean): Operation<RegisterInput, RegisterOutput>[] {
  const prng = new Prng(seed);
  const clients = 4;
  const ticks = 300;
  const lagTicks = 6;
  const applied: { tick: number; value: number }[] = [{ tick: Number.NEGATIVE_INFINITY, value: 0 }];
  const valueAt = (tick: number): number => applied.filter((entry) => entry.tick <= tick).at(-1)!.value;
  const history: Operation<RegisterInput, RegisterOutput>[] = [];
  const busyUntil = new Array<number>(clients).fill(-1);
  for (let tick = 0; tick < ticks; tick++) {
    for (let client = 0; client < clients; client++) {
      if (busyUntil[client]! >= tick || prng.int(3) !== 0) continue;
      const duration = 1 + prng.int(6);
      const point = tick + prng.int(duration + 1);
      busyUntil[client] = tick + duration;
      if (prng.int(2) === 0) {
        const value = history.length + 1;
        applied.push({ tick: point, value });
        applied.sort((a, b) => a.tick - b.tick);
        history.push({ clientId: client, input: { kind: 'write', value }, output: 0, callTime: tick, returnTime: tick + duration });
      } else {
        history.push({ clientId: client, input: { kind: 'read' }, output: -1, callTime: tick, returnTime: tick + duration });
        (history.at(-1) as { point?: number }).point = point;
      }
    }
  }
  // Reads are answered once every write is placed, from the leader or the lagging follower.
  return history.map((op) => {
    const point = (op as { point?: number }).point;
    if (point === undefined) return op;
    return { ...op, output: valueAt(staleReads ? point - lagTicks : point) };
  });
}

test('a planted bug (stale reads from a lagging replica) is caught; the correct store passes', () => {
  let caught = 0;
  const seeds = 10;
  for (let seed = 1; seed <= seeds; seed++) {
    assert.equal(check(registerModel(), simulateRegister(seed, false)).verdict, 'ok', `seed ${seed}, correct store`);
    if (check(registerModel(), simulateRegister(seed, true)).verdict === 'illegal') caught++;
  }
  assert.equal(caught, seeds, `the stale-read bug was caught in ${caught} of ${seeds} runs`);
});
