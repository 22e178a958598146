// A small client for the native protocol (protocol.ts): finds the leader, follows
// not-leader redirects, and retries only what is safe to retry.
//
//   outcome of one attempt                       | propose              | read, leader
//   ---------------------------------------------+----------------------+-------------
//   could not connect (nothing sent)             | next member, retry   | same
//   not-leader / overloaded / dropped            | redirect or back off | same
//   connection lost or timed out after sending,  | ClientError          | retry
//     outcome-unknown, stopped                   |   'outcome-unknown'  |
//   invalid                                      | ClientError          | ClientError
//
// Every call is bounded by attempts and a deadline. The full KV client, with sessions for
// exactly-once retries, comes with the KV service.

import { assert } from '../stdx/assert.js';
import type { Clock } from '../io/clock.js';
import { realClock } from '../platform/clock.js';
import { dialFramed, type FramedConnection } from '../platform/server-client-port.js';
import { formatAddress, type Address } from './config.js';
import { decodeResponse, encodeRequest, type ClientErrorCode, type ClientRequest, type ClientResponse } from './protocol.js';
import { decodeRegisterResult, encodeRegisterCommand } from './register-service.js';

export interface ClientOptions {
  /** Client addresses of (some of) the members; redirects may add others. */
  readonly members: readonly Address[];
  readonly clock?: Clock;
  readonly requestTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** How long one call may take in all, across retries. */
  readonly callDeadlineMs?: number;
  readonly attemptsMax?: number;
  readonly retryDelayMsMin?: number;
  readonly retryDelayMsMax?: number;
  /** Requests waiting for a reply on one connection. */
  readonly pendingRequestsMax?: number;
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
};

export type ClientFailure = ClientErrorCode | 'unavailable' | 'overloaded-client';

export class ClientError extends Error {
  override name = 'ClientError';
  constructor(
    readonly code: ClientFailure,
    message: string,
  ) {
    super(message);
  }
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

class MemberConnection {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private connection: FramedConnection | undefined = undefined;

  constructor(
    readonly address: Address,
    private readonly clock: Clock,
    private readonly options: ClientLimits,
    private readonly onClosed: () => void,
  ) {}

  async open(): Promise<void> {
    this.connection = await dialFramed({
      host: this.address.host,
      port: this.address.port,
      connectTimeoutMs: this.options.connectTimeoutMs,
      limits: { frameBytesMax: this.options.frameBytesMax },
      onFrame: (_connection, body) => this.receive(body),
      onClose: () => this.closed('the connection closed'),
    });
  }

  request(body: RequestBody): Promise<ClientResponse> {
    const connection = this.connection;
    if (connection === undefined || !connection.isOpen()) return Promise.reject(new Error('not connected'));
    if (this.waiting.size >= this.options.pendingRequestsMax) return Promise.reject(new ClientError('overloaded-client', `${this.waiting.size} requests are waiting on ${formatAddress(this.address)} (pendingRequestsMax)`));
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
  private readonly options: ClientLimits;
  private readonly clock: Clock;
  private readonly members: Address[];
  private readonly connections = new Map<string, MemberConnection>();
  /** Where the next call goes first: the leader, if we know it. */
  private target: Address | undefined = undefined;
  private rotation = 0;
  private closed = false;

  constructor(options: ClientOptions) {
    assert(options.members.length > 0, 'at least one member address');
    const { members: _members, clock, ...limits } = options;
    this.options = { ...clientDefaults, ...limits };
    this.clock = clock ?? realClock;
    this.members = [...options.members];
  }

  /** Proposes a service command; resolves with its result and log index. */
  async propose(command: Uint8Array): Promise<{ result: Uint8Array; index: number }> {
    const response = await this.call({ type: 'propose', command }, false);
    assert(response.type === 'result', 'a propose is answered with a result');
    return { result: response.result, index: response.index };
  }

  /** A linearizable read (through the log, for now). */
  async read(query: Uint8Array): Promise<{ result: Uint8Array; index: number }> {
    const response = await this.call({ type: 'read', query }, true);
    assert(response.type === 'result', 'a read is answered with a result');
    return { result: response.result, index: response.index };
  }

  /** Asks one member whom it knows as the leader. */
  async leader(): Promise<{ leader: number; client: Address | null }> {
    const response = await this.call({ type: 'leader' }, true);
    assert(response.type === 'leader', 'a leader request is answered with a leader');
    return { leader: response.leader, client: response.client };
  }

  close(): void {
    this.closed = true;
    for (const connection of this.connections.values()) connection.close();
    this.connections.clear();
  }

  private async call(body: RequestBody, idempotent: boolean): Promise<ClientResponse> {
    const deadline = this.clock.nowMs() + this.options.callDeadlineMs;
    let lastProblem = 'no attempt was made';
    for (let attempt = 0; attempt < this.options.attemptsMax && this.clock.nowMs() < deadline; attempt++) {
      if (this.closed) throw new ClientError('unavailable', 'the client is closed');
      if (attempt > 0) await this.sleep(attempt);
      const address = this.target ?? this.nextMember();
      const connection = await this.connect(address).catch((error: Error) => error);
      if (connection instanceof Error) {
        lastProblem = connection.message;
        this.forgetTarget(address);
        continue;
      }
      let response: ClientResponse;
      try {
        response = await connection.request(body);
      } catch (error) {
        if (error instanceof ClientError) throw error;
        lastProblem = (error as Error).message;
        this.forgetTarget(address);
        if (error instanceof LostReply && !idempotent) throw new ClientError('outcome-unknown', `${lastProblem}; the command may or may not have been applied`);
        continue;
      }
      if (response.type !== 'error') {
        this.target = address;
        return response;
      }
      lastProblem = `${formatAddress(address)}: ${response.code}: ${response.message}`;
      this.maybeThrow(response, idempotent);
      this.target = response.code === 'not-leader' && response.client !== null ? response.client : undefined;
      if (this.target === undefined) this.rotation++;
    }
    throw new ClientError('unavailable', `no member answered the request in time (last problem: ${lastProblem})`);
  }

  /** Throws for an error reply that must not be retried. */
  private maybeThrow(response: Extract<ClientResponse, { type: 'error' }>, idempotent: boolean): void {
    switch (response.code) {
      case 'not-leader':
      case 'overloaded':
      case 'dropped':
        return;
      case 'outcome-unknown':
      case 'stopped':
        if (!idempotent) throw new ClientError('outcome-unknown', `${response.message}`);
        return;
      case 'invalid':
        throw new ClientError('invalid', response.message);
    }
  }

  private nextMember(): Address {
    return this.members[this.rotation % this.members.length]!;
  }

  private forgetTarget(address: Address): void {
    if (this.target !== undefined && formatAddress(this.target) === formatAddress(address)) this.target = undefined;
    this.rotation++;
  }

  private async connect(address: Address): Promise<MemberConnection> {
    const key = formatAddress(address);
    const existing = this.connections.get(key);
    if (existing !== undefined) return existing;
    const connection = new MemberConnection(address, this.clock, this.options, () => {
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

/** The minimal register service over FlotillaClient (tests and `flotilla debug`). */
export class RegisterClient {
  constructor(readonly client: FlotillaClient) {}

  async set(key: string, value: string | Uint8Array): Promise<{ previous: Uint8Array | null; index: number }> {
    const bytes = typeof value === 'string' ? Buffer.from(value) : value;
    const { result, index } = await this.client.propose(encodeRegisterCommand({ op: 'set', key, value: bytes }));
    return { previous: this.unwrap(result), index };
  }

  async get(key: string): Promise<Uint8Array | null> {
    const { result } = await this.client.read(encodeRegisterCommand({ op: 'get', key }));
    return this.unwrap(result);
  }

  close(): void {
    this.client.close();
  }

  private unwrap(bytes: Uint8Array): Uint8Array | null {
    const result = decodeRegisterResult(bytes);
    if (!result.ok) throw new ClientError('invalid', result.error);
    return result.value;
  }
}
