// The ZooKeeper client port of one member (docs/zookeeper.md §1–§2): the
// handshake, then one session per connection, strict FIFO replies, watches, auth.
//
// Each connection keeps a queue of its requests in arrival order. A write is dispatched at
// once (through the log) and its reply is encoded when this member applies it; a read is
// evaluated only when it reaches the head of the queue — after every earlier request of the
// connection has been answered, so it sees the session's own earlier writes (FIFO order,
// read-your-writes). Replies leave in queue order. Watch notifications are sent the moment
// the change is applied, so they precede any later reply on that connection (§2.4).
//
// What closes a connection (and nothing else): a malformed handshake or header, an unknown
// opcode (after its UNIMPLEMENTED reply, as ZooKeeper does), a write that timed out or lost
// its place (the client reconnects and keeps its session), the session moving to another
// connection, a failed auth, closeSession.

import { Err, EventType, KeeperState, OpCode, Perm, Xid, type EventTypeCode } from './constants.js';
import { checkAcl, maskAcl } from './acl.js';
import { JuteError, type JuteWriter } from './jute.js';
import {
  decodeConnectRequest,
  decodeRequest,
  encodeConnectResponse,
  encodeNotification,
  encodeReply,
  RequestDecodeError,
  writeMultiResults,
  type MultiOp,
  type MultiResult,
  type Request,
} from './records.js';
import { OUT_OF_ORDER, type ZkResult } from './state-machine.js';
import { answerFourLetterWord, type ConnectionSummary, type ServerFacts } from './four-letter.js';
import { ZkRequestError, type ZkService } from './service.js';
import type { Id, Stat, WriteOp, WriteResult } from './types.js';
import type { Watcher } from './watches.js';
import { configNodePath, configStat, formatConfig, planReconfig, ReconfigErr, type ZkMembership } from './config-node.js';

/** A client connection as the port hands it over (platform's FramedConnection fits). */
export interface ZkPort {
  readonly id: number;
  /** "address:port" of the client. */
  readonly remote: string;
  send(body: Uint8Array): boolean;
  close(reason?: string): void;
  isOpen(): boolean;
}

export interface ZkFrontEndOptions {
  /** SHA-1 of the bytes (digest auth ids are user:base64(sha1(user:password))). */
  readonly sha1: (bytes: Uint8Array) => Uint8Array;
  /** A digest id (user:base64hash) whose holder is a superuser, if any. */
  readonly superDigest?: string;
  /** Requests queued on one connection before it is closed as a runaway client. */
  readonly outstandingMax?: number;
  /** Frames a client may pipeline before its session is ready. */
  readonly preSessionFramesMax?: number;
  /** Static facts for `conf` and `envi`. */
  readonly conf: () => readonly (readonly [string, string | number])[];
  readonly environment: () => readonly (readonly [string, string])[];
  readonly followers?: () => { followers: number; synced: number } | undefined;
  readonly fileDescriptors?: () => { open: number; max: number } | undefined;
  /**
   * The ZooKeeper group's membership: `/zookeeper/config` reads it and `reconfig` changes it
   * (config-node.ts). Without it the node reads empty and reconfig is RECONFIGDISABLED.
   */
  readonly membership?: ZkMembership;
}

interface Slot {
  readonly xid: number;
  /** The encoded reply, once known. */
  reply: Uint8Array | undefined;
  /** Evaluated at the head of the queue (reads); may complete later (sync). */
  run: (() => void) | undefined;
  /** Close the connection after this reply is sent. */
  closeAfter: boolean;
  readonly startMs: number;
}

const zeroPassword = new Uint8Array(16);
const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

export class ZkFrontEnd {
  private readonly connections = new Map<number, ZkConnection>();
  /** Sessions bound to a connection on this member. */
  readonly bySession = new Map<number, ZkConnection>();
  readonly stats = { received: 0, sent: 0, latencyMin: Infinity, latencyMax: 0, latencySum: 0, latencyCount: 0 };
  private accepting = true;

  constructor(
    readonly service: ZkService,
    readonly options: ZkFrontEndOptions,
    readonly nowMs: () => number,
  ) {
    service.setSessionListener({
      sessionAttached: (sessionId, owner) => {
        const connection = this.bySession.get(sessionId);
        if (connection !== undefined && connection.owner !== owner) connection.close('the session moved to another connection');
      },
      sessionClosed: (sessionId) => {
        const connection = this.bySession.get(sessionId);
        if (connection !== undefined && !connection.closingSession) connection.close('the session expired');
      },
    });
  }

  onFrame(port: ZkPort, body: Uint8Array): void {
    let connection = this.connections.get(port.id);
    if (connection === undefined) {
      if (!this.accepting) return port.close('the member is stopping');
      connection = new ZkConnection(this, port);
      this.connections.set(port.id, connection);
    }
    this.stats.received++;
    connection.receive(body);
  }

  onClose(port: ZkPort): void {
    const connection = this.connections.get(port.id);
    if (connection === undefined) return;
    this.connections.delete(port.id);
    connection.closed();
  }

  /** A four-letter word on a fresh connection (the port detects it before any frame). */
  fourLetterWord(word: string): string {
    return answerFourLetterWord(word, () => this.facts());
  }

  /** The ZooKeeper group's configuration changed: `/zookeeper/config`'s data watches fire (§2.12). */
  configChanged(): void {
    this.service.watches.trigger({ path: configNodePath, type: 'dataChanged' });
  }

  /** Closes every connection (the member lost its leader for too long, or is stopping). */
  closeAll(reason: string): void {
    for (const connection of [...this.connections.values()]) connection.close(reason);
  }

  stopAccepting(): void {
    this.accepting = false;
    this.closeAll('the member is stopping');
  }

  connectionCount(): number {
    return this.connections.size;
  }

  recordLatency(ms: number): void {
    const s = this.stats;
    s.latencyMin = Math.min(s.latencyMin, ms);
    s.latencyMax = Math.max(s.latencyMax, ms);
    s.latencySum += ms;
    s.latencyCount++;
  }

  facts(): ServerFacts {
    const service = this.service;
    const tree = service.machine.tree;
    const s = this.stats;
    const watchCounts = service.watches.counts();
    const connections: ConnectionSummary[] = [...this.connections.values()].map((c) => c.summary());
    const followers = this.options.followers?.();
    let ephemeralsCount = 0;
    for (const session of service.machine.sessions()) ephemeralsCount += tree.ephemerals(session.sessionId).length;
    const role = service.replica.raft.isStopped() ? 'follower' : service.replica.raft.status().role;
    return {
      mode: role === 'leader' ? 'leader' : 'follower',
      lastZxid: service.machine.lastZxid,
      nodeCount: tree.nodeCount,
      ephemeralsCount,
      approximateDataSize: tree.approximateDataSize,
      watchCount: watchCounts.watches,
      watchedPaths: watchCounts.paths,
      watches: service.watches.byPath(),
      latency: { min: s.latencyCount === 0 ? 0 : Math.round(s.latencyMin), avg: s.latencyCount === 0 ? 0 : s.latencySum / s.latencyCount, max: Math.round(s.latencyMax) },
      received: s.received,
      sent: s.sent,
      outstanding: connections.reduce((sum, c) => sum + c.queued, 0),
      connections,
      conf: this.options.conf(),
      environment: this.options.environment(),
      fileDescriptors: this.options.fileDescriptors?.(),
      followers: followers?.followers,
      syncedFollowers: followers?.synced,
    };
  }

  digestId(credentials: string): string {
    const colon = credentials.indexOf(':');
    const user = colon < 0 ? credentials : credentials.slice(0, colon);
    return `${user}:${base64(this.options.sha1(new TextEncoder().encode(credentials)))}`;
  }
}

type Phase = 'handshake' | 'opening' | 'ready' | 'closed';

class ZkConnection implements Watcher {
  private phase: Phase = 'handshake';
  private readonly queue: Slot[] = [];
  private readonly early: Uint8Array[] = [];
  private sessionId = 0;
  private seq = 0;
  private lastSentZxid = 0;
  private readonly ids: Id[];
  /** The readOnly byte of the handshake, echoed only if the client sent one. */
  private readOnlyEcho: boolean | undefined = undefined;
  readonly owner: string;
  closingSession = false;
  private received = 0;
  private sent = 0;

  constructor(
    private readonly front: ZkFrontEnd,
    private readonly port: ZkPort,
  ) {
    this.owner = front.service.ownerName(port.id);
    this.ids = [{ scheme: 'ip', id: hostOf(port.remote) }];
  }

  get queued(): number {
    return this.queue.length;
  }

  summary(): ConnectionSummary {
    return { remote: this.port.remote, sessionId: this.sessionId, queued: this.queue.length, received: this.received, sent: this.sent };
  }

  receive(body: Uint8Array): void {
    this.received++;
    switch (this.phase) {
      case 'handshake':
        return this.handshake(body);
      case 'opening':
        if (this.early.length >= (this.front.options.preSessionFramesMax ?? 1000)) return this.close('too many requests before the session was ready');
        this.early.push(body);
        return;
      case 'ready':
        return this.request(body);
      case 'closed':
        return;
    }
  }

  close(reason?: string): void {
    if (this.phase === 'closed') return;
    this.port.close(reason);
    this.closed();
  }

  /** The socket closed: forget the connection's watches and session binding. */
  closed(): void {
    this.phase = 'closed';
    this.front.service.watches.removeWatcher(this);
    if (this.sessionId !== 0 && this.front.bySession.get(this.sessionId) === this) this.front.bySession.delete(this.sessionId);
    this.queue.length = 0;
  }

  get watcherSessionId(): number {
    return this.sessionId;
  }

  notify(type: EventTypeCode, path: string): void {
    if (this.phase !== 'ready') return;
    this.send(encodeNotification(-1, { type, state: KeeperState.syncConnected, path }));
  }

  // --- handshake (§1.3) -------------------------------------------------------------

  private handshake(body: Uint8Array): void {
    let request: ReturnType<typeof decodeConnectRequest>;
    try {
      request = decodeConnectRequest(body);
    } catch (error) {
      return this.close(`malformed ConnectRequest: ${(error as Error).message}`);
    }
    const service = this.front.service;
    // A client that has seen a later state than ours must go elsewhere (§1.3): no reply.
    if (request.lastZxidSeen > BigInt(service.machine.lastZxid)) return this.close(`the client has seen zxid ${request.lastZxidSeen}, this member only ${service.machine.lastZxid}`);
    if (service.leader() === 0) return this.close('this member knows no leader');
    this.readOnlyEcho = request.readOnly === undefined ? undefined : false;
    this.phase = 'opening';
    const submitted =
      request.sessionId === 0n
        ? service.submit({ t: 'open', timeoutMs: service.negotiateTimeout(request.timeOut), passwd: service.newPassword(), owner: this.owner })
        : service.submit({ t: 'attach', sessionId: Number(request.sessionId), passwd: request.passwd, owner: this.owner });
    submitted.then(
      (result) => this.opened(result),
      (error: unknown) => this.failed(error),
    );
  }

  private opened(result: ZkResult): void {
    if (this.phase !== 'opening') return;
    if (result.t !== 'session') {
      // Unknown or expired session, or a wrong password: timeOut 0, then close (§1.3).
      this.send(encodeConnectResponse({ protocolVersion: 0, timeOut: 0, sessionId: 0n, passwd: zeroPassword, readOnly: this.readOnlyEcho }));
      return this.close();
    }
    this.sessionId = result.sessionId;
    const previous = this.front.bySession.get(result.sessionId);
    if (previous !== undefined && previous !== this) previous.close('the session moved to another connection');
    this.front.bySession.set(result.sessionId, this);
    this.phase = 'ready';
    this.send(encodeConnectResponse({ protocolVersion: 0, timeOut: result.timeoutMs, sessionId: BigInt(result.sessionId), passwd: result.passwd, readOnly: this.readOnlyEcho }));
    for (const body of this.early.splice(0)) {
      if (this.phase !== 'ready') return;
      this.request(body);
    }
  }

  private failed(error: unknown): void {
    if (!(error instanceof ZkRequestError)) throw error;
    this.close(`request failed: ${error.message}`);
  }

  // --- requests -------------------------------------------------------------------------

  private request(body: Uint8Array): void {
    let frame: ReturnType<typeof decodeRequest>;
    try {
      frame = decodeRequest(body);
    } catch (error) {
      if (error instanceof RequestDecodeError) {
        this.front.service.touch(this.sessionId);
        this.enqueue(error.xid, this.errorReply(error.xid, Err.marshallingError));
        return;
      }
      if (error instanceof JuteError) return this.close(`malformed request header: ${error.message}`);
      throw error;
    }
    const { xid, request } = frame;
    const service = this.front.service;
    service.touch(this.sessionId);
    if (this.queue.length >= (this.front.options.outstandingMax ?? 10_000)) return this.close('too many outstanding requests');
    switch (request.type) {
      case 'ping':
        // Answered out of band (xid -2): clients handle it outside the FIFO queue.
        return void this.send(encodeReply(Xid.ping, this.zxid(), Err.ok));
      case 'auth':
        return this.auth(request.scheme, request.auth);
      case 'create':
      case 'delete':
      case 'setData':
      case 'setACL':
        return this.write(xid, [toWriteOp(request)], false);
      case 'multi':
        return this.write(xid, request.ops.map(toWriteOp), true);
      case 'check':
      case 'unimplemented': {
        // Standalone check hangs 3.8.0 and is UNIMPLEMENTED on master; we answer like master.
        // The slot is marked closeAfter before its reply is set: enqueue() pumps a slot that
        // already has its reply, which would send it (and forget the close) at once. ZooKeeper
        // closes the connection after UNIMPLEMENTED (found by test/zk/differential.test.ts).
        const slot = this.enqueue(xid, undefined);
        slot.closeAfter = true;
        slot.reply = this.errorReply(xid, Err.unimplemented);
        return this.pump();
      }
      case 'closeSession':
        return this.closeSession(xid);
      case 'reconfig':
        return this.reconfig(xid, request);
      case 'sync':
        return this.sync(xid, request.path);
      case 'setWatches':
        return this.later(xid, () => this.setWatches(xid, request.relativeZxid, request.dataWatches, request.existWatches, request.childWatches));
      case 'exists':
      case 'getData':
      case 'getChildren':
      case 'getChildren2':
      case 'getACL':
        return this.later(xid, () => this.read(xid, request));
    }
  }

  private zxid(): number {
    return this.front.service.machine.lastZxid;
  }

  private enqueue(xid: number, reply: Uint8Array | undefined): Slot {
    const slot: Slot = { xid, reply, run: undefined, closeAfter: false, startMs: this.front.nowMs() };
    this.queue.push(slot);
    if (reply !== undefined) this.pump();
    return slot;
  }

  /** A request evaluated when it reaches the head of the queue. */
  private later(xid: number, run: () => Uint8Array): void {
    const slot = this.enqueue(xid, undefined);
    slot.run = () => {
      slot.reply = run();
    };
    this.pump();
  }

  /** Sends every answered request at the head of the queue, in order. */
  private pump(): void {
    while (this.queue.length > 0 && this.phase === 'ready') {
      const head = this.queue[0]!;
      if (head.reply === undefined && head.run !== undefined) {
        const run = head.run;
        head.run = undefined;
        run();
      }
      if (head.reply === undefined) return;
      this.queue.shift();
      this.front.recordLatency(this.front.nowMs() - head.startMs);
      this.send(head.reply);
      if (head.closeAfter) return this.close();
    }
  }

  private send(body: Uint8Array): void {
    if (this.port.send(body)) {
      this.sent++;
      this.front.stats.sent++;
    }
  }

  private errorReply(xid: number, err: number): Uint8Array {
    return this.reply(xid, err);
  }

  /** A reply whose zxid never goes below one already sent on this connection (§2.5). */
  private reply(xid: number, err: number, body?: (w: JuteWriter) => void, zxid = this.zxid()): Uint8Array {
    this.lastSentZxid = Math.max(this.lastSentZxid, zxid);
    return encodeReply(xid, this.lastSentZxid, err, body);
  }

  // --- writes ---------------------------------------------------------------------------

  private write(xid: number, ops: WriteOp[], multi: boolean): void {
    const slot = this.enqueue(xid, undefined);
    const service = this.front.service;
    this.seq++;
    service.submit({ t: 'write', sessionId: this.sessionId, owner: this.owner, seq: this.seq, timeMs: service.wallClockMs(), auth: this.ids.slice(), ops, multi }).then(
      (result) => {
        if (this.phase !== 'ready') return;
        const reply = this.writeReply(xid, result, multi);
        if (reply === undefined) return;
        slot.reply = reply;
        this.pump();
      },
      (error: unknown) => this.failed(error),
    );
  }

  private writeReply(xid: number, result: ZkResult, multi: boolean): Uint8Array | undefined {
    if (result.t === 'error') {
      if (result.err === Err.sessionExpired) return this.errorReply(xid, Err.sessionExpired);
      this.close(result.err === OUT_OF_ORDER ? 'a write lost its place in the session order' : `the write was refused (${result.err})`);
      return undefined;
    }
    if (result.t !== 'write') {
      this.close(`unexpected result ${result.t} for a write`);
      return undefined;
    }
    if (multi) return this.reply(xid, Err.ok, (w) => writeMultiResults(w, result.results.map(toMultiResult)));
    const single = result.results[0];
    if (single === undefined) return this.errorReply(xid, Err.systemError);
    switch (single.op) {
      case 'error':
        return this.errorReply(xid, single.err);
      case 'create':
        return this.reply(xid, Err.ok, (w) => (single.withStat ? w.string(single.path).stat(single.stat) : w.string(single.path)));
      case 'delete':
      case 'check':
        return this.reply(xid, Err.ok);
      case 'setData':
      case 'setACL':
        return this.reply(xid, Err.ok, (w) => w.stat(single.stat));
    }
  }

  private closeSession(xid: number): void {
    const slot = this.enqueue(xid, undefined);
    slot.closeAfter = true;
    this.closingSession = true;
    this.front.service.submit({ t: 'close', sessionId: this.sessionId, reason: 'client' }).then(
      () => {
        slot.reply = this.reply(xid, Err.ok);
        this.pump();
      },
      (error: unknown) => this.failed(error),
    );
  }

  private sync(xid: number, path: string): void {
    const slot = this.enqueue(xid, undefined);
    slot.run = () => {
      this.front.service.sync().then(
        () => {
          slot.reply = this.reply(xid, Err.ok, (w) => w.string(path));
          this.pump();
        },
        (error: unknown) => this.failed(error),
      );
    };
    this.pump();
  }

  // --- auth (§2.7) ------------------------------------------------------------------------

  private auth(scheme: string, auth: Uint8Array): void {
    if (scheme !== 'digest') {
      this.send(encodeReply(Xid.auth, 0, Err.authFailed));
      return this.close(`auth scheme '${scheme}' is not supported`);
    }
    const id = this.front.digestId(utf8.decode(auth));
    if (!this.ids.some((known) => known.scheme === 'digest' && known.id === id)) this.ids.push({ scheme: 'digest', id });
    if (this.front.options.superDigest !== undefined && id === this.front.options.superDigest) this.ids.push({ scheme: 'super', id: id.slice(0, id.indexOf(':')) });
    this.send(encodeReply(Xid.auth, 0, Err.ok));
  }

  // --- reads, at the head of the queue ------------------------------------------------------

  private read(xid: number, request: Extract<Request, { path: string }>): Uint8Array {
    const tree = this.front.service.machine.tree;
    const path = request.path === '' ? '/' : request.path;
    const node = tree.node(path);
    const watches = this.front.service.watches;
    const config = path === configNodePath ? this.configNode() : undefined;
    switch (request.type) {
      case 'exists': {
        // Registered even on a missing node: it fires on creation (§2.4).
        if ('watch' in request && request.watch) watches.addDataWatch(path, this);
        const stat = config?.stat ?? tree.stat(path);
        return stat === undefined ? this.errorReply(xid, Err.noNode) : this.reply(xid, Err.ok, (w) => w.stat(stat));
      }
      case 'getData': {
        if (node === undefined) return this.errorReply(xid, Err.noNode);
        if (!checkAcl(node.acl, Perm.read, this.ids)) return this.errorReply(xid, Err.noAuth);
        if (request.watch) watches.addDataWatch(path, this);
        const stat = config?.stat ?? tree.stat(path)!;
        const data = config?.data ?? node.data;
        return this.reply(xid, Err.ok, (w) => w.buffer(data).stat(stat));
      }
      case 'getChildren':
      case 'getChildren2': {
        if (node === undefined) return this.errorReply(xid, Err.noNode);
        if (!checkAcl(node.acl, Perm.read, this.ids)) return this.errorReply(xid, Err.noAuth);
        if (request.watch) watches.addChildWatch(path, this);
        const children = tree.children(path);
        const stat = config?.stat ?? tree.stat(path)!;
        return this.reply(xid, Err.ok, (w) => (request.type === 'getChildren2' ? w.strings(children).stat(stat) : w.strings(children)));
      }
      case 'getACL': {
        if (node === undefined) return this.errorReply(xid, Err.noNode);
        const admin = checkAcl(node.acl, Perm.admin, this.ids);
        if (!admin && !checkAcl(node.acl, Perm.read, this.ids)) return this.errorReply(xid, Err.noAuth);
        const acl = admin ? node.acl : maskAcl(node.acl);
        const stat = config?.stat ?? tree.stat(path)!;
        return this.reply(xid, Err.ok, (w) => w.acls(acl).stat(stat));
      }
      default:
        return this.errorReply(xid, Err.unimplemented);
    }
  }

  /** `/zookeeper/config` as this member sees the ZooKeeper group's configuration, if it has a membership port. */
  private configNode(): { data: Uint8Array; stat: Stat; version: number } | undefined {
    const membership = this.front.options.membership;
    if (membership === undefined) return undefined;
    const view = membership.describe();
    const data = utf8Encoder.encode(formatConfig(view));
    return { data, stat: configStat(view, data.length), version: view.version };
  }

  // --- reconfig (§2.12) ---------------------------------------------------------------------

  /**
   * ZooKeeper's checks in its order (PrepRequestProcessor): reconfig enabled, the version,
   * the request itself, then WRITE on `/zookeeper/config` (read-only to everyone, so only
   * the superuser passes). ZooKeeper checks the new configuration's quorum before the ACL;
   * here that is known only by running the change, so it comes after. The change runs
   * through the server's membership admin; the reply is the new configuration's data and
   * Stat, in the connection's FIFO order.
   */
  private reconfig(xid: number, request: Extract<Request, { type: 'reconfig' }>): void {
    const slot = this.enqueue(xid, undefined);
    const answer = (err: number) => {
      slot.reply = this.errorReply(xid, err);
      this.pump();
    };
    const membership = this.front.options.membership;
    if (membership === undefined) return answer(ReconfigErr.reconfigDisabled);
    const plan = planReconfig(request, membership.describe());
    if ('err' in plan) {
      membership.refused?.(plan.message);
      return answer(plan.err);
    }
    const node = this.front.service.machine.tree.node(configNodePath);
    if (node === undefined || !checkAcl(node.acl, Perm.write, this.ids)) return answer(Err.noAuth);
    membership.change(plan.change, plan.expectedVersion).then(
      (outcome) => {
        if (this.phase !== 'ready') return;
        if (!outcome.ok) {
          membership.refused?.(outcome.message);
          return answer(outcome.err);
        }
        const config = this.configNode()!;
        slot.reply = this.reply(xid, Err.ok, (w) => w.buffer(config.data).stat(config.stat), Math.max(this.zxid(), config.version));
        this.pump();
      },
      (error: unknown) => this.failed(error),
    );
  }

  /**
   * Re-arms the watches a reconnecting client had (§2.1, DataTree.setWatches), firing at
   * once those whose change it missed; the notifications precede the reply.
   */
  private setWatches(_xid: number, relativeZxid: bigint, data: readonly string[], exist: readonly string[], child: readonly string[]): Uint8Array {
    const tree = this.front.service.machine.tree;
    const watches = this.front.service.watches;
    const seen = Number(relativeZxid);
    for (const path of data) {
      const stat = tree.stat(path);
      if (stat === undefined) this.notify(EventType.nodeDeleted, path);
      else if (stat.mzxid > seen) this.notify(EventType.nodeDataChanged, path);
      else watches.addDataWatch(path, this);
    }
    for (const path of exist) {
      if (tree.stat(path) !== undefined) this.notify(EventType.nodeCreated, path);
      else watches.addDataWatch(path, this);
    }
    for (const path of child) {
      const stat = tree.stat(path);
      if (stat === undefined) this.notify(EventType.nodeDeleted, path);
      else if (stat.pzxid > seen) this.notify(EventType.nodeChildrenChanged, path);
      else watches.addChildWatch(path, this);
    }
    return this.reply(Xid.setWatches, Err.ok);
  }
}

function toWriteOp(op: MultiOp | Extract<Request, { type: 'setACL' }>): WriteOp {
  switch (op.type) {
    case 'create':
      return { op: 'create', path: op.path, data: op.data, acl: op.acl, flags: op.flags, withStat: op.opcode === OpCode.create2 };
    case 'delete':
      return { op: 'delete', path: op.path, version: op.version };
    case 'setData':
      return { op: 'setData', path: op.path, data: op.data, version: op.version };
    case 'setACL':
      return { op: 'setACL', path: op.path, acl: op.acl, version: op.version };
    case 'check':
      return { op: 'check', path: op.path, version: op.version };
  }
}

function toMultiResult(result: WriteResult): MultiResult {
  switch (result.op) {
    case 'create':
      // ZooKeeper 3.8 turns every create sub-op (create2 included) into Op.create, so its
      // result is a plain CreateResponse (type 1, path only), never Create2Response (found by
      // test/zk/differential.test.ts; MultiOperationRecord, Op.create).
      return { type: 'create', path: result.path, stat: undefined };
    case 'delete':
      return { type: 'delete' };
    case 'check':
      return { type: 'check' };
    case 'setData':
    case 'setACL':
      return { type: 'setData', stat: result.stat };
    case 'error':
      return { type: 'error', err: result.err };
  }
}

/** The address part of "address:port" (IPv6 addresses contain colons). */
function hostOf(remote: string): string {
  const colon = remote.lastIndexOf(':');
  const host = colon < 0 ? remote : remote.slice(0, colon);
  return host.startsWith('::ffff:') ? host.slice('::ffff:'.length) : host;
}

const base64Chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 with padding (no Buffer outside platform/). */
function base64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!;
    const b = bytes[i + 1];
    const c = bytes[i + 2];
    out += base64Chars[a >> 2]!;
    out += base64Chars[((a & 3) << 4) | ((b ?? 0) >> 4)]!;
    out += b === undefined ? '=' : base64Chars[((b & 15) << 2) | ((c ?? 0) >> 6)]!;
    out += c === undefined ? '=' : base64Chars[c & 63]!;
  }
  return out;
}
