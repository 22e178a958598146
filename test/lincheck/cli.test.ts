import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type LincheckIo, type LincheckOptions, exitBadInput, exitLinearizable, exitNotLinearizable, runLincheck } from '../../src/cli/lincheck.js';

function fakeIo(files: Record<string, string>): LincheckIo & { out: string; err: string; written: Record<string, string> } {
  const io = {
    out: '',
    err: '',
    written: {} as Record<string, string>,
    readTextFile(path: string): string {
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: ${path}`);
      return text;
    },
    writeTextFile(path: string, text: string): void {
      io.written[path] = text;
    },
    nowMs: () => 0,
    writeOut(text: string): void {
      io.out += text;
    },
    writeErr(text: string): void {
      io.err += text;
    },
  };
  return io;
}

const options: LincheckOptions = { model: 'kv', format: 'jsonl', html: undefined, timeoutMs: 10_000, noPartition: false, all: false };
const good = '{"client": 0, "call": 0, "return": 1, "op": "put", "key": "a", "value": "x"}\n{"client": 1, "call": 2, "return": 3, "op": "get", "key": "a", "output": "x"}\n';
const bad = good.replace('"output": "x"', '"output": ""');

test('lincheck: exit status follows the verdict, and --html writes the page', () => {
  const io = fakeIo({ 'good.jsonl': good, 'bad.jsonl': bad });
  assert.equal(runLincheck('good.jsonl', options, io), exitLinearizable);
  assert.match(io.out, /^linearizable/);
  assert.equal(runLincheck('bad.jsonl', { ...options, html: 'out.html' }, io), exitNotLinearizable);
  assert.match(io.out, /NOT linearizable/);
  assert.match(io.written['out.html']!, /<!DOCTYPE html>/);
  assert.equal(runLincheck('bad.jsonl', { ...options, noPartition: true }, io), exitNotLinearizable);
});

test('lincheck: bad input is reported with its line, and exits 3', () => {
  const io = fakeIo({ 'broken.jsonl': `${good}{"client": 0}\n` });
  assert.equal(runLincheck('broken.jsonl', options, io), exitBadInput);
  assert.match(io.err, /broken\.jsonl:3:/);
  assert.equal(runLincheck('missing.jsonl', options, io), exitBadInput);
  assert.equal(runLincheck('broken.jsonl', { ...options, model: undefined }, io), exitBadInput);
  assert.equal(runLincheck('broken.jsonl', { ...options, format: 'jepsen-etcd' }, io), exitBadInput);
});
