// The TCP transport between members (DESIGN.md §4), for any message type M with injected
// encode and validating decode functions.
//
// - One connection per pair of processes, dialled by the member with the lower id, carries
//   every Raft group: each message frame holds a group id. The higher id only accepts; its
//   messages wait in the queue until the lower id (re)connects.
// - Frames are 4-byte length-prefixed (framing.ts), each built in one buffer; setNoDelay(true),
//   because Nagle plus delayed ACK costs ~88 ms per round trip (ts-ecosystem.md §4).
// - Coalescing: every message queued for a peer in one turn of the event loop goes out in one
//   BATCH frame (the message frames one after another, up to frameBytesMax), written with one
//   writev. The groups of a process tick together (runtime/ticker.ts), so the heartbeats of
//   a hundred groups to one peer are one frame per tick, not a hundred (CockroachDB's and
//   TiKV's coalesced heartbeats).
// - Send queues are bounded in messages and bytes; at the bound, messages are dropped and
//   counted (Raft retries). Dialling backs off exponentially with jitter.
// - Mutual authentication with the cluster secret, before any message is accepted:
//
//     dialer                                       acceptor
//     HELLO(version, dialerId, acceptorId, nD)  →
//                                               ←  CHALLENGE(acceptorId, nA, HMAC(k, "acceptor"|ids|nD|nA))
//     PROOF(HMAC(k, "dialer"|ids|nD|nA))        →  (verified before any MESSAGE frame is read)
//
//   Fresh random nonces on both sides defeat replay. This authenticates the endpoints; it
//   does not protect later frames from an attacker on the path (that is what TLS is for).
// - With `tls` (a MemberTls, tls.ts), every connection is mutual TLS first: both sides
//   present a certificate signed by the cluster's CA, and the dialer checks that the
//   acceptor's certificate names the address it dialled. The handshake above then runs
//   inside TLS, so a member needs both the CA's certificate and the cluster secret. A
//   refused handshake is logged with the remote address and the reason, on both sides.
// - A malformed, unauthenticated or oversized frame, or a message that fails validation,
//   closes that connection with a log line. Nothing a peer sends can throw out of here.

import { createServer, connect, type Server, type Socket } from 'node:net';
import { connect as connectTls, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { assert } from '../stdx/assert.js';
import type { NodeId } from '../stdx/types.js';
import type { Transport } from '../io/transport.js';
import { FRAME_HEADER_BYTES, FrameDecoder, FrameError } from './framing.js';
import { describeTlsError, isTlsError, type MemberTls } from './tls.js';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** The subset of a pino logger the transport uses. */
export interface PeerLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export interface PeerTransportLimits {
  /** The largest frame accepted or sent, in bytes (body, without the 4-byte length). */
  readonly frameBytesMax: number;
  readonly sendQueueMessagesMax: number;
  readonly sendQueueBytesMax: number;
  /** Bytes an unauthenticated connection may make us buffer. */
  readonly handshakeBytesMax: number;
  readonly handshakeTimeoutMs: number;
  /** Unauthenticated inbound connections at once; more are closed at once. */
  readonly pendingHandshakesMax: number;
  readonly reconnectDelayMsMin: number;
  readonly reconnectDelayMsMax: number;
}

export const peerTransportDefaults: PeerTransportLimits = {
  frameBytesMax: 16 * 1024 * 1024,
  sendQueueMessagesMax: 4096,
  sendQueueBytesMax: 64 * 1024 * 1024,
  handshakeBytesMax: 1024,
  handshakeTimeoutMs: 5000,
  pendingHandshakesMax: 64,
  reconnectDelayMsMin: 20,
  reconnectDelayMsMax: 2000,
};

export interface PeerTransportOptions<M> {
  readonly selfId: NodeId;
  readonly listen: PeerAddress;
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  readonly clusterSecret: string | Uint8Array;
  readonly encode: (message: M) => Uint8Array;
  /** Decodes and validates every field; throws on anything invalid. */
  readonly decode: (bytes: Uint8Array) => M;
  readonly onMessage: (from: NodeId, groupId: number, message: M) => void;
  /**
   * An authenticated connection to a peer closed and no other is open: the peer's process
   * may have died (the kernel closes a dead process's sockets). A hint, never a certainty.
   */
  readonly onPeerClosed?: (id: NodeId) => void;
  readonly logger: PeerLogger;
  readonly limits?: Partial<PeerTransportLimits>;
  /** Mutual TLS on every peer connection (both directions); undefined: plain TCP. */
  readonly tls?: MemberTls;
}

export interface PeerTransportStats {
  readonly messagesSent: number;
  /** Frames written: a batch of messages counts once. */
  readonly framesSent: number;
  readonly messagesReceived: number;
  readonly messagesDropped: number;
  readonly bytesSent: number;
  readonly connectionsRejected: number;
}

/** 2: BATCH frames. */
const PROTOCOL_VERSION = 2;
const NONCE_BYTES = 32;
const PROOF_BYTES = 32;
const GROUP_ID_MAX = 0xffff_ffff;
const Kind = { hello: 1, challenge: 2, proof: 3, message: 4, batch: 5 } as const;
const MESSAGE_HEADER_BYTES = 1 + 4;

interface Peer {
  readonly id: NodeId;
  address: PeerAddress | undefined;
  /** Encoded frames waiting for the connection. Invariant: queuedBytes is their total size. */
  queue: Buffer[];
  queuedBytes: number;
  connection: Connection | undefined;
  dialing: boolean;
  reconnectTimer: NodeJS.Timeout | undefined;
  failedDials: number;
  flushScheduled: boolean;
}

export class PeerTransport<M> {
  private readonly limits: PeerTransportLimits;
  private readonly secret: Buffer;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly connections = new Set<Connection>();
  private server: Server | undefined = undefined;
  private closed = false;
  private pendingHandshakes = 0;
  /** Fault injection (setLinkCut): peers whose messages are dropped, per direction. */
  private readonly cutOutgoing = new Set<NodeId>();
  private readonly cutIncoming = new Set<NodeId>();
  private counters = { messagesSent: 0, framesSent: 0, messagesReceived: 0, messagesDropped: 0, bytesSent: 0, connectionsRejected: 0 };

  private constructor(private readonly options: PeerTransportOptions<M>) {
    this.limits = { ...peerTransportDefaults, ...options.limits };
    this.secret = Buffer.from(options.clusterSecret);
    assert(this.secret.length >= 16, 'the cluster secret has at least 16 bytes');
    assert(isWireId(options.selfId), 'member ids fit 32 bits');
    for (const [id, address] of options.peers) this.setPeer(id, address);
  }

  /** Starts listening (port 0 picks a free port) and dials the peers with higher ids. */
  static async start<M>(options: PeerTransportOptions<M>): Promise<PeerTransport<M>> {
    const transport = new PeerTransport(options);
    await transport.listen();
    for (const peer of transport.peers.values()) transport.maybeDial(peer);
    return transport;
  }

  /** The address actually listened on. */
  address(): PeerAddress {
    const address = this.server?.address();
    assert(address !== null && typeof address === 'object', 'listening');
    return { host: address.address, port: address.port };
  }

  /** Adds a peer or changes its address (the next dial uses it). */
  setPeer(id: NodeId, address: PeerAddress): void {
    assert(id !== this.options.selfId, 'a member is not its own peer');
    assert(isWireId(id), 'member ids fit 32 bits');
    const existing = this.peers.get(id);
    if (existing !== undefined) {
      existing.address = address;
    } else {
      const peer: Peer = { id, address, queue: [], queuedBytes: 0, connection: undefined, dialing: false, reconnectTimer: undefined, failedDials: 0, flushScheduled: false };
      this.peers.set(id, peer);
    }
    if (this.server !== undefined) this.maybeDial(this.peers.get(id)!);
  }

  /** A Transport for one Raft group: every group shares the connection to each peer. */
  group(groupId: number): Transport<M> {
    assert(Number.isInteger(groupId) && groupId >= 0 && groupId <= GROUP_ID_MAX, 'group ids fit 32 bits');
    return { send: (to, message) => this.send(to, groupId, message) };
  }

  /** Queues `message` for `to` in `groupId`. Drops (and counts) instead of throwing. */
  send(to: NodeId, groupId: number, message: M): void {
    const peer = this.peers.get(to);
    if (peer === undefined || this.closed || this.cutOutgoing.has(to)) {
      this.counters.messagesDropped++;
      return;
    }
    const frame = this.encodeMessageFrame(groupId, message);
    if (frame === undefined) return;
    if (peer.queue.length >= this.limits.sendQueueMessagesMax || peer.queuedBytes + frame.length > this.limits.sendQueueBytesMax) {
      this.counters.messagesDropped++;
      return;
    }
    peer.queue.push(frame);
    peer.queuedBytes += frame.length;
    if (peer.connection !== undefined) this.scheduleFlush(peer);
    else this.maybeDial(peer);
  }

  /**
   * Fault injection (the dashboard's "cut link", allowed only with --allow-faults): from now
   * on, messages to `peer` (outgoing) and/or from it (incoming) are dropped and counted as
   * dropped, as a network partition would lose them. The connection itself stays up. Messages
   * queued for `peer` when its outgoing side is cut are dropped too.
   */
  setLinkCut(peer: NodeId, cut: { readonly outgoing: boolean; readonly incoming: boolean }): void {
    assert(peer !== this.options.selfId && isWireId(peer), 'a link goes to another member');
    if (cut.outgoing) {
      this.cutOutgoing.add(peer);
      const queued = this.peers.get(peer);
      if (queued !== undefined) {
        this.counters.messagesDropped += queued.queue.length;
        queued.queue = [];
        queued.queuedBytes = 0;
      }
    } else this.cutOutgoing.delete(peer);
    if (cut.incoming) this.cutIncoming.add(peer);
    else this.cutIncoming.delete(peer);
  }

  /** The links cut with setLinkCut: peers (sorted) whose messages are dropped, per direction. */
  linkCuts(): { outgoing: NodeId[]; incoming: NodeId[] } {
    return { outgoing: [...this.cutOutgoing].sort((a, b) => a - b), incoming: [...this.cutIncoming].sort((a, b) => a - b) };
  }

  stats(): PeerTransportStats {
    return { ...this.counters };
  }

  /** Authenticated connections, by peer id (sorted), for status pages and tests. */
  connectedPeers(): NodeId[] {
    return [...this.peers.values()]
      .filter((peer) => peer.connection !== undefined)
      .map((peer) => peer.id)
      .sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const peer of this.peers.values()) {
      if (peer.reconnectTimer !== undefined) clearTimeout(peer.reconnectTimer);
      peer.queue = [];
      peer.queuedBytes = 0;
    }
    for (const connection of this.connections) connection.socket.destroy();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- Sending ----

  /** One buffer: length, kind, group id, payload. Undefined (and logged) if too large. */
  private encodeMessageFrame(groupId: number, message: M): Buffer | undefined {
    assert(Number.isInteger(groupId) && groupId >= 0 && groupId <= GROUP_ID_MAX, 'group ids fit 32 bits');
    const payload = this.options.encode(message);
    const bodyBytes = MESSAGE_HEADER_BYTES + payload.length;
    if (bodyBytes > this.limits.frameBytesMax) {
      this.counters.messagesDropped++;
      this.options.logger.warn({ groupId, bytes: bodyBytes, limit: this.limits.frameBytesMax }, 'dropped an outgoing message larger than frameBytesMax');
      return undefined;
    }
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyBytes);
    frame.writeUInt32BE(bodyBytes, 0);
    frame.writeUInt8(Kind.message, 4);
    frame.writeUInt32BE(groupId, 5);
    frame.set(payload, FRAME_HEADER_BYTES + MESSAGE_HEADER_BYTES);
    return frame;
  }

  private scheduleFlush(peer: Peer): void {
    if (peer.flushScheduled) return;
    peer.flushScheduled = true;
    // Batching: every message sent in this turn of the event loop goes out in one writev.
    setImmediate(() => {
      peer.flushScheduled = false;
      this.flush(peer);
    });
  }

  /**
   * Writes the queued frames, as BATCH frames of up to frameBytesMax each (a lone message
   * goes as itself), until the socket asks to drain.
   */
  private flush(peer: Peer): void {
    const connection = peer.connection;
    if (connection === undefined || connection.socket.writableNeedDrain) return;
    const socket = connection.socket;
    socket.cork();
    let sent = 0;
    let writable = true;
    while (sent < peer.queue.length && writable) {
      // The batch: frames [sent, end) whose total fits a frame's body after the kind byte.
      let end = sent;
      let bytes = 0;
      while (end < peer.queue.length && (end === sent || 1 + bytes + peer.queue[end]!.length <= this.limits.frameBytesMax)) bytes += peer.queue[end++]!.length;
      if (end - sent > 1) {
        const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1);
        header.writeUInt32BE(1 + bytes, 0);
        header.writeUInt8(Kind.batch, FRAME_HEADER_BYTES);
        socket.write(header);
        this.counters.bytesSent += header.length;
      }
      for (let i = sent; i < end; i++) {
        const frame = peer.queue[i]!;
        writable = socket.write(frame);
        peer.queuedBytes -= frame.length;
        this.counters.bytesSent += frame.length;
      }
      this.counters.messagesSent += end - sent;
      this.counters.framesSent++;
      sent = end;
    }
    peer.queue.splice(0, sent);
    socket.uncork();
  }

  // ---- Connections ----

  private listen(): Promise<void> {
    const tls = this.options.tls;
    let server: Server;
    if (tls === undefined) {
      server = createServer((socket) => this.accept(socket));
    } else {
      server = createTlsServer(tls.serverOptions('peer'));
      tls.secure(server as ReturnType<typeof createTlsServer>, 'peer', this.options.logger);
      // After secure()'s check, which destroys a socket whose certificate the CA did not sign.
      server.on('secureConnection', (socket: TLSSocket) => {
        if (!socket.destroyed) this.accept(socket);
      });
    }
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.listen.port, this.options.listen.host, () => {
        server.off('error', reject);
        server.on('error', (error) => this.options.logger.warn({ error: error.message }, 'peer listener error'));
        resolve();
      });
    });
  }

  private accept(socket: Socket): void {
    if (this.closed || this.pendingHandshakes >= this.limits.pendingHandshakesMax) {
      this.counters.connectionsRejected++;
      this.options.logger.warn({ remote: socket.remoteAddress, limit: this.limits.pendingHandshakesMax }, 'closed a peer connection: too many unauthenticated connections');
      socket.destroy();
      return;
    }
    this.pendingHandshakes++;
    this.track(new Connection(this.handshakeContext(), socket, 'acceptor', undefined, this.options.tls !== undefined));
  }

  /** Dials `peer` if this member is the dialer for the pair and is not already connected. */
  private maybeDial(peer: Peer): void {
    if (this.closed || peer.id < this.options.selfId) return;
    if (peer.connection !== undefined || peer.dialing || peer.reconnectTimer !== undefined || peer.address === undefined) return;
    peer.dialing = true;
    const { host, port } = peer.address;
    const tls = this.options.tls;
    const socket = tls === undefined ? connect({ host, port }) : connectTls({ host, port, ...tls.connectOptions(host) });
    const connection = new Connection(this.handshakeContext(), socket, 'dialer', peer.id, tls !== undefined);
    connection.dialled = `${host}:${port}`;
    this.track(connection);
  }

  private track(connection: Connection): void {
    this.connections.add(connection);
  }

  private handshakeContext(): HandshakeContext {
    return {
      selfId: this.options.selfId,
      secret: this.secret,
      limits: this.limits,
      logger: this.options.logger,
      isAcceptablePeer: (id) => this.peers.has(id) && id < this.options.selfId,
      onOpen: (connection) => this.onOpen(connection),
      onMessage: (connection, body) => (body.readUInt8(0) === Kind.batch ? this.onBatchFrame(connection, body) : this.onMessageFrame(connection, body)),
      onClose: (connection, wasPending) => this.onClose(connection, wasPending),
    };
  }

  private onOpen(connection: Connection): void {
    const peer = this.peers.get(connection.peerId!);
    assert(peer !== undefined, 'authenticated peers are known');
    if (connection.role === 'acceptor') this.pendingHandshakes--;
    // Newest wins: a peer that restarted may reconnect before its old socket times out.
    const old = peer.connection;
    peer.connection = connection;
    peer.dialing = false;
    peer.failedDials = 0;
    if (old !== undefined && old !== connection) old.socket.destroy();
    connection.socket.on('drain', () => this.scheduleFlush(peer));
    this.options.logger.info({ peer: peer.id, role: connection.role, tls: this.options.tls !== undefined }, 'peer connection authenticated');
    this.scheduleFlush(peer);
  }

  /** A BATCH frame: message frames back to back, each with its length. */
  private onBatchFrame(connection: Connection, body: Buffer): void {
    let at = 1;
    while (at < body.length) {
      const length = at + FRAME_HEADER_BYTES <= body.length ? body.readUInt32BE(at) : -1;
      const start = at + FRAME_HEADER_BYTES;
      if (length < MESSAGE_HEADER_BYTES || start + length > body.length || body.readUInt8(start) !== Kind.message) {
        connection.fail(`malformed batch frame at byte ${at} of ${body.length}`);
        return;
      }
      this.onMessageFrame(connection, body.subarray(start, start + length));
      if (connection.broken) return;
      at = start + length;
    }
  }

  private onMessageFrame(connection: Connection, body: Buffer): void {
    if (this.cutIncoming.has(connection.peerId!)) {
      this.counters.messagesDropped++;
      return;
    }
    const groupId = body.readUInt32BE(1);
    let message: M;
    try {
      message = this.options.decode(body.subarray(MESSAGE_HEADER_BYTES));
    } catch (error) {
      connection.fail(`invalid message in group ${groupId}: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    this.counters.messagesReceived++;
    this.options.onMessage(connection.peerId!, groupId, message);
  }

  private onClose(connection: Connection, wasPending: boolean): void {
    this.connections.delete(connection);
    if (wasPending && connection.role === 'acceptor') this.pendingHandshakes--;
    const peer = connection.peerId === undefined ? undefined : this.peers.get(connection.peerId);
    if (peer === undefined) return;
    const wasCurrent = peer.connection === connection;
    if (wasCurrent) peer.connection = undefined;
    if (wasCurrent && !wasPending && !this.closed) this.options.onPeerClosed?.(peer.id);
    if (connection.role !== 'dialer' || peer.connection !== undefined) return;
    peer.dialing = false;
    if (!this.closed) this.scheduleRedial(peer);
  }

  private scheduleRedial(peer: Peer): void {
    const exponent = Math.min(peer.failedDials, 20);
    peer.failedDials++;
    const ceiling = Math.min(this.limits.reconnectDelayMsMax, this.limits.reconnectDelayMsMin * 2 ** exponent);
    const delayMs = ceiling * (0.5 + Math.random() / 2);
    peer.reconnectTimer = setTimeout(() => {
      peer.reconnectTimer = undefined;
      this.maybeDial(peer);
    }, delayMs);
  }
}

function isWireId(id: number): boolean {
  return Number.isInteger(id) && id > 0 && id <= 0xffff_ffff;
}

// ---- One connection and its handshake ----

interface HandshakeContext {
  readonly selfId: NodeId;
  readonly secret: Buffer;
  readonly limits: PeerTransportLimits;
  readonly logger: PeerLogger;
  isAcceptablePeer(id: NodeId): boolean;
  onOpen(connection: Connection): void;
  onMessage(connection: Connection, body: Buffer): void;
  onClose(connection: Connection, wasPending: boolean): void;
}

type ConnectionState = 'await-hello' | 'await-challenge' | 'await-proof' | 'open' | 'closed';

class Connection {
  state: ConnectionState;
  /** The address a dialer dialled, for log lines (a failed socket may no longer know it). */
  dialled: string | undefined = undefined;
  /** Set once fail() destroyed the socket; frames already decoded are ignored. */
  private failed = false;
  private readonly decoder: FrameDecoder;
  private readonly localNonce = randomBytes(NONCE_BYTES);
  private remoteNonce: Buffer | undefined = undefined;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(
    private readonly context: HandshakeContext,
    readonly socket: Socket,
    readonly role: 'dialer' | 'acceptor',
    /** Known from the start for a dialer; from HELLO for an acceptor. */
    public peerId: NodeId | undefined,
    /** A TLS socket: a dialer starts the handshake once TLS is up ('secureConnect'). */
    tls: boolean,
  ) {
    this.decoder = new FrameDecoder(context.limits.frameBytesMax);
    this.state = role === 'dialer' ? 'await-challenge' : 'await-hello';
    socket.setNoDelay(true);
    this.handshakeTimer = setTimeout(() => this.fail('handshake timed out'), context.limits.handshakeTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.socketError(error));
    socket.on('close', () => this.closed());
    if (role === 'dialer') socket.on(tls ? 'secureConnect' : 'connect', () => this.sendHello());
  }

  /** True once the connection failed or closed: frames already decoded are ignored. */
  get broken(): boolean {
    return this.failed || this.state === 'closed';
  }

  /** Closes the connection with a logged reason. */
  fail(reason: string): void {
    if (this.state === 'closed' || this.failed) return;
    this.failed = true;
    this.context.logger.warn({ peer: this.peerId, remote: this.socket.remoteAddress, role: this.role, reason }, 'closed a peer connection');
    this.socket.destroy();
  }

  private socketError(error: Error): void {
    if (!isTlsError(error)) {
      this.context.logger.debug({ peer: this.peerId, error: error.message }, 'peer socket error');
      return;
    }
    const remote = this.dialled ?? (this.socket.remoteAddress === undefined ? undefined : `${this.socket.remoteAddress}:${this.socket.remotePort}`);
    this.context.logger.warn({ peer: this.peerId, remote, role: this.role, reason: describeTlsError(error) }, 'TLS handshake with a peer failed');
  }

  private closed(): void {
    const wasPending = this.state !== 'open' && this.state !== 'closed';
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    this.context.onClose(this, wasPending);
  }

  private receive(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      this.fail(error instanceof FrameError ? error.message : String(error));
      return;
    }
    if (this.state !== 'open' && this.decoder.bufferedBytes() > this.context.limits.handshakeBytesMax) {
      this.fail('unauthenticated peer sent more than handshakeBytesMax');
      return;
    }
    for (const body of frames) {
      if (this.failed || this.state === 'closed') return;
      this.receiveFrame(body);
    }
  }

  private receiveFrame(body: Buffer): void {
    const kind = body.length > 0 ? body.readUInt8(0) : -1;
    if (this.state === 'open' && ((kind === Kind.message && body.length >= MESSAGE_HEADER_BYTES) || kind === Kind.batch)) {
      this.context.onMessage(this, body);
    } else if (this.state === 'await-hello' && kind === Kind.hello) {
      this.receiveHello(body);
    } else if (this.state === 'await-challenge' && kind === Kind.challenge) {
      this.receiveChallenge(body);
    } else if (this.state === 'await-proof' && kind === Kind.proof) {
      this.receiveProof(body);
    } else {
      this.fail(`unexpected frame (kind ${kind}, ${body.length} bytes) in state ${this.state}`);
    }
  }

  private sendHello(): void {
    const body = Buffer.alloc(1 + 1 + 4 + 4 + NONCE_BYTES);
    body.writeUInt8(Kind.hello, 0);
    body.writeUInt8(PROTOCOL_VERSION, 1);
    body.writeUInt32BE(this.context.selfId, 2);
    body.writeUInt32BE(this.peerId!, 6);
    this.localNonce.copy(body, 10);
    this.writeFrame(body);
  }

  private receiveHello(body: Buffer): void {
    if (body.length !== 1 + 1 + 4 + 4 + NONCE_BYTES) return this.fail('malformed HELLO');
    if (body.readUInt8(1) !== PROTOCOL_VERSION) return this.fail(`peer protocol version ${body.readUInt8(1)}, expected ${PROTOCOL_VERSION}`);
    const dialerId = body.readUInt32BE(2) as NodeId;
    if (body.readUInt32BE(6) !== this.context.selfId) return this.fail(`HELLO is addressed to member ${body.readUInt32BE(6)}, this is ${this.context.selfId}`);
    if (!this.context.isAcceptablePeer(dialerId)) return this.fail(`member ${dialerId} is not a peer that dials this member`);
    this.peerId = dialerId;
    this.remoteNonce = Buffer.from(body.subarray(10));
    const reply = Buffer.alloc(1 + 4 + NONCE_BYTES + PROOF_BYTES);
    reply.writeUInt8(Kind.challenge, 0);
    reply.writeUInt32BE(this.context.selfId, 1);
    this.localNonce.copy(reply, 5);
    this.proof('acceptor').copy(reply, 5 + NONCE_BYTES);
    this.state = 'await-proof';
    this.writeFrame(reply);
  }

  private receiveChallenge(body: Buffer): void {
    if (body.length !== 1 + 4 + NONCE_BYTES + PROOF_BYTES) return this.fail('malformed CHALLENGE');
    if (body.readUInt32BE(1) !== this.peerId) return this.fail(`dialled member ${this.peerId} but member ${body.readUInt32BE(1)} answered`);
    this.remoteNonce = Buffer.from(body.subarray(5, 5 + NONCE_BYTES));
    if (!timingSafeEqual(body.subarray(5 + NONCE_BYTES), this.proof('acceptor'))) return this.fail('authentication failed: the peer does not know the cluster secret');
    const reply = Buffer.alloc(1 + PROOF_BYTES);
    reply.writeUInt8(Kind.proof, 0);
    this.proof('dialer').copy(reply, 1);
    this.writeFrame(reply);
    this.open();
  }

  private receiveProof(body: Buffer): void {
    if (body.length !== 1 + PROOF_BYTES) return this.fail('malformed PROOF');
    if (!timingSafeEqual(body.subarray(1), this.proof('dialer'))) return this.fail('authentication failed: the peer does not know the cluster secret');
    this.open();
  }

  private open(): void {
    clearTimeout(this.handshakeTimer);
    this.state = 'open';
    this.context.onOpen(this);
  }

  /** HMAC over the role, both ids and both nonces, in dialer-then-acceptor order. */
  private proof(role: 'dialer' | 'acceptor'): Buffer {
    const dialerId = this.role === 'dialer' ? this.context.selfId : this.peerId!;
    const acceptorId = this.role === 'dialer' ? this.peerId! : this.context.selfId;
    const dialerNonce = this.role === 'dialer' ? this.localNonce : this.remoteNonce!;
    const acceptorNonce = this.role === 'dialer' ? this.remoteNonce! : this.localNonce;
    return createHmac('sha256', this.context.secret).update(`flotilla-peer-v${PROTOCOL_VERSION}|${role}|${dialerId}|${acceptorId}|`).update(dialerNonce).update(acceptorNonce).digest();
  }

  private writeFrame(body: Buffer): void {
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
    frame.writeUInt32BE(body.length, 0);
    body.copy(frame, FRAME_HEADER_BYTES);
    this.socket.write(frame);
  }
}
