// Snapshots of the coordination service's state, whole or a batch of nodes at a time, and
// the MessagePack plumbing the state machine's codec shares with them.
//
// The tree keeps copy-on-write preimages (tree.ts, TreeCapture): the first change to a node
// after the snapshot began — a delete included — saves its old record, so the encoder reads
// every node as it was at the snapshot's zxid while applies go on. Sessions are few and
// small records that are replaced, never mutated, so the list of them is copied at the start.
//
// The bytes equal encodeSnapshot()'s at the same state, so one decoder reads both:
//
//   [format, zxid,
//    [path, data, acl, czxid, mzxid, ctime, mtime, version, aversion, ephemeralOwner, pzxid, creations, ...],
//    [sessionId, timeoutMs, passwd, owner, lastSeq, ...]]
//
// with acl = [perms, scheme, id, ...]. Child sets are not stored: they follow from the paths.
// A MessagePack array is a header holding its length followed by its elements, each encoded
// on its own, so the outer arrays' headers are written from the known counts and each batch
// is msgpackr's encoding of a flat array with that array's own header cut off (as kv/snapshot.ts).

import { Packr } from 'msgpackr';
import { SectionedSnapshotEncoder } from '../runtime/sectioned-snapshot.js';
import { assert } from '../stdx/assert.js';
import type { NodeRecord, TreeCapture } from './tree.js';
import type { Acl, Data, Id } from './types.js';

/** The first field of a snapshot: bumped when the layout changes. */
export const snapshotFormat = 1;

const nodeFieldCount = 12;
const sessionFieldCount = 5;

/** Plain mode: arrays and maps only, no msgpackr records, so every member decodes alike. */
const packr = new Packr({ useRecords: false });

export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Bytes that are not what they claim to be: a command from a buggy or hostile proposer, or a corrupt snapshot. */
export class ZkDecodeError extends Error {
  override name = 'ZkDecodeError';
}

/** Unpacks `bytes`, which must hold exactly one MessagePack array. */
export function unpackArray(bytes: Uint8Array, what: string): unknown[] {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (error) {
    throw new ZkDecodeError(`${what} is not MessagePack: ${error instanceof Error ? error.message : String(error)}`);
  }
  return array(value, what);
}

// ---- Field decoders: each checks one field's shape (STYLE.md 6) ------------------------------

export function array(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new ZkDecodeError(`${what} is not an array`);
  return value;
}

export function int32(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new ZkDecodeError(`${what} is not a 32-bit integer`);
  }
  return value;
}

/** An integer JavaScript holds exactly (zxids, session ids, times). */
export function integer(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new ZkDecodeError(`${what} is not a safe integer`);
  return value;
}

export function count(value: unknown, what: string): number {
  const n = integer(value, what);
  if (n < 0) throw new ZkDecodeError(`${what} is negative`);
  return n;
}

export function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new ZkDecodeError(`${what} is not a string`);
  return value;
}

export function flag(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw new ZkDecodeError(`${what} is not a boolean`);
  return value;
}

/**
 * A plain Uint8Array copy: msgpackr hands out Buffers that are views into the input (a log
 * entry, a snapshot), and the state keeps what it decodes.
 */
export function bytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new ZkDecodeError(`${what} is not bytes`);
  return new Uint8Array(value);
}

/** Node data: bytes, or null (distinct from empty, §1.2). */
export function data(value: unknown, what: string): Data {
  return value === null ? null : bytes(value, what);
}

export function aclFields(acl: readonly Acl[]): unknown[] {
  const flat: unknown[] = [];
  for (const entry of acl) flat.push(entry.perms, entry.id.scheme, entry.id.id);
  return flat;
}

export function aclList(value: unknown, what: string): Acl[] {
  const flat = array(value, what);
  if (flat.length % 3 !== 0) throw new ZkDecodeError(`${what} is not (perms, scheme, id) triples`);
  const acl: Acl[] = [];
  for (let i = 0; i < flat.length; i += 3) {
    acl.push({ perms: int32(flat[i], `${what} perms`), id: { scheme: text(flat[i + 1], `${what} scheme`), id: text(flat[i + 2], `${what} id`) } });
  }
  return acl;
}

export function idFields(ids: readonly Id[]): unknown[] {
  const flat: unknown[] = [];
  for (const id of ids) flat.push(id.scheme, id.id);
  return flat;
}

export function idList(value: unknown, what: string): Id[] {
  const flat = array(value, what);
  if (flat.length % 2 !== 0) throw new ZkDecodeError(`${what} is not (scheme, id) pairs`);
  const ids: Id[] = [];
  for (let i = 0; i < flat.length; i += 2) ids.push({ scheme: text(flat[i], `${what} scheme`), id: text(flat[i + 1], `${what} id`) });
  return ids;
}

// ---- Snapshots --------------------------------------------------------------------------------

/** A session as the replicated state and its snapshots hold it. */
export interface SessionRecord {
  readonly sessionId: number;
  readonly timeoutMs: number;
  readonly passwd: Uint8Array;
  /** The member and connection the session is bound to now (sessionMoved otherwise). */
  readonly owner: string;
  /** The seq of the last write applied for the session; the next must be lastSeq + 1. */
  readonly lastSeq: number;
}

export interface DecodedSnapshot {
  readonly zxid: number;
  readonly nodes: [string, NodeRecord][];
  readonly sessions: SessionRecord[];
}

function pushNode(flat: unknown[], path: string, node: NodeRecord): void {
  flat.push(path, node.data, aclFields(node.acl), node.czxid, node.mzxid, node.ctime, node.mtime, node.version, node.aversion, node.ephemeralOwner, node.pzxid, node.creations);
}

function pushSession(flat: unknown[], session: SessionRecord): void {
  flat.push(session.sessionId, session.timeoutMs, session.passwd, session.owner, session.lastSeq);
}

/** The whole state at once (blocks for the whole encoding; see TreeSnapshotEncoder). */
export function encodeSnapshot(zxid: number, nodes: Iterable<readonly [string, NodeRecord]>, sessions: Iterable<SessionRecord>): Uint8Array {
  const nodeFlat: unknown[] = [];
  for (const [path, node] of nodes) pushNode(nodeFlat, path, node);
  const sessionFlat: unknown[] = [];
  for (const session of sessions) pushSession(sessionFlat, session);
  return pack([snapshotFormat, zxid, nodeFlat, sessionFlat]);
}

/** Reads either kind of snapshot. Throws ZkDecodeError on a malformed one. */
export function decodeSnapshot(snapshot: Uint8Array): DecodedSnapshot {
  const raw = unpackArray(snapshot, 'snapshot');
  if (raw.length !== 4) throw new ZkDecodeError(`a snapshot has 4 fields, not ${raw.length}`);
  if (raw[0] !== snapshotFormat) throw new ZkDecodeError(`snapshot format ${String(raw[0])} is not ${snapshotFormat}`);
  const nodeFlat = array(raw[2], 'snapshot nodes');
  const sessionFlat = array(raw[3], 'snapshot sessions');
  if (nodeFlat.length % nodeFieldCount !== 0) throw new ZkDecodeError(`snapshot nodes are ${nodeFieldCount}-tuples`);
  if (sessionFlat.length % sessionFieldCount !== 0) throw new ZkDecodeError(`snapshot sessions are ${sessionFieldCount}-tuples`);
  const nodes: [string, NodeRecord][] = [];
  for (let i = 0; i < nodeFlat.length; i += nodeFieldCount) nodes.push(decodeNode(nodeFlat, i));
  const sessions: SessionRecord[] = [];
  for (let i = 0; i < sessionFlat.length; i += sessionFieldCount) {
    sessions.push({
      sessionId: integer(sessionFlat[i], 'sessionId'),
      timeoutMs: count(sessionFlat[i + 1], 'timeoutMs'),
      passwd: bytes(sessionFlat[i + 2], 'passwd'),
      owner: text(sessionFlat[i + 3], 'owner'),
      lastSeq: count(sessionFlat[i + 4], 'lastSeq'),
    });
  }
  return { zxid: count(raw[1], 'zxid'), nodes, sessions };
}

function decodeNode(flat: unknown[], at: number): [string, NodeRecord] {
  const path = text(flat[at], 'path');
  const record: NodeRecord = {
    data: data(flat[at + 1], 'data'),
    acl: aclList(flat[at + 2], 'acl'),
    czxid: count(flat[at + 3], 'czxid'),
    mzxid: count(flat[at + 4], 'mzxid'),
    ctime: integer(flat[at + 5], 'ctime'),
    mtime: integer(flat[at + 6], 'mtime'),
    version: int32(flat[at + 7], 'version'),
    aversion: int32(flat[at + 8], 'aversion'),
    ephemeralOwner: integer(flat[at + 9], 'ephemeralOwner'),
    pzxid: count(flat[at + 10], 'pzxid'),
    creations: int32(flat[at + 11], 'creations'),
  };
  return [path, record];
}

/** The tree's snapshot, encoded a batch of znodes and sessions per step (runtime/sectioned-snapshot.ts). */
export class TreeSnapshotEncoder extends SectionedSnapshotEncoder {
  constructor(
    private readonly capture: TreeCapture,
    /** The sessions at the snapshot's zxid (records are replaced, never mutated, so a shallow copy holds them). */
    sessions: readonly SessionRecord[],
    /** Releases the capture (its preimages) once the snapshot is finished or aborted. */
    release: () => void,
  ) {
    super(
      [snapshotFormat, capture.zxid],
      [
        { count: capture.paths.length, fields: nodeFieldCount, push: (flat, i) => pushNode(flat, capture.paths[i]!, capture.recordAt(i)) },
        { count: sessions.length, fields: sessionFieldCount, push: (flat, i) => pushSession(flat, sessions[i]!) },
      ],
      pack,
      release,
    );
  }

  /** The zxid whose state the snapshot holds. */
  get zxid(): number {
    return this.capture.zxid;
  }

  get nodesDone(): number {
    return this.encoded(0);
  }

  get nodesTotal(): number {
    return this.capture.paths.length;
  }

  override step(budget: number): boolean {
    assert(!this.encoding || this.capture.active, 'the tree was replaced under an unfinished snapshot (abort it first)');
    return super.step(budget);
  }
}
