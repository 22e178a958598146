// Validation at the edge (STYLE.md 6): every peer message, client request and client reply
// that comes from the network passes through a decoder here, which checks every field and
// throws CraqDecodeError on anything else. Code behind the decoders trusts the types.
//
// On the wire the values are plain objects: MessagePack over TCP (platform/rpc.ts), and
// JSON bytes on the simulator's network (encodePeerBytes / decodePeerBytes).

import { nodeId, type NodeId } from '../stdx/types.js';
import { craqLimits } from './limits.js';
import type { ChainConfig, ChainSnapshot, ChainWrite, ClientErrorCode, ClientReply, ClientRequest, ObjectVersion, PeerMessage, ReadMode } from './types.js';

export class CraqDecodeError extends Error {
  override name = 'CraqDecodeError';
}

type Fields = Record<string, unknown>;

function fail(message: string): never {
  throw new CraqDecodeError(message);
}

function record(value: unknown, what: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} must be an object`);
  return value as Fields;
}

function count(fields: Fields, name: string): number {
  const value = fields[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(`${name} must be a non-negative integer`);
  return value;
}

function id(fields: Fields, name: string): NodeId {
  return nodeId(count(fields, name));
}

function text(fields: Fields, name: string, charsMax: number): string {
  const value = fields[name];
  if (typeof value !== 'string') fail(`${name} must be a string`);
  if (value.length > charsMax) fail(`${name} has ${value.length} characters; the limit is ${charsMax}`);
  return value;
}

function key(fields: Fields): string {
  const value = text(fields, 'key', craqLimits.keyCharsMax);
  if (value.length === 0) fail('key must not be empty');
  return value;
}

function list(fields: Fields, name: string, lengthMax: number): unknown[] {
  const value = fields[name];
  if (!Array.isArray(value)) fail(`${name} must be an array`);
  if (value.length > lengthMax) fail(`${name} has ${value.length} items; the limit is ${lengthMax}`);
  return value;
}

function decodeWrite(value: unknown): ChainWrite {
  const fields = record(value, 'write');
  const write = { seq: count(fields, 'seq'), key: key(fields), version: count(fields, 'version'), value: text(fields, 'value', craqLimits.valueCharsMax) };
  if (write.seq < 1 || write.version < 1) fail('a write has seq and version >= 1');
  return write;
}

function decodeObject(value: unknown): ObjectVersion {
  const fields = record(value, 'object');
  const object = { key: key(fields), version: count(fields, 'version'), value: text(fields, 'value', craqLimits.valueCharsMax) };
  if (object.version < 1) fail('an object has version >= 1');
  return object;
}

function decodeSnapshot(value: unknown): ChainSnapshot {
  const fields = record(value, 'snapshot');
  return { seq: count(fields, 'seq'), objects: list(fields, 'objects', craqLimits.snapshotObjectsMax).map(decodeObject) };
}

/** Checks every field of a message from a peer. Throws CraqDecodeError. */
export function decodePeerMessage(value: unknown): PeerMessage {
  const fields = record(value, 'message');
  const epoch = count(fields, 'epoch');
  const from = id(fields, 'from');
  const type = fields['type'];
  switch (type) {
    case 'propagate': {
      const writes = list(fields, 'writes', craqLimits.propagateWritesMax).map(decodeWrite);
      for (let i = 1; i < writes.length; i++) if (writes[i]!.seq !== writes[i - 1]!.seq + 1) fail('propagated writes must be contiguous');
      return { type, epoch, from, writes, highestSeq: count(fields, 'highestSeq') };
    }
    case 'snapshot':
      return { type, epoch, from, snapshot: decodeSnapshot(fields['snapshot']), highestSeq: count(fields, 'highestSeq') };
    case 'ack': {
      const message = { type, epoch, from, receivedSeq: count(fields, 'receivedSeq'), committedSeq: count(fields, 'committedSeq') } as const;
      if (message.committedSeq > message.receivedSeq) fail('an ack cannot commit more than it received');
      return message;
    }
    case 'query':
      return { type, epoch, from, queryId: count(fields, 'queryId'), key: key(fields) };
    case 'query-reply':
      return { type, epoch, from, queryId: count(fields, 'queryId'), key: key(fields), version: count(fields, 'version') };
    default:
      fail(`unknown message type ${JSON.stringify(type)}`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodePeerBytes(message: PeerMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

export function decodePeerBytes(bytes: Uint8Array): PeerMessage {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    fail(`not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return decodePeerMessage(value);
}

function decodeMode(value: unknown): ReadMode {
  if (value === undefined) return { kind: 'strong' };
  const fields = record(value, 'mode');
  const kind = fields['kind'];
  switch (kind) {
    case 'strong':
    case 'eventual':
      return { kind };
    case 'bounded':
      return { kind, versionsMax: count(fields, 'versionsMax') };
    default:
      fail(`mode.kind must be strong, eventual or bounded, not ${JSON.stringify(kind)}`);
  }
}

/** Checks every field of a client's request. Throws CraqDecodeError. */
export function decodeClientRequest(value: unknown): ClientRequest {
  const fields = record(value, 'request');
  const type = fields['type'];
  switch (type) {
    case 'read':
      return { type, key: key(fields), mode: decodeMode(fields['mode']) };
    case 'write':
      return { type, key: key(fields), value: text(fields, 'value', craqLimits.valueCharsMax) };
    case 'status':
      return { type };
    default:
      fail(`unknown request type ${JSON.stringify(type)}`);
  }
}

const errorCodes: readonly ClientErrorCode[] = ['not-head', 'not-serving', 'overloaded', 'unknown', 'bad-request'];

/** Checks every field of a node's reply (the client library's edge). Throws CraqDecodeError. */
export function decodeClientReply(value: unknown): ClientReply {
  const fields = record(value, 'reply');
  const type = fields['type'];
  switch (type) {
    case 'read': {
      const raw = fields['value'];
      const readValue = raw === null ? null : text(fields, 'value', craqLimits.valueCharsMax);
      return { type, key: key(fields), version: count(fields, 'version'), value: readValue, clean: fields['clean'] === true };
    }
    case 'write':
      return { type, key: key(fields), version: count(fields, 'version'), seq: count(fields, 'seq') };
    case 'status':
      return {
        type,
        id: id(fields, 'id'),
        epoch: count(fields, 'epoch'),
        members: list(fields, 'members', 1024).map((member) => nodeId(count({ member }, 'member'))),
        serving: fields['serving'] === true,
        highestSeq: count(fields, 'highestSeq'),
        committedSeq: count(fields, 'committedSeq'),
      };
    case 'error': {
      const code = fields['code'];
      if (!errorCodes.includes(code as ClientErrorCode)) fail(`unknown error code ${JSON.stringify(code)}`);
      return { type, code: code as ClientErrorCode, message: text(fields, 'message', 4096) };
    }
    default:
      fail(`unknown reply type ${JSON.stringify(type)}`);
  }
}

/** Checks a configuration (from the coordinator): distinct members, a non-negative epoch. */
export function checkConfig(config: ChainConfig): string | undefined {
  if (!Number.isSafeInteger(config.epoch) || config.epoch < 0) return 'epoch must be a non-negative integer';
  if (new Set(config.members).size !== config.members.length) return 'members must be distinct';
  return undefined;
}
