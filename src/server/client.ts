// FlotillaClient (`flotilla/client`): the key/value service's client over the native
// protocol (protocol.ts). It finds the leader, follows not-leader redirects, and retries
// with exponential backoff until the request's deadline.
//
// Writes carry a session stamp (client id, seq, ack; kv/sessions.ts), so retrying a write
// whose first attempt may have applied is safe: the state machine runs it once and answers
// every retry with the first reply (Raft thesis §6.3). Hence every failure is retried:
//
//   outcome of one attempt                        | write                    | read, leader
//   ----------------------------------------------+--------------------------+-------------
//   could not connect (nothing sent)              | next member, retry       | same
//   every member refused the connection in a row  | ClientError('unavailable') at once,
//     (nothing listens there)                     |   unless an earlier attempt may have applied
//   not-leader                                    | go to the hinted leader  | same
//   overloaded / dropped                          | back off, retry          | same
//   connection lost or no reply after sending,    | retry (same seq); it may | retry
//     outcome-unknown, stopped, timeout           |   have applied           |
//   invalid                                       | ClientError('invalid')   | same
//
// When the deadline passes: OutcomeUnknownError if some attempt of a write may have
// applied, else ClientError('unavailable') (nothing was applied). A service-level refusal
// (key-invalid, value-too-large, keys-full, ...) is a KvError: definite, not applied. A
// request larger than the client port's frame limit (frameBytesMax, 1 MiB) is never sent:
// it fails at once with KvError('value-too-large'), or 'key-invalid' for an oversized key.

import { assert, unreachable } from '../stdx/assert.js';
import type { Clock } from '../io/clock.js';
import { realClock } from '../platform/clock.js';
import { DialError, dialFramed, type FramedConnection } from '../platform/server-client-port.js';
import type { ClientTls } from '../platform/tls.js';

export { loadClientTls, TlsLoadError, type ClientTls, type ClientTlsFiles } from '../platform/tls.js';
// The sharded service's client, also `flotilla/client` (it uses this module's errors and connections; the cycle is only in bindings).
export { ShardCtrlError, ShardedClient, shardedClientDefaults, type ShardedClientOptions } from './sharded-client.js';
import { formatAddress, type Address } from './config.js';
import { decodeResponse, encodeRequest, type ClientRequest, type ClientResponse } from './protocol.js';
import { randomClientId } from '../platform/server-random.js';
import type { ReadConsistency } from '../runtime/replica.js';
import { decodeResult, encodeCommand, kvDefaults, type KvEntry, type KvErrorCode, type KvOp, type KvResult } from '../kv/index.js';

export interface ClientOptions {
  /** Client addresses of (some of) the members; redirects may add others. */
  readonly endpoints: readonly Address[];
  readonly clock?: Clock;
  /** The session's client id; default: random. Two live clients must never share one. */
  readonly clientId?: number;
  /** How long one attempt waits for its reply. */
  readonly requestTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** How long one call may take in all, across retries. */
  readonly callDeadlineMs?: number;
  readonly attemptsMax?: number;
  readonly retryDelayMsMin?: number;
  readonly retryDelayMsMax?: number;
  /** Requests waiting for a reply on one connection. */
  readonly pendingRequestsMax?: number;
  /**
   * Connect with TLS: the members' certificates must be signed by `tls.ca` (and name the
   * address dialled); `cert` and `key` are presented when the members require client
   * certificates. Read the files with loadClientTls (`flotilla/client` exports it).
   */
  readonly tls?: ClientTls | undefined;
}

interface ClientLimits {
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly callDeadlineMs: number;
  readonly attemptsMax: number;
  readonly retryDelayMsMin: number;
  readonly retryDelayMsMax: number;
  readonly pendingRequestsMax: number;
  readonly frameBytesMax: number;
  /** Writes of this client awaiting their reply; the service keeps 64 per session (sessionRepliesMax). */
  readonly writesInFlightMax: number;
}

export const clientDefaults: ClientLimits = {
  requestTimeoutMs: 5_000,
  connectTimeoutMs: 1_000,
  callDeadlineMs: 15_000,
  attemptsMax: 200,
  retryDelayMsMin: 20,
  retryDelayMsMax: 250,
  pendingRequestsMax: 4096,
  frameBytesMax: 1 << 20,
  writesInFlightMax: 64,
};

/**
 * 'unavailable': no member gave an answer before the deadline, and no attempt can have
 * applied. 'invalid': the request was refused as malformed. 'overloaded-client': a limit of
 * this client object was reached. Nothing was applied in any of these cases.
 */
export type ClientFailure = 'unavailable' | 'invalid' | 'overloaded-client' | 'outcome-unknown';

export class ClientError extends Error {
  override name = 'ClientError';
  constructor(
    readonly code: ClientFailure,
    message: string,
  ) {
    super(message);
  }
}

/** A write may or may not have happened: an attempt may have applied, and no reply came before the deadline. */
export class OutcomeUnknownError extends ClientError {
  override name = 'OutcomeUnknownError';
  constructor(message: string) {
    super('outcome-unknown', message);
  }
}

/** The service refused the request (a limit, a bad key, an expired session): not applied. */
export class KvError extends Error {
  override name = 'KvError';
  constructor(
    readonly code: KvErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ReadOptions {
  /** 'linearizable' (default): ReadIndex on the leader. 'serializable': any member's local state, possibly stale. */
  readonly consistency?: ReadConsistency;
}

export interface Versioned {
  readonly value: Uint8Array | null;
  /** The log index of the key's last write; 0 if absent. */
  readonly version: number;
}

/** The connection was lost, or the reply did not come in time, after the request was sent. */
class LostReply extends Error {}

type Body<R> = R extends ClientRequest ? Omit<R, 'id'> : never;
type RequestBody = Body<ClientRequest>;

interface Waiting {
  resolve(response: ClientResponse): void;
  reject(error: Error): void;
  timer: { cancel(): void };
}

/** One framed connection to a member's client port, many requests in flight (also used by shard-rpc.ts). */
export class MemberConnection {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private connection: FramedConnection | undefined = undefined;

  constructor(
    readonly address: Address,
    private readonly clock: Clock,
    private readonly options: ClientLimits,
    private readonly tls: ClientTls | undefined,
    private readonly onClosed: () => void,
  ) {}

  async open(): Promise<void> {
    this.connection = await dialFramed({
      host: this.address.host,
      port: this.address.port,
      connectTimeoutMs: this.options.connectTimeoutMs,
      limits: { frameBytesMax: this.options.frameBytesMax },
      tls: this.tls,
      onFrame: (_connection, body) => this.receive(body),
      onClose: () => this.closed('the connection closed'),
    });
  }

  request(body: RequestBody): Promise<ClientResponse> {
    const connection = this.connection;
    if (connection === undefined || !connection.isOpen()) return Promise.reject(new Error('not connected'));
    if (this.waiting.size >= this.options.pendingRequestsMax)
      return Promise.reject(new ClientError('overloaded-client', `${this.waiting.size} requests are waiting on ${formatAddress(this.address)} (pendingRequestsMax)`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimer(this.options.requestTimeoutMs, () => {
        this.waiting.delete(id);
        reject(new LostReply(`no reply from ${formatAddress(this.address)} within ${this.options.requestTimeoutMs} ms`));
      });
      this.waiting.set(id, { resolve, reject, timer });
      connection.send(encodeRequest({ ...body, id } as ClientRequest));
    });
  }

  close(): void {
    this.connection?.close();
  }

  private receive(body: Buffer): void {
    let response: ClientResponse;
    try {
      response = decodeResponse(body);
    } catch (error) {
      this.connection?.close();
      this.closed(`malformed reply: ${(error as Error).message}`);
      return;
    }
    const waiting = this.waiting.get(response.id);
    if (waiting === undefined) return;
    this.waiting.delete(response.id);
    waiting.timer.cancel();
    waiting.resolve(response);
  }

  private closed(reason: string): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const waiting of all) {
      waiting.timer.cancel();
      waiting.reject(new LostReply(`${formatAddress(this.address)}: ${reason}`));
    }
    this.onClosed();
  }
}

export class FlotillaClient {
  /** This client's session id (kv/sessions.ts). */
  readonly clientId: number;
  private readonly options: ClientLimits;
  private readonly tls: ClientTls | undefined;
  private readonly clock: Clock;
  private readonly endpoints: Address[];
  private readonly connections = new Map<string, MemberConnection>();
  /** Where the next call goes first: the leader, if we know it. */
  private target: Address | undefined = undefined;
  private rotation = 0;
  private closed = false;
  /** The last session sequence number used. */
  private seq = 0;
  /** Writes whose reply has not arrived (nor been given up on). Invariant: every element <= seq. */
  private readonly writesInFlight = new Set<number>();

  constructor(options: ClientOptions) {
    assert(options.endpoints.length > 0, 'at least one endpoint');
    const { endpoints: _endpoints, clock, clientId, tls, ...limits } = options;
    this.options = { ...clientDefaults, ...limits };
    this.tls = tls;
    this.clock = clock ?? realClock;
    this.endpoints = [...options.endpoints];
    this.clientId = clientId ?? randomClientId();
    assert(Number.isSafeInteger(this.clientId) && this.clientId >= 1, 'client id is a positive safe integer');
  }

  async get(key: string, options: ReadOptions = {}): Promise<Versioned & { index: number }> {
    const { result, index } = await this.read({ kind: 'get', key }, options);
    const value = expectKind(result, 'value');
    return { value: value.value, version: value.version, index };
  }

  async scan(prefix: string, options: ReadOptions & { limit?: number; after?: string } = {}): Promise<{ entries: readonly KvEntry[]; next: string | null }> {
    const { result } = await this.read({ kind: 'scan', prefix, limit: options.limit ?? 100, after: options.after ?? '' }, options);
    const scan = expectKind(result, 'scan');
    return { entries: scan.entries, next: scan.next };
  }

  async put(key: string, value: string | Uint8Array): Promise<{ version: number }> {
    const { result } = await this.write({ kind: 'put', key, value: bytesOf(value) });
    return { version: expectKind(result, 'written').version };
  }

  async append(key: string, value: string | Uint8Array): Promise<{ version: number }> {
    const { result } = await this.write({ kind: 'append', key, value: bytesOf(value) });
    return { version: expectKind(result, 'written').version };
  }

  async delete(key: string): Promise<{ existed: boolean }> {
    const { result } = await this.write({ kind: 'delete', key });
    return { existed: expectKind(result, 'deleted').existed };
  }

  /** Writes `value` if the key's version is `version` (0: only if absent). */
  async cas(key: string, value: string | Uint8Array, version: number): Promise<{ swapped: boolean; version: number }> {
    const { result } = await this.write({ kind: 'cas', key, value: bytesOf(value), version });
    const cas = expectKind(result, 'cas');
    return { swapped: cas.swapped, version: cas.version };
  }

  /** Asks one member whom it knows as the leader. */
  async leader(): Promise<{ leader: number; client: Address | null }> {
    const response = await this.call({ type: 'leader' }, false);
    assert(response.type === 'leader', 'a leader request is answered with a leader');
    return { leader: response.leader, client: response.client };
  }

  close(): void {
    this.closed = true;
    for (const connection of this.connections.values()) connection.close();
    this.connections.clear();
  }

  private async read(op: KvOp, options: ReadOptions): Promise<{ result: KvResult; index: number }> {
    const command = encodeCommand({ op, session: undefined, timeMs: 0 });
    const body: RequestBody = { type: 'kv', command, consistency: options.consistency ?? 'linearizable' };
    this.refuseOversized(op, body);
    return this.unwrap(await this.call(body, false));
  }

  private async write(op: KvOp): Promise<{ result: KvResult; index: number }> {
    if (this.writesInFlight.size >= this.options.writesInFlightMax) {
      throw new ClientError('overloaded-client', `${this.writesInFlight.size} writes of this client await replies (writesInFlightMax); use another client for more`);
    }
    // Before a sequence number is taken: the service must never see a gap in a session's
    // numbers for a request that was not sent. The largest numbers bound the encoded size.
    const largest = { client: this.clientId, seq: Number.MAX_SAFE_INTEGER, ack: Number.MAX_SAFE_INTEGER };
    this.refuseOversized(op, { type: 'kv', command: encodeCommand({ op, session: largest, timeMs: 0 }), consistency: 'linearizable' });
    // ack: every request below the oldest one still in flight has had its reply.
    const oldest = this.writesInFlight.size === 0 ? this.seq + 1 : Math.min(...this.writesInFlight);
    const seq = ++this.seq;
    const session = { client: this.clientId, seq, ack: oldest - 1 };
    this.writesInFlight.add(seq);
    const progress = { sent: false };
    try {
      const command = encodeCommand({ op, session, timeMs: 0 });
      return this.unwrap(await this.call({ type: 'kv', command, consistency: 'linearizable' }, true, progress));
    } catch (error) {
      // Never sent (no member could be reached): give the number back if it is still the
      // last one, so that the next write does not acknowledge a request the service never
      // saw (a new session whose first command acknowledges one is refused as expired).
      if (!progress.sent && this.seq === seq) this.seq--;
      throw error;
    } finally {
      // Also when given up on: a late duplicate is then refused as stale, never run twice.
      this.writesInFlight.delete(seq);
    }
  }

  /**
   * A request over the client port's frame limit would make the member close the
   * connection (and the retries would end as "outcome unknown"); it is refused before
   * anything is sent, so it is definitely not applied.
   */
  private refuseOversized(op: KvOp, body: RequestBody): void {
    const frameBytes = encodeRequest({ ...body, id: Number.MAX_SAFE_INTEGER } as ClientRequest).length;
    if (frameBytes <= this.options.frameBytesMax) return;
    const limits = `a request frame may have at most ${this.options.frameBytesMax} bytes (frameBytesMax), a value at most ${kvDefaults.valueBytesMax} (valueBytesMax), a key at most ${kvDefaults.keyBytesMax} (keyBytesMax)`;
    if ('value' in op) throw new KvError('value-too-large', `the ${op.kind} of ${op.value.length} value bytes makes a ${frameBytes}-byte request; ${limits}. Not sent, not applied.`);
    throw new KvError('key-invalid', `the ${op.kind} makes a ${frameBytes}-byte request; ${limits}. Not sent, not applied.`);
  }

  private unwrap(response: ClientResponse): { result: KvResult; index: number } {
    assert(response.type === 'result', 'a kv request is answered with a result');
    const result = decodeResult(response.result);
    if (result.kind === 'error') throw new KvError(result.code, result.message);
    return { result, index: response.index };
  }

  /** One request, retried until it is answered or the deadline passes. */
  private async call(body: RequestBody, write: boolean, progress = { sent: false }): Promise<ClientResponse> {
    const deadline = this.clock.nowMs() + this.options.callDeadlineMs;
    let lastProblem = 'no attempt was made';
    let maybeApplied = false;
    /** Members that refused the connection since the last attempt that got further. */
    const refused = new Set<string>();
    for (let attempt = 0; attempt < this.options.attemptsMax && this.clock.nowMs() < deadline; attempt++) {
      if (this.closed) throw new ClientError('unavailable', 'the client is closed');
      if (attempt > 0) await this.sleep(attempt);
      const address = this.target ?? this.nextEndpoint();
      const connection = await this.connect(address).catch((error: Error) => error);
      if (connection instanceof Error) {
        lastProblem = connection.message;
        this.forgetTarget(address);
        if (connection instanceof DialError && connection.code === 'ECONNREFUSED') refused.add(formatAddress(address));
        else refused.clear();
        if (!maybeApplied && this.endpoints.every((endpoint) => refused.has(formatAddress(endpoint)))) {
          throw new ClientError('unavailable', `every member refused the connection (nothing listens at ${this.endpoints.map(formatAddress).join(', ')}); the request was not applied`);
        }
        continue;
      }
      refused.clear();
      let response: ClientResponse;
      try {
        progress.sent = true;
        response = await connection.request(body);
      } catch (error) {
        if (error instanceof ClientError) throw error;
        lastProblem = (error as Error).message;
        maybeApplied ||= error instanceof LostReply;
        this.forgetTarget(address);
        continue;
      }
      if (response.type !== 'error') {
        this.target = address;
        return response;
      }
      lastProblem = `${formatAddress(address)}: ${response.code}: ${response.message}`;
      maybeApplied ||= this.isMaybeApplied(response);
      this.target = response.code === 'not-leader' && response.client !== null ? response.client : undefined;
      if (this.target === undefined) this.rotation++;
    }
    if (write && maybeApplied) throw new OutcomeUnknownError(`the write may or may not have been applied: no definite answer within ${this.options.callDeadlineMs} ms (last problem: ${lastProblem})`);
    throw new ClientError('unavailable', `no member answered the request in time; it was not applied (last problem: ${lastProblem})`);
  }

  /** Whether an error reply leaves the write possibly applied; throws for one that must not be retried. */
  private isMaybeApplied(response: Extract<ClientResponse, { type: 'error' }>): boolean {
    switch (response.code) {
      case 'not-leader':
      case 'overloaded':
      case 'dropped':
        return false;
      case 'outcome-unknown':
      case 'stopped':
      case 'timeout':
        return true;
      case 'invalid':
        throw new ClientError('invalid', response.message);
      default:
        return unreachable(response.code, 'client error code');
    }
  }

  private nextEndpoint(): Address {
    return this.endpoints[this.rotation % this.endpoints.length]!;
  }

  private forgetTarget(address: Address): void {
    if (this.target !== undefined && formatAddress(this.target) === formatAddress(address)) this.target = undefined;
    this.rotation++;
  }

  private async connect(address: Address): Promise<MemberConnection> {
    const key = formatAddress(address);
    const existing = this.connections.get(key);
    if (existing !== undefined) return existing;
    const connection = new MemberConnection(address, this.clock, this.options, this.tls, () => {
      if (this.connections.get(key) === connection) this.connections.delete(key);
    });
    await connection.open();
    this.connections.set(key, connection);
    return connection;
  }

  /** Exponential backoff with a cap; the first retries are quick (a redirect). */
  private sleep(attempt: number): Promise<void> {
    const delayMs = Math.min(this.options.retryDelayMsMax, this.options.retryDelayMsMin * 2 ** Math.min(attempt - 1, 10));
    return new Promise((resolve) => this.clock.setTimer(delayMs, resolve));
  }
}

function bytesOf(value: string | Uint8Array): Uint8Array {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

function expectKind<K extends KvResult['kind']>(result: KvResult, kind: K): Extract<KvResult, { kind: K }> {
  assert(result.kind === kind, `expected a ${kind} result, got ${result.kind}`);
  return result as Extract<KvResult, { kind: K }>;
}
