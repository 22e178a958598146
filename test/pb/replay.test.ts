// The backup's and the codec's refusals of bad log input, each with a message that says
// what was wrong: duplicated, reordered and gapped entries; entries and acks of older
// epochs; entries before any snapshot; truncated and garbled frames; a log that does not
// match the machine (divergence); a restarted backup with partial state (it must take a
// fresh snapshot). Also: the backup never executes an event before all its entries arrived,
// a slow backup throttles the primary, and a repeated request has no second effect.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, encodeFrame } from '../../src/platform/framing.js';
import { PbBackup, PbPrimary, PrimaryOverloaded, emptyStart } from '../../src/pb/replay.js';
import { pbLimits } from '../../src/pb/limits.js';
import { decodeAck, decodeToBackup, encodeMessage, parseMessage } from '../../src/pb/codec.js';
import { decodeKvInput, kvFactory, type KvInput, type KvOutput } from '../../src/pb/kv.js';
import { LogRefusal, type LogEntry } from '../../src/pb/types.js';
import { Prng } from '../../src/stdx/prng.js';

/** A clock that advances 1 ms per read, so every logged reading differs. */
function fakeClock(): { nowMs: () => number; setTimer: () => { cancel(): void } } {
  let now = 1_000;
  return {
    nowMs: () => {
      now += 1;
      return now;
    },
    setTimer: () => ({ cancel() {} }),
  };
}

/** A primary with a backup attached, and the snapshot and entries of five puts. */
function logOfFivePuts(epoch = 1): { primary: PbPrimary<KvInput, KvOutput>; snapshot: ReturnType<PbPrimary<KvInput, KvOutput>['attachBackup']>; entries: LogEntry<KvInput>[] } {
  const start = emptyStart<KvInput, KvOutput>(kvFactory);
  const primary = new PbPrimary<KvInput, KvOutput>(start.machine, start, { epoch, clock: fakeClock(), prng: new Prng(7) });
  const snapshot = primary.attachBackup();
  for (let k = 1; k <= 5; k++) primary.submit(k, { clientId: 1, requestSeq: k, op: k % 2 === 0 ? { type: 'token', key: `t${k}` } : { type: 'put', key: `k${k}`, value: `v${k}` } });
  return { primary, snapshot, entries: primary.takeEntries() };
}

function refusal(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof LogRefusal, `a LogRefusal, not ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, message);
    return true;
  });
}

test('a whole log replays to the same state; outputs wait for the ack of their last entry', () => {
  const { primary, snapshot, entries } = logOfFivePuts();
  assert.equal(primary.takeOutputs().length, 0, 'nothing leaves before the ack');
  const backup = new PbBackup<KvInput, KvOutput>(kvFactory, 1);
  backup.stepSnapshot(1, snapshot);
  backup.stepEntries(1, entries);
  backup.replay();
  assert.equal(backup.hash(), primary.hash());
  // The first put's entries are input + clock read (+ the sweep timer's clock read); ack just short of them.
  const firstEventEnd = 1 + (entries[0]!.event as { reads: number }).reads;
  primary.stepAck(1, firstEventEnd - 1);
  assert.equal(primary.takeOutputs().length, 0, 'an ack short of the last entry releases nothing');
  primary.stepAck(1, firstEventEnd);
  assert.deepEqual(
    primary.takeOutputs().map((item) => item.requestId),
    [1],
  );
  primary.stepAck(1, primary.seq());
  assert.equal(primary.takeOutputs().length, 4);
});

test('duplicated, reordered and gapped entries are refused, naming the seqs', () => {
  const { snapshot, entries } = logOfFivePuts();
  const fresh = (): PbBackup<KvInput, KvOutput> => {
    const backup = new PbBackup<KvInput, KvOutput>(kvFactory, 1);
    backup.stepSnapshot(1, snapshot);
    return backup;
  };
  const duplicated = fresh();
  duplicated.stepEntries(1, entries.slice(0, 3));
  refusal(() => duplicated.stepEntries(1, entries.slice(2, 4)), 'duplicate', /entry 3 was already received \(the log is at 3\)/);
  const reordered = fresh();
  refusal(() => reordered.stepEntries(1, [entries[1]!, entries[0]!]), 'gap', /entry 2 arrived, but the next is 1/);
  const gapped = fresh();
  gapped.stepEntries(1, entries.slice(0, 2));
  refusal(() => gapped.stepEntries(1, entries.slice(3)), 'gap', /entries 3\.\.3 are missing/);
  assert.equal(gapped.received(), 2, 'the entries before the bad one are kept');
});

test('the backup never runs ahead of the log: an event executes only once all its entries are in', () => {
  const { primary, snapshot, entries } = logOfFivePuts();
  const backup = new PbBackup<KvInput, KvOutput>(kvFactory, 1);
  backup.stepSnapshot(1, snapshot);
  const reads = (entries[0]!.event as { reads: number }).reads;
  assert.ok(reads >= 1);
  backup.stepEntries(1, entries.slice(0, reads)); // The input and all but its last read.
  assert.equal(backup.replay(), 0);
  assert.equal(backup.applied(), 0);
  backup.stepEntries(1, entries.slice(reads));
  assert.equal(backup.replay(), 5);
  assert.equal(backup.applied(), primary.seq());
});

test('older epochs are fenced: entries, snapshots and acks of a deposed primary are refused', () => {
  const { snapshot, entries, primary } = logOfFivePuts(3);
  const backup = new PbBackup<KvInput, KvOutput>(kvFactory, 3);
  backup.stepSnapshot(3, snapshot);
  const stale = entries.map((entry) => ({ ...entry, epoch: 2 }));
  refusal(() => backup.stepEntries(2, stale), 'stale-epoch', /epoch 2 reached a backup of epoch 3: its sender was deposed/);
  refusal(() => backup.stepSnapshot(2, snapshot), 'stale-epoch', /epoch 2/);
  refusal(() => backup.stepEntries(4, entries), 'newer-epoch', /without a snapshot of that epoch/);
  refusal(() => backup.stepEntries(3, [{ ...entries[0]!, epoch: 2 }]), 'malformed', /entry 1 is of epoch 2 inside a message of epoch 3/);
  refusal(() => primary.stepAck(2, 1), 'stale-epoch', /an ack of epoch 2 reached the primary of epoch 3/);
  refusal(() => primary.stepAck(3, 999), 'malformed', /acked seq 999, but the log ends at/);
});

test('truncated and garbled frames are refused with the reason', () => {
  const { snapshot, entries } = logOfFivePuts();
  const frame = encodeFrame(encodeMessage({ type: 'entries', epoch: 1, entries }));
  // A body cut short (as if the length were wrong): not a whole message.
  const body = frame.subarray(4, 4 + 40);
  refusal(() => parseMessage(body), 'malformed', /frame of 40 bytes is not a whole message \(truncated or garbled\)/);
  // A stream cut mid-frame: the decoder holds the partial frame and yields nothing.
  const decoder = new FrameDecoder(1 << 20);
  assert.deepEqual(decoder.push(frame.subarray(0, frame.length - 3)), []);
  assert.equal(decoder.bufferedBytes(), frame.length - 3, 'the partial frame is not delivered');
  // Well-formed JSON with bad fields.
  refusal(() => decodeToBackup({ type: 'entries', entries: [] }, decodeKvInput), 'malformed', /epoch is not a non-negative integer/);
  refusal(() => decodeToBackup({ type: 'entries', epoch: 1, entries: [{ seq: 1, epoch: 1, event: { kind: 'random', value: 2 ** 33 } }] }, decodeKvInput), 'malformed', /not a 32-bit integer/);
  refusal(() => decodeToBackup({ type: 'entries', epoch: 1, entries: [{ seq: -1, epoch: 1, event: { kind: 'clock', ms: 1 } }] }, decodeKvInput), 'malformed', /seq is not a non-negative integer/);
  refusal(
    () =>
      decodeToBackup(
        { type: 'entries', epoch: 1, entries: [{ seq: 1, epoch: 1, event: { kind: 'input', input: { clientId: 1, requestSeq: 1, op: { type: 'put', key: '' } }, reads: 1 } }] },
        decodeKvInput,
      ),
    'malformed',
    /the key must not be empty/,
  );
  refusal(() => decodeToBackup({ type: 'hello', epoch: 1 }, decodeKvInput), 'malformed', /unknown type "hello"/);
  refusal(() => decodeAck({ type: 'ack', epoch: 0, seq: 1 }), 'malformed', /epoch must be at least 1/);
  // The whole frame decodes.
  const whole = new FrameDecoder(1 << 20).push(frame);
  const message = decodeToBackup(parseMessage(whole[0]!), decodeKvInput);
  assert.equal(message.type === 'entries' && message.entries.length, entries.length);
  assert.ok(snapshot.hash.length > 0);
});

test('a log that does not match the machine is refused as divergence; a restarted backup needs a fresh snapshot', () => {
  const { snapshot, entries } = logOfFivePuts();
  const backup = new PbBackup<KvInput, KvOutput>(kvFactory, 1);
  refusal(() => backup.stepEntries(1, entries), 'no-snapshot', /before the snapshot they follow/);
  backup.stepSnapshot(1, snapshot);
  // Swap a clock read for a random draw: the machine asks for the clock and finds a random value.
  const clockAt = entries.findIndex((entry) => entry.event.kind === 'clock');
  const forged = entries.map((entry, k) => (k === clockAt ? { ...entry, event: { kind: 'random' as const, value: 5 } } : entry));
  backup.stepEntries(1, forged);
  refusal(() => backup.replay(), 'divergence', /the machine read clock where the primary logged random/);
  // A snapshot whose state does not hash to what the primary said.
  const restarted = new PbBackup<KvInput, KvOutput>(kvFactory, 1);
  refusal(() => restarted.stepSnapshot(1, { ...snapshot, hash: '0000' }), 'divergence', /restores to hash/);
  // A restarted backup has nothing (its state was in memory): entries alone are refused until a snapshot comes.
  refusal(() => restarted.stepEntries(1, entries.slice(2)), 'no-snapshot', /before the snapshot/);
});

test('a slow backup throttles the primary: past unackedEntriesMax unacknowledged entries, new requests are refused', () => {
  const { primary } = logOfFivePuts();
  let refused: unknown;
  let accepted = 5;
  for (let k = 6; k < pbLimits.unackedEntriesMax + 10 && refused === undefined; k++) {
    try {
      primary.submit(k, { clientId: 1, requestSeq: k, op: { type: 'incr', key: 'n', by: 1 } });
      accepted++;
    } catch (error) {
      refused = error;
    }
  }
  assert.ok(refused instanceof PrimaryOverloaded, `refused with PrimaryOverloaded, not ${String(refused)}`);
  assert.match(refused.message, /log entries wait for the backup's ack/);
  assert.ok(primary.unackedCount() >= pbLimits.unackedEntriesMax && primary.unackedCount() < pbLimits.unackedEntriesMax + 8);
  primary.stepAck(1, primary.seq());
  assert.equal(primary.takeOutputs().length, accepted, 'the ack releases every held output');
  primary.submit(1_000_000, { clientId: 1, requestSeq: 1_000_000, op: { type: 'get', key: 'n' } });
});

test('the machine answers a repeated request from memory (no second effect) and refuses an older one', () => {
  const start = emptyStart<KvInput, KvOutput>(kvFactory);
  const primary = new PbPrimary<KvInput, KvOutput>(start.machine, start, { epoch: 1, clock: fakeClock(), prng: new Prng(3) });
  const incr: KvInput = { clientId: 9, requestSeq: 4, op: { type: 'incr', key: 'n', by: 10 } };
  primary.submit(1, incr);
  primary.submit(2, incr); // The same request again, as after a failover.
  primary.submit(3, { clientId: 9, requestSeq: 3, op: { type: 'incr', key: 'n', by: 10 } });
  primary.submit(4, { clientId: 9, requestSeq: 5, op: { type: 'get', key: 'n' } });
  const outputs = primary.takeOutputs().map((item) => item.output);
  assert.deepEqual(outputs[0], outputs[1], 'the repeat gets the same answer');
  assert.deepEqual(outputs[2], { type: 'error', code: 'stale-request', message: 'request 3 of client 9 is older than its last (4)' });
  assert.equal(outputs[3]?.type === 'ok' && outputs[3].value, '10', 'the increment took effect once');
});
