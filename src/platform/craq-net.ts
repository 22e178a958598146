// The sockets of a CRAQ node (src/craq/): one TCP port, speaking platform/rpc.ts (length-
// prefixed MessagePack frames), for both chain links and clients. A request is
//
//   ['peer', message]    a one-way chain message; answered with null at once
//   ['client', request]  a client's read, write or status; answered with the reply
//
// The bodies are validated by the decoders the caller passes in (craq/codec.ts).
// CraqPeerLinks is the node's io.Transport to its peers: one connection per peer, dialed
// on first use; a message to an unreachable peer is dropped (the protocol re-sends on its
// next tick), and a failed dial is not retried for reconnectDelayMs.

import { connectRpc, RpcError, startRpcServer, type RpcClient, type RpcServer } from './rpc.js';
import type { Transport } from '../io/transport.js';
import type { NodeId } from '../stdx/types.js';

/** Frames carry whole snapshots (a join's state transfer), so they may be large. */
export const craqFrameBytesMax = 64 << 20;
const reconnectDelayMs = 200;

export type CraqWireRequest<P, C> = { readonly kind: 'peer'; readonly message: P } | { readonly kind: 'client'; readonly request: C };

export interface CraqServerOptions<P, C, R> {
  readonly host?: string;
  readonly port: number;
  readonly decodePeer: (value: unknown) => P;
  readonly decodeClient: (value: unknown) => C;
  readonly onPeer: (message: P) => void;
  readonly onClient: (request: C) => Promise<R>;
  readonly log?: (message: string) => void;
}

/** Listens for peers and clients. Resolves once listening (port 0: the OS picks). */
export function startCraqServer<P, C, R>(options: CraqServerOptions<P, C, R>): Promise<RpcServer> {
  return startRpcServer<CraqWireRequest<P, C>, R | null>({
    host: options.host ?? '127.0.0.1',
    port: options.port,
    frameBytesMax: craqFrameBytesMax,
    inflightCallsMax: 4096,
    decodeRequest: (value) => {
      if (!Array.isArray(value) || value.length !== 2) throw new Error('a request is [kind, body]');
      if (value[0] === 'peer') return { kind: 'peer', message: options.decodePeer(value[1]) };
      if (value[0] === 'client') return { kind: 'client', request: options.decodeClient(value[1]) };
      throw new Error(`unknown request kind ${JSON.stringify(value[0])}`);
    },
    handle: (_connection, request) => {
      if (request.kind === 'peer') {
        options.onPeer(request.message);
        return null;
      }
      return options.onClient(request.request);
    },
    ...(options.log === undefined ? {} : { log: options.log }),
  });
}

interface Link {
  client: RpcClient<unknown, unknown> | undefined;
  dialing: boolean;
  queue: unknown[];
  failedAtMs: number;
}

/** Messages queued for a peer while its connection is being dialed. */
const queuedMessagesMax = 4096;

export class CraqPeerLinks<P> implements Transport<P> {
  private readonly addresses = new Map<NodeId, string>();
  private readonly links = new Map<string, Link>();
  private closed = false;

  /** The peers' "host:port" addresses; links to peers no longer listed are closed. */
  setAddresses(addresses: ReadonlyMap<NodeId, string>): void {
    this.addresses.clear();
    for (const [id, address] of addresses) this.addresses.set(id, address);
    const wanted = new Set(addresses.values());
    for (const [address, link] of this.links) {
      if (wanted.has(address)) continue;
      link.client?.close();
      this.links.delete(address);
    }
  }

  send(to: NodeId, message: P): void {
    const address = this.addresses.get(to);
    if (address === undefined || this.closed) return;
    let link = this.links.get(address);
    if (link === undefined) {
      link = { client: undefined, dialing: false, queue: [], failedAtMs: -Infinity };
      this.links.set(address, link);
    }
    const request = ['peer', message];
    if (link.client !== undefined) {
      link.client.call(request).catch(() => undefined);
      return;
    }
    if (link.queue.length < queuedMessagesMax) link.queue.push(request);
    if (!link.dialing && performance.now() - link.failedAtMs >= reconnectDelayMs) this.dial(address, link);
  }

  close(): void {
    this.closed = true;
    for (const link of this.links.values()) link.client?.close();
    this.links.clear();
  }

  private dial(address: string, link: Link): void {
    link.dialing = true;
    const [host, port] = splitAddress(address);
    connectRpc<unknown, unknown>({ host, port, decodeResponse: (value) => value, frameBytesMax: craqFrameBytesMax, pendingCallsMax: 65_536, callTimeoutMs: 10_000, connectTimeoutMs: 1_000 }).then(
      (client) => {
        link.dialing = false;
        if (this.closed || this.links.get(address) !== link) {
          client.close();
          return;
        }
        link.client = client;
        void client.closed.then(() => {
          if (link.client === client) link.client = undefined;
        });
        for (const request of link.queue.splice(0)) client.call(request).catch(() => undefined);
      },
      () => {
        link.dialing = false;
        link.failedAtMs = performance.now();
        link.queue = [];
      },
    );
  }
}

export function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65_535) throw new Error(`"${address}" is not host:port`);
  return [address.slice(0, colon), port];
}

/** A client's connection to one node: request → reply, RpcError on failure. */
export interface CraqConnection<C, R> {
  call(request: C): Promise<R>;
  close(): void;
  readonly closed: Promise<void>;
}

export async function connectCraq<C, R>(address: string, decodeReply: (value: unknown) => R, callTimeoutMs: number): Promise<CraqConnection<C, R>> {
  const [host, port] = splitAddress(address);
  const client = await connectRpc<unknown, R>({
    host,
    port,
    decodeResponse: decodeReply,
    frameBytesMax: craqFrameBytesMax,
    pendingCallsMax: 4096,
    callTimeoutMs,
    connectTimeoutMs: Math.min(callTimeoutMs, 2_000),
  });
  return { call: (request: C) => client.call(['client', request]), close: () => client.close(), closed: client.closed };
}

export { RpcError };
