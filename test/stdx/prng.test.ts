import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/stdx/prng.js';

test('the same seed gives the same stream', () => {
  const a = new Prng(42);
  const b = new Prng(42);
  for (let i = 0; i < 1000; i++) assert.equal(a.nextUint32(), b.nextUint32());
});

test('different seeds and forks give different streams', () => {
  const a = new Prng(1);
  const b = new Prng(2);
  const fork = new Prng(1).fork();
  const draws = (p: Prng) => Array.from({ length: 8 }, () => p.nextUint32()).join(',');
  assert.notEqual(draws(a), draws(b));
  assert.notEqual(draws(new Prng(1)), draws(fork));
});

test('int(bound) stays in range and covers it', () => {
  const prng = new Prng(7);
  const seen = new Set<number>();
  for (let i = 0; i < 10000; i++) {
    const value = prng.int(10);
    assert.ok(value >= 0 && value < 10);
    seen.add(value);
  }
  assert.equal(seen.size, 10);
  for (let i = 0; i < 1000; i++) {
    const value = prng.range(-3, 3);
    assert.ok(value >= -3 && value <= 3);
  }
});

test('nextFloat is roughly uniform', () => {
  const prng = new Prng(99);
  let sum = 0;
  const n = 100000;
  for (let i = 0; i < n; i++) sum += prng.nextFloat();
  assert.ok(Math.abs(sum / n - 0.5) < 0.01);
});
