// The native client protocol (DESIGN.md §4): frames on the client port whose body is a
// version byte and a MessagePack map (msgpackr plain mode, no shared structures). Every
// request carries a request id; its reply carries the same id, so many requests may be
// in flight on one connection and replies may come back in any order.
//
//   request                                         reply
//   {id, type:'kv', command: bytes, consistency}  →  {id, type:'result', result: bytes, index}
//   {id, type:'leader'}                           →  {id, type:'leader', leader, client}
//   {id, type:'shard', body: bytes}               →  {id, type:'result', result: bytes, index: 0}
//   any                                           →  {id, type:'error', code, message, leader, client}
//
// `command` is a key/value command in kv/codec.ts's encoding (the member re-stamps its
// log time); `result` is a kv/codec.ts result. `consistency` ('linearizable' or
// 'serializable') matters for get and scan only.
//
// `leader` is a member id (0: unknown); `client` is that member's client address, when
// known, so a client can redirect. decode*() validates every field (STYLE.md 6): a frame
// that fails is a protocol error, and the server closes that connection.

import { Packr } from 'msgpackr';
import type { ReadConsistency } from '../runtime/replica.js';
import type { Address } from './config.js';

export const CLIENT_PROTOCOL_VERSION = 1;
/** Request ids are safe non-negative integers. */
export const REQUEST_ID_MAX = Number.MAX_SAFE_INTEGER;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export type ClientRequest =
  | { readonly id: number; readonly type: 'kv'; readonly command: Uint8Array; readonly consistency: ReadConsistency }
  | { readonly id: number; readonly type: 'leader' }
  /** The sharded service (shard-protocol.ts): `body` is a shard request, the reply's `result` its reply. */
  | { readonly id: number; readonly type: 'shard'; readonly body: Uint8Array };

export type ClientErrorCode =
  /** Not the leader; `leader`/`client` say where to go. Not applied. */
  | 'not-leader'
  /** A limit was reached (pending proposals, uncommitted bytes, in-flight requests). Not applied. */
  | 'overloaded'
  /** Another entry took the proposal's place in the log. Not applied; safe to retry. */
  | 'dropped'
  /** Leadership was lost first: the command may or may not be applied. */
  | 'outcome-unknown'
  /** The member is shutting down: the command may or may not be applied. */
  | 'stopped'
  /** The command did not apply, or the read was not confirmed, within the member's request timeout: maybe applied. */
  | 'timeout'
  /** The service refused the command as malformed or too large. Not applied. */
  | 'invalid';

export type ClientResponse =
  | { readonly id: number; readonly type: 'result'; readonly result: Uint8Array; readonly index: number }
  | { readonly id: number; readonly type: 'leader'; readonly leader: number; readonly client: Address | null }
  | { readonly id: number; readonly type: 'error'; readonly code: ClientErrorCode; readonly message: string; readonly leader: number; readonly client: Address | null };

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

const errorCodes: ReadonlySet<string> = new Set<ClientErrorCode>(['not-leader', 'overloaded', 'dropped', 'outcome-unknown', 'stopped', 'timeout', 'invalid']);
/** Error messages are cut to this length on the wire. */
export const ERROR_MESSAGE_CHARS_MAX = 2048;

export function encodeRequest(request: ClientRequest): Uint8Array {
  return withVersion(packr.pack(request));
}

export function encodeResponse(response: ClientResponse): Uint8Array {
  const bounded = response.type === 'error' ? { ...response, message: response.message.slice(0, ERROR_MESSAGE_CHARS_MAX) } : response;
  return withVersion(packr.pack(bounded));
}

export function decodeRequest(bytes: Uint8Array): ClientRequest {
  const m = unpackMap(bytes, 'request');
  const id = requestId(m['id']);
  switch (m['type']) {
    case 'kv':
      return { id, type: 'kv', command: bytesField(m, 'command'), consistency: consistencyField(m['consistency']) };
    case 'leader':
      return { id, type: 'leader' };
    case 'shard':
      return { id, type: 'shard', body: bytesField(m, 'body') };
    default:
      throw new ProtocolError(`unknown request type ${JSON.stringify(m['type'])}`);
  }
}

export function decodeResponse(bytes: Uint8Array): ClientResponse {
  const m = unpackMap(bytes, 'response');
  const id = requestId(m['id']);
  switch (m['type']) {
    case 'result':
      return { id, type: 'result', result: bytesField(m, 'result'), index: count(m['index'], 'index') };
    case 'leader':
      return { id, type: 'leader', leader: count(m['leader'], 'leader'), client: address(m['client']) };
    case 'error': {
      const code = m['code'];
      if (typeof code !== 'string' || !errorCodes.has(code)) throw new ProtocolError(`unknown error code ${JSON.stringify(code)}`);
      const message = m['message'];
      if (typeof message !== 'string') throw new ProtocolError('error message is not a string');
      return { id, type: 'error', code: code as ClientErrorCode, message, leader: count(m['leader'], 'leader'), client: address(m['client']) };
    }
    default:
      throw new ProtocolError(`unknown response type ${JSON.stringify(m['type'])}`);
  }
}

function withVersion(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1);
  out[0] = CLIENT_PROTOCOL_VERSION;
  out.set(body, 1);
  return out;
}

function unpackMap(bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.length < 1 || bytes[0] !== CLIENT_PROTOCOL_VERSION) throw new ProtocolError(`${what}: unknown protocol version ${bytes[0]}`);
  let raw: unknown;
  try {
    raw = packr.unpack(bytes.subarray(1));
  } catch (error) {
    throw new ProtocolError(`${what}: malformed MessagePack: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || raw instanceof Uint8Array) throw new ProtocolError(`${what} is not a map`);
  return raw as Record<string, unknown>;
}

function requestId(raw: unknown): number {
  const id = count(raw, 'id');
  if (id > REQUEST_ID_MAX) throw new ProtocolError('request id is too large');
  return id;
}

function count(raw: unknown, field: string): number {
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0) throw new ProtocolError(`${field} is not a non-negative integer`);
  return raw;
}

function bytesField(m: Record<string, unknown>, field: string): Uint8Array {
  const value = m[field];
  if (!(value instanceof Uint8Array)) throw new ProtocolError(`${field} is not bytes`);
  return value;
}

function consistencyField(raw: unknown): ReadConsistency {
  if (raw === 'linearizable' || raw === 'serializable') return raw;
  throw new ProtocolError(`consistency ${JSON.stringify(raw)} is not 'linearizable' or 'serializable'`);
}

function address(raw: unknown): Address | null {
  if (raw === null || raw === undefined) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ProtocolError('client address is not a map');
  const a = raw as Record<string, unknown>;
  if (typeof a['host'] !== 'string' || a['host'].length === 0) throw new ProtocolError('client address host is not a string');
  const port = count(a['port'], 'port');
  if (port === 0 || port > 65535) throw new ProtocolError('client address port is out of range');
  return { host: a['host'], port };
}
