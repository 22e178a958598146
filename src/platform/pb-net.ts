// The sockets of a primary/backup replica (src/pb/): one TCP port speaking platform/rpc.ts
// (length-prefixed MessagePack frames) for both the logging channel and clients:
//
//   ['log', message]     primary → backup: a snapshot or log entries; answered with the ack
//   ['client', request]  a client's request; answered with the reply
//
// The primary dials its backup (whose address it learns from ZooKeeper) and sends the log
// as calls on that one connection, so entries arrive in order and each answer is the ack.
// Bodies are validated by the decoders the caller passes (pb/codec.ts, pb/kv.ts); a
// handler that throws answers the call with an error, which the primary takes as the
// backup refusing the log.

import { connectRpc, RpcError, startRpcServer, type RpcServer } from './rpc.js';
import { splitAddress } from './craq-net.js';

/** A snapshot travels in one frame. */
export const pbFrameBytesMax = 64 << 20;

export type PbWireRequest = { readonly kind: 'log'; readonly message: unknown } | { readonly kind: 'client'; readonly request: unknown };

export interface PbServerOptions {
  readonly host: string;
  readonly port: number;
  readonly onLog: (message: unknown) => unknown;
  readonly onClient: (request: unknown) => Promise<unknown>;
  readonly log?: (message: string) => void;
}

export function startPbServer(options: PbServerOptions): Promise<RpcServer> {
  return startRpcServer<PbWireRequest, unknown>({
    host: options.host,
    port: options.port,
    frameBytesMax: pbFrameBytesMax,
    inflightCallsMax: 8192,
    decodeRequest: (value) => {
      if (!Array.isArray(value) || value.length !== 2) throw new Error('a request is [kind, body]');
      if (value[0] === 'log') return { kind: 'log', message: value[1] };
      if (value[0] === 'client') return { kind: 'client', request: value[1] };
      throw new Error(`unknown request kind ${JSON.stringify(value[0])}`);
    },
    handle: (_connection, request) => (request.kind === 'log' ? options.onLog(request.message) : options.onClient(request.request)),
    ...(options.log === undefined ? {} : { log: options.log }),
  });
}

/** One connection to a replica: calls of either kind; RpcError on failure. */
export interface PbConnection {
  call(kind: 'log' | 'client', body: unknown): Promise<unknown>;
  close(): void;
  readonly closed: Promise<void>;
}

export async function connectPb(address: string, callTimeoutMs: number): Promise<PbConnection> {
  const [host, port] = splitAddress(address);
  const client = await connectRpc<unknown, unknown>({
    host,
    port,
    decodeResponse: (value) => value,
    frameBytesMax: pbFrameBytesMax,
    pendingCallsMax: 16_384,
    callTimeoutMs,
    connectTimeoutMs: Math.min(callTimeoutMs, 2_000),
  });
  return { call: (kind, body) => client.call([kind, body]), close: () => client.close(), closed: client.closed };
}

export { RpcError, splitAddress };
