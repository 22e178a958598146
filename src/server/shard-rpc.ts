// Calls to members' client ports with shard requests (shard-protocol.ts): one connection
// per address, opened on first use and again after it closes. Used by the members
// themselves (a group polling the controller, pulling and deleting shards at another
// group, a member forwarding to the controller's leader) and by ShardedClient.
//
// A call's outcome is its reply bytes, or undefined: not connected, the connection lost,
// no reply within requestTimeoutMs, or an error reply from the member (stopped,
// overloaded, ...). The caller decides whether to retry and where.
//
// stats() counts the calls made and the bytes of their shard request and reply bodies (not
// the client protocol's envelope or framing), per request kind — a group's controller polls
// ('ctrl'), clerk requests ('kv'), shard pulls and deletions ('peer') — so that the bytes a
// migration moves can be told from the steady polling (`npm run bench -- shards`).

import type { Clock } from '../io/clock.js';
import type { ClientTls } from '../platform/tls.js';
import { clientDefaults, MemberConnection } from './client.js';
import { type Address, formatAddress } from './config.js';

/** Calls made and body bytes, of one request kind. */
export interface ShardRpcCounts {
  readonly calls: number;
  readonly bytesSent: number;
  /** Reply bodies only (a failed or refused call receives none). */
  readonly bytesReceived: number;
}

/** By request kind (shard-protocol.ts): 'other' is a body that is not a shard request (never, from this codebase). */
export type ShardRpcStats = Readonly<Record<ShardRequestKind | 'other', ShardRpcCounts>>;

type ShardRequestKind = 'ctrl' | 'kv' | 'peer';

const requestKindByTag: ReadonlyMap<number, ShardRequestKind> = new Map([
  ['c'.charCodeAt(0), 'ctrl'],
  ['k'.charCodeAt(0), 'kv'],
  ['p'.charCodeAt(0), 'peer'],
]);

/**
 * The kind of an encoded shard request, read from its first bytes without decoding it: a
 * MessagePack fixarray (0x90-0x9f) whose first element is a one-character fixstr (0xa1)
 * holding the tag (shard-protocol.ts: ['c', ...], ['k', ...], ['p', ...]).
 */
function requestKind(body: Uint8Array): ShardRequestKind | 'other' {
  if (body.length < 3 || (body[0]! & 0xf0) !== 0x90 || body[1] !== 0xa1) return 'other';
  return requestKindByTag.get(body[2]!) ?? 'other';
}

export interface ShardRpcOptions {
  readonly clock: Clock;
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly tls?: ClientTls | undefined;
}

export class ShardRpc {
  private readonly connections = new Map<string, Promise<MemberConnection | undefined>>();
  private closed = false;
  private readonly counts = new Map<ShardRequestKind | 'other', { calls: number; bytesSent: number; bytesReceived: number }>(
    (['ctrl', 'kv', 'peer', 'other'] as const).map((kind) => [kind, { calls: 0, bytesSent: 0, bytesReceived: 0 }]),
  );

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
    const counts = this.counts.get(requestKind(body))!;
    counts.calls++;
    counts.bytesSent += body.length;
    try {
      const response = await connection.request({ type: 'shard', body });
      if (response.type === 'result') {
        counts.bytesReceived += response.result.length;
        return response.result;
      }
      if (response.type === 'error' && response.code === 'invalid') return { invalid: `${formatAddress(address)}: ${response.message}` };
      return undefined;
    } catch {
      return undefined;
    }
  }

  /** Totals since this ShardRpc was made (for GET /status: ShardHost.describe). */
  stats(): ShardRpcStats {
    const copy = (kind: ShardRequestKind | 'other'): ShardRpcCounts => ({ ...this.counts.get(kind)! });
    return { ctrl: copy('ctrl'), kv: copy('kv'), peer: copy('peer'), other: copy('other') };
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
