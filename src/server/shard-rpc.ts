// Calls to members' client ports with shard requests (shard-protocol.ts): one connection
// per address, opened on first use and again after it closes. Used by the members
// themselves (a group polling the controller, pulling and deleting shards at another
// group, a member forwarding to the controller's leader) and by ShardedClient.
//
// A call's outcome is its reply bytes, or undefined: not connected, the connection lost,
// no reply within requestTimeoutMs, or an error reply from the member (stopped,
// overloaded, ...). The caller decides whether to retry and where.

import type { Clock } from '../io/clock.js';
import type { ClientTls } from '../platform/tls.js';
import { clientDefaults, MemberConnection } from './client.js';
import { type Address, formatAddress } from './config.js';

export interface ShardRpcOptions {
  readonly clock: Clock;
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly tls?: ClientTls | undefined;
}

export class ShardRpc {
  private readonly connections = new Map<string, Promise<MemberConnection | undefined>>();
  private closed = false;

  constructor(private readonly options: ShardRpcOptions) {}

  async call(address: Address, body: Uint8Array): Promise<Uint8Array | undefined> {
    const outcome = await this.callOrRefusal(address, body);
    return outcome instanceof Uint8Array ? outcome : undefined;
  }

  /** Like call(), but a member's 'invalid' refusal (no sharded service there, a malformed request) comes back as its message. */
  async callOrRefusal(address: Address, body: Uint8Array): Promise<Uint8Array | { invalid: string } | undefined> {
    if (this.closed) return undefined;
    const connection = await this.connect(address);
    if (connection === undefined) return undefined;
    try {
      const response = await connection.request({ type: 'shard', body });
      if (response.type === 'result') return response.result;
      if (response.type === 'error' && response.code === 'invalid') return { invalid: `${formatAddress(address)}: ${response.message}` };
      return undefined;
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.closed = true;
    for (const pending of this.connections.values()) void pending.then((connection) => connection?.close());
    this.connections.clear();
  }

  private connect(address: Address): Promise<MemberConnection | undefined> {
    const key = formatAddress(address);
    const known = this.connections.get(key);
    if (known !== undefined) return known;
    const limits = { ...clientDefaults, requestTimeoutMs: this.options.requestTimeoutMs, connectTimeoutMs: this.options.connectTimeoutMs };
    const connection = new MemberConnection(address, this.options.clock, limits, this.options.tls, () => {
      if (this.connections.get(key) === opening) this.connections.delete(key);
    });
    const opening = connection.open().then(
      () => connection,
      () => {
        // Not reachable now: forget it, so the next call dials again.
        if (this.connections.get(key) === opening) this.connections.delete(key);
        return undefined;
      },
    );
    this.connections.set(key, opening);
    return opening;
  }
}
