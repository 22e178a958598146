// ZooKeeper's view of membership (docs/zookeeper.md §2.12): the `/zookeeper/config` node
// and the `reconfig` request, over the ZooKeeper group's Raft configuration.
//
// The zk layer cannot reach the server (docs/ARCHITECTURE.md), so the server hands the
// front-end a ZkMembership port: describe() reads the ZooKeeper group's configuration and
// change() runs one membership change through the server's membership admin.
//
// The node's data is ZooKeeper's dynamic configuration text (QuorumVerifier.toString):
//
//   server.1=10.0.0.1:7000:7000:participant;10.0.0.2:2181
//   server.4=10.0.0.4:7000:7000:observer;10.0.0.4:2181
//   version=1a
//
// A Raft voter is a participant, a learner an observer. ZooKeeper names two peer ports
// (quorum and election); Flotilla has one, printed twice. The client part is the member's
// ZooKeeper port, left out (as ZooKeeper allows) while the member has not announced it.
// The version is the Raft index (in this group's log, hence a zxid here) of the config entry
// that set the configuration, in hex, as ZooKeeper's is the zxid of its last reconfig.

import { Err } from './constants.js';
import type { Stat } from './types.js';

export interface ZkHostPort {
  readonly host: string;
  readonly port: number;
}

export interface ZkConfigMember {
  readonly id: number;
  readonly role: 'participant' | 'observer';
  /** The member's peer address; undefined if this member has not learned it. */
  readonly peer: ZkHostPort | undefined;
  /** The member's ZooKeeper client address; undefined until it announces it. */
  readonly client: ZkHostPort | undefined;
}

export interface ZkConfigView {
  /** Sorted by id. */
  readonly members: readonly ZkConfigMember[];
  /** The index of the config entry (0: the bootstrap configuration). */
  readonly version: number;
}

/** One single-server change, as reconfig asks for it. */
export type ZkMemberChange = { readonly type: 'join'; readonly id: number; readonly role: 'participant' | 'observer'; readonly peer: ZkHostPort } | { readonly type: 'leave'; readonly id: number };

/** What a change ended in: the ZooKeeper error code to answer, with a reason to log. */
export type ZkChangeOutcome = { readonly ok: true } | { readonly ok: false; readonly err: number; readonly message: string };

export interface ZkMembership {
  describe(): ZkConfigView;
  /**
   * Runs `change` in the ZooKeeper group if its configuration is still the one at
   * `expectedVersion` (undefined: any), checked on the group's leader.
   */
  change(change: ZkMemberChange, expectedVersion: number | undefined): Promise<ZkChangeOutcome>;
  /** A reconfig was refused: why, for the member's log (the client sees only the error code). */
  refused?(message: string): void;
}

/** ZooKeeper's reconfig error codes (KeeperException.Code), beside BADVERSION and BADARGUMENTS. */
export const ReconfigErr = {
  newConfigNoQuorum: -13,
  reconfigInProgress: -14,
  reconfigDisabled: -123,
} as const;

export const configNodePath = '/zookeeper/config';

/** The node's data: one `server.N=` line per member, then `version=HEX`. */
export function formatConfig(view: ZkConfigView): string {
  const lines = view.members.map((member) => {
    const peer = member.peer ?? { host: '0.0.0.0', port: 0 };
    const client = member.client === undefined ? '' : `;${formatHostPort(member.client)}`;
    return `server.${member.id}=${formatHost(peer.host)}:${peer.port}:${peer.port}:${member.role}${client}`;
  });
  return [...lines, `version=${view.version.toString(16)}`].join('\n');
}

/**
 * The node's Stat, as ZooKeeper keeps it (ZKDatabase.initConfigInZKDatabase, the reconfig
 * txn): written by setData with version -1 at the config's zxid, so mzxid is the version,
 * dataVersion stays -1 and aversion -1 (the read-only ACL set with setACL(…, -1)).
 */
export function configStat(view: ZkConfigView, dataLength: number): Stat {
  return {
    czxid: 0,
    mzxid: view.version,
    ctime: 0,
    mtime: 0,
    version: -1,
    cversion: 0,
    aversion: -1,
    ephemeralOwner: 0,
    dataLength,
    numChildren: 0,
    pzxid: 0,
  };
}

/** A reconfig request as it arrives (ReconfigRequest's four fields). */
export interface ReconfigArgs {
  readonly joiningServers: string | null;
  readonly leavingServers: string | null;
  readonly newMembers: string | null;
  readonly curConfigId: bigint;
}

/** The one change a reconfig asks for, or the error to answer (BADARGUMENTS, BADVERSION). */
export function planReconfig(args: ReconfigArgs, view: ZkConfigView): { change: ZkMemberChange; expectedVersion: number | undefined } | { err: number; message: string } {
  const bad = (message: string) => ({ err: Err.badArguments, message });
  if (args.curConfigId !== -1n && args.curConfigId !== BigInt(view.version)) {
    return { err: Err.badVersion, message: `the configuration is at version ${view.version.toString(16)}, not ${args.curConfigId.toString(16)}` };
  }
  const expectedVersion = args.curConfigId === -1n ? undefined : view.version;
  if (nonEmpty(args.newMembers)) return bad('non-incremental reconfig (newMembers) is not supported; use joining and leaving servers');
  const joining = splitList(args.joiningServers);
  const leaving = splitList(args.leavingServers);
  if (joining.length + leaving.length === 0) return bad('reconfig names no joining or leaving server');
  // Flotilla's Raft changes one member at a time (thesis §4.1), so one change per request.
  if (joining.length + leaving.length > 1) return bad('Flotilla changes one server per reconfig (single-server changes); send one request per server');
  if (leaving.length === 1) {
    const id = serverId(leaving[0]!);
    if (id === undefined) return bad(`leaving server "${leaving[0]}" is not a server id`);
    if (!view.members.some((member) => member.id === id)) return bad(`server ${id} is not in the configuration`);
    return { change: { type: 'leave', id }, expectedVersion };
  }
  const spec = parseServerSpec(joining[0]!);
  if (typeof spec === 'string') return bad(spec);
  const current = view.members.find((member) => member.id === spec.id);
  if (current !== undefined && current.role === spec.role) return bad(`server ${spec.id} is already a ${spec.role}`);
  if (current?.role === 'participant') return bad(`server ${spec.id} is a participant; Flotilla cannot make a voter an observer (remove it, then add it)`);
  return { change: { type: 'join', id: spec.id, role: spec.role, peer: spec.peer }, expectedVersion };
}

/**
 * Parses `server.N=host:port:port[:role][;[clientHost:]clientPort]` (QuorumServer's form;
 * the role defaults to participant). Returns a reason string if malformed.
 */
export function parseServerSpec(text: string): { id: number; role: 'participant' | 'observer'; peer: ZkHostPort } | string {
  const match = /^server\.(\d+)=(.*)$/.exec(text.trim());
  if (match === null) return `joining server "${text}" is not server.N=host:port:port:role;clientport`;
  const id = serverId(match[1]!);
  if (id === undefined) return `"${match[1]}" is not a server id (1 to 4294967295)`;
  const [serverPart = ''] = match[2]!.split(';');
  const parts = /^(\[[^\]]+\]|[^:]+):(\d+):(\d+)(?::(participant|observer))?$/.exec(serverPart);
  if (parts === null) return `server ${id}: "${serverPart}" is not host:port:port[:participant|observer]`;
  const port = Number(parts[2]);
  if (port < 1 || port > 65535 || Number(parts[3]) > 65535) return `server ${id}: a port must be 1 to 65535`;
  return { id, role: (parts[4] as 'participant' | 'observer' | undefined) ?? 'participant', peer: { host: parts[1]!.replace(/^\[|\]$/g, ''), port } };
}

function serverId(text: string): number | undefined {
  if (!/^\d+$/.test(text.trim())) return undefined;
  const id = Number(text.trim());
  return id >= 1 && id <= 0xffff_ffff ? id : undefined;
}

function nonEmpty(text: string | null): boolean {
  return text !== null && text.trim().length > 0;
}

/** ZooKeeper's lists are comma-separated (zkCli joins -add and -remove lists with commas). */
function splitList(text: string | null): string[] {
  if (text === null) return [];
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function formatHostPort(address: ZkHostPort): string {
  return `${formatHost(address.host)}:${address.port}`;
}
