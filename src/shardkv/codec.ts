// The sharded key/value service's commands, results and inter-group messages, and their
// encodings: MessagePack arrays without field names (as kv/codec.ts), validated field by
// field on decode (STYLE.md 6).
//
//   command  [opcode, ...]
//     op       0  kind(0 get|1 put|2 append) key value client seq
//     config   1  config                                  (configToArray: the next configuration)
//     insert   2  num [shard, [key, value, ...], ...] [client, seq, ...] final(0|1)
//                  (a shard moves in pages: each page's insert adds keys to the pulling
//                  shards; the final one, which lists every pulled shard, completes them
//                  and brings the sessions. A 4-field insert is final.)
//     delete   3  num [shard, ...]                        (the new owner has them: drop the data)
//     gcdone   4  num [shard, ...]                        (the old owner dropped them)
//
//   result   [code, value]         code: OK | ErrWrongGroup | ErrMalformed; value for a get
//
// A lab clerk has one request outstanding, so a session is the highest seq that ran for a
// client: a Put or Append with seq <= it is a duplicate. The table travels with every shard
// that moves (merged by taking the larger seq), so a write retried at the new owner after
// its first attempt ran at the old one does not run twice.

import { Packr } from 'msgpackr';
import { configFromArray, configToArray, type ShardConfig } from '../shardctrler/index.js';

const packr = new Packr({ useRecords: false });

export type ShardKvOpKind = 'get' | 'put' | 'append';
const opKinds: readonly ShardKvOpKind[] = ['get', 'put', 'append'];

export interface ShardKvOp {
  readonly kind: ShardKvOpKind;
  readonly key: string;
  readonly value: string;
  /** 0: no session (gets). */
  readonly client: number;
  readonly seq: number;
}

/** One shard's data: key → value. */
export type ShardData = ReadonlyMap<string, string>;

export type ShardKvCommand =
  | { readonly kind: 'op'; readonly op: ShardKvOp }
  | { readonly kind: 'config'; readonly config: ShardConfig }
  | { readonly kind: 'insert'; readonly num: number; readonly shards: ReadonlyMap<number, ShardData>; readonly sessions: ReadonlyMap<number, number>; readonly final: boolean }
  | { readonly kind: 'delete'; readonly num: number; readonly shards: readonly number[] }
  | { readonly kind: 'gcdone'; readonly num: number; readonly shards: readonly number[] };

export type ShardKvErr = 'OK' | 'ErrWrongGroup' | 'ErrMalformed';

export interface ShardKvResult {
  readonly err: ShardKvErr;
  readonly value: string;
}

export class ShardKvDecodeError extends Error {
  override name = 'ShardKvDecodeError';
}

export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function encodeCommand(command: ShardKvCommand): Uint8Array {
  switch (command.kind) {
    case 'op': {
      const { op } = command;
      return packr.pack([0, opKinds.indexOf(op.kind), op.key, op.value, op.client, op.seq]);
    }
    case 'config':
      return packr.pack([1, configToArray(command.config)]);
    case 'insert':
      return packr.pack([2, command.num, shardsToArray(command.shards), sessionsToArray(command.sessions), command.final ? 1 : 0]);
    case 'delete':
      return packr.pack([3, command.num, [...command.shards]]);
    case 'gcdone':
      return packr.pack([4, command.num, [...command.shards]]);
    default:
      return command satisfies never;
  }
}

export function decodeCommand(bytes: Uint8Array): ShardKvCommand {
  const raw = unpackArray(bytes, 'command');
  switch (raw[0]) {
    case 0: {
      expectLength(raw, 6, 'op');
      const kind = opKinds[count(raw[1], 'op kind')];
      if (kind === undefined) throw new ShardKvDecodeError(`unknown op kind ${String(raw[1])}`);
      return { kind: 'op', op: { kind, key: text(raw[2], 'key'), value: text(raw[3], 'value'), client: count(raw[4], 'client'), seq: count(raw[5], 'seq') } };
    }
    case 1:
      expectLength(raw, 2, 'config');
      try {
        return { kind: 'config', config: configFromArray(raw[1]) };
      } catch (error) {
        throw new ShardKvDecodeError(`config: ${(error as Error).message}`);
      }
    case 2:
      if (raw.length !== 4 && raw.length !== 5) throw new ShardKvDecodeError(`insert has ${raw.length} fields, not 4 or 5`);
      if (raw.length === 5 && raw[4] !== 0 && raw[4] !== 1) throw new ShardKvDecodeError('insert: final is 0 or 1');
      return { kind: 'insert', num: count(raw[1], 'num'), shards: shardsFromArray(raw[2]), sessions: sessionsFromArray(raw[3]), final: raw.length === 4 || raw[4] === 1 };
    case 3:
    case 4:
      expectLength(raw, 3, 'delete/gcdone');
      return { kind: raw[0] === 3 ? 'delete' : 'gcdone', num: count(raw[1], 'num'), shards: shardList(raw[2]) };
    default:
      throw new ShardKvDecodeError(`unknown opcode ${String(raw[0])}`);
  }
}

export function encodeResult(result: ShardKvResult): Uint8Array {
  return packr.pack([result.err, result.value]);
}

export function decodeResult(bytes: Uint8Array): ShardKvResult {
  const raw = unpackArray(bytes, 'result');
  const err = text(raw[0], 'err');
  if (err !== 'OK' && err !== 'ErrWrongGroup' && err !== 'ErrMalformed') throw new ShardKvDecodeError(`unknown result ${err}`);
  return { err, value: text(raw[1], 'value') };
}

/** [shard, [key, value, ...], ...], shards ascending, keys sorted (equal states encode equally). */
export function shardsToArray(shards: ReadonlyMap<number, ShardData>): unknown[] {
  const flat: unknown[] = [];
  for (const shard of [...shards.keys()].sort((a, b) => a - b)) {
    const data = shards.get(shard)!;
    const keys: unknown[] = [];
    for (const key of [...data.keys()].sort()) keys.push(key, data.get(key)!);
    flat.push(shard, keys);
  }
  return flat;
}

export function shardsFromArray(raw: unknown): Map<number, Map<string, string>> {
  if (!Array.isArray(raw) || raw.length % 2 !== 0) throw new ShardKvDecodeError('shards are [shard, data] pairs');
  const shards = new Map<number, Map<string, string>>();
  for (let i = 0; i < raw.length; i += 2) {
    const shard = count(raw[i], 'shard');
    const keys: unknown = raw[i + 1];
    if (!Array.isArray(keys) || keys.length % 2 !== 0) throw new ShardKvDecodeError(`shard ${shard}: data is [key, value] pairs`);
    const data = new Map<string, string>();
    for (let k = 0; k < keys.length; k += 2) data.set(text(keys[k], 'key'), text(keys[k + 1], 'value'));
    shards.set(shard, data);
  }
  return shards;
}

/** [client, seq, ...], clients ascending. */
export function sessionsToArray(sessions: ReadonlyMap<number, number>): unknown[] {
  const flat: unknown[] = [];
  for (const client of [...sessions.keys()].sort((a, b) => a - b)) flat.push(client, sessions.get(client)!);
  return flat;
}

export function sessionsFromArray(raw: unknown): Map<number, number> {
  if (!Array.isArray(raw) || raw.length % 2 !== 0) throw new ShardKvDecodeError('sessions are [client, seq] pairs');
  const sessions = new Map<number, number>();
  for (let i = 0; i < raw.length; i += 2) sessions.set(count(raw[i], 'client'), count(raw[i + 1], 'seq'));
  return sessions;
}

export function shardList(raw: unknown): number[] {
  if (!Array.isArray(raw)) throw new ShardKvDecodeError('shards are a list');
  return raw.map((shard) => count(shard, 'shard'));
}

export function unpackArray(bytes: Uint8Array, what: string): unknown[] {
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch {
    throw new ShardKvDecodeError(`${what} is not MessagePack`);
  }
  if (!Array.isArray(raw) || raw.length < 1) throw new ShardKvDecodeError(`${what} is not a non-empty array`);
  return raw as unknown[];
}

function expectLength(raw: unknown[], length: number, what: string): void {
  if (raw.length !== length) throw new ShardKvDecodeError(`${what} has ${raw.length} fields, expected ${length}`);
}

export function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ShardKvDecodeError(`${what} is not a non-negative safe integer`);
  return value;
}

export function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new ShardKvDecodeError(`${what} is not a string`);
  return value;
}
