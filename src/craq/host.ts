// The async shell around one CraqNode: ticks it on the injected clock, feeds it peer
// messages and client requests, and runs its Readies one at a time — persist, then send,
// then answer (STYLE.md 3). The simulator and the real process run this same code; only
// the clock, the transport and the storage differ.

import { assert, unreachable } from '../stdx/assert.js';
import type { Clock, Timer } from '../io/clock.js';
import type { Transport } from '../io/transport.js';
import type { CraqNode, Persist } from './node.js';
import type { ChainConfig, ClientReply, ClientRequest, PeerMessage } from './types.js';

/** Where a node's writes become durable (wal.ts), or nothing (memoryStorage). */
export interface CraqStorage {
  save(persist: Persist): Promise<void>;
}

/** A node that keeps nothing across a crash: it rejoins with an empty state. */
export const memoryStorage: CraqStorage = { save: () => Promise.resolve() };

export interface CraqHostOptions {
  readonly clock: Clock;
  readonly transport: Transport<PeerMessage>;
  readonly storage: CraqStorage;
  readonly tickMs: number;
  /** Client requests waiting for an answer at once; more are refused 'overloaded'. */
  readonly requestsPendingMax?: number;
}

const requestsPendingMaxDefault = 65_536;

export class CraqHost {
  private readonly waiting = new Map<number, (reply: ClientReply) => void>();
  private nextRequestId = 1;
  private flushing = false;
  private stopped = false;
  private timer: Timer | undefined;
  private failure: unknown;

  constructor(
    readonly node: CraqNode,
    private readonly options: CraqHostOptions,
  ) {}

  start(): void {
    assert(this.timer === undefined && !this.stopped, 'a host starts once');
    this.node.tick(this.options.clock.nowMs());
    this.scheduleTick();
  }

  /**
   * Stops ticking. Requests still waiting are answered 'unknown': a write the node already
   * passed down the chain may still commit.
   */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    for (const resolve of this.waiting.values()) resolve({ type: 'error', code: 'unknown', message: 'the node stopped before answering' });
    this.waiting.clear();
  }

  /** The error that stopped this host (a broken invariant), if any. */
  failed(): unknown {
    return this.failure;
  }

  receive(message: PeerMessage): void {
    if (this.stopped) return;
    this.node.step(message);
    this.flush();
  }

  setConfig(config: ChainConfig): void {
    if (this.stopped) return;
    this.node.setConfig(config);
    this.flush();
  }

  setLease(untilMs: number): void {
    this.node.setLease(untilMs);
  }

  request(request: ClientRequest): Promise<ClientReply> {
    if (this.stopped) return Promise.resolve({ type: 'error', code: 'not-serving', message: 'the node is stopping' });
    if (request.type === 'status') return Promise.resolve(this.node.status());
    const pendingMax = this.options.requestsPendingMax ?? requestsPendingMaxDefault;
    if (this.waiting.size >= pendingMax) return Promise.resolve({ type: 'error', code: 'overloaded', message: `${pendingMax} requests are waiting at this node` });
    const requestId = this.nextRequestId++;
    const answered = new Promise<ClientReply>((resolve) => this.waiting.set(requestId, resolve));
    switch (request.type) {
      case 'read':
        this.node.read(requestId, request.key, request.mode);
        break;
      case 'write':
        this.node.write(requestId, request.key, request.value);
        break;
      default:
        unreachable(request, 'client request');
    }
    this.flush();
    return answered;
  }

  private scheduleTick(): void {
    if (this.stopped) return;
    this.timer = this.options.clock.setTimer(this.options.tickMs, () => {
      if (this.stopped) return;
      this.node.tick(this.options.clock.nowMs());
      this.flush();
      this.scheduleTick();
    });
  }

  /** Runs Readies until none is left; only one is in flight at a time. */
  private flush(): void {
    if (this.flushing || this.stopped) return;
    this.flushing = true;
    void this.drain().then(
      () => {
        this.flushing = false;
        if (this.node.hasReady()) this.flush();
      },
      (error: unknown) => {
        // A failed disk or a broken invariant: this node stops (its peers repair the chain).
        // After stop() (a crash), an interrupted write failing is expected.
        if (!this.stopped) this.failure = error;
        this.flushing = false;
        this.stop();
      },
    );
  }

  private async drain(): Promise<void> {
    while (this.node.hasReady() && !this.stopped) {
      const ready = this.node.ready();
      await this.options.storage.save(ready.persist);
      if (this.stopped) return;
      for (const { to, message } of ready.messages) this.options.transport.send(to, message);
      for (const { requestId, reply } of ready.replies) {
        const resolve = this.waiting.get(requestId);
        this.waiting.delete(requestId);
        resolve?.(reply);
      }
    }
  }
}
