// The shard controller's commands, results and configurations, and their encodings.
//
// Commands travel in the Raft log; configurations travel in snapshots and in replies to
// clerks. MessagePack arrays (msgpackr plain mode), no field names, as in kv/codec.ts:
//
//   command  [opcode, timeMs, client, seq, ack, ...arguments]
//     join   0  [gid, [server, ...], gid, [server, ...], ...]   (one call may join several)
//     leave  1  [gid, ...]
//     move   2  shard gid
//
//   result   [tag, ...]
//     done   0  num                  (the configuration the command made)
//     error  1  code message         (nothing changed)
//
//   config   [num, [gid × shardCount], [gid, [server, ...], ...]]   (groups by gid ascending)
//
// Query is not a command: it is a linearizable read (ReadIndex) of the configurations, so
// it never grows the log. `client` 0 means no session (no exactly-once). Decoding checks
// the shape of every field (STYLE.md 6): a gid or a count is a non-negative safe integer,
// a shard an integer, a server a string, a gid named once per command; the state machine
// checks the rest against its limits and its state.

import { Packr } from 'msgpackr';
import { unreachable } from '../stdx/assert.js';
import { freezeConfig, type Gid, type ShardConfig, shardCount, sortedGids } from './config.js';

const packr = new Packr({ useRecords: false });

export type ShardOp =
  /** Adds groups; `groups` pairs each new gid with its servers, in order. */
  | { readonly kind: 'join'; readonly groups: ReadonlyArray<readonly [Gid, readonly string[]]> }
  | { readonly kind: 'leave'; readonly gids: readonly Gid[] }
  | { readonly kind: 'move'; readonly shard: number; readonly gid: Gid };

export type ShardOpKind = ShardOp['kind'];

/** A client's place in its session. Invariant: 0 <= ack < seq (as in kv/codec.ts). */
export interface ShardSessionStamp {
  readonly client: number;
  readonly seq: number;
  readonly ack: number;
}

export interface ShardCommand {
  readonly op: ShardOp;
  readonly session: ShardSessionStamp | undefined;
  /** The proposing leader's clock (log time; recorded with sessions). */
  readonly timeMs: number;
}

export type ShardErrorCode =
  /** The command does not decode; nothing changed. */
  | 'malformed'
  /** A Join names gid 0 (no group), or names no group at all; a Leave names none. */
  | 'gid-invalid'
  /** A Move names a shard outside [0, shardCount). */
  | 'shard-invalid'
  /** A Join names a group that is already in the configuration. */
  | 'group-exists'
  /** A Leave or a Move names a group that is not in the configuration. */
  | 'group-unknown'
  /** A group's server list is empty, too long, or holds an empty or too long name. */
  | 'servers-invalid'
  /** The configuration would hold more than groupsMax groups. */
  | 'groups-full'
  /** configsMax configurations exist; no more can be made. */
  | 'configs-full'
  /** The session is unknown (evicted) and the client had earlier requests: not applied. */
  | 'session-expired'
  /** A request older than the session's last one: a late duplicate, not applied. */
  | 'session-stale';

export type ShardResult = { readonly kind: 'done'; readonly num: number } | { readonly kind: 'error'; readonly code: ShardErrorCode; readonly message: string };

export class ShardDecodeError extends Error {
  override name = 'ShardDecodeError';
}

const opcodes: readonly ShardOpKind[] = ['join', 'leave', 'move'];

export function encodeCommand(command: ShardCommand): Uint8Array {
  const { op, session } = command;
  const head = [opcodes.indexOf(op.kind), command.timeMs, session?.client ?? 0, session?.seq ?? 0, session?.ack ?? 0];
  switch (op.kind) {
    case 'join':
      return packr.pack([...head, op.groups.flatMap(([gid, servers]) => [gid, [...servers]])]);
    case 'leave':
      return packr.pack([...head, [...op.gids]]);
    case 'move':
      return packr.pack([...head, op.shard, op.gid]);
    default:
      return unreachable(op, 'shard op');
  }
}

/** Decodes and checks the shape of a command; throws ShardDecodeError. */
export function decodeCommand(bytes: Uint8Array): ShardCommand {
  const raw = unpackArray(bytes, 'command');
  if (raw.length < 5) throw new ShardDecodeError(`a command has at least 5 fields, got ${raw.length}`);
  const [code, timeMs, client, seq, ack] = [0, 1, 2, 3, 4].map((i) => count(raw[i], `field ${i}`)) as [number, number, number, number, number];
  const kind = opcodes[code];
  if (kind === undefined) throw new ShardDecodeError(`unknown opcode ${code}`);
  let session: ShardSessionStamp | undefined;
  if (client !== 0) {
    if (seq < 1 || ack >= seq) throw new ShardDecodeError(`session stamp needs 0 <= ack < seq, got seq ${seq} ack ${ack}`);
    session = { client, seq, ack };
  }
  return { op: decodeOp(kind, raw), session, timeMs };
}

function decodeOp(kind: ShardOpKind, raw: unknown[]): ShardOp {
  const expected = { join: 6, leave: 6, move: 7 }[kind];
  if (raw.length !== expected) throw new ShardDecodeError(`${kind} has ${raw.length} fields, expected ${expected}`);
  switch (kind) {
    case 'join':
      return { kind, groups: decodeGroups(raw[5], 'join') };
    case 'leave':
      return { kind, gids: decodeGids(raw[5]) };
    case 'move':
      return { kind, shard: integer(raw[5], 'shard'), gid: count(raw[6], 'gid') };
    default:
      return unreachable(kind, 'shard op kind');
  }
}

/** [gid, [server, ...], ...] with each gid once. */
function decodeGroups(raw: unknown, what: string): Array<[Gid, string[]]> {
  if (!Array.isArray(raw) || raw.length % 2 !== 0) throw new ShardDecodeError(`${what}: groups are not [gid, servers] pairs`);
  const groups: Array<[Gid, string[]]> = [];
  const seen = new Set<Gid>();
  for (let i = 0; i < raw.length; i += 2) {
    const gid = count(raw[i], 'gid');
    if (seen.has(gid)) throw new ShardDecodeError(`${what}: gid ${gid} is named twice`);
    seen.add(gid);
    const servers: unknown = raw[i + 1];
    if (!Array.isArray(servers)) throw new ShardDecodeError(`${what}: the servers of gid ${gid} are not a list`);
    groups.push([gid, servers.map((server) => text(server, 'server'))]);
  }
  return groups;
}

function decodeGids(raw: unknown): Gid[] {
  if (!Array.isArray(raw)) throw new ShardDecodeError('leave: the gids are not a list');
  const gids = raw.map((gid) => count(gid, 'gid'));
  if (new Set(gids).size !== gids.length) throw new ShardDecodeError('leave: a gid is named twice');
  return gids;
}

export function encodeResult(result: ShardResult): Uint8Array {
  switch (result.kind) {
    case 'done':
      return packr.pack([0, result.num]);
    case 'error':
      return packr.pack([1, result.code, result.message]);
    default:
      return unreachable(result, 'shard result');
  }
}

const errorCodes: ReadonlySet<string> = new Set<ShardErrorCode>([
  'malformed',
  'gid-invalid',
  'shard-invalid',
  'group-exists',
  'group-unknown',
  'servers-invalid',
  'groups-full',
  'configs-full',
  'session-expired',
  'session-stale',
]);

/** Decodes a result; throws ShardDecodeError. */
export function decodeResult(encoded: Uint8Array): ShardResult {
  const raw = unpackArray(encoded, 'result');
  switch (raw[0]) {
    case 0:
      return { kind: 'done', num: count(raw[1], 'num') };
    case 1: {
      const code = text(raw[1], 'code');
      if (!errorCodes.has(code)) throw new ShardDecodeError(`unknown error code ${code}`);
      return { kind: 'error', code: code as ShardErrorCode, message: text(raw[2], 'message') };
    }
    default:
      throw new ShardDecodeError(`unknown result tag ${String(raw[0])}`);
  }
}

/** A configuration as a plain array (snapshots, replies to clerks): groups by gid ascending. */
export function configToArray(config: ShardConfig): unknown[] {
  const groups = sortedGids(config.groups).flatMap((gid) => [gid, [...config.groups.get(gid)!]]);
  return [config.num, [...config.shards], groups];
}

/** The inverse of configToArray; checks the shape (STYLE.md 6). Throws ShardDecodeError. */
export function configFromArray(raw: unknown): ShardConfig {
  if (!Array.isArray(raw) || raw.length !== 3) throw new ShardDecodeError('a configuration is [num, shards, groups]');
  const num = count(raw[0], 'num');
  const shards: unknown = raw[1];
  if (!Array.isArray(shards) || shards.length !== shardCount) throw new ShardDecodeError(`a configuration has ${shardCount} shards`);
  const groups = new Map(decodeGroups(raw[2], 'configuration'));
  if (groups.has(0)) throw new ShardDecodeError(`configuration ${num} holds gid 0, which is no group`);
  const assigned = shards.map((gid) => count(gid, 'shard gid'));
  for (const gid of assigned) {
    if (groups.size === 0 ? gid !== 0 : !groups.has(gid)) throw new ShardDecodeError(`configuration ${num} puts a shard on gid ${gid}, which it does not hold`);
  }
  return freezeConfig({ num, shards: assigned, groups });
}

export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function unpackArray(encoded: Uint8Array, what: string): unknown[] {
  let raw: unknown;
  try {
    raw = packr.unpack(encoded);
  } catch {
    throw new ShardDecodeError(`${what} is not MessagePack`);
  }
  if (!Array.isArray(raw) || raw.length < 1) throw new ShardDecodeError(`${what} is not a non-empty array`);
  return raw as unknown[];
}

export function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ShardDecodeError(`${what} is not a non-negative safe integer`);
  return value;
}

export function integer(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new ShardDecodeError(`${what} is not a safe integer`);
  return value;
}

export function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new ShardDecodeError(`${what} is not a string`);
  return value;
}
