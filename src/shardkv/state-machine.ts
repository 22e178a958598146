// One replica group's replicated state machine for the sharded key/value service (6.824
// lab 5B, shardkv/server.go): the shards this group holds, each in a state; the current and
// previous configurations; the client sessions. Deterministic, free of I/O and total:
// apply() answers every input, a malformed one included, with a result.
//
// Each shard this group has anything to do with is in one state (absent: not ours, no data):
//
//   state    | meaning                                               | served? | leaves it by
//   ---------+-------------------------------------------------------+---------+---------------------------
//   serving  | ours in the current configuration, data present       | yes     | a config that moves it away
//   pulling  | ours in the current configuration, data not yet here  | no      | insert (the data arrived)
//   handoff  | ours in the previous configuration only: frozen data  | no      | delete (new owner has it)
//            | kept until the new owner confirms it installed it     |         |
//   gc       | ours, data installed; the old owner must still drop   | yes     | gcdone
//            | its copy (challenge 1)                                |         |
//
// Configuration num + 1 is applied only when every shard is serving or absent (the current
// configuration is fully installed: data in, old copies dropped), so configurations apply
// strictly in order, and one group holds a served copy of a shard at any time. A request is
// checked against the shard's state when its entry applies, not when it arrives, so a write
// is never applied to a shard the group stopped owning while the entry was in flight.
// Shards a group already serves stay served during a configuration change, and each pulled
// shard is served as soon as its insert applies (challenge 2).

import { assert } from '../stdx/assert.js';
import type { Index } from '../stdx/types.js';
import type { ReplicatedService } from '../runtime/replica.js';
import { configFromArray, configToArray, type Gid, initialConfig, type ShardConfig, shardCount } from '../shardctrler/index.js';
import {
  count,
  decodeCommand,
  encodeResult,
  pack,
  type ShardData,
  ShardKvDecodeError,
  type ShardKvOp,
  type ShardKvResult,
  sessionsFromArray,
  sessionsToArray,
  shardsFromArray,
  shardsToArray,
  unpackArray,
} from './codec.js';

export type ShardState = 'serving' | 'pulling' | 'handoff' | 'gc';

/** Where a page of exported shard data starts (after this shard's key) and how large it may be (key and value characters). */
export interface ExportPage {
  readonly after?: PullCursor;
  readonly bytesMax: number;
}

export interface PullCursor {
  readonly shard: number;
  readonly key: string;
}

export interface ExportedShards {
  readonly shards: Map<number, ShardData>;
  /** With the last page only (more undefined). */
  readonly sessions: Map<number, number>;
  /** The cursor of the next page; undefined: this was the last. */
  readonly more: PullCursor | undefined;
}

const wholeShards: ExportPage = { bytesMax: Number.POSITIVE_INFINITY };

const shardStates: readonly ShardState[] = ['serving', 'pulling', 'handoff', 'gc'];

/** The first field of a snapshot: bumped when the layout changes. */
const snapshotFormat = 1;

/** The lab's key2shard: the first byte of the key (UTF-16 code unit, as the lab's keys are ASCII) mod shardCount; 0 for "". */
export function key2shard(key: string): number {
  return key.length === 0 ? 0 : key.charCodeAt(0) % shardCount;
}

/**
 * Deliberately broken variants, for proving that the lab's checks catch them (STYLE.md 18;
 * test/shardkv/planted.test.ts). Never set outside tests.
 */
export interface ShardKvUnsafe {
  /** A shard is handed over without the session table: a write retried at the new owner after it ran at the old one runs twice. */
  readonly noDedupTransfer?: boolean;
  /** A shard is served while still pulling (before its data arrived): reads miss earlier writes. */
  readonly serveBeforeArrival?: boolean;
  /** No shard is served while any is still pulling (the lab's basic design, challenge 2 undone). */
  readonly noServeDuringMigration?: boolean;
  /** A handed-off shard's data is kept (in snapshots too) when the new owner confirms, not deleted: challenge 1 undone, memory grows with every move. */
  readonly noGarbageCollection?: boolean;
  /** A shard moved in pages is completed (served) by its first page: the keys of later pages never arrive. */
  readonly completeOnFirstPage?: boolean;
}

interface Shard {
  state: ShardState;
  readonly data: Map<string, string>;
}

/** What a group must do next, for its leader's background loops. */
export interface PendingWork {
  /** Shards to pull, by the gid that owned them in the previous configuration. */
  readonly pull: Map<Gid, number[]>;
  /** Shards whose old owner must drop its copy, by that gid. */
  readonly gc: Map<Gid, number[]>;
}

export class ShardKvStateMachine implements ReplicatedService {
  private current: ShardConfig = initialConfig();
  private previous: ShardConfig = initialConfig();
  private readonly shards = new Map<number, Shard>();
  /** Only with the planted bug noGarbageCollection: handed-off shards' data, never freed. */
  private readonly retained: Map<string, string>[] = [];
  /** client → the highest seq of its Put/Append that ran (or was taken over with a shard). */
  private readonly sessions = new Map<number, number>();
  private applied = 0;

  constructor(
    readonly gid: Gid,
    private readonly unsafe: ShardKvUnsafe = {},
  ) {
    assert(Number.isSafeInteger(gid) && gid >= 1, 'a group id is >= 1');
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get config(): ShardConfig {
    return this.current;
  }

  get previousConfig(): ShardConfig {
    return this.previous;
  }

  shardState(shard: number): ShardState | undefined {
    return this.shards.get(shard)?.state;
  }

  /** The value of `key` held here in any state (an observation for tests; clerks go through the log). */
  valueOf(key: string): string | undefined {
    return this.shards.get(key2shard(key))?.data.get(key);
  }

  /** Keys held over every shard (served or not): what challenge 1 keeps bounded. */
  get keyCount(): number {
    let keys = 0;
    for (const shard of this.shards.values()) keys += shard.data.size;
    return keys;
  }

  /** Whether the current configuration is fully installed: the next one may be applied. */
  get settled(): boolean {
    for (const shard of this.shards.values()) if (shard.state !== 'serving') return false;
    return true;
  }

  pendingWork(): PendingWork {
    const pull = new Map<Gid, number[]>();
    const gc = new Map<Gid, number[]>();
    for (let s = 0; s < shardCount; s++) {
      const state = this.shards.get(s)?.state;
      const from = this.previous.shards[s]!;
      const into = state === 'pulling' ? pull : state === 'gc' ? gc : undefined;
      if (into === undefined) continue;
      const list = into.get(from) ?? [];
      list.push(s);
      into.set(from, list);
    }
    return { pull, gc };
  }

  /**
   * The frozen data of shards this group hands off in configuration `num`, with the
   * sessions, for the new owner's pull; or why not: 'not-ready' (this group has not reached
   * `num`), 'gone' (not held any more: the new owner already installed it).
   */
  exportShards(num: number, shards: readonly number[], page: ExportPage = wholeShards): ExportedShards | 'not-ready' | 'gone' {
    if (this.current.num < num) return 'not-ready';
    if (this.current.num > num) return 'gone';
    const held: Array<[number, ShardData]> = [];
    for (const s of [...new Set(shards)].sort((a, b) => a - b)) {
      const shard = this.shards.get(s);
      if (shard === undefined || shard.state !== 'handoff') return 'gone';
      held.push([s, shard.data]);
    }
    // Pages: shards ascending, keys sorted, after the cursor, until the budget is spent (at
    // least one key a page, so every page makes progress).
    const out = new Map<number, Map<string, string>>();
    let bytes = 0;
    let last: PullCursor | undefined;
    for (const [s, data] of held) {
      if (page.after !== undefined && s < page.after.shard) continue;
      for (const key of [...data.keys()].sort()) {
        if (page.after !== undefined && s === page.after.shard && key <= page.after.key) continue;
        const value = data.get(key)!;
        if (last !== undefined && bytes + key.length + value.length > page.bytesMax) return { shards: out, sessions: new Map(), more: last };
        bytes += key.length + value.length;
        last = { shard: s, key };
        let into = out.get(s);
        if (into === undefined) {
          into = new Map();
          out.set(s, into);
        }
        into.set(key, value);
      }
    }
    return { shards: out, sessions: this.unsafe.noDedupTransfer === true ? new Map() : new Map(this.sessions), more: undefined };
  }

  apply(command: Uint8Array, index: Index): Uint8Array {
    assert(index > this.applied, `entries apply in log order: ${index} after ${this.applied}`);
    this.applied = index;
    let decoded: ReturnType<typeof decodeCommand>;
    try {
      decoded = decodeCommand(command);
    } catch (error) {
      if (!(error instanceof ShardKvDecodeError)) throw error;
      return encodeResult({ err: 'ErrMalformed', value: error.message });
    }
    switch (decoded.kind) {
      case 'op':
        return encodeResult(this.applyOp(decoded.op));
      case 'config':
        return encodeResult(this.applyConfig(decoded.config));
      case 'insert':
        return encodeResult(this.applyInsert(decoded.num, decoded.shards, decoded.sessions, decoded.final));
      case 'delete':
        return encodeResult(this.applyDelete(decoded.num, decoded.shards));
      case 'gcdone':
        return encodeResult(this.applyGcDone(decoded.num, decoded.shards));
      default:
        return decoded satisfies never;
    }
  }

  private serves(shard: number): Shard | undefined {
    const held = this.shards.get(shard);
    if (held === undefined) return undefined;
    if (this.unsafe.noServeDuringMigration === true && [...this.shards.values()].some((other) => other.state === 'pulling')) return undefined;
    if (held.state === 'serving' || held.state === 'gc') return held;
    if (held.state === 'pulling' && this.unsafe.serveBeforeArrival === true) return held;
    return undefined;
  }

  private applyOp(op: ShardKvOp): ShardKvResult {
    const shard = this.serves(key2shard(op.key));
    if (shard === undefined) return { err: 'ErrWrongGroup', value: `group ${this.gid} does not serve shard ${key2shard(op.key)} in configuration ${this.current.num}` };
    if (op.kind === 'get') return { err: 'OK', value: shard.data.get(op.key) ?? '' };
    if (op.client !== 0) {
      if (op.seq <= (this.sessions.get(op.client) ?? 0)) return { err: 'OK', value: '' };
      this.sessions.set(op.client, op.seq);
    }
    shard.data.set(op.key, op.kind === 'put' ? op.value : (shard.data.get(op.key) ?? '') + op.value);
    return { err: 'OK', value: '' };
  }

  private applyConfig(next: ShardConfig): ShardKvResult {
    if (next.num !== this.current.num + 1) return { err: 'OK', value: `configuration ${next.num} is not the next after ${this.current.num}: ignored` };
    if (!this.settled) return { err: 'OK', value: `configuration ${this.current.num} is not installed yet: ${next.num} ignored` };
    for (let s = 0; s < shardCount; s++) {
      const had = this.current.shards[s] === this.gid;
      const gets = next.shards[s] === this.gid;
      if (gets && !had) {
        // From no group (configuration 0's gid 0): nothing to pull.
        this.shards.set(s, { state: this.current.shards[s] === 0 ? 'serving' : 'pulling', data: new Map() });
      } else if (had && !gets) {
        const shard = this.shards.get(s);
        assert(shard !== undefined && shard.state === 'serving', 'a settled group serves every shard it owns');
        if (next.shards[s] === 0) this.shards.delete(s);
        else shard.state = 'handoff';
      }
    }
    this.previous = this.current;
    this.current = next;
    return { err: 'OK', value: '' };
  }

  /** A page of pulled data; the final page completes the shards it lists (they are served from here on). */
  private applyInsert(num: number, shards: ReadonlyMap<number, ShardData>, sessions: ReadonlyMap<number, number>, final: boolean): ShardKvResult {
    if (num !== this.current.num) return { err: 'OK', value: 'stale insert' };
    let installed = 0;
    for (const [s, data] of shards) {
      const shard = this.shards.get(s);
      if (shard === undefined || shard.state !== 'pulling') continue;
      // A page again (a new leader pulls from the start) sets the same frozen values again.
      for (const [key, value] of data) shard.data.set(key, value);
      if (!final && this.unsafe.completeOnFirstPage !== true) continue;
      shard.state = 'gc';
      installed++;
    }
    if (installed > 0) for (const [client, seq] of sessions) this.sessions.set(client, Math.max(seq, this.sessions.get(client) ?? 0));
    return { err: 'OK', value: '' };
  }

  private applyDelete(num: number, shards: readonly number[]): ShardKvResult {
    if (num !== this.current.num) return { err: 'OK', value: 'stale delete' };
    for (const s of shards) {
      const shard = this.shards.get(s);
      if (shard?.state !== 'handoff') continue;
      if (this.unsafe.noGarbageCollection === true) this.retained.push(shard.data);
      this.shards.delete(s);
    }
    return { err: 'OK', value: '' };
  }

  private applyGcDone(num: number, shards: readonly number[]): ShardKvResult {
    if (num !== this.current.num) return { err: 'OK', value: 'stale gcdone' };
    for (const s of shards) {
      const shard = this.shards.get(s);
      if (shard?.state === 'gc') shard.state = 'serving';
    }
    return { err: 'OK', value: '' };
  }

  // ---- Snapshots ----------------------------------------------------------------------------
  //
  //   [format, applied, previous, current, [shard, state, [key, value, ...], ...], [client, seq, ...], retained]
  //
  // `retained` is [] except with the planted bug noGarbageCollection: [[key, value, ...], ...].

  snapshot(): Uint8Array {
    const shards: unknown[] = [];
    for (const s of [...this.shards.keys()].sort((a, b) => a - b)) {
      const shard = this.shards.get(s)!;
      shards.push(s, shardStates.indexOf(shard.state), shardsToArray(new Map([[s, shard.data]]))[1]);
    }
    const retained = this.retained.map((data) => shardsToArray(new Map([[0, data]]))[1]);
    return pack([snapshotFormat, this.applied, configToArray(this.previous), configToArray(this.current), shards, sessionsToArray(this.sessions), retained]);
  }

  restore(data: Uint8Array, index: Index): void {
    const raw = unpackArray(data, 'snapshot');
    assert(raw[0] === snapshotFormat, `snapshot format ${String(raw[0])} is not ${snapshotFormat}`);
    assert(count(raw[1], 'applied') <= index, 'the snapshot holds an index beyond the log');
    const shards = raw[4];
    assert(Array.isArray(shards) && shards.length % 3 === 0, 'snapshot shards are triples');
    this.previous = configFromArray(raw[2]);
    this.current = configFromArray(raw[3]);
    this.shards.clear();
    for (let i = 0; i < shards.length; i += 3) {
      const s = count(shards[i], 'shard');
      const state = shardStates[count(shards[i + 1], 'state')];
      assert(state !== undefined && s < shardCount, 'a snapshot shard has a known state');
      const data = shardsFromArray([s, shards[i + 2]]).get(s)!;
      this.shards.set(s, { state, data });
    }
    this.sessions.clear();
    for (const [client, seq] of sessionsFromArray(raw[5])) this.sessions.set(client, seq);
    const retained = raw[6];
    assert(Array.isArray(retained), 'snapshot retained shards are a list');
    this.retained.length = 0;
    for (const data of retained) this.retained.push(shardsFromArray([0, data]).get(0)!);
    this.applied = index;
  }

  /** One line, for failure messages. */
  describe(): string {
    const states = Array.from({ length: shardCount }, (_, s) => {
      const shard = this.shards.get(s);
      return shard === undefined ? '-' : `${shard.state[0]}${shard.data.size}`;
    });
    return `gid=${this.gid} num=${this.current.num} shards=[${states.join(' ')}] sessions=${this.sessions.size}`;
  }
}
