// The key/value service's replicated state machine (DESIGN.md §5): deterministic, free of
// I/O, and total — apply() answers every input, a malformed one included, with a result
// and never an exception, so every member computes the same state from the same log.
//
// Operations: get, put, append, delete, compare-and-set on the key's version, and scan
// by prefix with a limit and a continuation. Every key carries a version: the log index
// of the command that last wrote it (so versions only grow, and a deleted-then-recreated
// key gets a new one). Exactly-once through sessions (sessions.ts). The 6.824 lab's
// semantics are a subset: get of a missing key is "" to a lab clerk, put, append.

import { assert, unreachable } from '../stdx/assert.js';
import type { Index } from '../stdx/types.js';
import type { ReplicatedService } from '../runtime/replica.js';
import { KvDecodeError, bytes, count, decodeCommand, encodeResult, pack, text, unpackArray, type KvErrorCode, type KvOp, type KvResult } from './codec.js';
import { kvDefaults, type KvLimits } from './limits.js';
import { SessionTable, type Session } from './sessions.js';
import { KvSnapshotEncoder, sessionRecord } from './snapshot.js';
import { KvStore } from './store.js';

/** The first field of a snapshot: bumped when the layout changes. */
const snapshotFormat = 1;

/**
 * Deliberately broken variants of the state machine, for proving that the checkers the
 * key/value tests run catch them (STYLE.md 18; test/kv/planted.test.ts). Never set outside
 * tests.
 */
export interface KvUnsafe {
  /** Ignore the session table: every command runs, so a retried write is applied again (thesis §6.3). */
  readonly noDuplicateDetection?: boolean;
  /**
   * Leave the sessions out of snapshots (an empty session list): a member restored from a
   * snapshot has forgotten which writes ran, so a retry of a client's first write is applied
   * again, and a later write of the session is refused as session-expired.
   */
  readonly sessionsNotInSnapshot?: boolean;
}

export class KvStateMachine implements ReplicatedService {
  readonly limits: KvLimits;
  private readonly store = new KvStore();
  private readonly sessions: SessionTable;
  /** Invariant: the index of the last command applied (or of the snapshot restored). */
  private applied = 0;
  /** The largest leader time stamp seen: the log's clock. Never decreases. */
  private clockMs = 0;

  constructor(
    limits: Partial<KvLimits> = {},
    private readonly unsafe: KvUnsafe = {},
  ) {
    this.limits = { ...kvDefaults, ...limits };
    assert(this.limits.scanLimitMax >= 1, 'scanLimitMax >= 1');
    assert(this.limits.sessionRepliesMax >= 1, 'sessionRepliesMax >= 1');
    assert(this.limits.sessionsMax >= 1, 'sessionsMax >= 1');
    this.sessions = new SessionTable(this.limits);
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get logClockMs(): number {
    return this.clockMs;
  }

  get keyCount(): number {
    return this.store.size;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  apply(command: Uint8Array, index: Index): Uint8Array {
    assert(index > this.applied, `entries apply in log order: ${index} after ${this.applied}`);
    this.applied = index;
    let decoded: ReturnType<typeof decodeCommand>;
    try {
      decoded = decodeCommand(command);
    } catch (error) {
      if (!(error instanceof KvDecodeError)) throw error;
      return encodeResult(failure('malformed', error.message));
    }
    this.clockMs = Math.max(this.clockMs, decoded.timeMs);
    this.sessions.expire(this.clockMs);
    const stamp = decoded.session;
    if (stamp === undefined || this.unsafe.noDuplicateDetection === true) return encodeResult(this.execute(decoded.op, index));
    const decision = this.sessions.decide(stamp, this.clockMs);
    switch (decision.kind) {
      case 'reply':
        return decision.reply;
      case 'refuse':
        return encodeResult(failure(decision.code, decision.message));
      case 'run': {
        const reply = encodeResult(this.execute(decoded.op, index));
        this.sessions.record(decision.session, stamp.seq, reply);
        return reply;
      }
      default:
        return unreachable(decision, 'session decision');
    }
  }

  /**
   * A read against the current state, outside the log: after a ReadIndex read (linearizable)
   * or right away (serializable: possibly stale). Only get and scan; they change nothing.
   */
  query(op: KvOp): KvResult {
    assert(op.kind === 'get' || op.kind === 'scan', 'queries only read');
    return this.execute(op, this.applied);
  }

  private execute(op: KvOp, index: number): KvResult {
    switch (op.kind) {
      case 'get':
        return this.get(op.key);
      case 'put':
        return this.write(op.key, op.value, index);
      case 'append':
        return this.append(op.key, op.value, index);
      case 'delete':
        return this.remove(op.key);
      case 'cas':
        return this.compareAndSet(op.key, op.version, op.value, index);
      case 'scan':
        return this.scan(op.prefix, op.limit, op.after);
      default:
        return unreachable(op, 'kv op');
    }
  }

  private get(key: string): KvResult {
    const refusal = this.checkKey(key);
    if (refusal !== undefined) return refusal;
    const item = this.store.get(key);
    return { kind: 'value', value: item?.value ?? null, version: item?.version ?? 0 };
  }

  private write(key: string, value: Uint8Array, index: number): KvResult {
    const refusal = this.checkKey(key) ?? this.checkValue(value.length) ?? this.checkRoom(key);
    if (refusal !== undefined) return refusal;
    // Copy: the command's bytes may be a view into a larger buffer (a WAL segment, a frame).
    this.store.set(key, Uint8Array.from(value), index);
    return { kind: 'written', version: index };
  }

  private append(key: string, suffix: Uint8Array, index: number): KvResult {
    const refusal = this.checkKey(key);
    if (refusal !== undefined) return refusal;
    const length = this.store.get(key)?.length ?? 0;
    const tooLarge = this.checkValue(length + suffix.length) ?? this.checkRoom(key);
    if (tooLarge !== undefined) return tooLarge;
    this.store.append(key, Uint8Array.from(suffix), index);
    return { kind: 'written', version: index };
  }

  private remove(key: string): KvResult {
    const refusal = this.checkKey(key);
    if (refusal !== undefined) return refusal;
    return { kind: 'deleted', existed: this.store.delete(key) };
  }

  private compareAndSet(key: string, expected: number, value: Uint8Array, index: number): KvResult {
    const refusal = this.checkKey(key) ?? this.checkValue(value.length);
    if (refusal !== undefined) return refusal;
    const version = this.store.get(key)?.version ?? 0;
    if (version !== expected) return { kind: 'cas', swapped: false, version };
    const full = this.checkRoom(key);
    if (full !== undefined) return full;
    this.store.set(key, Uint8Array.from(value), index);
    return { kind: 'cas', swapped: true, version: index };
  }

  private scan(prefix: string, limit: number, after: string): KvResult {
    if (limit < 1 || limit > this.limits.scanLimitMax) {
      return failure('scan-limit', `a scan returns 1 to ${this.limits.scanLimitMax} entries (scanLimitMax); asked for ${limit}`);
    }
    const page = this.store.scan(prefix, after, limit);
    return { kind: 'scan', entries: page.entries, next: page.next };
  }

  private checkKey(key: string): KvResult | undefined {
    if (key.length === 0) return failure('key-invalid', 'the key is empty');
    const length = Buffer.byteLength(key, 'utf8');
    if (length > this.limits.keyBytesMax) return failure('key-invalid', `the key has ${length} bytes; the limit (keyBytesMax) is ${this.limits.keyBytesMax}`);
    return undefined;
  }

  private checkValue(length: number): KvResult | undefined {
    if (length <= this.limits.valueBytesMax) return undefined;
    return failure('value-too-large', `the value would have ${length} bytes; the limit (valueBytesMax) is ${this.limits.valueBytesMax}`);
  }

  /** Refuses to create a key beyond keysMax (overwrites are always fine). */
  private checkRoom(key: string): KvResult | undefined {
    if (this.store.get(key) !== undefined || this.store.size < this.limits.keysMax) return undefined;
    return failure('keys-full', `the store holds ${this.store.size} keys (keysMax)`);
  }

  // ---- Snapshots ----------------------------------------------------------------------------
  //
  //   [format, applied, clockMs, [key, value, version, ...], [client, lastMs, ack, [seq, reply, ...], ...]]
  //
  // Keys sorted (equal states encode equally); sessions least recently used first (eviction
  // after a restore must pick the same session as on a member that never restored).

  /** The whole state at once (blocks for the whole encoding; see beginSnapshot()). */
  snapshot(): Uint8Array {
    const keys: unknown[] = [];
    for (const entry of this.store.entries()) keys.push(entry.key, entry.value, entry.version);
    const sessions: unknown[] = [];
    for (const session of this.snapshotSessions()) {
      const replies: unknown[] = [];
      for (const [seq, reply] of session.replies) replies.push(seq, reply);
      sessions.push(session.client, session.lastMs, session.ack, replies);
    }
    return pack([snapshotFormat, this.applied, this.clockMs, keys, sessions]);
  }

  /**
   * Starts an incremental snapshot of the state as of now (snapshot.ts): the caller steps it
   * across event-loop turns while apply() goes on, and gets the same bytes snapshot() would
   * have returned now. One at a time; restore() must not run before it is finished or
   * aborted. Cost now: the sorted key list (see KvStore.beginCapture) and a copy of the
   * sessions' fields, O(sessions + kept replies).
   */
  beginSnapshot(): KvSnapshotEncoder {
    const capture = this.store.beginCapture();
    const sessions = this.snapshotSessions().map(sessionRecord);
    return new KvSnapshotEncoder(capture, sessions, this.applied, this.clockMs, snapshotFormat, () => this.store.endCapture(capture));
  }

  /** The sessions a snapshot holds: all of them, least recently used first. */
  private snapshotSessions(): Session[] {
    return this.unsafe.sessionsNotInSnapshot === true ? [] : this.sessions.all();
  }

  /** Replaces the whole state with a snapshot taken at `index`. Throws on a corrupt snapshot. */
  restore(data: Uint8Array, index: Index): void {
    const raw = unpackArray(data, 'snapshot');
    assert(raw[0] === snapshotFormat, `snapshot format ${String(raw[0])} is not ${snapshotFormat}`);
    const applied = count(raw[1], 'applied');
    // The runtime snapshots at the node's applied index, which may pass the last command
    // the service saw: no-ops and configuration entries never reach the service and change
    // nothing here. So the snapshot's own index may trail the log's, never pass it.
    assert(applied <= index, `the snapshot holds index ${applied}, beyond the log's ${index}`);
    const keys = raw[3];
    const sessions = raw[4];
    assert(Array.isArray(keys) && keys.length % 3 === 0, 'snapshot keys are triples');
    assert(Array.isArray(sessions) && sessions.length % 4 === 0, 'snapshot sessions are quadruples');
    this.store.clear();
    for (let i = 0; i < keys.length; i += 3) {
      this.store.set(text(keys[i], 'key'), Uint8Array.from(bytes(keys[i + 1], 'value')), count(keys[i + 2], 'version'));
    }
    this.sessions.clear();
    for (let i = 0; i < sessions.length; i += 4) this.restoreSession(sessions, i);
    this.applied = index;
    this.clockMs = count(raw[2], 'clock');
  }

  private restoreSession(sessions: unknown[], at: number): void {
    const replies = sessions[at + 3];
    assert(Array.isArray(replies) && replies.length % 2 === 0, 'session replies are pairs');
    const session = { client: count(sessions[at], 'client'), lastMs: count(sessions[at + 1], 'lastMs'), ack: count(sessions[at + 2], 'ack'), replies: new Map<number, Uint8Array>() };
    for (let j = 0; j < replies.length; j += 2) session.replies.set(count(replies[j], 'seq'), Uint8Array.from(bytes(replies[j + 1], 'reply')));
    this.sessions.load(session);
  }
}

function failure(code: KvErrorCode, message: string): KvResult {
  return { kind: 'error', code, message };
}
