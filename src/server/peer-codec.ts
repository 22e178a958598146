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
  /** The ZooKeeper client port (for /zookeeper/config); absent from members that predate it. */
  readonly zk?: Address;
  /** The etcd gRPC port (for etcd's MemberList); absent from members without one. */
  readonly etcd?: Address;
}

/** An etcd command a follower hands to the leader to propose (etcd/service.ts). */
export interface EtcdForward {
  readonly type: 'EtcdForward';
  readonly from: NodeId;
  readonly command: Uint8Array;
}

/** A ZooKeeper command a follower hands to the leader to propose (zk/service.ts). */
export interface ZkForward {
  readonly type: 'ZkForward';
  readonly from: NodeId;
  readonly command: Uint8Array;
}

/** ZooKeeper sessions a follower heard from since its last report (zk/session-tracker.ts). */
export interface ZkTouch {
  readonly type: 'ZkTouch';
  readonly from: NodeId;
  readonly sessions: readonly number[];
}

export type PeerMessage = Message | MemberInfo | ZkForward | ZkTouch | EtcdForward;

/** The group id of member-level messages; Raft groups use ids from 1. */
export const MEMBER_GROUP_ID = 0;
export const RAFT_GROUP_ID = 1;
/** The ZooKeeper service's own Raft group, and its forwarded commands and session reports. */
export const ZK_RAFT_GROUP_ID = 2;
export const ZK_SERVICE_GROUP_ID = 3;
/** The etcd service's own Raft group, and its forwarded commands. */
export const ETCD_RAFT_GROUP_ID = 4;
export const ETCD_SERVICE_GROUP_ID = 5;
const MEMBER_INFO_TAG = 0xf1;
const ZK_FORWARD_TAG = 0xf2;
const ZK_TOUCH_TAG = 0xf3;
const ETCD_FORWARD_TAG = 0xf4;
/** Session ids in one report; a follower has at most that many connections. */
const TOUCHES_MAX = 1 << 16;
const HOST_CHARS_MAX = 255;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encodePeerMessage(message: PeerMessage): Uint8Array {
  switch (message.type) {
    case 'MemberInfo':
      return tagged(MEMBER_INFO_TAG, {
        from: message.from,
        client: message.client,
        admin: message.admin,
        ...(message.zk === undefined ? {} : { zk: message.zk }),
        ...(message.etcd === undefined ? {} : { etcd: message.etcd }),
      });
    case 'EtcdForward':
      return tagged(ETCD_FORWARD_TAG, { from: message.from, command: message.command });
    case 'ZkForward':
      return tagged(ZK_FORWARD_TAG, { from: message.from, command: message.command });
    case 'ZkTouch':
      return tagged(ZK_TOUCH_TAG, { from: message.from, sessions: message.sessions });
    default:
      return encodeMessage(message);
  }
}

function tagged(tag: number, fields: object): Uint8Array {
  const body = packr.pack(fields);
  const out = new Uint8Array(body.length + 1);
  out[0] = tag;
  out.set(body, 1);
  return out;
}

export function decodePeerMessage(bytes: Uint8Array): PeerMessage {
  if (bytes[0] === WIRE_VERSION) return decodeMessage(bytes);
  const tag = bytes[0];
  const name = tag === MEMBER_INFO_TAG ? 'MemberInfo' : tag === ZK_FORWARD_TAG ? 'ZkForward' : tag === ZK_TOUCH_TAG ? 'ZkTouch' : tag === ETCD_FORWARD_TAG ? 'EtcdForward' : undefined;
  if (name === undefined) throw new DecodeError(`unknown peer message tag ${tag}`);
  let raw: unknown;
  try {
    raw = packr.unpack(bytes.subarray(1));
  } catch (error) {
    throw new DecodeError(`malformed ${name}: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DecodeError(`${name} is not a map`);
  const m = raw as Record<string, unknown>;
  const from = m['from'];
  if (typeof from !== 'number' || !Number.isInteger(from) || from < 1 || from > 0xffff_ffff) throw new DecodeError(`${name}.from is not a member id`);
  if (tag === ZK_FORWARD_TAG || tag === ETCD_FORWARD_TAG) {
    const command = m['command'];
    if (!(command instanceof Uint8Array)) throw new DecodeError(`${name}.command is not bytes`);
    return { type: tag === ZK_FORWARD_TAG ? 'ZkForward' : 'EtcdForward', from: nodeId(from), command };
  }
  if (tag === ZK_TOUCH_TAG) {
    const sessions = m['sessions'];
    if (!Array.isArray(sessions) || sessions.length > TOUCHES_MAX || !sessions.every((id) => typeof id === 'number' && Number.isSafeInteger(id)))
      throw new DecodeError('ZkTouch.sessions is not a list of session ids');
    return { type: 'ZkTouch', from: nodeId(from), sessions: sessions as number[] };
  }
  const zk = m['zk'] === undefined ? {} : { zk: address(m['zk'], 'zk') };
  const etcd = m['etcd'] === undefined ? {} : { etcd: address(m['etcd'], 'etcd') };
  return { type: 'MemberInfo', from: nodeId(from), client: address(m['client'], 'client'), admin: address(m['admin'], 'admin'), ...zk, ...etcd };
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
