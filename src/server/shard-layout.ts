// Which Raft groups of the sharded service a cluster runs, and on which members
// (`--shards "ctrl=1,2,3;100=1,2,3;101=1,2,3"`): the shard controller's group and the
// sharded key/value replica groups, each named by its gid (shardkv/), each a list of
// member ids. Every member gets the same layout; a member hosts the groups that name it.
//
// On the peer transport (peer-codec.ts) a group is addressed by a group id: the controller
// is SHARD_CTRL_RAFT_GROUP_ID, a key/value group its gid (gids are at least shardGidMin,
// so they never meet the member, key/value and ZooKeeper ids 0-3). Its write-ahead log is
// `<data>/group-<group id>`, as the key/value group's is `<data>/group-1`.

import { type NodeId, nodeId } from '../stdx/types.js';

export interface ShardLayout {
  /** The controller group's members, ascending. */
  readonly ctrl: readonly NodeId[];
  /** gid → its members, ascending; gids ascending. */
  readonly groups: ReadonlyMap<number, readonly NodeId[]>;
}

/** The controller's Raft group id on the peer transport (and its WAL directory `group-9`). */
export const SHARD_CTRL_RAFT_GROUP_ID = 9;

export const shardLayoutLimits = {
  /** The smallest gid: lower group ids belong to the member's own groups. */
  gidMin: 100,
  gidMax: 0xffff_fff0,
  groupsMax: 1024,
  membersPerGroupMax: 9,
} as const;

export class ShardLayoutError extends Error {
  override name = 'ShardLayoutError';
}

/** Parses "ctrl=1,2,3;100=1,2,3;..." (the controller and at least one gid). */
export function parseShardLayout(text: string): ShardLayout {
  let ctrl: NodeId[] | undefined;
  const groups = new Map<number, NodeId[]>();
  const items = text
    .split(';')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  for (const item of items) {
    const equals = item.indexOf('=');
    if (equals <= 0) throw new ShardLayoutError(`"${item}" is not name=member,member,... (e.g. ctrl=1,2,3 or 100=1,2,3)`);
    const name = item.slice(0, equals).trim();
    const members = memberList(item.slice(equals + 1), name);
    if (name === 'ctrl') {
      if (ctrl !== undefined) throw new ShardLayoutError('ctrl appears twice');
      ctrl = members;
      continue;
    }
    if (!/^\d+$/.test(name) || Number(name) < shardLayoutLimits.gidMin || Number(name) > shardLayoutLimits.gidMax)
      throw new ShardLayoutError(`group "${name}" is neither ctrl nor a gid from ${shardLayoutLimits.gidMin} to ${shardLayoutLimits.gidMax}`);
    if (groups.has(Number(name))) throw new ShardLayoutError(`group ${name} appears twice`);
    groups.set(Number(name), members);
  }
  if (ctrl === undefined) throw new ShardLayoutError('no controller group: add ctrl=<member ids>');
  if (groups.size === 0) throw new ShardLayoutError('no key/value group: add <gid>=<member ids>, e.g. 100=1,2,3');
  if (groups.size > shardLayoutLimits.groupsMax) throw new ShardLayoutError(`at most ${shardLayoutLimits.groupsMax} key/value groups`);
  return { ctrl, groups: new Map([...groups].sort(([a], [b]) => a - b)) };
}

function memberList(text: string, group: string): NodeId[] {
  const ids = text.split(',').map((id) => id.trim());
  if (ids.length === 0 || ids.length > shardLayoutLimits.membersPerGroupMax) throw new ShardLayoutError(`group ${group}: 1 to ${shardLayoutLimits.membersPerGroupMax} member ids`);
  const members = new Set<number>();
  for (const id of ids) {
    if (!/^\d+$/.test(id) || Number(id) < 1 || Number(id) > 0xffff_ffff) throw new ShardLayoutError(`group ${group}: "${id}" is not a member id`);
    if (members.has(Number(id))) throw new ShardLayoutError(`group ${group}: member ${id} appears twice`);
    members.add(Number(id));
  }
  return [...members].sort((a, b) => a - b).map(nodeId);
}

/** "ctrl=1,2,3;100=1,2,3" again (for logs and describeConfig). */
export function describeShardLayout(layout: ShardLayout): string {
  return [`ctrl=${layout.ctrl.join(',')}`, ...[...layout.groups].map(([gid, members]) => `${gid}=${members.join(',')}`)].join(';');
}

/**
 * A sharded key/value server's name in the controller's configurations: its member's
 * client address and its gid, "host:port/gid", so that a clerk and the other groups can
 * reach it with nothing but the configuration.
 */
export function shardServerName(client: string, gid: number): string {
  return `${client}/${gid}`;
}

/** "host:port/gid" → its parts; undefined if the name is not one. */
export function parseShardServerName(name: string): { host: string; port: number; gid: number } | undefined {
  const match = /^(\[[^\]]+\]|[^/:]+):(\d+)\/(\d+)$/.exec(name);
  if (match === null) return undefined;
  const port = Number(match[2]);
  const gid = Number(match[3]);
  if (port < 1 || port > 65535 || !Number.isSafeInteger(gid)) return undefined;
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port, gid };
}
