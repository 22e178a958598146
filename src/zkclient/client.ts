// ZkClient: Flotilla's own ZooKeeper client over real TCP, with the Java client's session
// semantics (docs/zookeeper.md §1, §2.1, §2.4). It speaks to Apache
// ZooKeeper 3.8 and to Flotilla's ZooKeeper-compatible front-end alike, through the one
// jute codec in zk/records.ts.
//
// One session, one connection at a time:
//
//   connect ──> handshake (45-byte ConnectRequest) ──> connected ──> connection lost
//      ^           timeOut <= 0 in the reply: expired (terminal)          │
//      └──────── next server (shuffled ring), after a random delay ───────┘
//
// * Requests are pipelined; xids count from 1. Replies must come back in the order the
//   requests were sent (§1.4): a reply whose xid is not the oldest outstanding one is a
//   protocol error, and the connection is dropped, as the Java client does.
// * Every request outstanding or queued when a connection is lost fails CONNECTIONLOSS
//   (-4): it may or may not have been applied. Calls made while disconnected wait for the
//   next connection, and fail CONNECTIONLOSS if that attempt fails (Java's cleanup()).
// * Timers (§2.1): a ping after 1/3 of the negotiated timeout without sending, the
//   connection dropped after 2/3 of it without receiving anything.
// * On reconnect: sessionId + passwd + lastZxidSeen in the ConnectRequest, then every
//   credential again (xid -4), then setWatches (xid -8) with relativeZxid = lastZxid for
//   every armed watch, then the calls made while disconnected.
// * Watches are one-shot and kept client-side as path → watcher sets; notifications
//   (xid -1) are fanned out by the Java client's rules (§2.4). When the session ends
//   (expired, closed, auth failed) every armed watcher gets one 'sessionEnded' event, so a
//   recipe waiting on a watch never waits forever on a dead session.
//
// Time and sockets come from platform/ (an injected Clock, dialFramed), randomness from a
// seeded stdx Prng, so this file touches no real I/O itself.

import type { Clock, Timer } from '../io/clock.js';
import { realClock } from '../platform/clock.js';
import { randomSeed } from '../platform/server-random.js';
import { dialFramed, type FramedConnection } from '../platform/server-client-port.js';
import type { ClientTls } from '../platform/tls.js';
import { assert, unreachable } from '../stdx/assert.js';
import { Prng } from '../stdx/prng.js';
import { CreateMode, Err, errName, EventType, OpCode, Perm, Xid } from '../zk/constants.js';
import { JuteError, JuteReader, utf8Bytes } from '../zk/jute.js';
import {
  decodeConnectResponse,
  decodeReplyHeader,
  encodeConnectRequest,
  encodeRequest,
  readMultiResults,
  readWatcherEvent,
  type MultiOp,
  type MultiResult,
  type Request,
  type WatcherEvent,
} from '../zk/records.js';
import type { Acl, Data, Stat } from '../zk/types.js';

export type { Acl, Data, Id, Stat } from '../zk/types.js';
export type { MultiResult } from '../zk/records.js';
export { Err, Perm } from '../zk/constants.js';

// ---------------------------------------------------------------------------------------
// Limits (STYLE.md 7).

/** ZooKeeper's jute.maxbuffer: the server closes the connection on a larger frame (§1.1). */
export const requestBytesMax = 0xfffff;
/** Replies may be larger than requests (a long getChildren); above this the connection drops. */
export const replyBytesMax = 4 << 20;
/** The Java client pings at least this often, whatever the session timeout. */
const pingIntervalMsMax = 10_000;
/** setWatches is split so that no frame carries more than this much path text (Java: 128 KiB). */
const setWatchesPathBytesMax = 128 << 10;
/** A new connection attempt waits a random delay below this (Java: 1 s), capped at a quarter of the session timeout. */
const reconnectDelayMsMaxDefault = 1_000;
const requestsPendingMaxDefault = 10_000;
/** The largest xid before wrapping back to 1 (the negative xids are reserved, §1.4). */
const xidMax = 0x7fff_ffff;
const passwdBytes = 16;

// ---------------------------------------------------------------------------------------
// Public types.

export type CreateModeName = 'persistent' | 'ephemeral' | 'persistent-sequential' | 'ephemeral-sequential';

/** Anything accepted as znode data: bytes, null (distinct from empty, §1.2), or text (UTF-8). */
export type DataInput = Data | string;

export interface CreateOptions {
  /** Default OPEN_ACL_UNSAFE. */
  readonly acl?: readonly Acl[];
  /** Default 'persistent'. */
  readonly mode?: CreateModeName;
}

export type WatchEventType = 'created' | 'deleted' | 'dataChanged' | 'childrenChanged' | 'sessionEnded';

export interface WatchEvent {
  readonly type: WatchEventType;
  readonly path: string;
}

/** A one-shot watcher. The same function armed twice on one path is called once (a set, as in Java). */
export type Watcher = (event: WatchEvent) => void;

/**
 * 'connected' after every handshake (the first and each reconnect), 'disconnected' when an
 * established connection is lost (the session may live on), then at most one terminal
 * state: 'expired', 'closed' or 'auth-failed'.
 */
export type ZkState = 'connecting' | 'connected' | 'disconnected' | 'expired' | 'closed' | 'auth-failed';
export type StateListener = (state: ZkState, reason: string) => void;

export type Op =
  | { readonly op: 'create'; readonly path: string; readonly data?: DataInput; readonly acl?: readonly Acl[]; readonly mode?: CreateModeName }
  | { readonly op: 'delete'; readonly path: string; readonly version?: number }
  | { readonly op: 'setData'; readonly path: string; readonly data: DataInput; readonly version?: number }
  | { readonly op: 'check'; readonly path: string; readonly version: number };

export interface Credential {
  readonly scheme: string;
  readonly auth: Uint8Array | string;
}

export interface ZkClientOptions {
  /** "host:port" of each server; tried in a shuffled ring. */
  readonly servers: readonly string[];
  /** Requested session timeout; the server clamps it (2..20 ticks). */
  readonly sessionTimeoutMs: number;
  /** One TCP connect + handshake. Default: the session timeout divided by the number of servers. */
  readonly connectTimeoutMs?: number;
  /** connect() gives up after this long without a session. Default: sessionTimeoutMs. */
  readonly initialConnectDeadlineMs?: number;
  readonly clock?: Clock;
  readonly auth?: readonly Credential[];
  /** Seeds the server shuffle and the reconnect delays. Default: from the OS. */
  readonly seed?: number;
  /** Reconnect delays are drawn from [0, this). Default min(1000, sessionTimeoutMs / 4). */
  readonly reconnectDelayMsMax?: number;
  /** Calls sent or queued at once; more are refused with THROTTLEDOP. */
  readonly requestsPendingMax?: number;
  /**
   * TLS, for a server's secure client port (ZooKeeper's secureClientPort): the server's
   * certificate must be signed by `tls.ca`; `cert` and `key` are presented if given.
   */
  readonly tls?: ClientTls | undefined;
}

export const OPEN_ACL_UNSAFE: readonly Acl[] = [{ perms: Perm.all, id: { scheme: 'world', id: 'anyone' } }];
export const READ_ACL_UNSAFE: readonly Acl[] = [{ perms: Perm.read, id: { scheme: 'world', id: 'anyone' } }];
export const CREATOR_ALL_ACL: readonly Acl[] = [{ perms: Perm.all, id: { scheme: 'auth', id: '' } }];

/** KeeperException.Code -127: the Java server's overload answer, reused for this client's own limit. */
export const throttledOpCode = -127;

/** Java's spelling of each code: NONODE, CONNECTIONLOSS, SESSIONEXPIRED, ... */
export function codeName(code: number): string {
  if (code === throttledOpCode) return 'THROTTLEDOP';
  const name = errName.get(code);
  return name === undefined ? `UNKNOWN(${code})` : name.toUpperCase();
}

/** A ZooKeeper error code (KeeperException): from the server, or CONNECTIONLOSS / SESSIONEXPIRED from this client. */
export class ZkError extends Error {
  override name = 'ZkError';
  constructor(
    readonly code: number,
    detail: string,
    /** For a failed multi: one result per op; the failing op's has its code, later ones RUNTIMEINCONSISTENCY. */
    readonly results?: readonly MultiResult[],
  ) {
    super(`${codeName(code)}: ${detail}`);
  }

  get codeName(): string {
    return codeName(this.code);
  }
}

/** Whether `error` is a ZkError with this code. */
export function isZkError(error: unknown, code: number): error is ZkError {
  return error instanceof ZkError && error.code === code;
}

export function toData(data: DataInput): Data {
  return typeof data === 'string' ? utf8Bytes(data) : data;
}

// ---------------------------------------------------------------------------------------
// Internals.

type WatchKind = 'data' | 'exist' | 'child';

/** How a reply arms a watch: exists arms a data watch if the node is there, an exist watch if not. */
interface WatchRegistration {
  readonly path: string;
  readonly watcher: Watcher;
  readonly on: 'exists' | 'getData' | 'getChildren';
}

interface Call {
  readonly request: Request;
  /** Reads the reply body when err is 0. */
  readonly decode: (reader: JuteReader) => unknown;
  /** exists answers NONODE as "absent", not as an error. */
  readonly noNodeIsNull: boolean;
  readonly watch: WatchRegistration | undefined;
  /** Sent with this xid instead of the next ordinary one (setWatches: -8). */
  readonly fixedXid: number | undefined;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  xid: number;
}

interface AuthWaiter {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

interface ServerAddress {
  readonly host: string;
  readonly port: number;
}

/** One TCP connection attempt. Handlers of an attempt that is no longer current are ignored. */
interface Attempt {
  readonly server: ServerAddress;
  connection: FramedConnection | undefined;
  established: boolean;
  timer: Timer | undefined;
}

type Phase = 'connecting' | 'connected' | 'closing' | 'expired' | 'closed' | 'auth-failed';

function parseServer(text: string): ServerAddress {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text.trim());
  if (match === null) throw new ZkError(Err.badArguments, `server ${JSON.stringify(text)} is not host:port`);
  const port = Number(match[2]);
  if (port < 1 || port > 65_535) throw new ZkError(Err.badArguments, `server ${JSON.stringify(text)} has port out of range`);
  return { host: match[1]!, port };
}

function createFlags(mode: CreateModeName | undefined): number {
  switch (mode ?? 'persistent') {
    case 'persistent':
      return CreateMode.persistent;
    case 'ephemeral':
      return CreateMode.ephemeral;
    case 'persistent-sequential':
      return CreateMode.persistentSequential;
    case 'ephemeral-sequential':
      return CreateMode.ephemeralSequential;
  }
}

function eventTypeName(code: number): WatchEventType | undefined {
  switch (code) {
    case EventType.nodeCreated:
      return 'created';
    case EventType.nodeDeleted:
      return 'deleted';
    case EventType.nodeDataChanged:
      return 'dataChanged';
    case EventType.nodeChildrenChanged:
      return 'childrenChanged';
    default:
      return undefined;
  }
}

function toMultiOp(op: Op): MultiOp {
  switch (op.op) {
    case 'create':
      return { type: 'create', opcode: OpCode.create, path: op.path, data: toData(op.data ?? null), acl: op.acl ?? OPEN_ACL_UNSAFE, flags: createFlags(op.mode) };
    case 'delete':
      return { type: 'delete', path: op.path, version: op.version ?? -1 };
    case 'setData':
      return { type: 'setData', path: op.path, data: toData(op.data), version: op.version ?? -1 };
    case 'check':
      return { type: 'check', path: op.path, version: op.version };
    default:
      return unreachable(op, 'multi op');
  }
}

/** Throws the first non-zero per-op code of a multi whose ReplyHeader said OK (§1.7). */
function checkMultiResults(results: MultiResult[]): MultiResult[] {
  const failed = results.find((result) => result.type === 'error' && result.err !== Err.ok);
  if (failed !== undefined && failed.type === 'error') throw new ZkError(failed.err, `multi op ${results.indexOf(failed)} failed; nothing was applied`, results);
  return results;
}

// ---------------------------------------------------------------------------------------

export class ZkClient {
  readonly clock: Clock;
  private readonly servers: ServerAddress[];
  private readonly prng: Prng;
  private readonly reconnectDelayMsMax: number;
  private readonly requestsPendingMax: number;
  private readonly connectTimeoutMsOption: number | undefined;

  private phase: Phase = 'connecting';
  private attempt: Attempt | undefined = undefined;
  private serverIndex = 0;
  private reconnectTimer: Timer | undefined = undefined;
  private closing: Promise<void> | undefined = undefined;
  private terminalError: ZkError | undefined = undefined;
  private readonly terminalWaiters: ((error: ZkError) => void)[] = [];

  private sessionIdValue = 0n;
  private passwd: Uint8Array = new Uint8Array(passwdBytes);
  private negotiatedTimeoutMsValue = 0;
  /** Invariant: never decreases; the highest zxid of any reply to a request. */
  private lastZxid = 0n;
  private nextXid = 1;
  private lastSendMs = 0;
  private lastReceiveMs = 0;

  /** Sent, awaiting their replies, oldest first. Invariant: xids in send order. */
  private readonly pending: Call[] = [];
  /** Made while not connected; sent after the next handshake. */
  private readonly queued: Call[] = [];
  private readonly authWaiters: AuthWaiter[] = [];
  private readonly credentials: { readonly scheme: string; readonly auth: Uint8Array }[] = [];

  private readonly watches: Record<WatchKind, Map<string, Set<Watcher>>> = { data: new Map(), exist: new Map(), child: new Map() };
  private readonly listeners = new Set<StateListener>();

  private constructor(private readonly options: ZkClientOptions) {
    assert(options.servers.length > 0, 'at least one server');
    assert(options.sessionTimeoutMs > 0, 'sessionTimeoutMs must be positive');
    this.clock = options.clock ?? realClock;
    this.prng = new Prng(options.seed ?? randomSeed());
    // Each entry may itself be a connect string ("a:2181,b:2181"), as ZooKeeper's clients take.
    this.servers = options.servers
      .flatMap((entry) => entry.split(','))
      .filter((entry) => entry.trim().length > 0)
      .map(parseServer);
    if (this.servers.length === 0) throw new ZkError(Err.badArguments, 'no servers to connect to');
    this.shuffle(this.servers);
    this.reconnectDelayMsMax = options.reconnectDelayMsMax ?? Math.min(reconnectDelayMsMaxDefault, options.sessionTimeoutMs / 4);
    this.requestsPendingMax = options.requestsPendingMax ?? requestsPendingMaxDefault;
    this.connectTimeoutMsOption = options.connectTimeoutMs;
  }

  /**
   * Opens a session. Resolves once connected and every `auth` credential is accepted;
   * rejects CONNECTIONLOSS if no server gave a session within initialConnectDeadlineMs,
   * AUTHFAILED if a credential was refused.
   */
  static async connect(options: ZkClientOptions): Promise<ZkClient> {
    const client = new ZkClient(options);
    await client.connectFirst(options.initialConnectDeadlineMs ?? options.sessionTimeoutMs);
    try {
      for (const credential of options.auth ?? []) await client.addAuth(credential.scheme, credential.auth);
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  // -- Accessors --------------------------------------------------------------------------

  /** The session id (0n before the first handshake). */
  get sessionId(): bigint {
    return this.sessionIdValue;
  }

  /** The timeout the server granted (0 before the first handshake). */
  get negotiatedTimeoutMs(): number {
    return this.negotiatedTimeoutMsValue;
  }

  get state(): ZkState {
    switch (this.phase) {
      case 'connecting':
        return this.sessionIdValue === 0n ? 'connecting' : 'disconnected';
      case 'closing':
        return 'connected';
      default:
        return this.phase;
    }
  }

  /** The highest zxid seen in a reply. */
  get lastZxidSeen(): bigint {
    return this.lastZxid;
  }

  /** Registers a state listener; returns a function that removes it. */
  on(event: 'state', listener: StateListener): () => void {
    assert(event === 'state', 'the only event is state');
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the terminal error once the session has ended (expired, closed, auth failed). */
  whenEnded(): Promise<ZkError> {
    if (this.terminalError !== undefined) return Promise.resolve(this.terminalError);
    return new Promise((resolve) => this.terminalWaiters.push(resolve));
  }

  // -- The ZooKeeper API ----------------------------------------------------------------

  /** Creates a znode; resolves with its actual path (with the sequence suffix, if any). */
  create(path: string, data: DataInput = null, options: CreateOptions = {}): Promise<string> {
    const request: Request = { type: 'create', opcode: OpCode.create, path, data: toData(data), acl: options.acl ?? OPEN_ACL_UNSAFE, flags: createFlags(options.mode) };
    return this.call(request, (r) => r.string('CreateResponse.path'));
  }

  /** create, also returning the new node's Stat (opcode create2, 15). */
  create2(path: string, data: DataInput = null, options: CreateOptions = {}): Promise<{ path: string; stat: Stat }> {
    const request: Request = { type: 'create', opcode: OpCode.create2, path, data: toData(data), acl: options.acl ?? OPEN_ACL_UNSAFE, flags: createFlags(options.mode) };
    return this.call(request, (r) => ({ path: r.string('Create2Response.path'), stat: r.stat() }));
  }

  delete(path: string, version = -1): Promise<void> {
    return this.call({ type: 'delete', path, version }, () => undefined);
  }

  /** The node's Stat, or null if absent. A watcher fires on create (absent) or change/delete (present). */
  exists(path: string, watcher?: Watcher): Promise<Stat | null> {
    const watch = watcher === undefined ? undefined : { path, watcher, on: 'exists' as const };
    return this.call({ type: 'exists', path, watch: watch !== undefined }, (r) => r.stat(), { noNodeIsNull: true, watch });
  }

  getData(path: string, watcher?: Watcher): Promise<{ data: Data; stat: Stat }> {
    const watch = watcher === undefined ? undefined : { path, watcher, on: 'getData' as const };
    return this.call({ type: 'getData', path, watch: watch !== undefined }, (r) => ({ data: r.buffer('GetDataResponse.data'), stat: r.stat() }), { watch });
  }

  setData(path: string, data: DataInput, version = -1): Promise<Stat> {
    return this.call({ type: 'setData', path, data: toData(data), version }, (r) => r.stat());
  }

  /** Child names (not full paths), in the server's order. */
  getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    const watch = watcher === undefined ? undefined : { path, watcher, on: 'getChildren' as const };
    return this.call({ type: 'getChildren', path, watch: watch !== undefined }, (r) => r.strings('GetChildrenResponse.children'), { watch });
  }

  getChildren2(path: string, watcher?: Watcher): Promise<{ children: string[]; stat: Stat }> {
    const watch = watcher === undefined ? undefined : { path, watcher, on: 'getChildren' as const };
    return this.call({ type: 'getChildren2', path, watch: watch !== undefined }, (r) => ({ children: r.strings('GetChildren2Response.children'), stat: r.stat() }), { watch });
  }

  getACL(path: string): Promise<{ acl: Acl[]; stat: Stat }> {
    return this.call({ type: 'getACL', path }, (r) => ({ acl: r.acls('GetACLResponse.acl'), stat: r.stat() }));
  }

  setACL(path: string, acl: readonly Acl[], version = -1): Promise<Stat> {
    return this.call({ type: 'setACL', path, acl, version }, (r) => r.stat());
  }

  /** Waits until the server has caught up with the leader (§2.5); resolves with the path. */
  sync(path: string): Promise<string> {
    return this.call({ type: 'sync', path }, (r) => r.string('SyncResponse.path'));
  }

  /**
   * All ops or none, under one zxid (§2.6). A failed multi rejects with a ZkError carrying
   * the first failing op's code and every op's result in `.results`.
   */
  async multi(ops: readonly Op[]): Promise<MultiResult[]> {
    const results = await this.call({ type: 'multi', ops: ops.map(toMultiOp) }, (r) => readMultiResults(r));
    return checkMultiResults(results);
  }

  /**
   * Adds a credential to the session (xid -4). It is kept and re-sent after every
   * reconnect. A refused credential ends the session: state 'auth-failed' (§1.4).
   */
  addAuth(scheme: string, auth: Uint8Array | string): Promise<void> {
    const bytes = typeof auth === 'string' ? utf8Bytes(auth) : auth;
    if (this.terminalError !== undefined || this.phase === 'closing') return Promise.reject(this.refusal());
    this.credentials.push({ scheme, auth: bytes });
    return new Promise((resolve, reject) => {
      if (this.phase !== 'connected') {
        reject(new ZkError(Err.connectionLoss, `not connected; the ${scheme} credential will be sent on reconnect`));
        return;
      }
      this.authWaiters.push({ resolve, reject });
      this.sendAuth(scheme, bytes);
    });
  }

  /**
   * Ends the session: sends closeSession (the server deletes its ephemerals at once) and
   * waits for the reply for at most the read timeout. Safe to call more than once.
   */
  close(): Promise<void> {
    this.closing ??= this.closeSession();
    return this.closing;
  }

  // -- Calls ------------------------------------------------------------------------------

  private call<T>(request: Request, decode: (reader: JuteReader) => T, how: { noNodeIsNull?: boolean; watch?: WatchRegistration | undefined; fixedXid?: number } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call: Call = {
        request,
        decode,
        noNodeIsNull: how.noNodeIsNull ?? false,
        watch: how.watch,
        fixedXid: how.fixedXid,
        resolve: resolve as (value: unknown) => void,
        reject,
        xid: 0,
      };
      this.submit(call, request.type === 'closeSession' || request.type === 'setWatches');
    });
  }

  private submit(call: Call, internal: boolean): void {
    if (this.terminalError !== undefined || (this.phase === 'closing' && !internal)) {
      call.reject(this.refusal());
      return;
    }
    if (!internal && this.pending.length + this.queued.length >= this.requestsPendingMax) {
      call.reject(new ZkError(throttledOpCode, `${this.pending.length + this.queued.length} calls are outstanding (requestsPendingMax)`));
      return;
    }
    if (this.phase === 'connected' || this.phase === 'closing') this.send(call);
    else this.queued.push(call);
  }

  /** Why a call is refused now: the terminal error, or SESSIONEXPIRED while closing (as Java). */
  private refusal(): ZkError {
    return this.terminalError ?? new ZkError(Err.sessionExpired, 'the client is closing');
  }

  private send(call: Call): void {
    const attempt = this.attempt;
    assert(attempt?.connection !== undefined && attempt.established, 'send only on an established connection');
    call.xid = call.fixedXid ?? this.takeXid();
    const body = encodeRequest(call.xid, call.request);
    if (body.length > requestBytesMax) {
      call.reject(new ZkError(Err.badArguments, `request of ${body.length} bytes exceeds ZooKeeper's limit of ${requestBytesMax} (jute.maxbuffer)`));
      return;
    }
    this.pending.push(call);
    this.lastSendMs = this.clock.nowMs();
    attempt.connection.send(body);
  }

  private takeXid(): number {
    const xid = this.nextXid;
    this.nextXid = xid === xidMax ? 1 : xid + 1;
    return xid;
  }

  private sendAuth(scheme: string, auth: Uint8Array): void {
    const connection = this.attempt?.connection;
    assert(connection !== undefined, 'auth only on a connection');
    this.lastSendMs = this.clock.nowMs();
    connection.send(encodeRequest(Xid.auth, { type: 'auth', authType: 0, scheme, auth }));
  }

  // -- Connecting -----------------------------------------------------------------------

  private connectFirst(deadlineMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const deadline = this.clock.setTimer(deadlineMs, () => {
        stop();
        this.terminate('closed', new ZkError(Err.connectionLoss, `no session from ${this.options.servers.join(',')} within ${deadlineMs} ms`));
      });
      const offState = this.on('state', (state) => {
        if (state !== 'connected') return;
        stop();
        resolve();
      });
      const stop = () => {
        deadline.cancel();
        offState();
      };
      void this.whenEnded().then((error) => {
        stop();
        reject(error);
      });
      this.startAttempt();
    });
  }

  private connectTimeoutMs(): number {
    if (this.connectTimeoutMsOption !== undefined) return this.connectTimeoutMsOption;
    const timeout = this.negotiatedTimeoutMsValue > 0 ? this.negotiatedTimeoutMsValue : this.options.sessionTimeoutMs;
    return Math.max(1, Math.floor(timeout / this.servers.length));
  }

  private scheduleAttempt(): void {
    assert(this.reconnectTimer === undefined, 'one reconnect scheduled at a time');
    const delayMs = this.reconnectDelayMsMax > 0 ? this.prng.nextFloat() * this.reconnectDelayMsMax : 0;
    this.reconnectTimer = this.clock.setTimer(delayMs, () => {
      this.reconnectTimer = undefined;
      this.startAttempt();
    });
  }

  private startAttempt(): void {
    if (this.phase !== 'connecting') return;
    const server = this.servers[this.serverIndex]!;
    this.serverIndex = (this.serverIndex + 1) % this.servers.length;
    const attempt: Attempt = { server, connection: undefined, established: false, timer: undefined };
    this.attempt = attempt;
    const timeoutMs = this.connectTimeoutMs();
    dialFramed({
      host: server.host,
      port: server.port,
      connectTimeoutMs: timeoutMs,
      limits: { frameBytesMax: replyBytesMax },
      tls: this.options.tls,
      onFrame: (_connection, body) => this.receive(attempt, body),
      onClose: () => this.lose(attempt, 'the connection closed'),
    }).then(
      (connection) => this.dialed(attempt, connection, timeoutMs),
      (error: Error) => this.lose(attempt, error.message),
    );
  }

  private dialed(attempt: Attempt, connection: FramedConnection, timeoutMs: number): void {
    if (this.attempt !== attempt) {
      connection.close();
      return;
    }
    attempt.connection = connection;
    connection.send(
      encodeConnectRequest({
        protocolVersion: 0,
        lastZxidSeen: this.lastZxid,
        timeOut: this.options.sessionTimeoutMs,
        sessionId: this.sessionIdValue,
        passwd: this.passwd,
        readOnly: false,
      }),
    );
    attempt.timer = this.clock.setTimer(timeoutMs, () => this.lose(attempt, `no ConnectResponse within ${timeoutMs} ms`));
  }

  /** The handshake reply (§1.3): timeOut <= 0 means the session is gone. */
  private handshake(attempt: Attempt, body: Uint8Array): void {
    const response = decodeConnectResponse(body);
    attempt.timer?.cancel();
    attempt.timer = undefined;
    if (response.timeOut <= 0) {
      this.terminate('expired', new ZkError(Err.sessionExpired, `session 0x${this.sessionIdValue.toString(16)} has expired`));
      return;
    }
    if (response.passwd.length !== passwdBytes) {
      this.lose(attempt, `protocol error: a session password of ${response.passwd.length} bytes, not ${passwdBytes}`);
      return;
    }
    this.sessionIdValue = response.sessionId;
    this.passwd = response.passwd;
    this.negotiatedTimeoutMsValue = response.timeOut;
    attempt.established = true;
    this.phase = 'connected';
    this.lastReceiveMs = this.clock.nowMs();
    this.lastSendMs = this.lastReceiveMs;
    for (const credential of this.credentials) {
      this.authWaiters.push({ resolve: () => {}, reject: () => {} });
      this.sendAuth(credential.scheme, credential.auth);
    }
    this.sendSetWatches();
    for (const call of this.queued.splice(0)) this.send(call);
    this.scheduleHeartbeat(attempt);
    this.emit('connected', `session 0x${this.sessionIdValue.toString(16)} on ${attempt.server.host}:${attempt.server.port}, timeout ${response.timeOut} ms`);
  }

  /** Re-arms every watch on the new connection (§2.1), in frames of at most setWatchesPathBytesMax. */
  private sendSetWatches(): void {
    const lists: Record<WatchKind, string[]> = { data: [...this.watches.data.keys()], exist: [...this.watches.exist.keys()], child: [...this.watches.child.keys()] };
    for (let guard = 0; lists.data.length + lists.exist.length + lists.child.length > 0; guard++) {
      assert(guard <= 1 + (lists.data.length + lists.exist.length + lists.child.length), 'setWatches makes progress');
      const frame: Record<WatchKind, string[]> = { data: [], exist: [], child: [] };
      let bytes = 0;
      for (const kind of ['data', 'exist', 'child'] as const) {
        while (lists[kind].length > 0 && (bytes === 0 || bytes + lists[kind][0]!.length <= setWatchesPathBytesMax)) {
          const path = lists[kind].shift()!;
          bytes += path.length;
          frame[kind].push(path);
        }
      }
      const request: Request = { type: 'setWatches', relativeZxid: this.lastZxid, dataWatches: frame.data, existWatches: frame.exist, childWatches: frame.child };
      this.call(request, () => undefined, { fixedXid: Xid.setWatches }).catch(() => {});
    }
  }

  // -- Timers -----------------------------------------------------------------------------

  private readTimeoutMs(): number {
    return (this.negotiatedTimeoutMsValue * 2) / 3;
  }

  private pingIntervalMs(): number {
    return Math.min(this.negotiatedTimeoutMsValue / 3, pingIntervalMsMax);
  }

  private scheduleHeartbeat(attempt: Attempt): void {
    const now = this.clock.nowMs();
    const next = Math.min(this.lastSendMs + this.pingIntervalMs(), this.lastReceiveMs + this.readTimeoutMs());
    attempt.timer = this.clock.setTimer(Math.max(1, Math.ceil(next - now)), () => this.heartbeat(attempt));
  }

  private heartbeat(attempt: Attempt): void {
    if (this.attempt !== attempt) return;
    const now = this.clock.nowMs();
    if (now - this.lastReceiveMs >= this.readTimeoutMs()) {
      this.lose(attempt, `nothing received for ${Math.round(now - this.lastReceiveMs)} ms (read timeout ${Math.round(this.readTimeoutMs())} ms)`);
      return;
    }
    if (now - this.lastSendMs >= this.pingIntervalMs()) {
      this.lastSendMs = now;
      attempt.connection?.send(encodeRequest(Xid.ping, { type: 'ping' }));
    }
    this.scheduleHeartbeat(attempt);
  }

  // -- Receiving --------------------------------------------------------------------------

  private receive(attempt: Attempt, frame: Uint8Array): void {
    if (this.attempt !== attempt) return;
    // A plain Uint8Array view: JuteReader slices data out of it, and Buffer.slice would
    // return Buffers sharing the frame instead of plain copies.
    const body = new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
    try {
      if (!attempt.established) this.handshake(attempt, body);
      else this.receiveReply(attempt, body);
    } catch (error) {
      if (!(error instanceof JuteError)) throw error;
      this.lose(attempt, `protocol error: ${error.message}`);
    }
  }

  private receiveReply(attempt: Attempt, body: Uint8Array): void {
    this.lastReceiveMs = this.clock.nowMs();
    const reader = new JuteReader(body);
    const header = decodeReplyHeader(reader);
    switch (header.xid) {
      case Xid.notification:
        this.dispatch(readWatcherEvent(reader));
        return;
      case Xid.ping:
        return;
      case Xid.auth:
        this.receiveAuth(header.err);
        return;
      default:
        this.receiveCallReply(attempt, header.xid, header.zxid, header.err, reader);
    }
  }

  private receiveAuth(err: number): void {
    const waiter = this.authWaiters.shift();
    if (err === Err.ok) {
      waiter?.resolve();
      return;
    }
    const error = new ZkError(err, 'the server refused a credential');
    waiter?.reject(error);
    this.terminate('auth-failed', error);
  }

  private receiveCallReply(attempt: Attempt, xid: number, zxid: bigint, err: number, reader: JuteReader): void {
    const call = this.pending[0];
    if (call === undefined || call.xid !== xid) {
      this.lose(attempt, `protocol error: reply xid ${xid}, expected ${call === undefined ? 'no reply' : call.xid} (replies must come in request order)`);
      return;
    }
    this.pending.shift();
    if (zxid > this.lastZxid) this.lastZxid = zxid;
    if (err === Err.noNode && call.noNodeIsNull) {
      this.arm(call.watch, 'exist');
      call.resolve(null);
      return;
    }
    if (err !== Err.ok) {
      call.reject(new ZkError(err, `${call.request.type}${'path' in call.request ? ` ${call.request.path}` : ''}`));
      return;
    }
    let value: unknown;
    try {
      value = call.decode(reader);
    } catch (error) {
      if (!(error instanceof JuteError)) throw error;
      call.reject(new ZkError(Err.marshallingError, `undecodable ${call.request.type} reply: ${error.message}`));
      this.lose(attempt, `protocol error: ${error.message}`);
      return;
    }
    this.arm(call.watch, call.watch?.on === 'getChildren' ? 'child' : 'data');
    call.resolve(value);
  }

  private arm(watch: WatchRegistration | undefined, kind: WatchKind): void {
    if (watch === undefined) return;
    const table = this.watches[kind];
    let set = table.get(watch.path);
    if (set === undefined) {
      set = new Set();
      table.set(watch.path, set);
    }
    set.add(watch.watcher);
  }

  /** Java's ZKWatchManager.materialize: which local watchers a notification consumes (§2.4). */
  private dispatch(event: WatcherEvent): void {
    const type = eventTypeName(event.type);
    if (type === undefined) return;
    const kinds: readonly WatchKind[] = type === 'childrenChanged' ? ['child'] : type === 'deleted' ? ['data', 'exist', 'child'] : ['data', 'exist'];
    const watchers = new Set<Watcher>();
    for (const kind of kinds) {
      for (const watcher of this.watches[kind].get(event.path) ?? []) watchers.add(watcher);
      this.watches[kind].delete(event.path);
    }
    this.deliver(watchers, { type, path: event.path });
  }

  /**
   * Watchers run as microtasks, queued in arrival order, so they run before the code
   * awaiting any later reply: a client sees a change's event before data that reflects it.
   */
  private deliver(watchers: Iterable<Watcher>, event: WatchEvent): void {
    for (const watcher of watchers) queueMicrotask(() => watcher(event));
  }

  // -- Losing the connection, ending the session ----------------------------------------

  /** The current attempt failed or its connection was lost: fail what was sent, try the next server. */
  private lose(attempt: Attempt, reason: string): void {
    if (this.attempt !== attempt) return;
    this.attempt = undefined;
    attempt.timer?.cancel();
    attempt.connection?.close();
    const failure = new ZkError(Err.connectionLoss, `${attempt.server.host}:${attempt.server.port}: ${reason}`);
    this.failAll(failure);
    if (this.phase === 'closing') return;
    if (this.terminalError !== undefined) return;
    this.phase = 'connecting';
    this.scheduleAttempt();
    if (attempt.established) this.emit('disconnected', reason);
  }

  private failAll(error: ZkError): void {
    for (const call of this.pending.splice(0)) call.reject(error);
    for (const call of this.queued.splice(0)) call.reject(error);
    for (const waiter of this.authWaiters.splice(0)) waiter.reject(error);
  }

  private terminate(state: 'expired' | 'closed' | 'auth-failed', error: ZkError): void {
    if (this.terminalError !== undefined) return;
    this.terminalError = error;
    this.phase = state;
    this.reconnectTimer?.cancel();
    this.reconnectTimer = undefined;
    const attempt = this.attempt;
    this.attempt = undefined;
    attempt?.timer?.cancel();
    attempt?.connection?.close();
    this.failAll(error);
    const watchers = new Map<Watcher, string>();
    for (const kind of ['data', 'exist', 'child'] as const) {
      for (const [path, set] of this.watches[kind]) for (const watcher of set) watchers.set(watcher, path);
      this.watches[kind].clear();
    }
    for (const [watcher, path] of watchers) this.deliver([watcher], { type: 'sessionEnded', path });
    this.emit(state, error.message);
    for (const waiter of this.terminalWaiters.splice(0)) waiter(error);
  }

  private async closeSession(): Promise<void> {
    if (this.terminalError !== undefined) return;
    const connected = this.phase === 'connected';
    this.phase = 'closing';
    if (connected) {
      const waitMs = this.readTimeoutMs();
      let timer: Timer | undefined;
      const timedOut = new Promise<void>((resolve) => (timer = this.clock.setTimer(waitMs, resolve)));
      await Promise.race([this.call({ type: 'closeSession' }, () => undefined).catch(() => {}), timedOut]);
      timer?.cancel();
    }
    this.terminate('closed', new ZkError(Err.sessionExpired, 'the client was closed'));
  }

  private emit(state: ZkState, reason: string): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(state, reason);
      } catch (error) {
        // A listener's bug must not leave the client half-way through a transition; it
        // still crashes loudly, just after this transition is complete.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  private shuffle<T>(items: T[]): void {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.prng.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
  }
}
