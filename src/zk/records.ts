// ZooKeeper's protocol records (docs/zookeeper.md §1.3–§1.7) over the jute
// codec, both directions: the server decodes requests and encodes replies; Flotilla's
// client encodes requests and decodes replies. Field order is wire order.

import { Err, OpCode, Xid } from './constants.js';
import { JuteError, JuteReader, JuteWriter } from './jute.js';
import type { Acl, Data, Stat } from './types.js';

// ---------------------------------------------------------------------------------------
// The handshake (§1.3): a bare ConnectRequest, no RequestHeader.

export interface ConnectRequest {
  readonly protocolVersion: number;
  readonly lastZxidSeen: bigint;
  readonly timeOut: number;
  readonly sessionId: bigint;
  readonly passwd: Uint8Array;
  /** undefined when the client did not send the trailing byte (44-byte body). */
  readonly readOnly: boolean | undefined;
}

export interface ConnectResponse {
  readonly protocolVersion: number;
  readonly timeOut: number;
  readonly sessionId: bigint;
  readonly passwd: Uint8Array;
  /** Written only if the request carried it. */
  readonly readOnly: boolean | undefined;
}

export function decodeConnectRequest(body: Uint8Array): ConnectRequest {
  const r = new JuteReader(body);
  const protocolVersion = r.int('ConnectRequest.protocolVersion');
  const lastZxidSeen = r.long('ConnectRequest.lastZxidSeen');
  const timeOut = r.int('ConnectRequest.timeOut');
  const sessionId = r.long('ConnectRequest.sessionId');
  const passwd = r.buffer('ConnectRequest.passwd') ?? new Uint8Array(0);
  // Bytes after readOnly are ignored, as ZooKeeper 3.8 does (records only ever grow at the end).
  const readOnly = r.remaining > 0 ? r.bool('ConnectRequest.readOnly') : undefined;
  return { protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly };
}

export function encodeConnectRequest(request: ConnectRequest): Uint8Array {
  const w = new JuteWriter().int(request.protocolVersion).long(request.lastZxidSeen).int(request.timeOut).long(request.sessionId).buffer(request.passwd);
  if (request.readOnly !== undefined) w.bool(request.readOnly);
  return w.finish();
}

export function encodeConnectResponse(response: ConnectResponse): Uint8Array {
  const w = new JuteWriter().int(response.protocolVersion).int(response.timeOut).long(response.sessionId).buffer(response.passwd);
  if (response.readOnly !== undefined) w.bool(response.readOnly);
  return w.finish();
}

export function decodeConnectResponse(body: Uint8Array): ConnectResponse {
  const r = new JuteReader(body);
  const protocolVersion = r.int('ConnectResponse.protocolVersion');
  const timeOut = r.int('ConnectResponse.timeOut');
  const sessionId = r.long('ConnectResponse.sessionId');
  const passwd = r.buffer('ConnectResponse.passwd') ?? new Uint8Array(0);
  const readOnly = r.remaining > 0 ? r.bool('ConnectResponse.readOnly') : undefined;
  return { protocolVersion, timeOut, sessionId, passwd, readOnly };
}

// ---------------------------------------------------------------------------------------
// Requests (§1.5, §1.6).

/** A write that may also appear inside multi. */
export type MultiOp =
  | { readonly type: 'create'; readonly opcode: number; readonly path: string; readonly data: Data; readonly acl: readonly Acl[]; readonly flags: number }
  | { readonly type: 'delete'; readonly path: string; readonly version: number }
  | { readonly type: 'setData'; readonly path: string; readonly data: Data; readonly version: number }
  | { readonly type: 'check'; readonly path: string; readonly version: number };

export type Request =
  | MultiOp
  | { readonly type: 'exists' | 'getData' | 'getChildren' | 'getChildren2'; readonly path: string; readonly watch: boolean }
  | { readonly type: 'getACL'; readonly path: string }
  | { readonly type: 'setACL'; readonly path: string; readonly acl: readonly Acl[]; readonly version: number }
  | { readonly type: 'sync'; readonly path: string }
  | { readonly type: 'ping' }
  | { readonly type: 'multi'; readonly ops: readonly MultiOp[] }
  | { readonly type: 'auth'; readonly authType: number; readonly scheme: string; readonly auth: Uint8Array }
  | { readonly type: 'setWatches'; readonly relativeZxid: bigint; readonly dataWatches: readonly string[]; readonly existWatches: readonly string[]; readonly childWatches: readonly string[] }
  | { readonly type: 'closeSession' }
  /** ReconfigRequest (§2.12): comma-separated server lists; curConfigId -1 means any version. */
  | { readonly type: 'reconfig'; readonly joiningServers: string | null; readonly leavingServers: string | null; readonly newMembers: string | null; readonly curConfigId: bigint }
  /** An opcode this server does not implement: answered UNIMPLEMENTED, then the connection closes. */
  | { readonly type: 'unimplemented'; readonly opcode: number };

export interface RequestFrame {
  readonly xid: number;
  readonly opcode: number;
  readonly request: Request;
}

/** A request whose header decoded but whose body did not: answered MARSHALLINGERROR. */
export class RequestDecodeError extends JuteError {
  override name = 'RequestDecodeError';
  constructor(
    readonly xid: number,
    readonly opcode: number,
    message: string,
  ) {
    super(message);
  }
}

/** A path must be present: a null path is a MARSHALLINGERROR (§2.2). */
function path(r: JuteReader, what: string): string {
  const value = r.stringOrNull(what);
  if (value === null) throw new JuteError(`${what} is null`);
  return value;
}

function readCreate(r: JuteReader, opcode: number): MultiOp {
  return { type: 'create', opcode, path: path(r, 'CreateRequest.path'), data: r.buffer('CreateRequest.data'), acl: r.acls('CreateRequest.acl'), flags: r.int('CreateRequest.flags') };
}

/** The op record of a write that may appear in multi, or undefined for any other opcode. */
function readMultiOp(r: JuteReader, opcode: number): MultiOp | undefined {
  switch (opcode) {
    case OpCode.create:
    case OpCode.create2:
      return readCreate(r, opcode);
    case OpCode.delete:
      return { type: 'delete', path: path(r, 'DeleteRequest.path'), version: r.int('DeleteRequest.version') };
    case OpCode.setData:
      return { type: 'setData', path: path(r, 'SetDataRequest.path'), data: r.buffer('SetDataRequest.data'), version: r.int('SetDataRequest.version') };
    case OpCode.check:
      return { type: 'check', path: path(r, 'CheckVersionRequest.path'), version: r.int('CheckVersionRequest.version') };
    default:
      return undefined;
  }
}

function readMulti(r: JuteReader): Request {
  const ops: MultiOp[] = [];
  for (;;) {
    const type = r.int('MultiHeader.type');
    const done = r.bool('MultiHeader.done');
    r.int('MultiHeader.err');
    if (done) return { type: 'multi', ops };
    const op = readMultiOp(r, type);
    if (op === undefined) throw new JuteError(`opcode ${type} is not allowed inside multi`);
    ops.push(op);
  }
}

function readBody(r: JuteReader, opcode: number): Request {
  const write = readMultiOp(r, opcode);
  if (write !== undefined) return write;
  switch (opcode) {
    case OpCode.exists:
      return { type: 'exists', path: path(r, 'ExistsRequest.path'), watch: r.bool('ExistsRequest.watch') };
    case OpCode.getData:
      return { type: 'getData', path: path(r, 'GetDataRequest.path'), watch: r.bool('GetDataRequest.watch') };
    case OpCode.getChildren:
      return { type: 'getChildren', path: path(r, 'GetChildrenRequest.path'), watch: r.bool('GetChildrenRequest.watch') };
    case OpCode.getChildren2:
      return { type: 'getChildren2', path: path(r, 'GetChildren2Request.path'), watch: r.bool('GetChildren2Request.watch') };
    case OpCode.getACL:
      return { type: 'getACL', path: path(r, 'GetACLRequest.path') };
    case OpCode.setACL:
      return { type: 'setACL', path: path(r, 'SetACLRequest.path'), acl: r.acls('SetACLRequest.acl'), version: r.int('SetACLRequest.version') };
    case OpCode.sync:
      return { type: 'sync', path: path(r, 'SyncRequest.path') };
    case OpCode.ping:
      return { type: 'ping' };
    case OpCode.multi:
      return readMulti(r);
    case OpCode.auth:
      return { type: 'auth', authType: r.int('AuthPacket.type'), scheme: r.string('AuthPacket.scheme'), auth: r.buffer('AuthPacket.auth') ?? new Uint8Array(0) };
    case OpCode.setWatches:
      return {
        type: 'setWatches',
        relativeZxid: r.long('SetWatches.relativeZxid'),
        dataWatches: r.strings('SetWatches.dataWatches'),
        existWatches: r.strings('SetWatches.existWatches'),
        childWatches: r.strings('SetWatches.childWatches'),
      };
    case OpCode.closeSession:
      return { type: 'closeSession' };
    case OpCode.reconfig:
      return {
        type: 'reconfig',
        joiningServers: r.stringOrNull('ReconfigRequest.joiningServers'),
        leavingServers: r.stringOrNull('ReconfigRequest.leavingServers'),
        newMembers: r.stringOrNull('ReconfigRequest.newMembers'),
        curConfigId: r.long('ReconfigRequest.curConfigId'),
      };
    default:
      return { type: 'unimplemented', opcode };
  }
}

/**
 * Decodes a request frame body (RequestHeader + record). Throws JuteError if even the
 * header is short, RequestDecodeError if the record does not decode.
 */
export function decodeRequest(body: Uint8Array): RequestFrame {
  const r = new JuteReader(body);
  const xid = r.int('RequestHeader.xid');
  const opcode = r.int('RequestHeader.type');
  try {
    return { xid, opcode, request: readBody(r, opcode) };
  } catch (error) {
    if (!(error instanceof JuteError)) throw error;
    throw new RequestDecodeError(xid, opcode, error.message);
  }
}

function writeMultiOp(w: JuteWriter, op: MultiOp): void {
  switch (op.type) {
    case 'create':
      w.string(op.path).buffer(op.data).acls(op.acl).int(op.flags);
      return;
    case 'delete':
    case 'check':
      w.string(op.path).int(op.version);
      return;
    case 'setData':
      w.string(op.path).buffer(op.data).int(op.version);
      return;
  }
}

export function opcodeOf(request: Request): number {
  switch (request.type) {
    case 'create':
      return request.opcode;
    case 'unimplemented':
      return request.opcode;
    default:
      return OpCode[request.type];
  }
}

/** Encodes a request frame body (the client side). */
export function encodeRequest(xid: number, request: Request): Uint8Array {
  const w = new JuteWriter().int(xid).int(opcodeOf(request));
  switch (request.type) {
    case 'create':
    case 'delete':
    case 'check':
    case 'setData':
      writeMultiOp(w, request);
      break;
    case 'exists':
    case 'getData':
    case 'getChildren':
    case 'getChildren2':
      w.string(request.path).bool(request.watch);
      break;
    case 'getACL':
    case 'sync':
      w.string(request.path);
      break;
    case 'setACL':
      w.string(request.path).acls(request.acl).int(request.version);
      break;
    case 'ping':
    case 'closeSession':
    case 'unimplemented':
      break;
    case 'multi':
      for (const op of request.ops) {
        w.int(op.type === 'create' ? op.opcode : OpCode[op.type])
          .bool(false)
          .int(-1);
        writeMultiOp(w, op);
      }
      w.int(-1).bool(true).int(-1);
      break;
    case 'auth':
      w.int(request.authType).string(request.scheme).buffer(request.auth);
      break;
    case 'setWatches':
      w.long(request.relativeZxid).strings(request.dataWatches).strings(request.existWatches).strings(request.childWatches);
      break;
    case 'reconfig':
      w.string(request.joiningServers).string(request.leavingServers).string(request.newMembers).long(request.curConfigId);
      break;
  }
  return w.finish();
}

// ---------------------------------------------------------------------------------------
// Replies (§1.4, §1.6, §1.7).

export interface ReplyHeader {
  readonly xid: number;
  readonly zxid: bigint;
  readonly err: number;
}

/** A reply: the header, then (only when err is 0) the body written by `body`. */
export function encodeReply(xid: number, zxid: number | bigint, err: number, body?: (w: JuteWriter) => void): Uint8Array {
  const w = new JuteWriter().int(xid).long(zxid).int(err);
  if (err === Err.ok && body !== undefined) body(w);
  return w.finish();
}

export function decodeReplyHeader(r: JuteReader): ReplyHeader {
  return { xid: r.int('ReplyHeader.xid'), zxid: r.long('ReplyHeader.zxid'), err: r.int('ReplyHeader.err') };
}

/** One result inside a MultiResponse. */
export type MultiResult =
  | { readonly type: 'create'; readonly path: string; readonly stat: Stat | undefined }
  | { readonly type: 'delete' }
  | { readonly type: 'setData'; readonly stat: Stat }
  | { readonly type: 'check' }
  | { readonly type: 'error'; readonly err: number };

export function writeMultiResults(w: JuteWriter, results: readonly MultiResult[]): void {
  for (const result of results) {
    switch (result.type) {
      case 'create':
        if (result.stat === undefined) w.int(OpCode.create).bool(false).int(0).string(result.path);
        else w.int(OpCode.create2).bool(false).int(0).string(result.path).stat(result.stat);
        break;
      case 'delete':
        w.int(OpCode.delete).bool(false).int(0);
        break;
      case 'check':
        w.int(OpCode.check).bool(false).int(0);
        break;
      case 'setData':
        w.int(OpCode.setData).bool(false).int(0).stat(result.stat);
        break;
      case 'error':
        w.int(OpCode.error).bool(false).int(result.err).int(result.err);
        break;
    }
  }
  w.int(-1).bool(true).int(-1);
}

export function readMultiResults(r: JuteReader): MultiResult[] {
  const results: MultiResult[] = [];
  for (;;) {
    const type = r.int('MultiHeader.type');
    const done = r.bool('MultiHeader.done');
    const err = r.int('MultiHeader.err');
    if (done) return results;
    switch (type) {
      case OpCode.create:
        results.push({ type: 'create', path: r.string('CreateResponse.path'), stat: undefined });
        break;
      case OpCode.create2:
        results.push({ type: 'create', path: r.string('Create2Response.path'), stat: r.stat() });
        break;
      case OpCode.delete:
        results.push({ type: 'delete' });
        break;
      case OpCode.check:
        results.push({ type: 'check' });
        break;
      case OpCode.setData:
        results.push({ type: 'setData', stat: r.stat() });
        break;
      case OpCode.error:
        r.int('ErrorResponse.err');
        results.push({ type: 'error', err });
        break;
      default:
        throw new JuteError(`unexpected multi result type ${type}`);
    }
  }
}

export interface WatcherEvent {
  readonly type: number;
  readonly state: number;
  readonly path: string;
}

/** A notification frame: ReplyHeader(xid -1, zxid, 0) + WatcherEvent (§1.4). */
export function encodeNotification(zxid: number | bigint, event: WatcherEvent): Uint8Array {
  return new JuteWriter().int(Xid.notification).long(zxid).int(0).int(event.type).int(event.state).string(event.path).finish();
}

export function readWatcherEvent(r: JuteReader): WatcherEvent {
  return { type: r.int('WatcherEvent.type'), state: r.int('WatcherEvent.state'), path: r.string('WatcherEvent.path') };
}
