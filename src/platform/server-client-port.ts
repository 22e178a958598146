// Framed TCP for the server's client port and for its clients: 4-byte length-prefixed
// frames (framing.ts), one buffer per frame, setNoDelay(true) on both ends
// (ts-ecosystem.md §4: Nagle plus delayed ACK costs ~88 ms per round trip).
//
// This module moves opaque frame bodies only; the request codec and its validation live
// in server/. What it guarantees: an oversized frame, a socket error, or a client that
// stops reading (its unread replies pass outputBytesMax) closes that one connection with
// a log line; nothing a client sends can throw out of an event handler.
//
// With `tls`, the listener is a TLS server (tls.ts: the member certificate, client
// certificates required with clientCertAuth) and a dial is a TLS connection that checks
// the server's certificate against the given CA and the address dialled.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { connect as connectTls, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { assert } from '../stdx/assert.js';
import { FrameDecoder, FrameError, encodeFrame } from './framing.js';
import { type ClientTls, clientConnectOptions, describeTlsError, isTlsError, type MemberTls, type TlsPort } from './tls.js';

export interface FramedLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface FramedLimits {
  /** The largest frame body accepted or sent, in bytes. */
  readonly frameBytesMax: number;
  /** Open connections at once; more are closed at once. */
  readonly connectionsMax: number;
  /** Replies a connection may leave unread before it is closed. */
  readonly outputBytesMax: number;
  /** A connection with no traffic for this long is closed (0: never), so stalled peers free their slot. */
  readonly idleTimeoutMs: number;
}

export const framedDefaults: FramedLimits = {
  frameBytesMax: 1 << 20,
  connectionsMax: 1024,
  outputBytesMax: 16 << 20,
  idleTimeoutMs: 0,
};

export interface FramedConnection {
  readonly id: number;
  readonly remote: string;
  /** Sends one frame. Returns false (and sends nothing) if the connection is closed. */
  send(body: Uint8Array): boolean;
  /** Closes the connection; `reason` is logged (undefined: a normal close, not logged). */
  close(reason?: string): void;
  isOpen(): boolean;
}

export interface FramedHandlers {
  /** One complete frame body (a fresh copy). May call connection.close(). */
  onFrame(connection: FramedConnection, body: Buffer): void;
  onClose?(connection: FramedConnection): void;
  /**
   * Plain-text commands recognised as a connection's first four bytes (ZooKeeper's
   * four-letter words, whose ASCII read as a length is no real frame's): the answer is
   * written as text and the connection closed.
   */
  readonly rawWords?: { readonly words: ReadonlySet<string>; answer(word: string): string };
}

export interface FramedServerOptions extends FramedHandlers {
  readonly host: string;
  readonly port: number;
  readonly logger: FramedLogger;
  readonly limits?: Partial<FramedLimits>;
  /** Names the port in log lines ("client"). */
  readonly name: string;
  /** Serve TLS with the member's certificate (the port decides whether client certificates are required). */
  readonly tls?: { readonly member: MemberTls; readonly port: TlsPort };
}

let nextConnectionId = 1;

class SocketConnection implements FramedConnection {
  readonly id = nextConnectionId++;
  readonly remote: string;
  private readonly decoder: FrameDecoder;
  private open = true;
  /** Writes are held (socket.cork) until the end of this turn; see send(). */
  private corked = false;
  /** Whether the first four bytes were looked at (for rawWords). */
  private preambleChecked = false;

  constructor(
    private readonly socket: Socket,
    private readonly limits: FramedLimits,
    private readonly handlers: FramedHandlers,
    private readonly logger: FramedLogger | undefined,
    private readonly name: string,
  ) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.decoder = new FrameDecoder(limits.frameBytesMax);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.closed());
    if (limits.idleTimeoutMs > 0) {
      socket.setTimeout(limits.idleTimeoutMs);
      socket.on('timeout', () => this.close(`idle for ${limits.idleTimeoutMs} ms`));
    }
  }

  send(body: Uint8Array): boolean {
    if (!this.open) return false;
    if (body.length > this.limits.frameBytesMax) {
      this.close(`reply of ${body.length} bytes exceeds frameBytesMax ${this.limits.frameBytesMax}`);
      return false;
    }
    if (this.socket.writableLength + body.length > this.limits.outputBytesMax) {
      this.close(`the peer left more than outputBytesMax (${this.limits.outputBytesMax}) bytes unread`);
      return false;
    }
    // Every frame sent in one turn of the event loop leaves in one write (one syscall): a Ready
    // applied at once answers many requests, and a client with many calls in flight sends them
    // together. Corked until the loop's check phase (setImmediate): replies come from promise
    // continuations, which run after process.nextTick callbacks, so nextTick would uncork
    // after the first reply of the turn.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(() => this.flush());
    }
    this.socket.write(encodeFrame(body));
    return true;
  }

  /** Lets the corked frames go (send()). */
  private flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  close(reason?: string): void {
    if (!this.open) return;
    // A last frame sent just before closing (a refusal, an expired session) still leaves.
    this.flush();
    this.open = false;
    if (reason !== undefined) this.logger?.warn({ port: this.name, remote: this.remote, reason }, `closed a ${this.name} connection`);
    this.socket.destroy();
  }

  isOpen(): boolean {
    return this.open;
  }

  private receive(chunk: Buffer): void {
    if (!this.preambleChecked && this.handlers.rawWords !== undefined && this.answerRawWord(chunk)) return;
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      this.close(error instanceof FrameError ? error.message : String(error));
      return;
    }
    for (const body of frames) {
      if (!this.open) return;
      this.handlers.onFrame(this, body);
    }
  }

  /** True if the connection's first bytes were a raw word (answered) or are still too few to tell. */
  private answerRawWord(chunk: Buffer): boolean {
    const buffered = this.decoder.bufferedBytes();
    if (buffered + chunk.length < 4) {
      this.decoder.push(chunk);
      return true;
    }
    this.preambleChecked = true;
    const head = Buffer.concat([this.decoder.peek(), chunk]).subarray(0, 4).toString('latin1');
    const raw = this.handlers.rawWords!;
    if (!raw.words.has(head)) return false;
    this.open = false;
    this.socket.end(raw.answer(head));
    return true;
  }

  private closed(): void {
    this.open = false;
    this.handlers.onClose?.(this);
  }
}

export class FramedServer {
  private readonly connections = new Set<SocketConnection>();
  private accepting = true;

  private constructor(
    private readonly server: Server,
    private readonly options: FramedServerOptions,
    private readonly limits: FramedLimits,
  ) {}

  /** Listens (port 0 picks a free port). */
  static start(options: FramedServerOptions): Promise<FramedServer> {
    const limits = { ...framedDefaults, ...options.limits };
    const tls = options.tls;
    const server = tls === undefined ? createServer() : createTlsServer(tls.member.serverOptions(tls.port));
    const framed = new FramedServer(server, options, limits);
    if (tls === undefined) {
      server.on('connection', (socket) => framed.accept(socket));
    } else {
      tls.member.secure(server as ReturnType<typeof createTlsServer>, tls.port, options.logger);
      // After secure()'s check, which destroys a socket with a refused client certificate.
      server.on('secureConnection', (socket: TLSSocket) => {
        if (!socket.destroyed) framed.accept(socket);
      });
    }
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        server.on('error', (error) => options.logger.warn({ port: options.name, error: error.message }, 'listener error'));
        resolve(framed);
      });
    });
  }

  address(): { host: string; port: number } {
    const address = this.server.address();
    assert(address !== null && typeof address === 'object', 'listening');
    return { host: address.address, port: address.port };
  }

  connectionCount(): number {
    return this.connections.size;
  }

  /** Stops accepting connections; open ones continue until close(). */
  stopAccepting(): void {
    this.accepting = false;
    this.server.close();
  }

  /** Closes every connection and the listener. */
  async close(): Promise<void> {
    const wasAccepting = this.accepting;
    this.accepting = false;
    for (const connection of this.connections) connection.close();
    if (wasAccepting) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    if (!this.accepting || this.connections.size >= this.limits.connectionsMax) {
      this.options.logger.warn(
        { port: this.options.name, remote: socket.remoteAddress, limit: this.limits.connectionsMax },
        `refused a ${this.options.name} connection (closing, or connectionsMax reached)`,
      );
      socket.destroy();
      return;
    }
    const handlers: FramedHandlers = {
      onFrame: (connection, body) => this.options.onFrame(connection, body),
      ...(this.options.rawWords === undefined ? {} : { rawWords: this.options.rawWords }),
      onClose: (connection) => {
        this.connections.delete(connection as SocketConnection);
        this.options.onClose?.(connection);
      },
    };
    this.connections.add(new SocketConnection(socket, this.limits, handlers, this.options.logger, this.options.name));
  }
}

export interface DialOptions extends FramedHandlers {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly limits?: Partial<FramedLimits>;
  /** Dial with TLS: the server's certificate must be signed by `tls.ca` and name `host`. */
  readonly tls?: ClientTls | undefined;
}

/** Why a connection could not be made; `code` is the socket error's (ECONNREFUSED), or 'ETIMEDOUT'. */
export class DialError extends Error {
  override name = 'DialError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** Connects to a framed server. Rejects with a DialError if the connection fails or times out. */
export function dialFramed(options: DialOptions): Promise<FramedConnection> {
  const limits = { ...framedDefaults, ...options.limits };
  return new Promise((resolve, reject) => {
    const tls = options.tls;
    const socket = tls === undefined ? connect({ host: options.host, port: options.port }) : connectTls({ host: options.host, port: options.port, ...clientConnectOptions(tls, options.host) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DialError(`connecting to ${options.host}:${options.port} timed out after ${options.connectTimeoutMs} ms`, 'ETIMEDOUT'));
    }, options.connectTimeoutMs);
    const failed = (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const reason = isTlsError(error) ? `the TLS handshake failed: ${describeTlsError(error)}` : error.message;
      reject(new DialError(`connecting to ${options.host}:${options.port} failed: ${reason}`, error.code));
    };
    socket.once('error', failed);
    socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', failed);
      resolve(new SocketConnection(socket, limits, options, undefined, 'client'));
    });
  });
}
