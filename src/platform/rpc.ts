// Request/response over TCP: length-prefixed frames (framing.ts), MessagePack bodies
// (msgpackr in plain mode, no shared structures), Nagle off. Many calls may be in flight
// on one connection; each carries an id and its response carries the same id.
//
//   request frame:  [RPC_VERSION, callId, body]
//   response frame: [RPC_VERSION, callId, STATUS_OK, body] | [RPC_VERSION, callId, STATUS_ERROR, message]
//
// Every frame is validated at the edge: the envelope here, the body by the caller's
// decoder. A malformed, oversized or unexpected frame closes that one connection with a
// logged reason; it never throws out of an event handler, so it cannot crash the process.

import { Socket, createServer, type Server } from 'node:net';
import { Packr, Unpackr } from 'msgpackr';
import { AssertionFailure } from '../stdx/assert.js';
import { FrameDecoder, encodeFrame } from './framing.js';

export const RPC_VERSION = 1;
const STATUS_OK = 0;
const STATUS_ERROR = 1;
const CALL_ID_LIMIT = 2 ** 32;

export const rpcDefaults = {
  frameBytesMax: 4 << 20,
  /** Calls a server runs at once for one connection; more closes the connection. */
  inflightCallsMax: 256,
  /** Calls a client has waiting for an answer; more is refused with 'overloaded'. */
  pendingCallsMax: 256,
  connectionsMax: 4096,
  callTimeoutMs: 60_000,
  connectTimeoutMs: 5_000,
  /** Error messages sent back to callers are cut to this length. */
  errorMessageLengthMax: 4096,
} as const;

export type RpcErrorCode = 'unavailable' | 'closed' | 'timeout' | 'overloaded' | 'remote' | 'protocol';

/** An operating error of a call; `code` says whether the request may have been handled. */
export class RpcError extends Error {
  override name = 'RpcError';
  constructor(
    readonly code: RpcErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

/** A connection id, unique within one server. */
export type ConnectionId = number;

export interface RpcServerOptions<Req, Resp> {
  host?: string;
  /** 0 lets the OS choose. */
  port: number;
  /** Validates a request body; throws on anything malformed. */
  decodeRequest(value: unknown): Req;
  handle(connection: ConnectionId, request: Req): Resp | Promise<Resp>;
  onConnect?(connection: ConnectionId): void;
  onDisconnect?(connection: ConnectionId): void;
  /** Why a connection was closed by us. */
  log?(message: string): void;
  frameBytesMax?: number;
  inflightCallsMax?: number;
  connectionsMax?: number;
}

export interface RpcServer {
  readonly host: string;
  readonly port: number;
  connectionCount(): number;
  close(): Promise<void>;
}

export function startRpcServer<Req, Resp>(options: RpcServerOptions<Req, Resp>): Promise<RpcServer> {
  const host = options.host ?? '127.0.0.1';
  const sockets = new Map<ConnectionId, Socket>();
  let nextConnection = 1;
  const server: Server = createServer((socket) => {
    const id = nextConnection++;
    if (sockets.size >= (options.connectionsMax ?? rpcDefaults.connectionsMax)) {
      options.log?.(`refusing connection ${id}: connection limit reached`);
      socket.destroy();
      return;
    }
    sockets.set(id, socket);
    serveConnection(options, id, socket, () => {
      sockets.delete(id);
      options.onDisconnect?.(id);
    });
    options.onConnect?.(id);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : options.port;
      resolve({
        host,
        port,
        connectionCount: () => sockets.size,
        close: () => closeServer(server, sockets),
      });
    });
  });
}

function closeServer(server: Server, sockets: Map<ConnectionId, Socket>): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of sockets.values()) socket.destroy();
  });
}

function serveConnection<Req, Resp>(options: RpcServerOptions<Req, Resp>, id: ConnectionId, socket: Socket, onClose: () => void): void {
  socket.setNoDelay(true);
  const decoder = new FrameDecoder(options.frameBytesMax ?? rpcDefaults.frameBytesMax);
  const inflightMax = options.inflightCallsMax ?? rpcDefaults.inflightCallsMax;
  let inflight = 0;
  const drop = (reason: string): void => {
    if (socket.destroyed) return;
    options.log?.(`closing connection ${id} from ${socket.remoteAddress}:${socket.remotePort}: ${reason}`);
    socket.destroy();
  };
  socket.on('data', (chunk: Buffer) => {
    let frames: Buffer[];
    try {
      frames = decoder.push(chunk);
    } catch (error) {
      drop(String(error));
      return;
    }
    for (const frame of frames) {
      if (socket.destroyed) return;
      let call: { callId: number; request: Req };
      try {
        call = decodeRequestFrame(frame, options.decodeRequest);
      } catch (error) {
        drop(`malformed request: ${describe(error)}`);
        return;
      }
      if (inflight >= inflightMax) {
        drop(`more than ${inflightMax} calls in flight`);
        return;
      }
      inflight += 1;
      // A rejection here is an AssertionFailure and is left unhandled on purpose: it crashes.
      void answer(options, id, socket, call).finally(() => (inflight -= 1));
    }
  });
  socket.on('error', () => undefined); // 'close' follows; the reason does not matter to us.
  socket.on('close', onClose);
}

async function answer<Req, Resp>(options: RpcServerOptions<Req, Resp>, id: ConnectionId, socket: Socket, call: { callId: number; request: Req }): Promise<void> {
  let envelope: unknown[];
  try {
    const response = await options.handle(id, call.request);
    envelope = [RPC_VERSION, call.callId, STATUS_OK, response];
  } catch (error) {
    // A broken invariant crashes the process (STYLE.md 8) instead of becoming a reply.
    if (error instanceof AssertionFailure) throw error;
    envelope = [RPC_VERSION, call.callId, STATUS_ERROR, describe(error).slice(0, rpcDefaults.errorMessageLengthMax)];
  }
  if (!socket.destroyed) socket.write(encodeFrame(packr.pack(envelope)));
}

function decodeRequestFrame<Req>(frame: Buffer, decode: (value: unknown) => Req): { callId: number; request: Req } {
  const envelope = unpackEnvelope(frame, 3);
  return { callId: envelope[1] as number, request: decode(envelope[2]) };
}

/** Unpacks and checks the common envelope fields; `length` is 3 (request) or 4 (response). */
function unpackEnvelope(frame: Buffer, length: number): unknown[] {
  const value: unknown = unpackr.unpack(frame);
  if (!Array.isArray(value) || value.length !== length) throw new Error(`envelope must be an array of ${length}`);
  if (value[0] !== RPC_VERSION) throw new Error(`unsupported version ${String(value[0])}`);
  const callId: unknown = value[1];
  if (typeof callId !== 'number' || !Number.isInteger(callId) || callId < 0 || callId >= CALL_ID_LIMIT) {
    throw new Error('call id must be a 32-bit unsigned integer');
  }
  return value;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export interface RpcClientOptions<Resp> {
  host: string;
  port: number;
  /** Validates a response body; throws on anything malformed. */
  decodeResponse(value: unknown): Resp;
  frameBytesMax?: number;
  pendingCallsMax?: number;
  callTimeoutMs?: number;
  connectTimeoutMs?: number;
  log?(message: string): void;
}

export interface RpcClient<Req, Resp> {
  /** Rejects with RpcError. */
  call(request: Req): Promise<Resp>;
  close(): void;
  /** Resolves once the connection is closed, by either side. */
  readonly closed: Promise<void>;
}

interface Pending<Resp> {
  resolve(response: Resp): void;
  reject(error: RpcError): void;
  timer: ReturnType<typeof setTimeout>;
}

export function connectRpc<Req, Resp>(options: RpcClientOptions<Resp>): Promise<RpcClient<Req, Resp>> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const timeoutMs = options.connectTimeoutMs ?? rpcDefaults.connectTimeoutMs;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new RpcError('unavailable', `cannot connect to ${options.host}:${options.port}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(new RpcError('unavailable', `cannot connect to ${options.host}:${options.port}: ${error.message}`));
    });
    socket.connect(options.port, options.host, () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new Connection<Req, Resp>(socket, options));
    });
  });
}

class Connection<Req, Resp> implements RpcClient<Req, Resp> {
  readonly closed: Promise<void>;
  private readonly pending = new Map<number, Pending<Resp>>();
  private readonly decoder: FrameDecoder;
  private nextCallId = 0;
  private closeReason = 'connection closed';

  constructor(
    private readonly socket: Socket,
    private readonly options: RpcClientOptions<Resp>,
  ) {
    socket.setNoDelay(true);
    this.decoder = new FrameDecoder(options.frameBytesMax ?? rpcDefaults.frameBytesMax);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => (this.closeReason = `connection failed: ${error.message}`));
    socket.on('close', () => this.failAll(new RpcError('closed', this.closeReason)));
  }

  call(request: Req): Promise<Resp> {
    if (this.socket.destroyed) return Promise.reject(new RpcError('closed', this.closeReason));
    const pendingMax = this.options.pendingCallsMax ?? rpcDefaults.pendingCallsMax;
    if (this.pending.size >= pendingMax) return Promise.reject(new RpcError('overloaded', `more than ${pendingMax} calls waiting`));
    const callId = this.nextCallId;
    this.nextCallId = (this.nextCallId + 1) % CALL_ID_LIMIT;
    const frame = encodeFrame(packr.pack([RPC_VERSION, callId, request]));
    const frameBytesMax = this.options.frameBytesMax ?? rpcDefaults.frameBytesMax;
    if (frame.length > frameBytesMax) return Promise.reject(new RpcError('overloaded', `request of ${frame.length} bytes exceeds the frame limit`));
    return new Promise((resolve, reject) => {
      const timeoutMs = this.options.callTimeoutMs ?? rpcDefaults.callTimeoutMs;
      const timer = setTimeout(() => {
        this.pending.delete(callId);
        reject(new RpcError('timeout', `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(callId, { resolve, reject, timer });
      this.socket.write(frame);
    });
  }

  close(): void {
    this.closeReason = 'connection closed by this side';
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    try {
      for (const frame of this.decoder.push(chunk)) this.receiveFrame(frame);
    } catch (error) {
      this.closeReason = `malformed response: ${describe(error)}`;
      this.options.log?.(`closing connection to ${this.options.host}:${this.options.port}: ${this.closeReason}`);
      this.socket.destroy();
    }
  }

  private receiveFrame(frame: Buffer): void {
    const envelope = unpackEnvelope(frame, 4);
    const callId = envelope[1] as number;
    const status: unknown = envelope[2];
    const pending = this.pending.get(callId);
    if (pending === undefined) return; // Timed out already.
    if (status === STATUS_OK) {
      const response = this.options.decodeResponse(envelope[3]);
      this.settle(callId, pending);
      pending.resolve(response);
    } else if (status === STATUS_ERROR && typeof envelope[3] === 'string') {
      this.settle(callId, pending);
      pending.reject(new RpcError('remote', envelope[3]));
    } else {
      throw new Error('response status must be 0 with a body or 1 with a message');
    }
  }

  private settle(callId: number, pending: Pending<Resp>): void {
    clearTimeout(pending.timer);
    this.pending.delete(callId);
  }

  private failAll(error: RpcError): void {
    for (const [callId, pending] of this.pending) {
      this.settle(callId, pending);
      pending.reject(error);
    }
  }
}
