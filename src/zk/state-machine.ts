// The coordination service's replicated state machine (DESIGN.md §5): the znode tree and
// the session table, changed only by committed commands. Deterministic, free of I/O, and
// total — apply() answers every input, a malformed one included, with a result and never
// an exception, so every member computes the same state from the same log.
//
// Sessions (docs/zookeeper.md §2.1) are replicated: 'open' creates one (its
// id is derived from the log index, so it is unique and the same everywhere), 'attach'
// binds it to the connection a client resumed on, 'close' ends it (client request or the
// leader's expiry) and deletes its ephemeral nodes at one zxid. Deadlines are leader-local
// soft state and live in the front-end, not here.
//
// Writes carry the session's owner and a per-session sequence number. A write from a
// connection the session has moved away from is refused (sessionMoved), and one whose seq
// is not the next is refused (OUT_OF_ORDER): the front-end numbers a session's writes in
// the order the client sent them, so this keeps FIFO per session (§2.5) across retries
// and leader changes — a write proposed twice applies once, a gap is never skipped.
//
// Commands and results are MessagePack arrays (msgpackr plain mode), not maps:
//
//   command  open    [0, timeoutMs, passwd, owner, origin]
//            attach  [1, sessionId, passwd, owner, origin]
//            close   [2, sessionId, reason (0 client | 1 expire), origin]
//            write   [3, sessionId, owner, seq, timeMs, [scheme, id, ...], [op, ...], multi, origin]
//              op    create [0, path, data, acl, flags, withStat] | delete [1, path, version]
//                    setData [2, path, data, version] | setACL [3, path, acl, version] | check [4, path, version]
//   result   session [0, sessionId, timeoutMs, passwd]
//            closed  [1]
//            write   [2, [result, ...]]
//              result create [0, path, stat, withStat] | delete [1] | setData [2, stat] | setACL [3, stat]
//                     check [4] | error [5, err]
//            error   [3, err]
//
// with acl = [perms, scheme, id, ...] and stat = the 11 Stat fields in wire order (§1.6).

import { assert, unreachable } from '../stdx/assert.js';
import type { ReplicatedService } from '../runtime/replica.js';
import { Err } from './constants.js';
import { DataTree } from './tree.js';
import {
  TreeSnapshotEncoder,
  ZkDecodeError,
  aclFields,
  aclList,
  array,
  bytes,
  count,
  data,
  decodeSnapshot,
  encodeSnapshot,
  flag,
  idFields,
  idList,
  int32,
  integer,
  pack,
  text,
  unpackArray,
  type SessionRecord,
} from './tree-snapshot.js';
import type { Id, Stat, WatchTrigger, WriteOp, WriteResult } from './types.js';

export type { SessionRecord } from './tree-snapshot.js';

/** A write whose seq is not the session's lastSeq + 1: not applied (a duplicate, or one past a gap). */
export const OUT_OF_ORDER = -1000;

/** Session ids are the index of their 'open' plus this: unique, deterministic, and far from 0. */
export const sessionIdBase = 2 ** 40;

export type ZkCommand =
  | { t: 'open'; timeoutMs: number; passwd: Uint8Array; owner: string; origin: string }
  | { t: 'attach'; sessionId: number; passwd: Uint8Array; owner: string; origin: string }
  | { t: 'close'; sessionId: number; reason: 'client' | 'expire'; origin: string }
  | { t: 'write'; sessionId: number; owner: string; seq: number; timeMs: number; auth: Id[]; ops: WriteOp[]; multi: boolean; origin: string };

export type ZkResult =
  | { t: 'session'; sessionId: number; timeoutMs: number; passwd: Uint8Array }
  | { t: 'closed' }
  | { t: 'write'; results: WriteResult[] }
  /** sessionExpired (unknown session), authFailed (wrong password on attach), sessionMoved (owner mismatch), OUT_OF_ORDER, marshallingError (undecodable command). */
  | { t: 'error'; err: number };

export interface ZkApplyEvent {
  /** The log index of the command: the zxid of everything it changed. */
  readonly zxid: number;
  /** undefined: the command did not decode (the result is marshallingError). */
  readonly command: ZkCommand | undefined;
  readonly result: ZkResult;
  /** The watches the command fires, in order (empty unless it changed the tree). */
  readonly triggers: readonly WatchTrigger[];
}

export interface ZkStateMachineOptions {
  /** Called after every apply, on every member: the front-end fires watches and answers its waiting request. */
  onApply?(event: ZkApplyEvent): void;
  /** Called after restore(): the state was replaced wholesale. */
  onRestore?(): void;
}

interface Outcome {
  readonly result: ZkResult;
  readonly triggers: readonly WatchTrigger[];
}

export class ZkStateMachine implements ReplicatedService {
  /** The znode tree. The front-end reads it; only apply() and restore() change it. */
  readonly tree = new DataTree();
  /** Records are replaced, never mutated, so a snapshot can hold a shallow copy of the list. */
  private readonly sessionTable = new Map<number, SessionRecord>();
  /** Invariant: the index of the last command applied (or of the snapshot restored). */
  private applied = 0;

  constructor(private readonly options: ZkStateMachineOptions = {}) {}

  /** The zxid of the state: the index of the last applied command, or of the restored snapshot. */
  get lastZxid(): number {
    return this.applied;
  }

  sessions(): IterableIterator<SessionRecord> {
    return this.sessionTable.values();
  }

  session(sessionId: number): SessionRecord | undefined {
    return this.sessionTable.get(sessionId);
  }

  apply(command: Uint8Array, index: number): Uint8Array {
    assert(index > this.applied, `entries apply in log order: ${index} after ${this.applied}`);
    this.applied = index;
    let decoded: ZkCommand | undefined;
    try {
      decoded = decodeZkCommand(command);
    } catch (error) {
      if (!(error instanceof ZkDecodeError)) throw error;
    }
    const outcome: Outcome = decoded === undefined ? { result: { t: 'error', err: Err.marshallingError }, triggers: [] } : this.execute(decoded, index);
    const reply = encodeZkResult(outcome.result);
    this.options.onApply?.({ zxid: index, command: decoded, result: outcome.result, triggers: outcome.triggers });
    return reply;
  }

  private execute(command: ZkCommand, index: number): Outcome {
    switch (command.t) {
      case 'open':
        return this.open(command, index);
      case 'attach':
        return this.attach(command);
      case 'close':
        return this.close(command, index);
      case 'write':
        return this.write(command, index);
      default:
        return unreachable(command, 'zk command');
    }
  }

  private open(command: Extract<ZkCommand, { t: 'open' }>, index: number): Outcome {
    const sessionId = index + sessionIdBase;
    assert(!this.sessionTable.has(sessionId), 'a log index opens one session');
    const session: SessionRecord = { sessionId, timeoutMs: command.timeoutMs, passwd: command.passwd, owner: command.owner, lastSeq: 0 };
    this.sessionTable.set(sessionId, session);
    return { result: sessionResult(session), triggers: [] };
  }

  /** A client resumed on another connection: it owns the session now and numbers its writes from 1 again. */
  private attach(command: Extract<ZkCommand, { t: 'attach' }>): Outcome {
    const session = this.sessionTable.get(command.sessionId);
    if (session === undefined) return refused(Err.sessionExpired);
    if (!equalBytes(session.passwd, command.passwd)) return refused(Err.authFailed);
    // Owners are unique per connection, so an attach naming the current owner is a duplicate
    // of one already applied (the transport may duplicate a forward): it must not reset
    // lastSeq, or a duplicated write would apply twice (found by the simulator, seed 460).
    if (session.owner === command.owner) return { result: sessionResult(session), triggers: [] };
    const attached: SessionRecord = { ...session, owner: command.owner, lastSeq: 0 };
    this.sessionTable.set(session.sessionId, attached);
    return { result: sessionResult(attached), triggers: [] };
  }

  /** Closing twice (a client close racing the leader's expiry) is fine: the second finds nothing. */
  private close(command: Extract<ZkCommand, { t: 'close' }>, index: number): Outcome {
    const triggers = this.tree.closeSession(command.sessionId, index);
    this.sessionTable.delete(command.sessionId);
    return { result: { t: 'closed' }, triggers };
  }

  private write(command: Extract<ZkCommand, { t: 'write' }>, index: number): Outcome {
    const session = this.sessionTable.get(command.sessionId);
    if (session === undefined) return refused(Err.sessionExpired);
    if (session.owner !== command.owner) return refused(Err.sessionMoved);
    if (command.seq !== session.lastSeq + 1) return refused(OUT_OF_ORDER);
    // The request is consumed whether or not its ops succeed: ZooKeeper answers a failed
    // write once too, and the client's next request follows it.
    this.sessionTable.set(session.sessionId, { ...session, lastSeq: command.seq });
    const outcome = this.tree.transact(command.ops, { zxid: index, timeMs: command.timeMs, sessionId: session.sessionId, ids: command.auth });
    return { result: { t: 'write', results: outcome.results }, triggers: outcome.triggers };
  }

  // ---- Snapshots ----------------------------------------------------------------------------

  /** The whole state at once (blocks for the whole encoding; see beginSnapshot()). */
  snapshot(): Uint8Array {
    return encodeSnapshot(this.applied, this.tree.records(), this.sessionTable.values());
  }

  /**
   * Starts an incremental snapshot of the state as of now (tree-snapshot.ts): the caller
   * steps it across event-loop turns while apply() goes on, and gets the bytes snapshot()
   * would have returned now. One at a time. Cost now: a copy of the path list and of the
   * session list, O(nodes + sessions) pointer copies.
   */
  beginSnapshot(): TreeSnapshotEncoder {
    const capture = this.tree.beginCapture(this.applied);
    return new TreeSnapshotEncoder(capture, [...this.sessionTable.values()], () => this.tree.endCapture(capture));
  }

  /**
   * Replaces the whole state with a snapshot taken at `index`; an incremental snapshot in
   * progress is abandoned (its step() then fails: abort it first). Throws on a corrupt one.
   */
  restore(snapshot: Uint8Array, index: number): void {
    const decoded = decodeSnapshot(snapshot);
    // The runtime snapshots at the node's applied index, which may pass the last command the
    // service saw (no-ops and configuration entries never reach it), never trail it.
    assert(decoded.zxid <= index, `the snapshot holds index ${decoded.zxid}, beyond the log's ${index}`);
    this.tree.load(decoded.nodes);
    this.sessionTable.clear();
    for (const session of decoded.sessions) {
      assert(!this.sessionTable.has(session.sessionId), `a snapshot holds session ${session.sessionId} once`);
      this.sessionTable.set(session.sessionId, session);
    }
    // The zxid of the state is the last command's index, which the snapshot holds; the
    // runtime's index may be a later no-op, which other members (that applied the same
    // commands) do not count (found by the simulator, seed 72).
    this.applied = decoded.zxid;
    this.options.onRestore?.();
  }
}

function sessionResult(session: SessionRecord): ZkResult {
  return { t: 'session', sessionId: session.sessionId, timeoutMs: session.timeoutMs, passwd: session.passwd };
}

function refused(err: number): Outcome {
  return { result: { t: 'error', err }, triggers: [] };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- Codec ---------------------------------------------------------------------------------

const commandTag = { open: 0, attach: 1, close: 2, write: 3 } as const;
const opTag = { create: 0, delete: 1, setData: 2, setACL: 3, check: 4 } as const;
const resultTag = { session: 0, closed: 1, write: 2, error: 3 } as const;
const writeResultTag = { create: 0, delete: 1, setData: 2, setACL: 3, check: 4, error: 5 } as const;

export function encodeZkCommand(command: ZkCommand): Uint8Array {
  switch (command.t) {
    case 'open':
      return pack([commandTag.open, command.timeoutMs, command.passwd, command.owner, command.origin]);
    case 'attach':
      return pack([commandTag.attach, command.sessionId, command.passwd, command.owner, command.origin]);
    case 'close':
      return pack([commandTag.close, command.sessionId, command.reason === 'client' ? 0 : 1, command.origin]);
    case 'write':
      return pack([commandTag.write, command.sessionId, command.owner, command.seq, command.timeMs, idFields(command.auth), command.ops.map(opFields), command.multi, command.origin]);
    default:
      return unreachable(command, 'zk command');
  }
}

function opFields(op: WriteOp): unknown[] {
  switch (op.op) {
    case 'create':
      return [opTag.create, op.path, op.data, aclFields(op.acl), op.flags, op.withStat];
    case 'delete':
      return [opTag.delete, op.path, op.version];
    case 'setData':
      return [opTag.setData, op.path, op.data, op.version];
    case 'setACL':
      return [opTag.setACL, op.path, aclFields(op.acl), op.version];
    case 'check':
      return [opTag.check, op.path, op.version];
    default:
      return unreachable(op, 'write op');
  }
}

/** Decodes a command, checking every field's shape. Throws ZkDecodeError. */
export function decodeZkCommand(encoded: Uint8Array): ZkCommand {
  const raw = unpackArray(encoded, 'command');
  switch (raw[0]) {
    case commandTag.open:
      fieldCount(raw, 5, 'open');
      return { t: 'open', timeoutMs: count(raw[1], 'timeoutMs'), passwd: bytes(raw[2], 'passwd'), owner: text(raw[3], 'owner'), origin: text(raw[4], 'origin') };
    case commandTag.attach:
      fieldCount(raw, 5, 'attach');
      return { t: 'attach', sessionId: integer(raw[1], 'sessionId'), passwd: bytes(raw[2], 'passwd'), owner: text(raw[3], 'owner'), origin: text(raw[4], 'origin') };
    case commandTag.close:
      fieldCount(raw, 4, 'close');
      if (raw[2] !== 0 && raw[2] !== 1) throw new ZkDecodeError('close reason is not 0 or 1');
      return { t: 'close', sessionId: integer(raw[1], 'sessionId'), reason: raw[2] === 0 ? 'client' : 'expire', origin: text(raw[3], 'origin') };
    case commandTag.write:
      return decodeWrite(raw);
    default:
      throw new ZkDecodeError(`unknown command tag ${String(raw[0])}`);
  }
}

function decodeWrite(raw: unknown[]): ZkCommand {
  fieldCount(raw, 9, 'write');
  const ops = array(raw[6], 'ops').map(decodeOp);
  const multi = flag(raw[7], 'multi');
  // A plain write is exactly one operation; a multi may be empty (ZooKeeper accepts that).
  if (!multi && ops.length !== 1) throw new ZkDecodeError(`a write that is not a multi has 1 op, not ${ops.length}`);
  return {
    t: 'write',
    sessionId: integer(raw[1], 'sessionId'),
    owner: text(raw[2], 'owner'),
    seq: count(raw[3], 'seq'),
    timeMs: integer(raw[4], 'timeMs'),
    auth: idList(raw[5], 'auth'),
    ops,
    multi,
    origin: text(raw[8], 'origin'),
  };
}

function decodeOp(value: unknown): WriteOp {
  const raw = array(value, 'op');
  const path = text(raw[1], 'path');
  switch (raw[0]) {
    case opTag.create:
      fieldCount(raw, 6, 'create');
      return { op: 'create', path, data: data(raw[2], 'data'), acl: aclList(raw[3], 'acl'), flags: int32(raw[4], 'flags'), withStat: flag(raw[5], 'withStat') };
    case opTag.delete:
      fieldCount(raw, 3, 'delete');
      return { op: 'delete', path, version: int32(raw[2], 'version') };
    case opTag.setData:
      fieldCount(raw, 4, 'setData');
      return { op: 'setData', path, data: data(raw[2], 'data'), version: int32(raw[3], 'version') };
    case opTag.setACL:
      fieldCount(raw, 4, 'setACL');
      return { op: 'setACL', path, acl: aclList(raw[2], 'acl'), version: int32(raw[3], 'version') };
    case opTag.check:
      fieldCount(raw, 3, 'check');
      return { op: 'check', path, version: int32(raw[2], 'version') };
    default:
      throw new ZkDecodeError(`unknown op tag ${String(raw[0])}`);
  }
}

function fieldCount(raw: unknown[], expected: number, what: string): void {
  if (raw.length !== expected) throw new ZkDecodeError(`${what} has ${expected} fields, not ${raw.length}`);
}

export function encodeZkResult(result: ZkResult): Uint8Array {
  switch (result.t) {
    case 'session':
      return pack([resultTag.session, result.sessionId, result.timeoutMs, result.passwd]);
    case 'closed':
      return pack([resultTag.closed]);
    case 'write':
      return pack([resultTag.write, result.results.map(writeResultFields)]);
    case 'error':
      return pack([resultTag.error, result.err]);
    default:
      return unreachable(result, 'zk result');
  }
}

function writeResultFields(result: WriteResult): unknown[] {
  switch (result.op) {
    case 'create':
      return [writeResultTag.create, result.path, statFields(result.stat), result.withStat];
    case 'delete':
      return [writeResultTag.delete];
    case 'setData':
      return [writeResultTag.setData, statFields(result.stat)];
    case 'setACL':
      return [writeResultTag.setACL, statFields(result.stat)];
    case 'check':
      return [writeResultTag.check];
    case 'error':
      return [writeResultTag.error, result.err];
    default:
      return unreachable(result, 'write result');
  }
}

/** Decodes a result (from this process's own apply, but checked all the same). Throws ZkDecodeError. */
export function decodeZkResult(encoded: Uint8Array): ZkResult {
  const raw = unpackArray(encoded, 'result');
  switch (raw[0]) {
    case resultTag.session:
      fieldCount(raw, 4, 'session');
      return { t: 'session', sessionId: integer(raw[1], 'sessionId'), timeoutMs: count(raw[2], 'timeoutMs'), passwd: bytes(raw[3], 'passwd') };
    case resultTag.closed:
      fieldCount(raw, 1, 'closed');
      return { t: 'closed' };
    case resultTag.write:
      fieldCount(raw, 2, 'write');
      return { t: 'write', results: array(raw[1], 'results').map(decodeWriteResult) };
    case resultTag.error:
      fieldCount(raw, 2, 'error');
      return { t: 'error', err: int32(raw[1], 'err') };
    default:
      throw new ZkDecodeError(`unknown result tag ${String(raw[0])}`);
  }
}

function decodeWriteResult(value: unknown): WriteResult {
  const raw = array(value, 'write result');
  switch (raw[0]) {
    case writeResultTag.create:
      fieldCount(raw, 4, 'create result');
      return { op: 'create', path: text(raw[1], 'path'), stat: decodeStat(raw[2]), withStat: flag(raw[3], 'withStat') };
    case writeResultTag.delete:
      fieldCount(raw, 1, 'delete result');
      return { op: 'delete' };
    case writeResultTag.setData:
      fieldCount(raw, 2, 'setData result');
      return { op: 'setData', stat: decodeStat(raw[1]) };
    case writeResultTag.setACL:
      fieldCount(raw, 2, 'setACL result');
      return { op: 'setACL', stat: decodeStat(raw[1]) };
    case writeResultTag.check:
      fieldCount(raw, 1, 'check result');
      return { op: 'check' };
    case writeResultTag.error:
      fieldCount(raw, 2, 'error result');
      return { op: 'error', err: int32(raw[1], 'err') };
    default:
      throw new ZkDecodeError(`unknown write result tag ${String(raw[0])}`);
  }
}

function statFields(stat: Stat): number[] {
  return [stat.czxid, stat.mzxid, stat.ctime, stat.mtime, stat.version, stat.cversion, stat.aversion, stat.ephemeralOwner, stat.dataLength, stat.numChildren, stat.pzxid];
}

function decodeStat(value: unknown): Stat {
  const raw = array(value, 'stat');
  fieldCount(raw, 11, 'stat');
  return {
    czxid: integer(raw[0], 'czxid'),
    mzxid: integer(raw[1], 'mzxid'),
    ctime: integer(raw[2], 'ctime'),
    mtime: integer(raw[3], 'mtime'),
    version: int32(raw[4], 'version'),
    cversion: int32(raw[5], 'cversion'),
    aversion: int32(raw[6], 'aversion'),
    ephemeralOwner: integer(raw[7], 'ephemeralOwner'),
    dataLength: int32(raw[8], 'dataLength'),
    numChildren: int32(raw[9], 'numChildren'),
    pzxid: integer(raw[10], 'pzxid'),
  };
}
