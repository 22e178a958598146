// The key/value service's commands and results, and their compact encodings.
//
// They travel in the Raft log and in snapshots, and the lab bounds them in bytes (a 1000-
// byte maxraftstate, a 500-byte snapshot: docs/6824-tests.md §5.4, §10), so they are
// MessagePack arrays (msgpackr plain mode), not maps: no field names on the wire.
//
//   command  [opcode, timeMs, client, seq, ack, ...arguments]
//     get     0  key
//     put     1  key value
//     append  2  key value
//     delete  3  key
//     cas     4  key value version        (version 0: the key must be absent)
//     scan    5  prefix limit after       (after '': from the first key with the prefix)
//
//   result   [tag, ...]
//     value   0  value|null version       (null, version 0: no such key)
//     written 1  version
//     deleted 2  existed(0|1)
//     cas     3  swapped(0|1) version     (the key's version after the command)
//     scan    4  [key, value, version, key, value, version, ...] next|null
//     error   5  code message
//
// `client` 0 means "no session" (no exactly-once; fine for reads). Decoding validates the
// shape of every field (STYLE.md 6); the state machine checks the limits, which are its
// configuration.

import { Packr } from 'msgpackr';
import { unreachable } from '../stdx/assert.js';

const packr = new Packr({ useRecords: false });

export type KvOp =
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly kind: 'append'; readonly key: string; readonly value: Uint8Array }
  | { readonly kind: 'delete'; readonly key: string }
  | { readonly kind: 'cas'; readonly key: string; readonly value: Uint8Array; readonly version: number }
  | { readonly kind: 'scan'; readonly prefix: string; readonly limit: number; readonly after: string };

export type KvOpKind = KvOp['kind'];

/**
 * A client's place in its session (Raft thesis §6.3). Invariant: 0 <= ack < seq.
 * `ack`: the client has received the replies of all its requests up to and including `ack`,
 * so the state machine may forget them.
 */
export interface SessionStamp {
  readonly client: number;
  readonly seq: number;
  readonly ack: number;
}

export interface KvCommand {
  readonly op: KvOp;
  readonly session: SessionStamp | undefined;
  /** The proposing leader's clock when it proposed (log time; drives session expiry). */
  readonly timeMs: number;
}

export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** The log index of the key's last write. */
  readonly version: number;
}

export type KvErrorCode =
  /** The command does not decode (a bug or a hostile client); nothing changed. */
  | 'malformed'
  /** The key is empty or longer than keyBytesMax. */
  | 'key-invalid'
  /** The value (or the value an append would make) is longer than valueBytesMax. */
  | 'value-too-large'
  /** The store holds keysMax keys; creating another is refused. */
  | 'keys-full'
  /** A scan asked for more than scanLimitMax entries (or fewer than 1). */
  | 'scan-limit'
  /** The session is unknown (expired, or evicted): the command was not applied. */
  | 'session-expired'
  /** The client already acknowledged this request's reply: a late duplicate, not applied. */
  | 'session-stale'
  /** The client has sessionRepliesMax unacknowledged requests already; not applied. */
  | 'session-window-full';

export type KvResult =
  | { readonly kind: 'value'; readonly value: Uint8Array | null; readonly version: number }
  | { readonly kind: 'written'; readonly version: number }
  | { readonly kind: 'deleted'; readonly existed: boolean }
  | { readonly kind: 'cas'; readonly swapped: boolean; readonly version: number }
  | { readonly kind: 'scan'; readonly entries: readonly KvEntry[]; readonly next: string | null }
  | { readonly kind: 'error'; readonly code: KvErrorCode; readonly message: string };

export class KvDecodeError extends Error {
  override name = 'KvDecodeError';
}

const opcodes: readonly KvOpKind[] = ['get', 'put', 'append', 'delete', 'cas', 'scan'];

export function opcodeOf(kind: KvOpKind): number {
  return opcodes.indexOf(kind);
}

export function encodeCommand(command: KvCommand): Uint8Array {
  const { op, session } = command;
  const head = [opcodeOf(op.kind), command.timeMs, session?.client ?? 0, session?.seq ?? 0, session?.ack ?? 0];
  switch (op.kind) {
    case 'get':
    case 'delete':
      return packr.pack([...head, op.key]);
    case 'put':
    case 'append':
      return packr.pack([...head, op.key, op.value]);
    case 'cas':
      return packr.pack([...head, op.key, op.value, op.version]);
    case 'scan':
      return packr.pack([...head, op.prefix, op.limit, op.after]);
    default:
      return unreachable(op, 'kv op');
  }
}

/** Decodes and checks the shape of a command; throws KvDecodeError. */
export function decodeCommand(bytes: Uint8Array): KvCommand {
  const raw = unpackArray(bytes, 'command');
  const [code, timeMs, client, seq, ack] = [0, 1, 2, 3, 4].map((i) => count(raw[i], `field ${i}`));
  const kind = opcodes[code!];
  if (kind === undefined) throw new KvDecodeError(`unknown opcode ${code}`);
  let session: SessionStamp | undefined;
  if (client !== 0) {
    if (seq! < 1 || ack! >= seq!) throw new KvDecodeError(`session stamp needs 0 <= ack < seq, got seq ${seq} ack ${ack}`);
    session = { client: client!, seq: seq!, ack: ack! };
  }
  return { op: decodeOp(kind, raw), session, timeMs: timeMs! };
}

function decodeOp(kind: KvOpKind, raw: unknown[]): KvOp {
  const expected = { get: 6, delete: 6, put: 7, append: 7, cas: 8, scan: 8 }[kind];
  if (raw.length !== expected) throw new KvDecodeError(`${kind} has ${raw.length} fields, expected ${expected}`);
  switch (kind) {
    case 'get':
    case 'delete':
      return { kind, key: text(raw[5], 'key') };
    case 'put':
    case 'append':
      return { kind, key: text(raw[5], 'key'), value: bytes(raw[6], 'value') };
    case 'cas':
      return { kind, key: text(raw[5], 'key'), value: bytes(raw[6], 'value'), version: count(raw[7], 'version') };
    case 'scan':
      return { kind, prefix: text(raw[5], 'prefix'), limit: count(raw[6], 'limit'), after: text(raw[7], 'after') };
    default:
      return unreachable(kind, 'kv op kind');
  }
}

export function encodeResult(result: KvResult): Uint8Array {
  switch (result.kind) {
    case 'value':
      return packr.pack([0, result.value, result.version]);
    case 'written':
      return packr.pack([1, result.version]);
    case 'deleted':
      return packr.pack([2, result.existed ? 1 : 0]);
    case 'cas':
      return packr.pack([3, result.swapped ? 1 : 0, result.version]);
    case 'scan': {
      const flat: unknown[] = [];
      for (const entry of result.entries) flat.push(entry.key, entry.value, entry.version);
      return packr.pack([4, flat, result.next]);
    }
    case 'error':
      return packr.pack([5, result.code, result.message]);
    default:
      return unreachable(result, 'kv result');
  }
}

const errorCodes: ReadonlySet<string> = new Set<KvErrorCode>(['malformed', 'key-invalid', 'value-too-large', 'keys-full', 'scan-limit', 'session-expired', 'session-stale', 'session-window-full']);

/** Decodes a result (from our own state machine, or from the network); throws KvDecodeError. */
export function decodeResult(encoded: Uint8Array): KvResult {
  const raw = unpackArray(encoded, 'result');
  switch (raw[0]) {
    case 0:
      return { kind: 'value', value: raw[1] === null ? null : bytes(raw[1], 'value'), version: count(raw[2], 'version') };
    case 1:
      return { kind: 'written', version: count(raw[1], 'version') };
    case 2:
      return { kind: 'deleted', existed: raw[1] === 1 };
    case 3:
      return { kind: 'cas', swapped: raw[1] === 1, version: count(raw[2], 'version') };
    case 4:
      return { kind: 'scan', entries: decodeEntries(raw[1]), next: raw[2] === null ? null : text(raw[2], 'next') };
    case 5: {
      const code = text(raw[1], 'code');
      if (!errorCodes.has(code)) throw new KvDecodeError(`unknown error code ${code}`);
      return { kind: 'error', code: code as KvErrorCode, message: text(raw[2], 'message') };
    }
    default:
      throw new KvDecodeError(`unknown result tag ${String(raw[0])}`);
  }
}

function decodeEntries(raw: unknown): KvEntry[] {
  if (!Array.isArray(raw) || raw.length % 3 !== 0) throw new KvDecodeError('scan entries are not triples');
  const entries: KvEntry[] = [];
  for (let i = 0; i < raw.length; i += 3) {
    entries.push({ key: text(raw[i], 'key'), value: bytes(raw[i + 1], 'value'), version: count(raw[i + 2], 'version') });
  }
  return entries;
}

export function unpackArray(encoded: Uint8Array, what: string): unknown[] {
  let raw: unknown;
  try {
    raw = packr.unpack(encoded);
  } catch {
    throw new KvDecodeError(`${what} is not MessagePack`);
  }
  if (!Array.isArray(raw) || raw.length < 1) throw new KvDecodeError(`${what} is not a non-empty array`);
  return raw as unknown[];
}

export function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new KvDecodeError(`${what} is not a non-negative safe integer`);
  }
  return value;
}

export function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new KvDecodeError(`${what} is not a string`);
  return value;
}

export function bytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new KvDecodeError(`${what} is not bytes`);
  return value;
}

export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}
