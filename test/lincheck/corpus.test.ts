// Porcupine's test corpus (test/fixtures/porcupine-data): every file must get the
// verdict that Porcupine's own tests assert, within a 10 s budget per file (an 'unknown'
// verdict fails the test). The etcd_095 log is empty and has no expected verdict.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { check, etcdModel, kvModel, kvModelWhole, parseJepsenEtcd, parseJepsenKv } from '../../src/lincheck/index.js';
import { realClock } from '../../src/platform/clock.js';
import { etcdLinearizable, etcdName, etcdNumbers, findCorpusDir, kvFiles, kvWholeFiles } from './corpus.js';

const corpusDir = findCorpusDir();
const fileBudgetMs = 10_000;
const nowMs = (): number => realClock.nowMs();

test("the 102 Jepsen etcd logs get Porcupine's verdicts", () => {
  let linearizable = 0;
  for (const number of etcdNumbers) {
    const parsed = parseJepsenEtcd(readFileSync(join(corpusDir, 'jepsen', etcdName(number)), 'utf8'));
    assert.ok(parsed.ok, `${etcdName(number)} parses`);
    const result = check(etcdModel(), parsed.value, { timeBudgetMs: fileBudgetMs, nowMs });
    const expected = etcdLinearizable.has(number) ? 'ok' : 'illegal';
    assert.equal(result.verdict, expected, etcdName(number));
    if (expected === 'ok') linearizable++;
  }
  assert.equal(linearizable, 23);
});

test('the empty etcd_095 log parses to an empty, linearizable history', () => {
  const parsed = parseJepsenEtcd(readFileSync(join(corpusDir, 'jepsen', etcdName(95)), 'utf8'));
  assert.ok(parsed.ok);
  assert.equal(parsed.value.length, 0);
  assert.equal(check(etcdModel(), parsed.value).verdict, 'ok');
});

for (const name of kvFiles) {
  test(`kv/${name}: partitioned by key`, () => {
    const parsed = parseJepsenKv(readFileSync(join(corpusDir, 'kv', `${name}.txt`), 'utf8'));
    assert.ok(parsed.ok);
    const result = check(kvModel(), parsed.value, { timeBudgetMs: fileBudgetMs, nowMs });
    assert.equal(result.verdict, name.endsWith('-ok') ? 'ok' : 'illegal');
  });
}

// Porcupine runs its unpartitioned model on c01 and c10 only (c50 would take far too long).
for (const name of kvWholeFiles) {
  test(`kv/${name}: the whole store as one object`, () => {
    const parsed = parseJepsenKv(readFileSync(join(corpusDir, 'kv', `${name}.txt`), 'utf8'));
    assert.ok(parsed.ok);
    const result = check(kvModelWhole(), parsed.value, { timeBudgetMs: fileBudgetMs, nowMs });
    assert.equal(result.partitions.length, 1);
    assert.equal(result.verdict, name.endsWith('-ok') ? 'ok' : 'illegal');
  });
}

test('c50-bad: memory stays within the budget even when every partition is searched', () => {
  const parsed = parseJepsenKv(readFileSync(join(corpusDir, 'kv', 'c50-bad.txt'), 'utf8'));
  assert.ok(parsed.ok);
  // Partitions "0", "5", "7" and "9" are hopeless searches; without a budget they grow
  // until the process dies. With one, they end as 'memory' and the verdict still stands.
  const cacheBytesMax = 64 * 1024 * 1024;
  const rssBefore = process.memoryUsage().rss;
  const result = check(kvModel(), parsed.value, { stopAtFirstIllegal: false, cacheBytesMax, timeBudgetMs: fileBudgetMs, nowMs });
  const rssGrowth = process.memoryUsage().rss - rssBefore;
  assert.equal(result.verdict, 'illegal');
  for (const partition of result.partitions) assert.ok(partition.stats.cacheBytes <= cacheBytesMax, partition.key);
  assert.ok(result.partitions.some((partition) => partition.outcome === 'memory' || partition.outcome === 'time'));
  assert.ok(result.partitions.filter((partition) => partition.outcome === 'illegal').length >= 5);
  assert.ok(rssGrowth < 1024 * 1024 * 1024, `rss grew by ${rssGrowth} bytes`);
});

test('c50-bad with the defaults stops at the first illegal partition', () => {
  const parsed = parseJepsenKv(readFileSync(join(corpusDir, 'kv', 'c50-bad.txt'), 'utf8'));
  assert.ok(parsed.ok);
  const result = check(kvModel(), parsed.value, { timeBudgetMs: fileBudgetMs, nowMs });
  assert.equal(result.verdict, 'illegal');
  const failing = result.partitions[result.failingPartition!]!;
  assert.equal(failing.outcome, 'illegal');
  assert.ok(failing.unplaceable.length > 0);
  assert.ok(failing.blocking !== undefined);
  assert.ok(result.partitions.some((partition) => partition.outcome === 'cancelled'));
});
