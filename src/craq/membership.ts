// Chain membership through a ZooKeeper-compatible service (Flotilla's own, through
// flotilla/zk, exactly as a separate system would use it; or Apache ZooKeeper).
//
//   /craq/<chain>/n-0000000007   ephemeral sequential, data {"address":"host:port"}
//
// A node's id is its znode's sequence number + 1 (one id per session: a restarted node is
// a new member and joins at the tail). The chain is the children in sequence order: the
// oldest is the head, the newest the tail, so a new node joins at the tail and a dead
// node's znode vanishes when its session expires, which repairs the chain around it. The
// epoch is the parent's cversion, which the server bumps on every child created or
// deleted, so every watcher that sees the same children sees the same epoch.
//
// The lease: a node serves strong reads and writes only while its session is certainly
// alive. Every timeout / 6 it sends a `sync`, which goes through the ensemble's leader (a
// plain read could be answered by a follower cut off from it); if the answer comes, the
// session was alive at the leader at some point after the send, so it cannot expire
// before send + session timeout. The lease runs to send + timeout / 2, leaving half for
// clock rate differences.

import { nodeId, type NodeId } from '../stdx/types.js';
import type { Clock, Timer } from '../io/clock.js';
import { Err, isZkError, type ZkClient, type WatchEvent } from '../zkclient/index.js';
import type { ChainConfig } from './types.js';

export const chainRoot = '/craq';
const memberPrefix = 'n-';
const retryDelayMs = 200;
const chainNamePattern = /^[A-Za-z0-9_.-]{1,64}$/;

export class MembershipError extends Error {
  override name = 'MembershipError';
}

export function checkChainName(name: string): string | undefined {
  if (!chainNamePattern.test(name) || name === '.' || name === '..') return `chain name ${JSON.stringify(name)} must be 1-64 letters, digits, '_', '.' or '-'`;
  return undefined;
}

export function chainPath(chain: string): string {
  return `${chainRoot}/${chain}`;
}

/** The node id of a member znode's name (`n-0000000007` → 8), or undefined for another name. */
export function memberIdOf(name: string): NodeId | undefined {
  if (!name.startsWith(memberPrefix)) return undefined;
  const digits = name.slice(memberPrefix.length);
  if (!/^\d{10}$/.test(digits)) return undefined;
  return nodeId(Number(digits) + 1);
}

/** The chain the children of /craq/<chain> describe: members by sequence, head first. */
export function configFromChildren(children: readonly string[], cversion: number): { config: ChainConfig; names: Map<NodeId, string> } {
  const names = new Map<NodeId, string>();
  for (const child of children) {
    const id = memberIdOf(child);
    if (id !== undefined) names.set(id, child);
  }
  const members = [...names.keys()].sort((a, b) => a - b);
  return { config: { epoch: cversion, members }, names };
}

export interface ChainView {
  readonly config: ChainConfig;
  /** Each member's "host:port". */
  readonly addresses: ReadonlyMap<NodeId, string>;
}

function decodeAddress(data: Uint8Array | null): string | undefined {
  if (data === null) return undefined;
  try {
    const value = JSON.parse(new TextDecoder().decode(data)) as { address?: unknown };
    return typeof value.address === 'string' && /^[^\s]+:\d{1,5}$/.test(value.address) ? value.address : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Watches one chain: calls `onView` with every new configuration (and the members'
 * addresses), re-arming the children watch each time. Members whose data cannot be read
 * (gone meanwhile) are left out until the next change.
 */
export class ChainWatcher {
  private stopped = false;
  private latestEpoch = -1;

  constructor(
    private readonly client: ZkClient,
    private readonly clock: Clock,
    readonly chain: string,
    private readonly onView: (view: ChainView) => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(): void {
    void this.refresh();
  }

  stop(): void {
    this.stopped = true;
  }

  private async refresh(): Promise<void> {
    if (this.stopped) return;
    const watcher = (event: WatchEvent): void => {
      if (event.type !== 'sessionEnded') void this.refresh();
    };
    try {
      const { children, stat } = await this.client.getChildren2(chainPath(this.chain), watcher);
      const { config, names } = configFromChildren(children, stat.cversion);
      const addresses = new Map<NodeId, string>();
      const reads = await Promise.all(config.members.map((id) => this.client.getData(`${chainPath(this.chain)}/${names.get(id)}`).catch(() => undefined)));
      config.members.forEach((id, k) => {
        const address = decodeAddress(reads[k]?.data ?? null);
        if (address !== undefined) addresses.set(id, address);
      });
      if (this.stopped || config.epoch <= this.latestEpoch) return;
      this.latestEpoch = config.epoch;
      // A member without a readable address cannot be linked to; the chain waits for the next epoch.
      this.onView({ config: { epoch: config.epoch, members: config.members.filter((id) => addresses.has(id)) }, addresses });
    } catch (error) {
      if (isZkError(error, Err.noNode)) {
        await this.ensureChainPath().catch(this.onError);
        if (!this.stopped) void this.refresh();
        return;
      }
      if (isZkError(error, Err.sessionExpired) || this.client.state === 'closed' || this.client.state === 'expired') {
        this.onError(error);
        return;
      }
      // Connection loss (the client reconnects) or a passing refusal: ask again shortly.
      if (!this.stopped) this.clock.setTimer(retryDelayMs, () => void this.refresh());
    }
  }

  async ensureChainPath(): Promise<void> {
    await ensurePath(this.client, chainRoot);
    await ensurePath(this.client, chainPath(this.chain));
  }
}

async function ensurePath(client: ZkClient, path: string): Promise<void> {
  try {
    await client.create(path, null, { mode: 'persistent' });
  } catch (error) {
    if (!isZkError(error, Err.nodeExists)) throw error;
  }
}

export interface RegistrationOptions {
  readonly client: ZkClient;
  readonly chain: string;
  /** The address peers and clients reach this node at. */
  readonly address: string;
  readonly clock: Clock;
  /** Called with each new lease end (clock milliseconds). */
  readonly onLease: (untilMs: number) => void;
}

/** Registers this node in its chain; keeps its lease renewed while the session lives. */
export class Registration {
  readonly id: NodeId;
  private timer: Timer | undefined;
  private stopped = false;

  private constructor(
    private readonly options: RegistrationOptions,
    id: NodeId,
  ) {
    this.id = id;
  }

  static async register(options: RegistrationOptions): Promise<Registration> {
    const watcher = new ChainWatcher(
      options.client,
      options.clock,
      options.chain,
      () => {},
      () => {},
    );
    await watcher.ensureChainPath();
    const data = JSON.stringify({ address: options.address });
    const path = await options.client.create(`${chainPath(options.chain)}/${memberPrefix}`, data, { mode: 'ephemeral-sequential' });
    const id = memberIdOf(path.slice(path.lastIndexOf('/') + 1));
    if (id === undefined) throw new MembershipError(`the server named the member znode ${path}, which is not n-<10 digits>`);
    const registration = new Registration(options, id);
    registration.renew();
    return registration;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private renew(): void {
    if (this.stopped) return;
    const timeoutMs = this.options.client.negotiatedTimeoutMs;
    const sentMs = this.options.clock.nowMs();
    this.options.client.sync(chainPath(this.options.chain)).then(
      () => this.options.onLease(sentMs + timeoutMs / 2),
      () => undefined, // No answer, no lease: it lapses on its own.
    );
    this.timer = this.options.clock.setTimer(Math.max(10, timeoutMs / 6), () => this.renew());
  }
}
