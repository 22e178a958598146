// The ZooKeeper front-end's membership port (zk/config-node.ts) on a real member: the
// ZooKeeper group's configuration for `/zookeeper/config`, and `reconfig` run through the
// membership admin (membership.ts), exactly as `flotilla member ... --group zk` runs it.
//
// A joining participant is added as a learner and promoted once it has caught up (a Raft
// voter that has not caught up would hold up every commit, the reason ZooKeeper syncs a
// joiner before its reconfig commits). If it does not catch up within the change timeout,
// the answer is NEWCONFIGNOQUORUM and the member stays a learner (an observer); the same
// reconfig sent again promotes it. A joining observer is only added.

import type { Logger } from 'pino';
import { nodeId, type NodeId } from '../stdx/types.js';
import type { Clock } from '../io/clock.js';
import type { RaftNode } from '../runtime/node.js';
import { Err } from '../zk/constants.js';
import { ReconfigErr, type ZkChangeOutcome, type ZkConfigView, type ZkMemberChange, type ZkMembership } from '../zk/config-node.js';
import { type Address, formatAddress } from './config.js';
import { MemberError, type MemberRequest, membershipLimits } from './membership.js';

/** How often a joining participant's promotion is tried again while it catches up. */
const promoteRetryMs = 100;

export interface ZkMembershipHost {
  /** The ZooKeeper group's Raft node. */
  node(): RaftNode;
  /** Runs a membership request (MembershipAdmin.run). */
  run(request: MemberRequest): Promise<object>;
  peerAddressOf(id: NodeId): Address | undefined;
  /** A member's ZooKeeper client address, if it has announced one. */
  zkAddressOf(id: NodeId): Address | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
}

export function zkMembership(host: ZkMembershipHost): ZkMembership {
  return {
    describe: () => describe(host),
    // A member removing itself may never hear that the removal committed (the leader stops
    // sending to it once applied), so it answers without waiting for its own apply.
    change: (change, expectedVersion) =>
      runChange(host, change, expectedVersion).then((done) => (done.ok && !(change.type === 'leave' && change.id === host.node().core.id) ? appliedHere(host, done.index) : done)),
    refused: (message) => host.logger.info({ reason: message }, 'zookeeper reconfig refused'),
  };
}

function describe(host: ZkMembershipHost): ZkConfigView {
  const node = host.node();
  const { voters, learners } = node.core.membership;
  const members = [...voters.map((id) => [id, 'participant'] as const), ...learners.map((id) => [id, 'observer'] as const)].sort(([a], [b]) => a - b);
  return {
    members: members.map(([id, role]) => ({ id, role, peer: host.peerAddressOf(id), client: host.zkAddressOf(id) })),
    version: node.core.configIndex,
  };
}

type Done = { readonly ok: true; readonly index: number } | Exclude<ZkChangeOutcome, { ok: true }>;

async function runChange(host: ZkMembershipHost, change: ZkMemberChange, expectedVersion: number | undefined): Promise<Done> {
  const id = nodeId(change.id);
  const base = { group: 'zk' as const, id, ...(expectedVersion === undefined ? {} : { configIndex: expectedVersion }) };
  if (change.type === 'leave') return outcome(host, { ...base, action: 'remove' });
  // An observer asked to become a participant is promoted (the version checked on the leader).
  if (host.node().core.membership.learners.includes(id)) return promoteWhenCaughtUp(host, id, expectedVersion);
  const added = await outcome(host, { ...base, action: 'add', peer: formatAddress(change.peer) });
  if (!added.ok || change.role === 'observer') return added;
  return promoteWhenCaughtUp(host, id, undefined);
}

/** Promotes a learner, retrying while the leader says it has not caught up. */
async function promoteWhenCaughtUp(host: ZkMembershipHost, id: NodeId, expectedVersion: number | undefined): Promise<Done> {
  const deadline = host.clock.nowMs() + membershipLimits.changeTimeoutMs;
  for (;;) {
    const promoted = await outcome(host, { action: 'promote', group: 'zk', id, ...(expectedVersion === undefined ? {} : { configIndex: expectedVersion }) });
    if (promoted.ok || !/not caught up/.test(promoted.message)) return promoted;
    if (host.clock.nowMs() >= deadline) return { ok: false, err: ReconfigErr.newConfigNoQuorum, message: `${promoted.message} (it stays an observer; reconfig again to promote it)` };
    await new Promise<void>((resolve) => host.clock.setTimer(promoteRetryMs, resolve));
  }
}

/** Runs one request and maps its refusal (thrown here or answered by the leader) to a ZooKeeper error. */
async function outcome(host: ZkMembershipHost, request: MemberRequest): Promise<Done> {
  try {
    const result = (await host.run(request)) as { status?: unknown; error?: unknown; index?: unknown };
    if (typeof result.status === 'number' && result.status >= 400) return refusal(result.status, String(result.error));
    if (typeof result.index !== 'number') return refusal(503, `the ${request.action} answered no index`);
    return { ok: true, index: result.index };
  } catch (error) {
    if (error instanceof MemberError) return refusal(error.status, error.message);
    return refusal(503, (error as Error).message);
  }
}

/**
 * The change applied on the leader; the reply carries this member's view of the new
 * configuration, so wait until this member has applied it too.
 */
async function appliedHere(host: ZkMembershipHost, index: number): Promise<ZkChangeOutcome> {
  const deadline = host.clock.nowMs() + membershipLimits.changeTimeoutMs;
  while (host.node().isStopped() || host.node().status().applied < index) {
    if (host.node().isStopped() || host.clock.nowMs() >= deadline) return { ok: false, err: ReconfigErr.newConfigNoQuorum, message: `this member did not apply the change at index ${index} in time` };
    await new Promise<void>((resolve) => host.clock.setTimer(membershipLimits.pollMs, resolve));
  }
  return { ok: true };
}

function refusal(status: number, message: string): Exclude<ZkChangeOutcome, { ok: true }> {
  if (status === 412) return { ok: false, err: Err.badVersion, message };
  if (status === 409 && /conf-change-pending/.test(message)) return { ok: false, err: ReconfigErr.reconfigInProgress, message };
  if (status === 400 || status === 409) return { ok: false, err: Err.badArguments, message };
  // No leader, or the change did not apply in time: the new configuration has no quorum yet.
  return { ok: false, err: ReconfigErr.newConfigNoQuorum, message };
}
