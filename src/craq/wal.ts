// A CRAQ node's durable state on an io.Disk, through storage/'s write-ahead log and
// snapshot files:
//
//   DIR/wal/   one entry per write, at index = seq (JSON {key, version, value}); the
//              log's state value is {committedSeq}, written with every Ready that moves it
//   DIR/snap/  the committed objects at a seq: a state transfer received, or a local
//              snapshot taken every snapshotEveryWrites commits, after which the log
//              before it is removed
//
// A write re-sent at a seq the log already holds replaces that entry and everything after
// it (the WAL's rule), which is what a node that left the chain and came back needs: its
// uncommitted writes are not the chain's. Recovery keeps only what is committed (up to
// committedSeq); the rest the predecessor sends again.

import { assert } from '../stdx/assert.js';
import type { Disk } from '../io/disk.js';
import { SnapshotFiles, Wal, type WalEntry } from '../storage/index.js';
import { CraqDecodeError, decodePeerMessage } from './codec.js';
import type { CraqStorage } from './host.js';
import type { Persist, RecoveredState } from './node.js';
import type { ChainSnapshot, ChainWrite, ObjectVersion } from './types.js';

export const craqWalDefaults = {
  /** A local snapshot (and log compaction) after this many commits since the last. */
  snapshotEveryWrites: 50_000,
} as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

function decodeJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw new CraqDecodeError(`${what} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A snapshot or an entry read back from disk passes the same checks as one from a peer. */
function decodeSnapshot(bytes: Uint8Array): ChainSnapshot {
  const message = decodePeerMessage({ type: 'snapshot', epoch: 0, from: 0, highestSeq: 0, snapshot: decodeJson(bytes, 'a snapshot file') });
  assert(message.type === 'snapshot', 'decoded as a snapshot');
  return message.snapshot;
}

function decodeEntry(entry: WalEntry): ChainWrite {
  const fields = decodeJson(entry.data, `log entry ${entry.index}`) as Record<string, unknown>;
  const message = decodePeerMessage({ type: 'propagate', epoch: 0, from: 0, highestSeq: 0, writes: [{ ...fields, seq: entry.index }] });
  assert(message.type === 'propagate', 'decoded as a write');
  return message.writes[0]!;
}

function decodeState(bytes: Uint8Array | undefined): number {
  if (bytes === undefined) return 0;
  const value = decodeJson(bytes, 'the log state') as { committedSeq?: unknown };
  const seq = value.committedSeq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw new CraqDecodeError('the log state has no valid committedSeq');
  return seq;
}

export class CraqWal implements CraqStorage {
  /** The committed objects, kept so a local snapshot needs nothing from the node. */
  private readonly objects = new Map<string, ObjectVersion>();
  /** Uncommitted writes by seq. */
  private uncommitted = new Map<number, ChainWrite>();
  private committedSeq: number;
  private snapshotSeq: number;

  private constructor(
    private readonly wal: Wal,
    private readonly snapshots: SnapshotFiles,
    recovered: RecoveredState,
    private readonly snapshotEveryWrites: number,
  ) {
    for (const object of recovered.snapshot?.objects ?? []) this.objects.set(object.key, object);
    for (const write of recovered.writes) this.objects.set(write.key, { key: write.key, version: write.version, value: write.value });
    this.snapshotSeq = recovered.snapshot?.seq ?? 0;
    this.committedSeq = recovered.writes.at(-1)?.seq ?? this.snapshotSeq;
  }

  /** Opens (or creates) the state in `dir` and returns what it holds, committed only. */
  static async open(disk: Disk, dir: string, options: { snapshotEveryWrites?: number } = {}): Promise<{ storage: CraqWal; recovered: RecoveredState }> {
    await disk.mkdirp(dir);
    const snapshots = new SnapshotFiles(disk, `${dir}/snap`);
    await snapshots.init();
    const stored = await snapshots.loadLatest();
    const snapshot = stored === undefined ? undefined : decodeSnapshot(stored.data);
    assert(snapshot === undefined || snapshot.seq === stored!.index, 'a snapshot file holds the seq it is named after');
    const { wal, recovered: log } = await Wal.open(disk, `${dir}/wal`);
    const committedSeq = decodeState(log.state);
    const base = snapshot?.seq ?? 0;
    const writes: ChainWrite[] = [];
    for (const entry of log.entries) {
      if (entry.index <= base || entry.index > committedSeq) continue;
      const write = decodeEntry(entry);
      if (write.seq !== (writes.at(-1)?.seq ?? base) + 1) throw new CraqDecodeError(`${dir}/wal: committed write ${write.seq} does not follow ${writes.at(-1)?.seq ?? base}`);
      writes.push(write);
    }
    if (committedSeq > base && (writes.at(-1)?.seq ?? base) !== committedSeq) {
      throw new CraqDecodeError(`${dir}/wal: the log says writes up to ${committedSeq} are committed but holds them only up to ${writes.at(-1)?.seq ?? base}`);
    }
    const recovered: RecoveredState = { snapshot, writes };
    const storage = new CraqWal(wal, snapshots, recovered, options.snapshotEveryWrites ?? craqWalDefaults.snapshotEveryWrites);
    return { storage, recovered };
  }

  async save(persist: Persist): Promise<void> {
    if (persist.snapshot !== undefined) await this.installSnapshot(persist.snapshot);
    const first = persist.writes[0];
    if (first !== undefined) for (const seq of [...this.uncommitted.keys()]) if (seq >= first.seq) this.uncommitted.delete(seq);
    for (const write of persist.writes) this.uncommitted.set(write.seq, write);
    if (persist.writes.length === 0 && persist.committedSeq === this.committedSeq && persist.snapshot === undefined) return;
    const entries = persist.writes.map((write) => ({ index: write.seq, data: encodeJson({ key: write.key, version: write.version, value: write.value }) }));
    await this.wal.append({ entries, state: encodeJson({ committedSeq: persist.committedSeq }) });
    this.applyCommits(persist.committedSeq);
    if (this.committedSeq - this.snapshotSeq >= this.snapshotEveryWrites) await this.snapshotLocally();
  }

  async close(): Promise<void> {
    await this.wal.close();
  }

  private applyCommits(committedSeq: number): void {
    for (let seq = this.committedSeq + 1; seq <= committedSeq; seq++) {
      const write = this.uncommitted.get(seq);
      assert(write !== undefined, `committed write ${seq} was persisted`);
      this.uncommitted.delete(seq);
      this.objects.set(write.key, { key: write.key, version: write.version, value: write.value });
    }
    this.committedSeq = Math.max(this.committedSeq, committedSeq);
  }

  private async installSnapshot(snapshot: ChainSnapshot): Promise<void> {
    await this.snapshots.save(snapshot.seq, encodeJson(snapshot));
    await this.wal.append({ truncateAfterIndex: snapshot.seq, entries: [], state: encodeJson({ committedSeq: snapshot.seq }) });
    this.objects.clear();
    for (const object of snapshot.objects) this.objects.set(object.key, object);
    this.uncommitted.clear();
    this.committedSeq = snapshot.seq;
    this.snapshotSeq = snapshot.seq;
    await this.wal.compact(snapshot.seq);
  }

  private async snapshotLocally(): Promise<void> {
    const keys = [...this.objects.keys()].sort();
    const snapshot: ChainSnapshot = { seq: this.committedSeq, objects: keys.map((key) => this.objects.get(key)!) };
    await this.snapshots.save(snapshot.seq, encodeJson(snapshot));
    this.snapshotSeq = snapshot.seq;
    await this.wal.compact(snapshot.seq);
  }
}
