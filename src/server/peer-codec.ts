// What members send each other over the peer transport: Raft messages (in the Raft
// group's id) and MemberInfo (in group 0), which tells peers this member's client and
// admin addresses so that a follower can point clients at the leader's client port.
//
// A Raft message keeps its own encoding (raft/codec.ts: version byte 1, then MessagePack);
// MemberInfo starts with MEMBER_INFO_TAG instead, so one validating decoder serves both.

import { Packr } from 'msgpackr';
import { nodeId, type NodeId } from '../stdx/types.js';
import { DecodeError, decodeMessage, encodeMessage, WIRE_VERSION } from '../raft/codec.js';
import type { Message } from '../raft/messages.js';
import type { Address } from './config.js';

export interface MemberInfo {
  readonly type: 'MemberInfo';
  readonly from: NodeId;
  readonly client: Address;
  readonly admin: Address;
}

export type PeerMessage = Message | MemberInfo;

/** The group id of member-level messages; Raft groups use ids from 1. */
export const MEMBER_GROUP_ID = 0;
export const RAFT_GROUP_ID = 1;
const MEMBER_INFO_TAG = 0xf1;
const HOST_CHARS_MAX = 255;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encodePeerMessage(message: PeerMessage): Uint8Array {
  if (message.type !== 'MemberInfo') return encodeMessage(message);
  const body = packr.pack({ from: message.from, client: message.client, admin: message.admin });
  const out = new Uint8Array(body.length + 1);
  out[0] = MEMBER_INFO_TAG;
  out.set(body, 1);
  return out;
}

export function decodePeerMessage(bytes: Uint8Array): PeerMessage {
  if (bytes[0] === WIRE_VERSION) return decodeMessage(bytes);
  if (bytes[0] !== MEMBER_INFO_TAG) throw new DecodeError(`unknown peer message tag ${bytes[0]}`);
  let raw: unknown;
  try {
    raw = packr.unpack(bytes.subarray(1));
  } catch (error) {
    throw new DecodeError(`malformed MemberInfo: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DecodeError('MemberInfo is not a map');
  const m = raw as Record<string, unknown>;
  const from = m['from'];
  if (typeof from !== 'number' || !Number.isInteger(from) || from < 1 || from > 0xffff_ffff) throw new DecodeError('MemberInfo.from is not a member id');
  return { type: 'MemberInfo', from: nodeId(from), client: address(m['client'], 'client'), admin: address(m['admin'], 'admin') };
}

function address(raw: unknown, what: string): Address {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DecodeError(`MemberInfo.${what} is not a map`);
  const a = raw as Record<string, unknown>;
  const host = a['host'];
  const port = a['port'];
  if (typeof host !== 'string' || host.length === 0 || host.length > HOST_CHARS_MAX) throw new DecodeError(`MemberInfo.${what}.host is not a host name`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new DecodeError(`MemberInfo.${what}.port is not a port`);
  return { host, port };
}
