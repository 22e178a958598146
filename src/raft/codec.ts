// The wire form of Raft messages: MessagePack (plain mode, no shared structures; DESIGN.md
// §4) behind a version byte. decodeMessage validates every field before the core sees it
// (STYLE.md 6): whatever arrives from a network is untrusted.

import { Packr } from 'msgpackr';
import { type Index, type NodeId, index, nodeId, term } from '../stdx/types.js';
import type { Message, MessageType } from './messages.js';
import type { Entry, EntryType, SnapshotMeta } from './types.js';

/** Members of one configuration, at most (a sanity bound for decoding). */
const membersMax = 1024;

export const WIRE_VERSION = 1;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export class DecodeError extends Error {
  override name = 'DecodeError';
}

export function encodeMessage(message: Message): Uint8Array {
  const body = packr.pack(message);
  const out = new Uint8Array(body.length + 1);
  out[0] = WIRE_VERSION;
  out.set(body, 1);
  return out;
}

export function decodeMessage(bytes: Uint8Array): Message {
  if (bytes.length < 1 || bytes[0] !== WIRE_VERSION) throw new DecodeError(`unknown wire version ${bytes[0]}`);
  let raw: unknown;
  try {
    raw = packr.unpack(bytes.subarray(1));
  } catch (error) {
    throw new DecodeError(`malformed MessagePack: ${(error as Error).message}`);
  }
  return validateMessage(raw);
}

const messageTypes: ReadonlySet<string> = new Set<MessageType>([
  'PreVote',
  'Vote',
  'PreVoteResp',
  'VoteResp',
  'App',
  'AppResp',
  'Heartbeat',
  'HeartbeatResp',
  'Snap',
  'SnapResp',
  'TimeoutNow',
  'ReadIndex',
  'ReadIndexResp',
]);

function validateMessage(raw: unknown): Message {
  const m = record(raw, 'message');
  const type = m['type'];
  if (typeof type !== 'string' || !messageTypes.has(type)) throw new DecodeError(`unknown message type ${String(type)}`);
  const header = { from: id(m, 'from'), to: id(m, 'to'), term: term(count(m, 'term')) };
  switch (type as MessageType) {
    case 'PreVote':
    case 'Vote':
      return { ...header, type: type as 'Vote', lastIndex: idx(m, 'lastIndex'), lastTerm: term(count(m, 'lastTerm')), transfer: bool(m, 'transfer') };
    case 'PreVoteResp':
    case 'VoteResp':
      return { ...header, type: type as 'VoteResp', reject: bool(m, 'reject') };
    case 'App':
      return { ...header, type: 'App', prevIndex: idx(m, 'prevIndex'), prevTerm: term(count(m, 'prevTerm')), entries: entries(m['entries']), commit: idx(m, 'commit') };
    case 'AppResp':
      return { ...header, type: 'AppResp', index: idx(m, 'index'), reject: bool(m, 'reject'), hintIndex: idx(m, 'hintIndex'), hintTerm: term(count(m, 'hintTerm')) };
    case 'Heartbeat':
      return { ...header, type: 'Heartbeat', commit: idx(m, 'commit'), context: count(m, 'context') };
    case 'HeartbeatResp':
      return { ...header, type: 'HeartbeatResp', context: count(m, 'context') };
    case 'Snap':
      return { ...header, type: 'Snap', meta: snapshotMeta(m['meta']), offset: count(m, 'offset'), data: bytes(m, 'data'), done: bool(m, 'done') };
    case 'SnapResp':
      return { ...header, type: 'SnapResp', index: idx(m, 'index'), offset: count(m, 'offset') };
    case 'TimeoutNow':
      return { ...header, type: 'TimeoutNow' };
    case 'ReadIndex':
      return { ...header, type: 'ReadIndex', context: count(m, 'context') };
    case 'ReadIndexResp':
      return { ...header, type: 'ReadIndexResp', context: count(m, 'context'), index: idx(m, 'index') };
  }
}

function entries(raw: unknown): Entry[] {
  if (!Array.isArray(raw)) throw new DecodeError('entries is not an array');
  const out: Entry[] = [];
  for (const item of raw) {
    const e = record(item, 'entry');
    const type = e['type'];
    if (type !== 'normal' && type !== 'config') throw new DecodeError(`unknown entry type ${String(type)}`);
    const entry: Entry = { term: term(count(e, 'term')), index: idx(e, 'index'), type: type as EntryType, data: bytes(e, 'data') };
    const previous = out[out.length - 1];
    if (previous !== undefined && entry.index !== previous.index + 1) throw new DecodeError('entries are not contiguous');
    out.push(entry);
  }
  return out;
}

function snapshotMeta(raw: unknown): SnapshotMeta {
  const m = record(raw, 'snapshot meta');
  return { index: idx(m, 'index'), term: term(count(m, 'term')), voters: ids(m['voters']), learners: ids(m['learners']) };
}

function ids(raw: unknown): NodeId[] {
  if (!Array.isArray(raw) || raw.length > membersMax) throw new DecodeError('member list is not a short array');
  return raw.map((value) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new DecodeError('member id is not a positive integer');
    return nodeId(value);
  });
}

function bytes(m: Record<string, unknown>, field: string): Uint8Array {
  const value = m[field];
  if (!(value instanceof Uint8Array)) throw new DecodeError(`field ${field} is not bytes`);
  return value;
}

function record(raw: unknown, what: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DecodeError(`${what} is not a map`);
  return raw as Record<string, unknown>;
}

function count(m: Record<string, unknown>, field: string): number {
  const value = m[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new DecodeError(`field ${field} is not a non-negative integer`);
  }
  return value;
}

function idx(m: Record<string, unknown>, field: string): Index {
  return index(count(m, field));
}

function id(m: Record<string, unknown>, field: string): NodeId {
  const value = count(m, field);
  if (value === 0) throw new DecodeError(`field ${field} must be a node id`);
  return nodeId(value);
}

function bool(m: Record<string, unknown>, field: string): boolean {
  const value = m[field];
  if (typeof value !== 'boolean') throw new DecodeError(`field ${field} is not a boolean`);
  return value;
}
