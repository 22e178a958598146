// Membership from the admin API (`flotilla member ...`), for every Raft group a member
// hosts (the key/value group and the ZooKeeper group), and the address book that lets the
// configuration in the log be the truth rather than a static --peers list.
//
// Changes are the Raft core's single-server changes: add a learner (with its peer address
// in the entry's context, so every member learns it when it applies the entry), promote a
// caught-up learner, remove a member; and leadership transfer. Each runs on the group's
// leader: a member that does not lead the group forwards the request to the one that does
// (whose admin address it learned from MemberInfo). A leader asked to remove itself first
// hands leadership to its most caught-up voter, then forwards the removal to it.
//
// The address book (members.json in the data directory) keeps the addresses of members
// added at run time and the group's bootstrap voters, written durably when they change:
// after a restart the member dials everyone the log added, and a member that joined with
// --join never takes the --peers list for a bootstrap configuration it was not part of.

import type { Logger } from 'pino';
import { type NodeId, nodeId } from '../stdx/types.js';
import type { Clock } from '../io/clock.js';
import { decodeConfEntry } from '../raft/membership.js';
import type { Ready } from '../raft/core.js';
import type { RaftNode } from '../runtime/node.js';
import { type Address, formatAddress, parseAddress } from './config.js';

export const membershipLimits = {
  /** How long a change may take to apply, and a transfer to complete. */
  changeTimeoutMs: 10_000,
  /** A learner is promoted only if it trails the leader's last index by at most this. */
  promoteLagEntriesMax: 100,
  /** How often a waiting change looks again. */
  pollMs: 10,
} as const;

export type GroupName = 'kv' | 'zk' | 'etcd';
export const groupNames: readonly GroupName[] = ['kv', 'zk', 'etcd'];
export type MemberAction = 'add' | 'promote' | 'remove' | 'transfer-leader';

export interface MemberRequest {
  readonly action: MemberAction;
  readonly id: NodeId;
  /** The new member's peer address (add only). */
  readonly peer?: string;
  readonly group: GroupName;
  /** Refuse (412) unless the group's configuration is still the one its entry at this index set (ZooKeeper's reconfig -v). */
  readonly configIndex?: number;
}

/** A refusal with the HTTP status the admin API answers with. */
export class MemberError extends Error {
  override name = 'MemberError';
  constructor(
    readonly status: 400 | 409 | 412 | 503 | 504,
    message: string,
  ) {
    super(message);
  }
}

/** What members.json holds. */
export interface AddressBookState {
  /** The voters this member bootstraps each group with when its log is empty ([] after --join). */
  readonly bootstrapVoters: readonly NodeId[];
  /** Peer addresses of every member this one has learned of, itself included. */
  readonly addresses: ReadonlyMap<NodeId, Address>;
}

export function encodeAddressBook(state: AddressBookState): string {
  const addresses: Record<string, string> = {};
  for (const [id, address] of [...state.addresses].sort(([a], [b]) => a - b)) addresses[String(id)] = formatAddress(address);
  return `${JSON.stringify({ bootstrapVoters: state.bootstrapVoters, addresses }, null, 2)}\n`;
}

/** Parses members.json; throws an Error naming what is wrong. */
export function decodeAddressBook(text: string): AddressBookState {
  const raw = JSON.parse(text) as { bootstrapVoters?: unknown; addresses?: unknown };
  if (!Array.isArray(raw.bootstrapVoters) || !raw.bootstrapVoters.every((id) => Number.isSafeInteger(id) && id > 0)) throw new Error('bootstrapVoters is not a list of member ids');
  if (typeof raw.addresses !== 'object' || raw.addresses === null) throw new Error('addresses is not an object');
  const addresses = new Map<NodeId, Address>();
  for (const [id, address] of Object.entries(raw.addresses as Record<string, unknown>)) {
    if (!/^[1-9]\d*$/.test(id) || typeof address !== 'string') throw new Error(`bad address entry ${id}`);
    addresses.set(nodeId(Number(id)), parseAddress(address, `member ${id}`));
  }
  return { bootstrapVoters: (raw.bootstrapVoters as number[]).map(nodeId), addresses };
}

export interface MembershipHost {
  readonly self: NodeId;
  node(group: GroupName): RaftNode;
  /** A member's admin address, if it has announced one. */
  adminAddressOf(id: NodeId): Address | undefined;
  /** A member's peer address, if known. */
  peerAddressOf(id: NodeId): Address | undefined;
  /** Adds (or moves) a peer: the transport dials it and the address book keeps it. */
  learnPeer(id: NodeId, address: Address): void;
  /** POSTs the request to another member's admin API and returns its JSON answer. */
  forward(admin: Address, request: MemberRequest): Promise<object>;
  readonly clock: Clock;
  readonly logger: Logger;
}

export class MembershipAdmin {
  constructor(private readonly host: MembershipHost) {}

  /** Runs `request` here if this member leads the group, else on the leader. */
  async run(request: MemberRequest): Promise<object> {
    const node = this.host.node(request.group);
    const status = node.status();
    if (status.role !== 'leader') return this.forwardToLeader(request, status.leader);
    if (request.configIndex !== undefined && request.configIndex !== node.core.configIndex) {
      throw new MemberError(412, `the ${request.group} group's configuration is at index ${node.core.configIndex}, not ${request.configIndex}`);
    }
    switch (request.action) {
      case 'add':
        return this.add(node, request);
      case 'promote':
        return this.promote(node, request);
      case 'remove':
        return request.id === this.host.self ? this.removeSelf(node, request) : this.change(node, request, { type: 'remove', node: request.id });
      case 'transfer-leader':
        return this.transfer(node, request);
    }
  }

  /** Both groups' configurations and, where this member leads, each member's progress. */
  describe(): object {
    return Object.fromEntries(
      groupNames.map((group) => {
        const node = this.host.node(group);
        const status = node.status();
        const membership = node.core.membership;
        const leading = status.role === 'leader';
        const members = [...membership.voters.map((id) => [id, 'voter'] as const), ...membership.learners.map((id) => [id, 'learner'] as const)].sort(([a], [b]) => a - b);
        return [
          group,
          {
            leader: status.leader,
            term: status.term,
            members: members.map(([id, kind]) => {
              const match = id === this.host.self ? status.lastIndex : leading ? (node.core.matchOf(id) ?? null) : null;
              const peer = this.host.peerAddressOf(id);
              return { id, kind, peer: peer === undefined ? null : formatAddress(peer), match, lag: match === null ? null : status.lastIndex - match, leader: id === status.leader };
            }),
          },
        ];
      }),
    );
  }

  /** Applies the peer addresses carried by config entries this member applies. */
  observe(ready: Ready): void {
    for (const entry of ready.committedEntries) {
      if (entry.type !== 'config') continue;
      const { change } = decodeConfEntry(entry.data);
      if (change.type !== 'add-learner' || change.context === undefined || change.node === this.host.self) continue;
      const peer = parseContext(change.context);
      if (peer !== undefined) this.host.learnPeer(change.node, peer);
    }
  }

  private async add(node: RaftNode, request: MemberRequest): Promise<object> {
    if (request.peer === undefined) throw new MemberError(400, "member add needs the new member's peer address (host:port)");
    let peer: Address;
    try {
      peer = parseAddress(request.peer, 'peer address');
    } catch (error) {
      throw new MemberError(400, (error as Error).message);
    }
    // Every member, this leader included, learns the address when it applies the entry
    // (observe()), before the next Ready sends the learner anything; a refused add leaves
    // no address behind to dial.
    const context = new TextEncoder().encode(JSON.stringify({ peer: formatAddress(peer) }));
    return this.change(node, request, { type: 'add-learner', node: request.id, context });
  }

  private async promote(node: RaftNode, request: MemberRequest): Promise<object> {
    if (!node.core.membership.learners.includes(request.id)) throw new MemberError(409, `member ${request.id} is not a learner of the ${request.group} group`);
    const match = node.core.matchOf(request.id) ?? 0;
    const last = node.status().lastIndex;
    // match 0: the learner has never answered (a small log would otherwise let an unreachable one through).
    if (match === 0 || last - match > membershipLimits.promoteLagEntriesMax) {
      throw new MemberError(409, `member ${request.id} is not caught up in the ${request.group} group (it has ${match} of ${last} entries); try again once it is`);
    }
    return this.change(node, request, { type: 'promote', node: request.id });
  }

  private async change(node: RaftNode, request: MemberRequest, change: Parameters<RaftNode['proposeConfChange']>[0]): Promise<object> {
    const result = node.proposeConfChange(change);
    if (!result.ok) {
      const detail = 'detail' in result && result.detail !== undefined ? `: ${result.detail}` : '';
      if (result.reason === 'not-leader') return this.forwardToLeader(request, result.leader);
      throw new MemberError(409, `the ${request.group} group refused ${change.type} ${change.node} (${result.reason}${detail})`);
    }
    const applied = await this.waitFor(() => node.isStopped() || node.status().applied >= result.index);
    if (!applied || node.isStopped()) throw new MemberError(504, `the ${request.group} group did not apply ${change.type} ${change.node} within ${membershipLimits.changeTimeoutMs} ms; it may still`);
    const membership = node.core.membership;
    this.host.logger.info({ group: request.group, change: change.type, member: change.node, voters: membership.voters, learners: membership.learners }, 'membership changed');
    return { group: request.group, action: request.action, id: request.id, index: result.index, voters: membership.voters, learners: membership.learners };
  }

  private async transfer(node: RaftNode, request: MemberRequest): Promise<object> {
    if (request.id === this.host.self) return { group: request.group, action: request.action, id: request.id, leader: request.id };
    if (!node.transferLeadership(request.id)) throw new MemberError(409, `the ${request.group} group cannot hand leadership to ${request.id} (not a voter of it?)`);
    // The old leader steps down at once and learns its successor from its first heartbeat.
    const moved = await this.waitFor(() => node.status().leader === request.id || (node.status().role !== 'leader' && node.status().leader !== 0));
    const leader = node.status().leader;
    if (!moved || leader !== request.id) throw new MemberError(504, `leadership of the ${request.group} group did not move to ${request.id} (leader now ${leader})`);
    return { group: request.group, action: request.action, id: request.id, leader };
  }

  /** A leader removed directly would lead until the entry applies; hand leadership over first. */
  private async removeSelf(node: RaftNode, request: MemberRequest): Promise<object> {
    const voters = node.core.membership.voters.filter((id) => id !== this.host.self);
    if (voters.length === 0) throw new MemberError(409, `member ${request.id} is the ${request.group} group's only voter`);
    const successor = voters.reduce((best, id) => ((node.core.matchOf(id) ?? 0) > (node.core.matchOf(best) ?? 0) ? id : best));
    await this.transfer(node, { ...request, action: 'transfer-leader', id: successor });
    // A new leader takes no change until it has applied every entry appended before its
    // election (the core's conf-change-pending), and the successor, leader for a moment
    // only, may be short of that when the removal arrives: it would refuse the removal
    // after this member had already given up leadership. Ask again while it says so.
    const deadline = this.host.clock.nowMs() + membershipLimits.changeTimeoutMs;
    for (;;) {
      const answer = await this.forwardToLeader(request, successor);
      const refusal = (answer as { error?: unknown }).error;
      if (typeof refusal !== 'string' || !refusal.includes('(conf-change-pending)') || this.host.clock.nowMs() >= deadline) return answer;
      await new Promise<void>((resolve) => this.host.clock.setTimer(membershipLimits.pollMs, resolve));
    }
  }

  private async forwardToLeader(request: MemberRequest, leader: NodeId): Promise<object> {
    if (leader === 0 || leader === this.host.self) throw new MemberError(503, `the ${request.group} group has no leader right now; try again`);
    const admin = this.host.adminAddressOf(leader);
    if (admin === undefined) throw new MemberError(503, `the ${request.group} group's leader is member ${leader}, whose admin address is not known here yet; try again`);
    return this.host.forward(admin, request);
  }

  private async waitFor(done: () => boolean): Promise<boolean> {
    const deadline = this.host.clock.nowMs() + membershipLimits.changeTimeoutMs;
    while (!done()) {
      if (this.host.clock.nowMs() >= deadline) return false;
      await new Promise<void>((resolve) => this.host.clock.setTimer(membershipLimits.pollMs, resolve));
    }
    return true;
  }
}

function parseContext(context: Uint8Array): Address | undefined {
  try {
    const raw = JSON.parse(new TextDecoder().decode(context)) as { peer?: unknown };
    return typeof raw.peer === 'string' ? parseAddress(raw.peer, 'peer') : undefined;
  } catch {
    return undefined;
  }
}
