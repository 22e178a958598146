// The log every Raft group of a process shares (src/storage/shared-wal.ts) and the
// RaftStorage on it (src/runtime/shared-wal-storage.ts), on the simulated disk: records of
// many groups round-trip, all groups' writes share fsyncs (the count does not grow with
// the number of groups), an idle group is asked to rewrite so old segments go, and the
// crash property (recovery gives every group exactly what a prefix of the issued writes
// that keeps every acknowledged one would give), with segments removed along the way.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type GroupRecovered, type GroupWrite, SharedWal, type SharedWalOptions, type SharedWalRecovered } from '../../src/storage/shared-wal.js';
import { LogModel } from '../../src/storage/segment.js';
import { StorageError } from '../../src/storage/errors.js';
import { SharedWalStorage } from '../../src/runtime/shared-wal-storage.js';
import type { Entry, HardState, Snapshot } from '../../src/raft/types.js';
import { index, nodeId, term } from '../../src/stdx/types.js';
import type { Prng } from '../../src/stdx/prng.js';
import { simSetup, bytes, text, type SimSetup } from './helpers.js';

const small: Partial<SharedWalOptions> = { segmentBytesMax: 2048, recordBytesMax: 256, flushBytesMax: 1024, segmentsKept: 2 };

function describeGroup(group: Pick<GroupRecovered, 'entries' | 'lastIndex' | 'state'>): string {
  const entries = group.entries.map((entry) => `${entry.index}:${text(entry.data)}`).join(',');
  return `[${entries}] last=${group.lastIndex} state=${text(group.state)}`;
}

function describeAll(groups: ReadonlyMap<number, Pick<GroupRecovered, 'entries' | 'lastIndex' | 'state'>>): string {
  return [...groups]
    .sort(([a], [b]) => a - b)
    .map(([group, state]) => `${group}=${describeGroup(state)}`)
    .join(' ');
}

function reopen(sim: SimSetup, options = small): Promise<{ wal: SharedWal; recovered: SharedWalRecovered }> {
  return sim.go(SharedWal.open(sim.disk, 'shared', options));
}

test('the records of many groups, with conflicts, truncations, bases and states, come back split by group', async () => {
  const sim = simSetup(1);
  const { wal, recovered: empty } = await reopen(sim);
  assert.equal(empty.created, true);
  await sim.go(wal.append(7, { entries: [1, 2, 3].map((i) => ({ index: i, data: bytes(`a${i}`) })), state: bytes('s7') }));
  await sim.go(wal.append(9, { entries: [{ index: 1, data: bytes('b1') }] }));
  await sim.go(wal.append(7, { entries: [{ index: 2, data: bytes('c2') }] }));
  await sim.go(wal.append(9, { truncateAfterIndex: 40, entries: [{ index: 41, data: bytes('b41') }], state: bytes('s9') }));
  await sim.go(wal.append(3, { baseIndex: 100, entries: [{ index: 101, data: bytes('d101') }], state: bytes('s3') }));
  await sim.go(wal.close());
  const { wal: again, recovered } = await reopen(sim);
  assert.equal(recovered.created, false);
  assert.equal(describeAll(recovered.groups), '3=[101:d101] last=101 state=s3 7=[1:a1,2:c2] last=2 state=s7 9=[41:b41] last=41 state=s9');
  await sim.go(again.close());
});

test('fifty groups writing at once share the fsyncs: the count follows the rounds, not the groups', async () => {
  const sim = simSetup(2);
  const { wal } = await reopen(sim, {});
  const rounds = 20;
  const groups = 50;
  const writer = async (group: number) => {
    for (let round = 1; round <= rounds; round++) await wal.append(group, { entries: [{ index: round, data: bytes(`g${group}r${round}`) }], state: bytes(`${round}`) });
  };
  await sim.go(Promise.all(Array.from({ length: groups }, (_, group) => writer(group))));
  const stats = wal.stats();
  assert.equal(stats.writeCount, rounds * groups);
  // A log per group would sync rounds × groups = 1000 times.
  assert.ok(stats.flushCount <= 2 * rounds + 1, `${stats.flushCount} fsyncs for ${stats.writeCount} writes of ${groups} groups`);
  await sim.go(wal.close());
  const { recovered } = await reopen(sim, {});
  assert.equal(recovered.groups.size, groups);
  for (const [group, state] of recovered.groups) assert.equal(describeGroup(state).split(',').length, rounds, `group ${group}`);
});

test('an idle group that pins the oldest segment is asked to rewrite, and old segments go', async () => {
  const sim = simSetup(3);
  const { wal } = await reopen(sim);
  // Group 1 writes once and then idles; its rewrite is a base of its whole (tiny) log.
  await sim.go(wal.append(1, { entries: [{ index: 1, data: bytes('idle') }], state: bytes('idle-state') }));
  let rewrites = 0;
  wal.register(1, () => {
    rewrites++;
    wal.append(1, { baseIndex: 0, entries: [{ index: 1, data: bytes('idle') }], state: bytes('idle-state') }).catch(() => {});
  });
  // Group 2 writes a lot and bases its log every ten entries (as a snapshot would).
  let most = 0;
  for (let i = 1; i <= 300; i++) {
    const write: GroupWrite = i % 10 === 0 ? { baseIndex: i - 1, entries: [{ index: i, data: Buffer.alloc(40, i) }], state: bytes(`t${i}`) } : { entries: [{ index: i, data: Buffer.alloc(40, i) }] };
    await sim.go(wal.append(2, write));
    most = Math.max(most, wal.segmentNames().length);
  }
  assert.ok(rewrites >= 1, 'the idle group was asked to rewrite');
  assert.ok(wal.segmentNames().length <= 4, `${wal.segmentNames().length} segments left: ${wal.segmentNames().join(' ')}`);
  assert.ok(most >= 3, `segments rolled (${most})`);
  assert.ok(!wal.segmentNames().some((name) => name.startsWith('0000000000000000-')), 'the first segment was removed');
  await sim.go(wal.close());
  const { recovered } = await reopen(sim);
  assert.equal(describeGroup(recovered.groups.get(1)!), '[1:idle] last=1 state=idle-state');
  assert.equal(recovered.groups.get(2)?.lastIndex, 300);
  // The last base (at 300) left only entry 300.
  assert.equal(recovered.groups.get(2)?.entries[0]?.index, 300);
});

test('a refused record (too large) or a failed sync: clear errors, other groups unharmed until the failure', async () => {
  const sim = simSetup(4);
  const { wal } = await reopen(sim);
  await assert.rejects(
    sim.go(wal.append(5, { entries: [{ index: 1, data: Buffer.alloc(300) }] })),
    (error: unknown) => error instanceof StorageError && error.code === 'record-too-large' && /group 5/.test(error.message),
  );
  await sim.go(wal.append(6, { entries: [{ index: 1, data: bytes('ok') }] }));
  sim.disk.failNext(`shared/${wal.segmentNames().at(-1)}`, 'sync');
  await assert.rejects(sim.go(wal.append(6, { entries: [{ index: 2, data: bytes('lost?') }] })), (error: unknown) => error instanceof StorageError && error.code === 'write-failed');
  await assert.rejects(sim.go(wal.append(7, { entries: [{ index: 1, data: bytes('x') }] })), (error: unknown) => error instanceof StorageError && error.code === 'write-failed');
});

// ---- RaftStorage on the shared log ----

function entry(i: number, t: number, data = `cmd${i}`): Entry {
  return { index: index(i), term: term(t), type: 'normal', data: bytes(data) };
}

function hard(t: number, vote: number, commit: number): HardState {
  return { term: term(t), vote: nodeId(vote), commit: index(commit) };
}

function snapshot(i: number, t: number): Snapshot {
  return { meta: { index: index(i), term: term(t), voters: [nodeId(1), nodeId(2), nodeId(3)], learners: [] }, data: bytes(`state@${i}`) };
}

async function openStorages(sim: SimSetup, groups: readonly number[]) {
  const { wal, recovered } = await reopen(sim);
  const storages = new Map<number, SharedWalStorage>();
  for (const group of groups) storages.set(group, (await sim.go(SharedWalStorage.open(sim.disk, wal, group, recovered.groups.get(group), `g${group}/snap`))).storage);
  return { wal, storages };
}

const describeEntries = (entries: readonly Entry[]) => entries.map((e) => `${e.index}/${e.term}/${Buffer.from(e.data).toString()}`).join(' ');

test('group storages: entries, hard state, snapshots (Figure 13) and a conflicting append, per group, across a reopen', async () => {
  const sim = simSetup(5);
  const { wal, storages } = await openStorages(sim, [100, 101]);
  const [a, b] = [storages.get(100)!, storages.get(101)!];
  await sim.go(a.load());
  await sim.go(b.load());
  await sim.go(a.save({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1)), hardState: hard(1, 1, 3), snapshot: undefined }));
  await sim.go(b.save({ entries: [1, 2].map((i) => entry(i, 2)), hardState: hard(2, 2, 1), snapshot: undefined }));
  await sim.go(a.save({ entries: [], hardState: undefined, snapshot: snapshot(3, 1) }));
  await sim.go(b.save({ entries: [entry(2, 3, 'new2')], hardState: hard(3, 3, 1), snapshot: undefined }));
  // Group 101 installs a snapshot its log does not hold: everything before it goes.
  await sim.go(b.save({ entries: [], hardState: hard(4, 3, 9), snapshot: snapshot(9, 4) }));
  assert.ok(a.sizeBytes() > 2 * 4 && a.sizeBytes() < b.sizeBytes() + 2 * 100, `${a.sizeBytes()} bytes for two live entries`);
  await sim.go(wal.close());
  const again = await openStorages(sim, [100, 101, 102]);
  const stateA = await sim.go(again.storages.get(100)!.load());
  const stateB = await sim.go(again.storages.get(101)!.load());
  const stateC = await sim.go(again.storages.get(102)!.load());
  assert.equal(describeEntries(stateA.entries), '4/1/cmd4 5/1/cmd5');
  assert.equal(stateA.snapshot?.meta.index, 3);
  assert.deepEqual(stateA.hardState, hard(1, 1, 3));
  assert.equal(describeEntries(stateB.entries), '');
  assert.equal(stateB.snapshot?.meta.index, 9);
  assert.deepEqual(stateB.hardState, hard(4, 3, 9));
  assert.deepEqual(stateC, { hardState: hard(0, 0, 0), snapshot: undefined, entries: [] });
  await sim.go(again.wal.close());
});

test("a snapshot file without the group's log records is refused, naming the group", async () => {
  const sim = simSetup(6);
  const { wal, storages } = await openStorages(sim, [1]);
  await sim.go(storages.get(1)!.load());
  await sim.go(storages.get(1)!.save({ entries: [entry(1, 1)], hardState: hard(1, 1, 1), snapshot: undefined }));
  await sim.go(storages.get(1)!.save({ entries: [], hardState: undefined, snapshot: snapshot(1, 1) }));
  await sim.go(wal.close());
  const { wal: again, recovered } = await reopen(sim);
  // Group 1's snapshot directory handed to group 2, which has no records.
  await assert.rejects(sim.go(SharedWalStorage.open(sim.disk, again, 2, recovered.groups.get(2), 'g1/snap')), (error: unknown) => error instanceof StorageError && /group 2/.test(error.message));
  await sim.go(again.close());
});

// ---- The crash property, with several groups, bases and segment removal ----

type ModelRecord = { group: number; kind: 'truncate' | 'base'; index: number } | { group: number; kind: 'entry'; index: number; data: string } | { group: number; kind: 'state'; data: string };

interface GroupModel {
  log: LogModel | undefined;
  state: Uint8Array | undefined;
}

function applyRecord(models: Map<number, GroupModel>, record: ModelRecord): void {
  let model = models.get(record.group);
  if (model === undefined) {
    model = { log: undefined, state: undefined };
    models.set(record.group, model);
  }
  if (record.kind === 'base') {
    model.log = new LogModel(record.index);
    model.state = undefined;
  } else if (record.kind === 'truncate') {
    model.log ??= new LogModel(record.index);
    model.log.truncateAfter(record.index);
  } else if (record.kind === 'entry') {
    model.log ??= new LogModel(record.index - 1);
    model.log.append({ index: record.index, data: bytes(record.data) });
  } else if (record.kind === 'state') {
    model.state = bytes(record.data);
  }
}

function describeModels(models: ReadonlyMap<number, GroupModel>): string {
  const view = new Map<number, GroupRecovered>();
  for (const [group, model] of models) view.set(group, { entries: model.log?.entries ?? [], lastIndex: model.log?.lastIndex, state: model.state });
  return describeAll(view);
}

function recordsOf(group: number, write: GroupWrite): ModelRecord[] {
  const records: ModelRecord[] = [];
  if (write.baseIndex !== undefined) records.push({ group, kind: 'base', index: write.baseIndex });
  if (write.truncateAfterIndex !== undefined) records.push({ group, kind: 'truncate', index: write.truncateAfterIndex });
  for (const entry of write.entries) records.push({ group, kind: 'entry', index: entry.index, data: text(entry.data)! });
  if (write.state !== undefined) records.push({ group, kind: 'state', data: text(write.state)! });
  return records;
}

class CrashRun {
  readonly records: ModelRecord[] = [];
  acked = 0;
  /** Every group's log as issued (acknowledged or not): what a rewrite writes out. */
  readonly issued = new Map<number, GroupModel>();

  constructor(
    private readonly wal: SharedWal,
    private readonly prng: Prng,
  ) {}

  issue(group: number, write: GroupWrite): void {
    const records = recordsOf(group, write);
    for (const record of records) applyRecord(this.issued, record);
    this.records.push(...records);
    const end = this.records.length;
    this.wal.append(group, write).then(
      () => (this.acked = Math.max(this.acked, end)),
      () => undefined,
    );
  }

  /** A base of the group's whole issued log (what SharedWalStorage.rewrite writes). */
  baseOf(group: number): GroupWrite {
    const model = this.issued.get(group);
    const entries = model?.log?.entries ?? [];
    const baseIndex = entries.length > 0 ? entries[0]!.index - 1 : (model?.log?.lastIndex ?? 0);
    return { baseIndex, entries: [...entries], state: model?.state ?? bytes('none') };
  }

  randomWrite(group: number, tag: string): GroupWrite {
    const prng = this.prng;
    if (prng.chance(0.05)) return this.baseOf(group);
    const lastIndex = this.issued.get(group)?.log?.lastIndex ?? 0;
    let truncateAfterIndex: number | undefined;
    if (prng.chance(0.03)) truncateAfterIndex = Math.max(0, lastIndex + prng.range(-2, 5));
    const after = truncateAfterIndex ?? lastIndex;
    const start = Math.max(1, after + 1 - (prng.chance(0.2) ? prng.range(1, 3) : 0));
    const entries = Array.from({ length: prng.range(0, 4) }, (_, i) => ({ index: start + i, data: bytes(`${tag}/${i}`.padEnd(prng.range(4, 60), '.')) }));
    const state = prng.chance(0.3) ? bytes(`state ${tag}`) : undefined;
    return { ...(truncateAfterIndex === undefined ? {} : { truncateAfterIndex }), entries, ...(state === undefined ? {} : { state }) };
  }
}

async function crashRounds(seed: number): Promise<{ tornTails: number; removed: number; trace: string }> {
  const sim = simSetup(seed, { tornWriteProbability: 0.6 });
  const prng = sim.prng.fork();
  let previous: { base: Map<number, GroupModel>; records: ModelRecord[]; acked: number } | undefined;
  let tornTails = 0;
  let removed = 0;
  const trace: string[] = [];
  for (let round = 0; round < 4; round++) {
    const { wal, recovered } = await reopen(sim);
    tornTails += recovered.events.filter((event) => event.kind === 'torn-tail-truncated').length;
    const got = describeAll(recovered.groups);
    trace.push(`t=${sim.scheduler.nowMs} ${got}`);
    if (previous !== undefined) {
      const models = new Map([...previous.base].map(([group, model]) => [group, { log: model.log === undefined ? undefined : copyLog(model.log), state: model.state }]));
      for (const record of previous.records.slice(0, previous.acked)) applyRecord(models, record);
      const candidates = new Set<string>();
      for (let count = previous.acked; ; count++) {
        candidates.add(describeModels(models));
        if (count === previous.records.length) break;
        applyRecord(models, previous.records[count]!);
      }
      assert.ok(candidates.has(got), `seed ${seed} round ${round}: recovered ${got} is not a prefix that keeps all ${previous.acked} acknowledged records`);
    }
    const run = new CrashRun(wal, prng);
    for (const [group, state] of recovered.groups) {
      const log = state.lastIndex === undefined ? undefined : new LogModel(state.lastIndex);
      if (log !== undefined) log.entries = [...state.entries];
      run.issued.set(group, { log, state: state.state });
    }
    const base = new Map([...run.issued].map(([group, model]) => [group, { log: model.log === undefined ? undefined : copyLog(model.log), state: model.state }]));
    const groups = prng.range(2, 6);
    for (let group = 0; group < 6; group++) wal.register(group, () => run.issue(group, run.baseOf(group)));
    const segmentsBefore = new Set(wal.segmentNames());
    sim.scheduler.after(prng.range(20, 300), () => sim.disk.crash());
    const crashCount = sim.disk.crashCount;
    const writer = async (id: number) => {
      for (let n = 0; sim.disk.crashCount === crashCount && n < 10_000; n++) {
        const group = prng.range(0, groups - 1);
        run.issue(group, run.randomWrite(group, `${round}.${id}.${n}`));
        await sim.scheduler.sleep(prng.range(0, 3));
      }
    };
    await Promise.all(Array.from({ length: prng.range(1, 6) }, (_, id) => writer(id)));
    removed += [...segmentsBefore].filter((name) => !wal.segmentNames().includes(name)).length;
    previous = { base, records: run.records, acked: run.acked };
  }
  return { tornTails, removed, trace: trace.join('\n') };
}

function copyLog(log: LogModel): LogModel {
  const copy = new LogModel(log.lastIndex);
  copy.entries = [...log.entries];
  return copy;
}

test('after any crash, every group recovers exactly a prefix of the writes that keeps every acknowledged one', async () => {
  let tornTails = 0;
  let removed = 0;
  for (let seed = 1; seed <= 30; seed++) {
    const outcome = await crashRounds(seed);
    tornTails += outcome.tornTails;
    removed += outcome.removed;
  }
  assert.ok(tornTails > 5, `torn tails were exercised (${tornTails})`);
  assert.ok(removed > 5, `segments were removed while groups wrote (${removed})`);
});

test('the shared-log crash runs are deterministic for a seed', async () => {
  const first = (await crashRounds(11)).trace;
  assert.equal((await crashRounds(11)).trace, first);
  assert.notEqual((await crashRounds(12)).trace, first);
});
