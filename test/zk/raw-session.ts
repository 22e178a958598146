// A raw ZooKeeper connection for the differential and fuzz tests: node:net and the project's
// own codec (src/zk/records.ts), no client library in between, so a test sees every byte
// a server sends — header-only error replies, the 36- or 37-byte ConnectResponse, a close
// without a reply — and can send bytes no well-behaved client would.
//
// What it keeps: one event log of everything the server sent on the connection, replies
// and notifications interleaved in arrival order (so a test can assert that a notification
// came before a reply, docs/zookeeper.md §2.4), ending with 'closed'.
// Requests are numbered 1, 2, 3, … as the Java client does; ping, auth and setWatches use
// their special xids (-2, -4, -8, §1.4). A keep-alive ping goes out when the connection has
// been idle for a third of the negotiated timeout, as real clients do, so a slow test does
// not lose its session; ping replies are in the log with xid -2 and most tests skip them.
//
// Limits: every wait has a deadline (`timeoutMs`); a frame longer than FRAME_BYTES_MAX from
// the server destroys the connection rather than buffering it.

import { connect, type Socket } from 'node:net';
import { OpCode, Xid } from '../../src/zk/constants.js';
import { JuteReader } from '../../src/zk/jute.js';
import { decodeConnectResponse, decodeReplyHeader, encodeConnectRequest, encodeRequest, readWatcherEvent, type ConnectResponse, type ReplyHeader, type Request } from '../../src/zk/records.js';

/** The largest frame accepted from a server (ZooKeeper's own limit is 0xfffff). */
const FRAME_BYTES_MAX = 4 << 20;
const REQUESTED_TIMEOUT_MS_DEFAULT = 30_000;

export interface RawSessionOptions {
  /** Deadline for the TCP connect plus handshake, and the default for each request. */
  readonly timeoutMs: number;
  /** Send the ConnectRequest's trailing readOnly byte (45-byte body). Default true, as the Java client. */
  readonly readOnlyByte?: boolean;
  /** Resume this session (0n or absent: a new one). */
  readonly sessionId?: bigint;
  /** The session's password (16 zero bytes for a new session). */
  readonly passwd?: Uint8Array;
  readonly lastZxidSeen?: bigint;
  /** The session timeout asked for; servers clamp it to [2, 20] ticks. */
  readonly sessionTimeoutMs?: number;
  /** Send idle pings (default true). */
  readonly keepAlive?: boolean;
  /**
   * Request frame bodies written in the same write as the ConnectRequest, before any reply
   * (clients pipeline like this, §1.1). Their replies land in `events` only: no waiters.
   */
  readonly pipelined?: readonly Uint8Array[];
}

export type SessionEvent =
  | { readonly kind: 'reply'; readonly xid: number; readonly zxid: bigint; readonly err: number }
  | { readonly kind: 'notification'; readonly type: number; readonly state: number; readonly path: string }
  /** A frame from the server that did not decode (a server bug): the connection is dropped. */
  | { readonly kind: 'malformed'; readonly reason: string }
  | { readonly kind: 'closed' };

export interface Reply {
  readonly header: ReplyHeader;
  /** Positioned after the ReplyHeader. */
  readonly body: JuteReader;
  /** The whole frame body, header included. */
  readonly bytes: Uint8Array;
}

export class ConnectionClosedError extends Error {
  override name = 'ConnectionClosedError';
}

interface Waiter {
  resolve(reply: Reply): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** `host:port` → parts; throws on anything else. */
export function parseHostPort(hostPort: string): { host: string; port: number } {
  const colon = hostPort.lastIndexOf(':');
  const port = Number(hostPort.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`expected host:port, got ${JSON.stringify(hostPort)}`);
  return { host: hostPort.slice(0, colon), port };
}

/** One frame: a 4-byte big-endian length and the body. */
export function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

/** A TCP connection, open, with nothing sent yet (for tests that send only raw bytes). */
export function openSocket(hostPort: string, timeoutMs: number): Promise<Socket> {
  const { host, port } = parseHostPort(hostPort);
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${hostPort}: no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}

export class RawSession {
  /** Everything the server sent, in arrival order. */
  readonly events: SessionEvent[] = [];
  /** Resolves (never rejects) when the connection has closed, from either side. */
  readonly closed: Promise<void>;
  /** The ConnectResponse, or undefined if the server closed without one. */
  connectResponse: ConnectResponse | undefined = undefined;
  /** Body length of the ConnectResponse (36 without the readOnly byte, 37 with it). */
  connectResponseBytes = 0;
  /** The largest ReplyHeader zxid seen (what a client sends as lastZxidSeen). */
  lastZxid = 0n;
  private nextXid = 1;
  private readonly waiters = new Map<number, Waiter[]>();
  private buffered: Buffer = Buffer.alloc(0);
  private isClosed = false;
  private lastSendMs = Date.now();
  private pingTimer: NodeJS.Timeout | undefined;
  private handshakeDone: ((ok: boolean) => void) | undefined;

  private constructor(
    readonly hostPort: string,
    private readonly socket: Socket,
    readonly timeoutMs: number,
  ) {
    let onClosed: () => void = () => {};
    this.closed = new Promise((resolve) => {
      onClosed = resolve;
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => {});
    socket.once('close', () => {
      this.isClosed = true;
      if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
      this.events.push({ kind: 'closed' });
      this.handshakeDone?.(false);
      for (const [xid, waiters] of this.waiters) {
        for (const waiter of waiters) {
          clearTimeout(waiter.timer);
          waiter.reject(new ConnectionClosedError(`${hostPort}: the connection closed before the reply to xid ${xid}`));
        }
      }
      this.waiters.clear();
      onClosed();
    });
  }

  /** Connects and completes the handshake; throws unless the server granted a session (timeOut > 0). */
  static async connect(hostPort: string, options: RawSessionOptions): Promise<RawSession> {
    const session = await RawSession.handshake(hostPort, options);
    const response = session.connectResponse;
    if (response === undefined || response.timeOut <= 0) {
      session.close();
      throw new Error(`${hostPort}: the handshake was refused (${response === undefined ? 'closed without a ConnectResponse' : `timeOut ${response.timeOut}`})`);
    }
    return session;
  }

  /**
   * Connects and sends the ConnectRequest; resolves once the ConnectResponse arrived or the
   * server closed the connection without one (then `connectResponse` is undefined).
   */
  static async handshake(hostPort: string, options: RawSessionOptions): Promise<RawSession> {
    const socket = await openSocket(hostPort, options.timeoutMs);
    const session = new RawSession(hostPort, socket, options.timeoutMs);
    const done = new Promise<boolean>((resolve) => {
      session.handshakeDone = resolve;
    });
    const request = encodeConnectRequest({
      protocolVersion: 0,
      lastZxidSeen: options.lastZxidSeen ?? 0n,
      timeOut: options.sessionTimeoutMs ?? REQUESTED_TIMEOUT_MS_DEFAULT,
      sessionId: options.sessionId ?? 0n,
      passwd: options.passwd ?? new Uint8Array(16),
      readOnly: options.readOnlyByte === false ? undefined : false,
    });
    session.sendRaw(Buffer.concat([frame(request), ...(options.pipelined ?? []).map(frame)]));
    const timer = setTimeout(() => session.handshakeDone?.(false), options.timeoutMs);
    const ok = await done;
    clearTimeout(timer);
    session.handshakeDone = undefined;
    if (!ok && !session.isClosed) {
      session.close();
      throw new Error(`${hostPort}: no ConnectResponse within ${options.timeoutMs} ms`);
    }
    const response = session.connectResponse;
    if (response !== undefined && response.timeOut > 0 && options.keepAlive !== false) session.startKeepAlive(response.timeOut);
    return session;
  }

  get sessionId(): bigint {
    return this.connectResponse?.sessionId ?? 0n;
  }

  get passwd(): Uint8Array {
    return this.connectResponse?.passwd ?? new Uint8Array(16);
  }

  isOpen(): boolean {
    return !this.isClosed;
  }

  /** The xid the next ordinary request will get. */
  peekXid(): number {
    return this.nextXid;
  }

  /** Sends `request` with the next xid (or its special xid) and resolves with the reply to it. */
  request(request: Request, timeoutMs = this.timeoutMs): Promise<Reply> {
    const xid = specialXid(request) ?? this.nextXid++;
    return this.requestBody(xid, encodeRequest(xid, request), timeoutMs);
  }

  /** Sends a frame whose body (RequestHeader included) the caller built, and waits for the reply to `xid`. */
  requestBody(xid: number, body: Uint8Array, timeoutMs = this.timeoutMs): Promise<Reply> {
    const reply = this.waitReply(xid, timeoutMs);
    this.sendRaw(frame(body));
    return reply;
  }

  /** Resolves with the next reply to `xid` (registered before the request is sent). */
  waitReply(xid: number, timeoutMs = this.timeoutMs): Promise<Reply> {
    if (this.isClosed) return Promise.reject(new ConnectionClosedError(`${this.hostPort}: the connection is closed`));
    return new Promise<Reply>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const list = this.waiters.get(xid);
          const at = list?.indexOf(waiter) ?? -1;
          if (list !== undefined && at >= 0) list.splice(at, 1);
          reject(new Error(`${this.hostPort}: no reply to xid ${xid} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      const list = this.waiters.get(xid) ?? [];
      list.push(waiter);
      this.waiters.set(xid, list);
    });
  }

  /** Writes bytes as they are (frame them yourself with frame()). */
  sendRaw(bytes: Uint8Array): void {
    if (this.isClosed) return;
    this.lastSendMs = Date.now();
    this.socket.write(bytes);
  }

  /** Waits up to `ms` for the connection to close; true if it did. */
  async closesWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const result = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  /** Waits until an event matching `match` has arrived at index ≥ `from`; returns its index. */
  async waitEvent(match: (event: SessionEvent) => boolean, from = 0, timeoutMs = this.timeoutMs): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.events.findIndex((event, i) => i >= from && match(event));
      if (at >= 0) return at;
      if (Date.now() > deadline) throw new Error(`${this.hostPort}: no matching event within ${timeoutMs} ms; events: ${JSON.stringify(this.events.slice(from), bigintJson)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Destroys the socket: no closeSession, the session lives on until it expires. */
  close(): void {
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    this.socket.destroy();
  }

  /** Sends closeSession, waits for its reply and the close. */
  async closeSession(): Promise<void> {
    await this.request({ type: 'closeSession' });
    if (!(await this.closesWithin(this.timeoutMs))) this.close();
  }

  private startKeepAlive(negotiatedMs: number): void {
    const idleMs = Math.max(50, Math.floor(negotiatedMs / 3));
    this.pingTimer = setInterval(
      () => {
        if (this.isClosed || Date.now() - this.lastSendMs < idleMs) return;
        this.sendRaw(frame(encodeRequest(Xid.ping, { type: 'ping' })));
      },
      Math.max(25, Math.floor(idleMs / 2)),
    );
    this.pingTimer.unref();
  }

  private receive(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 4 && !this.isClosed) {
      const length = this.buffered.readInt32BE(0);
      if (length < 0 || length > FRAME_BYTES_MAX) return this.malformed(`a frame claims ${length} bytes`);
      if (this.buffered.length < 4 + length) return;
      const body = new Uint8Array(this.buffered.subarray(4, 4 + length));
      this.buffered = this.buffered.subarray(4 + length);
      try {
        this.frameArrived(body);
      } catch (error) {
        return this.malformed((error as Error).message);
      }
    }
  }

  private frameArrived(body: Uint8Array): void {
    if (this.connectResponse === undefined && this.handshakeDone !== undefined) {
      this.connectResponse = decodeConnectResponse(body);
      this.connectResponseBytes = body.length;
      this.handshakeDone(true);
      return;
    }
    const reader = new JuteReader(body);
    const header = decodeReplyHeader(reader);
    if (header.xid === Xid.notification) {
      const event = readWatcherEvent(reader);
      this.events.push({ kind: 'notification', type: event.type, state: event.state, path: event.path });
      return;
    }
    if (header.zxid > this.lastZxid) this.lastZxid = header.zxid;
    this.events.push({ kind: 'reply', xid: header.xid, zxid: header.zxid, err: header.err });
    const waiters = this.waiters.get(header.xid);
    const waiter = waiters?.shift();
    if (waiters !== undefined && waiters.length === 0) this.waiters.delete(header.xid);
    if (waiter === undefined) return;
    clearTimeout(waiter.timer);
    waiter.resolve({ header, body: reader, bytes: body });
  }

  private malformed(reason: string): void {
    this.events.push({ kind: 'malformed', reason });
    this.socket.destroy();
  }
}

function specialXid(request: Request): number | undefined {
  switch (request.type) {
    case 'ping':
      return Xid.ping;
    case 'auth':
      return Xid.auth;
    case 'setWatches':
      return Xid.setWatches;
    default:
      return undefined;
  }
}

/** JSON.stringify replacer that prints bigints. */
export function bigintJson(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `${value}n` : value;
}

/** A GetData request body with a null path (length -1): ZooKeeper answers MARSHALLINGERROR. */
export function nullPathGetData(xid: number): Uint8Array {
  const out = Buffer.alloc(4 + 4 + 4 + 1);
  out.writeInt32BE(xid, 0);
  out.writeInt32BE(OpCode.getData, 4);
  out.writeInt32BE(-1, 8);
  out.writeUInt8(0, 12);
  return new Uint8Array(out);
}
