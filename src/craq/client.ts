// The CRAQ client library: objects are partitioned by key over several chains; a write
// goes to the head of its key's chain, a read to a random node of it, and the client
// follows each chain's membership through ZooKeeper watches (membership.ts), as the
// paper's clients did.
//
//   const client = await CraqClient.connect({ zkServers: ['127.0.0.1:2181'], chains: ['a', 'b'] });
//   await client.write('user:1', 'ada');
//   const { value, version, clean } = await client.read('user:1');            // strong
//   await client.read('user:1', { kind: 'bounded', versionsMax: 2 });          // or eventual
//
// Retries: a refusal that is certain to have had no effect (not the head, not serving,
// overloaded, or a node that cannot be reached) is retried — on a fresh view of the chain
// — until `retryDeadlineMs`; a write whose fate is unknown (the connection dropped or the
// call timed out after it was sent, or its head left the chain) is never retried, but
// fails with code 'unknown': it may or may not have taken effect. Reads are always safe to
// retry, at another random node.

import { assert } from '../stdx/assert.js';
import { Prng } from '../stdx/prng.js';
import type { NodeId } from '../stdx/types.js';
import type { Clock } from '../io/clock.js';
import { RealClock } from '../platform/clock.js';
import { connectCraq, RpcError, type CraqConnection } from '../platform/craq-net.js';
import { randomBytesArray } from '../platform/zk-host.js';
import { ZkClient } from '../zkclient/index.js';
import { CraqDecodeError, decodeClientReply, decodeClientRequest } from './codec.js';
import { ChainWatcher, checkChainName, type ChainView } from './membership.js';
import type { ClientReply, ClientRequest, ReadMode } from './types.js';

export type CraqClientErrorCode = 'unavailable' | 'unknown' | 'bad-request';

export class CraqClientError extends Error {
  override name = 'CraqClientError';
  constructor(
    readonly code: CraqClientErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface CraqClientOptions {
  readonly zkServers: readonly string[];
  /** The chains, in a fixed order every client shares: key → chain is a hash of the key. */
  readonly chains: readonly string[];
  readonly sessionTimeoutMs?: number;
  /** One call to one node. */
  readonly callTimeoutMs?: number;
  /** How long an operation keeps trying other nodes after certain refusals. */
  readonly retryDeadlineMs?: number;
  readonly seed?: number;
  readonly clock?: Clock;
}

export interface ReadResult {
  readonly value: string | null;
  readonly version: number;
  /** Whether the node held the answered version as committed (false: it asked the tail). */
  readonly clean: boolean;
  /** The node that answered. */
  readonly node: NodeId;
}

const retryPauseMs = 50;

/** FNV-1a over the key's UTF-16 code units: the chain a key belongs to. */
export function chainIndexOf(key: string, chainCount: number): number {
  assert(chainCount > 0, 'at least one chain');
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % chainCount;
}

/**
 * Checks a request with the node's own decoder before it is sent: a node closes the
 * connection on a malformed request, which would leave a write's fate unknown.
 */
function checkRequest(request: ClientRequest): void {
  try {
    decodeClientRequest(request);
  } catch (error) {
    if (error instanceof CraqDecodeError) throw new CraqClientError('bad-request', error.message);
    throw error;
  }
}

export class CraqClient {
  private readonly views = new Map<string, ChainView>();
  private readonly watchers: ChainWatcher[] = [];
  private readonly connections = new Map<string, Promise<CraqConnection<ClientRequest, ClientReply>>>();
  private readonly prng: Prng;
  private readonly clock: Clock;
  private closed = false;

  private constructor(
    private readonly zk: ZkClient,
    private readonly options: CraqClientOptions,
  ) {
    this.prng = new Prng(options.seed ?? new DataView(randomBytesArray(4).buffer).getInt32(0));
    this.clock = options.clock ?? new RealClock({ keepAlive: false });
  }

  static async connect(options: CraqClientOptions): Promise<CraqClient> {
    if (options.chains.length === 0) throw new CraqClientError('bad-request', 'name at least one chain');
    for (const chain of options.chains) {
      const bad = checkChainName(chain);
      if (bad !== undefined) throw new CraqClientError('bad-request', bad);
    }
    const zk = await ZkClient.connect({ servers: options.zkServers, sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000 });
    const client = new CraqClient(zk, options);
    for (const chain of options.chains) {
      const watcher = new ChainWatcher(
        zk,
        client.clock,
        chain,
        (view) => client.views.set(chain, view),
        () => undefined,
      );
      client.watchers.push(watcher);
      watcher.start();
    }
    return client;
  }

  /** The chain a key lives on. */
  chainOf(key: string): string {
    return this.options.chains[chainIndexOf(key, this.options.chains.length)]!;
  }

  /** The latest view of a chain (for tools and tests). */
  view(chain: string): ChainView | undefined {
    return this.views.get(chain);
  }

  async write(key: string, value: string): Promise<{ version: number }> {
    checkRequest({ type: 'write', key, value });
    const chain = this.chainOf(key);
    const reply = await this.withRetries(`write of ${JSON.stringify(key)}`, true, () => this.views.get(chain)?.config.members[0], { type: 'write', key, value });
    assert(reply.reply.type === 'write', 'a write is answered with a write');
    return { version: reply.reply.version };
  }

  async read(key: string, mode: ReadMode = { kind: 'strong' }): Promise<ReadResult> {
    checkRequest({ type: 'read', key, mode });
    const chain = this.chainOf(key);
    const pick = (): NodeId | undefined => {
      const members = this.views.get(chain)?.config.members ?? [];
      return members.length === 0 ? undefined : this.prng.pick(members);
    };
    const { node, reply } = await this.withRetries(`read of ${JSON.stringify(key)}`, false, pick, { type: 'read', key, mode });
    assert(reply.type === 'read', 'a read is answered with a read');
    return { value: reply.value, version: reply.version, clean: reply.clean, node };
  }

  /** Reads from one node of a chain, once, with no retry (tools, and tests of each node). */
  async readAt(chain: string, node: NodeId, key: string, mode: ReadMode = { kind: 'strong' }): Promise<ClientReply> {
    checkRequest({ type: 'read', key, mode });
    const address = this.views.get(chain)?.addresses.get(node);
    if (address === undefined) throw new CraqClientError('unavailable', `node ${node} is not in chain ${chain}`);
    return (await this.connection(address)).call({ type: 'read', key, mode });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const watcher of this.watchers) watcher.stop();
    for (const connection of this.connections.values())
      void connection.then(
        (c) => c.close(),
        () => undefined,
      );
    this.connections.clear();
    await this.zk.close().catch(() => undefined);
  }

  private async withRetries(what: string, isWrite: boolean, pick: () => NodeId | undefined, request: ClientRequest): Promise<{ node: NodeId; reply: ClientReply }> {
    const deadline = this.clock.nowMs() + (this.options.retryDeadlineMs ?? 15_000);
    let lastProblem = 'no member of the chain is known yet';
    // Bounded by the deadline: every turn either returns, throws, or pauses retryPauseMs.
    while (!this.closed) {
      if (this.clock.nowMs() >= deadline) throw new CraqClientError('unavailable', `${what} failed: ${lastProblem}`);
      const node = pick();
      const chain = this.chainOf(request.type === 'status' ? '' : request.key);
      const address = node === undefined ? undefined : this.views.get(chain)?.addresses.get(node);
      if (node === undefined || address === undefined) {
        await this.pause();
        continue;
      }
      const outcome = await this.attempt(address, request);
      if (outcome.kind === 'reply') {
        const reply = outcome.reply;
        if (reply.type !== 'error') return { node, reply };
        if (reply.code === 'bad-request') throw new CraqClientError('bad-request', reply.message);
        if (reply.code === 'unknown') throw new CraqClientError('unknown', `${what}: ${reply.message}`);
        lastProblem = `node ${node} (${address}): ${reply.message}`;
      } else if (outcome.sent && isWrite) {
        throw new CraqClientError('unknown', `${what} may or may not have taken effect: ${outcome.message}`);
      } else {
        lastProblem = `node ${node} (${address}): ${outcome.message}`;
      }
      await this.pause();
    }
    throw new CraqClientError('unavailable', `${what}: the client is closed`);
  }

  private async attempt(address: string, request: ClientRequest): Promise<{ kind: 'reply'; reply: ClientReply } | { kind: 'failed'; sent: boolean; message: string }> {
    let connection: CraqConnection<ClientRequest, ClientReply>;
    try {
      connection = await this.connection(address);
    } catch (error) {
      this.connections.delete(address);
      return { kind: 'failed', sent: false, message: error instanceof Error ? error.message : String(error) };
    }
    try {
      return { kind: 'reply', reply: await connection.call(request) };
    } catch (error) {
      this.connections.delete(address);
      connection.close();
      // 'overloaded' is refused before sending; 'remote' is the node refusing a malformed request.
      const sent = !(error instanceof RpcError && (error.code === 'overloaded' || error.code === 'unavailable'));
      if (error instanceof RpcError && error.code === 'remote') throw new CraqClientError('bad-request', error.message);
      return { kind: 'failed', sent, message: error instanceof Error ? error.message : String(error) };
    }
  }

  private connection(address: string): Promise<CraqConnection<ClientRequest, ClientReply>> {
    let connection = this.connections.get(address);
    if (connection === undefined) {
      connection = connectCraq<ClientRequest, ClientReply>(address, decodeClientReply, this.options.callTimeoutMs ?? 5_000);
      this.connections.set(address, connection);
      connection.then(
        (c) => void c.closed.then(() => this.connections.get(address) === connection && this.connections.delete(address)),
        () => this.connections.get(address) === connection && this.connections.delete(address),
      );
    }
    return connection;
  }

  private pause(): Promise<void> {
    return new Promise((resolve) => this.clock.setTimer(retryPauseMs, resolve));
  }
}
