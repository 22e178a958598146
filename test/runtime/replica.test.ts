// Replica on a real RaftNode with in-memory storage and a manual clock: results by
// (index, term), and every typed way a proposal can fail.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Clock, Timer } from '../../src/io/clock.js';
import { defaultTiming } from '../../src/raft/config.js';
import type { Message } from '../../src/raft/messages.js';
import { MemoryStorage } from '../../src/runtime/memory-storage.js';
import type { PersistedState, RaftStorage, StorageUpdate } from '../../src/runtime/storage.js';
import { Replica, ReplicaError, type ReplicatedService, type YieldToHost } from '../../src/runtime/replica.js';
import { encodeCommand } from '../../src/kv/codec.js';
import { KvStateMachine } from '../../src/kv/state-machine.js';
import { Prng } from '../../src/stdx/prng.js';
import { index, nodeId, term, type Index } from '../../src/stdx/types.js';

const TICK_MS = 10;

class ManualClock implements Clock {
  private now = 0;
  private timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  nowMs(): number {
    return this.now;
  }
  setTimer(delayMs: number, fn: () => void): Timer {
    const timer = { at: this.now + delayMs, fn, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      const due = this.timers.filter((timer) => !timer.cancelled && timer.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.timers.splice(this.timers.indexOf(due), 1);
      this.now = due.at;
      due.fn();
      await settle();
    }
    this.now = end;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Echoes each command prefixed with its index, and records what it applied. */
class EchoService implements ReplicatedService {
  applied: string[] = [];
  apply(command: Uint8Array, at: Index): Uint8Array {
    const text = Buffer.from(command).toString();
    this.applied.push(text);
    return Buffer.from(`${at}:${text}`);
  }
}

/** Storage whose saves wait until release() (to hold entries uncommitted). */
class GatedStorage implements RaftStorage {
  readonly inner = new MemoryStorage();
  held = false;
  private waiting: (() => void)[] = [];
  load(): Promise<PersistedState> {
    return this.inner.load();
  }
  async save(update: StorageUpdate): Promise<void> {
    if (this.held) await new Promise<void>((resolve) => this.waiting.push(resolve));
    await this.inner.save(update);
  }
  release(): void {
    this.held = false;
    for (const resolve of this.waiting.splice(0)) resolve();
  }
  sizeBytes(): number {
    return this.inner.sizeBytes();
  }
}

async function open(voters: number[], options: { storage?: RaftStorage; pendingProposalsMax?: number } = {}) {
  const clock = new ManualClock();
  const service = new EchoService();
  const sent: Message[] = [];
  const replica = await Replica.open({
    config: { id: nodeId(1), voters: voters.map(nodeId), ...defaultTiming, noopOnElection: true },
    prng: new Prng(1),
    clock,
    tickMs: TICK_MS,
    transport: { send: (_to, message) => void sent.push(message) },
    storage: options.storage ?? new MemoryStorage(),
    service,
    limits: options.pendingProposalsMax === undefined ? {} : { pendingProposalsMax: options.pendingProposalsMax },
  });
  return { clock, service, sent, replica };
}

/** Grants node 1 the (pre)votes of node 2, so it leads a two-member group. */
async function electWithPeer(clock: ManualClock, sent: Message[], replica: Replica): Promise<void> {
  for (let round = 0; round < 100 && replica.raft.status().role !== 'leader'; round++) {
    await clock.advance(TICK_MS);
    for (const m of sent.splice(0)) {
      if (m.type === 'PreVote' || m.type === 'Vote') replica.raft.receive({ type: m.type === 'PreVote' ? 'PreVoteResp' : 'VoteResp', from: nodeId(2), to: nodeId(1), term: m.term, reject: false });
    }
    await settle();
  }
  assert.equal(replica.raft.status().role, 'leader');
}

test('submit resolves with the service result at the entry index; the no-op never reaches the service', async () => {
  const { clock, service, replica } = await open([1]);
  await clock.advance(50 * TICK_MS);
  assert.equal(replica.raft.status().role, 'leader');
  const [a, b] = await Promise.all([replica.submit(Buffer.from('a')), replica.submit(Buffer.from('b'))]);
  assert.equal(Buffer.from(a.result).toString(), `${a.index}:a`);
  assert.equal(Buffer.from(b.result).toString(), `${b.index}:b`);
  assert.equal(b.index, a.index + 1);
  assert.deepEqual(service.applied, ['a', 'b']);
  assert.equal(replica.pendingCount(), 0);
  replica.stop();
});

test('a follower refuses with not-leader; an empty command is refused; a stopped replica refuses', async () => {
  const { replica } = await open([1, 2, 3]);
  await assert.rejects(replica.submit(new Uint8Array(0)), (error: unknown) => error instanceof ReplicaError && error.code === 'invalid');
  await assert.rejects(replica.submit(Buffer.from('x')), (error: unknown) => error instanceof ReplicaError && error.code === 'not-leader' && error.leader === 0);
  replica.stop();
  await assert.rejects(replica.submit(Buffer.from('x')), (error: unknown) => error instanceof ReplicaError && error.code === 'stopped');
});

test('pendingProposalsMax: at the limit submit is refused (overloaded); stop() rejects the pending ones (stopped)', async () => {
  const storage = new GatedStorage();
  const { clock, replica } = await open([1], { storage, pendingProposalsMax: 2 });
  await clock.advance(50 * TICK_MS);
  storage.held = true;
  const first = replica.submit(Buffer.from('1'));
  const second = replica.submit(Buffer.from('2'));
  await assert.rejects(replica.submit(Buffer.from('3')), (error: unknown) => error instanceof ReplicaError && error.code === 'overloaded');
  replica.stop();
  await assert.rejects(first, (error: unknown) => error instanceof ReplicaError && error.code === 'stopped');
  await assert.rejects(second, (error: unknown) => error instanceof ReplicaError && error.code === 'stopped');
  storage.release();
});

test('leadership lost before commit: outcome-unknown', async () => {
  const { clock, sent, replica } = await open([1, 2]);
  await electWithPeer(clock, sent, replica);
  const pending = replica.submit(Buffer.from('lost'));
  await settle();
  const status = replica.raft.status();
  // Node 2 leads a later term: node 1 steps down with its entry uncommitted.
  replica.raft.receive({ type: 'Heartbeat', from: nodeId(2), to: nodeId(1), term: term(status.term + 1), commit: index(0), context: 0 });
  await assert.rejects(pending, (error: unknown) => error instanceof ReplicaError && error.code === 'outcome-unknown' && error.leader === 2);
  replica.stop();
});

test('another entry committed at the proposal index: dropped (not applied)', async () => {
  const { clock, sent, replica, service } = await open([1, 2]);
  await electWithPeer(clock, sent, replica);
  const status = replica.raft.status();
  const pending = replica.submit(Buffer.from('mine'));
  await settle();
  const at = replica.raft.status().lastIndex;
  // Node 2, leader of a later term, replaces the entry at `at` and commits it at once:
  // apply sees the other entry before the leadership check runs.
  const prevIndex = index(at - 1);
  const newTerm = term(status.term + 1);
  replica.raft.receive({
    type: 'App',
    from: nodeId(2),
    to: nodeId(1),
    term: newTerm,
    prevIndex,
    prevTerm: status.term,
    entries: [{ index: index(at), term: newTerm, type: 'normal', data: Buffer.from('theirs') }],
    commit: index(at),
  });
  await assert.rejects(pending, (error: unknown) => error instanceof ReplicaError && error.code === 'dropped');
  await settle();
  assert.ok(service.applied.includes('theirs'));
  assert.ok(!service.applied.includes('mine'));
  replica.stop();
});

/** A counter service that can snapshot and restore: applied commands and their total length. */
class CounterService implements ReplicatedService {
  count = 0;
  restoredAt = 0;
  apply(_command: Uint8Array): Uint8Array {
    this.count++;
    return Buffer.from(String(this.count));
  }
  snapshot(): Uint8Array {
    return Buffer.from(String(this.count));
  }
  restore(data: Uint8Array, at: Index): void {
    this.count = Number(Buffer.from(data).toString());
    this.restoredAt = at;
  }
}

test('snapshots once the Raft state reaches raftStateBytesMax; a restart restores the snapshot; serializable reads never wait', async () => {
  const clock = new ManualClock();
  const storage = new MemoryStorage();
  const service = new CounterService();
  const options = {
    config: { id: nodeId(1), voters: [nodeId(1)], ...defaultTiming, noopOnElection: true },
    prng: new Prng(1),
    clock,
    tickMs: TICK_MS,
    transport: { send: () => undefined },
    storage,
    raftStateBytesMax: 300,
  };
  const replica = await Replica.open({ ...options, service });
  await clock.advance(50 * TICK_MS);
  for (let i = 0; i < 40; i++) {
    const submitted = replica.submit(Buffer.from(`command ${i}`));
    await clock.advance(TICK_MS);
    await submitted;
  }
  await settle();
  assert.ok(replica.snapshotsTaken > 0, 'snapshots were taken');
  assert.ok(storage.sizeBytes() < 300 + 100, `the log was trimmed: ${storage.sizeBytes()} bytes`);
  assert.ok(storage.snapshotBytes() > 0);
  const applied = await replica.read('serializable', 0);
  assert.equal(applied, replica.raft.status().applied);
  const confirmed = replica.read('linearizable', 1000);
  await clock.advance(TICK_MS);
  assert.equal(await confirmed, applied, 'a single voter confirms a read without a round');
  replica.stop();
  const restarted = new CounterService();
  const again = await Replica.open({ ...options, storage: storage.copy(), service: restarted });
  assert.ok(restarted.restoredAt > 0, 'restored from the snapshot');
  await clock.advance(50 * TICK_MS);
  const last = again.submit(Buffer.from('one more'));
  await clock.advance(TICK_MS);
  await last;
  assert.equal(restarted.count, 41, 'the snapshot plus the replayed log give every command once');
  again.stop();
});

test('a service with beginSnapshot() is snapshotted a step per host turn, at the index where it began; stop() cancels one in progress', async () => {
  const clock = new ManualClock();
  const storage = new MemoryStorage();
  const machine = new KvStateMachine();
  let yields = 0;
  let held: (() => void) | undefined;
  let holding = false;
  // Counts the turns; while `holding`, keeps the step instead of scheduling it.
  const yieldToHost: YieldToHost = (fn) => {
    yields++;
    if (!holding) return clock.setTimer(0, fn);
    held = fn;
    return {
      cancel: () => {
        held = undefined;
      },
    };
  };
  const options = {
    config: { id: nodeId(1), voters: [nodeId(1)], ...defaultTiming, noopOnElection: true },
    prng: new Prng(1),
    clock,
    tickMs: TICK_MS,
    transport: { send: () => undefined },
    storage,
    raftStateBytesMax: 600,
    snapshotStepUnits: 2,
    yieldToHost,
  };
  const put = (i: number): Uint8Array => encodeCommand({ op: { kind: 'put', key: `key-${i}`, value: Buffer.from(`value-${i}`) }, session: undefined, timeMs: 0 });
  const replica = await Replica.open({ ...options, service: machine });
  await clock.advance(50 * TICK_MS);
  for (let i = 0; i < 40; i++) {
    const submitted = replica.submit(put(i));
    await clock.advance(TICK_MS);
    await submitted;
  }
  await clock.advance(TICK_MS);
  assert.ok(replica.snapshotsTaken > 0, 'snapshots were taken');
  assert.ok(yields >= replica.snapshotsTaken, `${yields} turns for ${replica.snapshotsTaken} snapshots`);
  assert.ok(!replica.snapshotInProgress);
  assert.ok(storage.sizeBytes() < 600 + 200, `the log was trimmed: ${storage.sizeBytes()} bytes`);
  // A restarted member restores the last snapshot and replays the rest of the log.
  const restarted = new KvStateMachine();
  const again = await Replica.open({ ...options, storage: storage.copy(), service: restarted });
  assert.ok(restarted.appliedIndex > 0, 'restored from a snapshot');
  await clock.advance(50 * TICK_MS);
  assert.equal(restarted.keyCount, 40);
  assert.deepEqual(restarted.query({ kind: 'get', key: 'key-39' }), machine.query({ kind: 'get', key: 'key-39' }));
  again.stop();
  // Hold the next snapshot between two steps, then stop: it is abandoned, not taken.
  holding = true;
  const taken = replica.snapshotsTaken;
  for (let i = 40; i < 80 && !replica.snapshotInProgress; i++) {
    const submitted = replica.submit(put(i));
    await clock.advance(TICK_MS);
    await submitted;
  }
  assert.ok(replica.snapshotInProgress, 'a snapshot waits for its next turn');
  assert.ok(held !== undefined);
  replica.stop();
  assert.equal(held, undefined, 'stop() cancelled the next step');
  assert.ok(!replica.snapshotInProgress);
  assert.equal(replica.snapshotsTaken, taken);
});

// A Raft message and a proposal handled in one turn (one socket read can carry a follower's
// answer and then a forwarded write): the message starts the Ready loop, which finds nothing
// and ends, and the proposal came before the loop's end was noted. The proposal must still
// be processed in this turn, not at the next tick (it waited a whole tick before the fix).
test('a proposal right after a message that found nothing to do is processed without waiting for a tick', async () => {
  const { clock, sent, replica } = await open([1]);
  await clock.advance(50 * TICK_MS);
  assert.equal(replica.raft.status().role, 'leader');
  await settle();
  sent.length = 0;
  const before = replica.raft.status().lastIndex;
  // A stray message of an older term: stepped, nothing to do, the loop runs and ends.
  replica.raft.receive({ type: 'HeartbeatResp', from: nodeId(2), to: nodeId(1), term: term(0), context: 0 });
  const submitted = replica.submit(Buffer.from('x'));
  await settle(); // no clock advance: no tick runs
  assert.equal(replica.raft.status().applied, before + 1, 'the proposal was not processed in this turn');
  assert.equal(Buffer.from((await submitted).result).toString(), `${before + 1}:x`);
  replica.stop();
});
