// A simulated network with labrpc's fault model (docs/6824-tests.md §1.1), for
// one-way messages:
//   reliable    every message arrives after 1–5 ms, drawn per message, so messages on
//               one link overtake each other as labrpc's concurrent calls do (each runs
//               on its own goroutine); nothing is lost
//   unreliable  0–26 ms random delay, 10% of messages dropped
//   long reordering   two thirds of responses delayed a further 200–2199 ms
// A call to a disconnected peer has no counterpart here: labrpc makes such a call fail only
// after up to 7 s, which stalls a sender that waits for replies, but these messages are
// one-way and nothing waits on them; a message over a link that is down is simply lost.
// (The clerks' call network, testbed/kv-rpc.ts, has the long delays as an option.)
//
// Plus what labrpc lacks: one-way partitions (block a single direction) and duplicated
// messages. A node that is disconnected, crashed or restarted loses what is in flight to
// and from its old incarnation, as labrpc's fresh endpoint names make happen.
//
// Messages travel as bytes (encoded at send, decoded at delivery), so sender and receiver
// never share objects, and byte counts are real.

import type { Prng } from '../stdx/prng.js';
import type { NodeId } from '../stdx/types.js';
import type { Scheduler } from './scheduler.js';

export interface NetworkCodec<M> {
  encode(message: M): Uint8Array;
  decode(bytes: Uint8Array): M;
  /** Requests count as RPCs (labrpc's counters); the rest are responses. */
  isRequest(message: M): boolean;
}

export const unreliableDelayMsMax = 26;
export const unreliableDropProbability = 0.1;
export const longReorderingProbability = 600 / 900;
/** The least delay of any message, reliable or not, and of a clerk's call each way. */
export const reliableDelayMs = 1;
/** The greatest delay of a message on a reliable network. */
export const reliableDelayMsMax = 5;

interface Endpoint<M> {
  incarnation: number;
  handler: ((message: M) => void) | undefined;
}

export class SimNetwork<M> {
  reliable = true;
  longReordering = false;
  /** Probability that a delivered message is delivered a second time, later. */
  duplicateProbability = 0;
  /**
   * What a crash does to the messages its node already sent. False (labrpc's way): they are
   * lost with the node. True (TCP's way after kill -9): bytes already written reach the
   * peer; only messages addressed to the dead incarnation are lost.
   */
  sentSurvivesCrash = false;
  /** Bytes of every message sent. */
  bytesTotal = 0;
  /** Requests sent. */
  rpcTotal = 0;
  /** A running FNV-1a hash of every delivery: equal for equal runs. */
  traceHash = 0x811c9dc5;
  private readonly endpoints = new Map<NodeId, Endpoint<M>>();
  private readonly connected = new Set<NodeId>();
  private readonly blocked = new Set<string>();
  private readonly rpcReceived = new Map<NodeId, number>();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly prng: Prng,
    private readonly codec: NetworkCodec<M>,
  ) {}

  /** Attaches a (new incarnation of a) node; it starts disconnected. */
  attach(id: NodeId, handler: (message: M) => void): void {
    const previous = this.endpoints.get(id);
    this.endpoints.set(id, { incarnation: (previous?.incarnation ?? 0) + 1, handler });
  }

  /** Detaches a crashed node: nothing reaches it or leaves it until attach(). */
  detach(id: NodeId): void {
    const endpoint = this.endpoints.get(id);
    if (endpoint !== undefined) {
      endpoint.incarnation++;
      endpoint.handler = undefined;
    }
    this.connected.delete(id);
  }

  connect(id: NodeId): void {
    this.connected.add(id);
  }

  disconnect(id: NodeId): void {
    this.connected.delete(id);
  }

  isConnected(id: NodeId): boolean {
    return this.connected.has(id);
  }

  /** Blocks (or unblocks) the single direction from → to. */
  setBlocked(from: NodeId, to: NodeId, blocked: boolean): void {
    if (blocked) this.blocked.add(`${from}>${to}`);
    else this.blocked.delete(`${from}>${to}`);
  }

  clearBlocks(): void {
    this.blocked.clear();
  }

  /** Requests delivered to `id` (labrpc's per-server RPC count). */
  rpcCount(id: NodeId): number {
    return this.rpcReceived.get(id) ?? 0;
  }

  send(from: NodeId, to: NodeId, message: M): void {
    const bytes = this.codec.encode(message);
    const request = this.codec.isRequest(message);
    this.bytesTotal += bytes.length;
    if (request) this.rpcTotal++;
    if (!this.linkUp(from, to)) return;
    if (!this.reliable && this.prng.chance(unreliableDropProbability)) return;
    const fromIncarnation = this.endpoints.get(from)?.incarnation ?? 0;
    const toIncarnation = this.endpoints.get(to)?.incarnation ?? 0;
    const deliver = () => this.deliver(from, to, fromIncarnation, toIncarnation, bytes, request);
    this.scheduler.after(this.delayMs(request), deliver);
    if (this.duplicateProbability > 0 && this.prng.chance(this.duplicateProbability)) {
      this.scheduler.after(this.delayMs(request) + this.prng.int(50), deliver);
    }
  }

  private linkUp(from: NodeId, to: NodeId): boolean {
    return this.connected.has(from) && this.connected.has(to) && !this.blocked.has(`${from}>${to}`);
  }

  private delayMs(request: boolean): number {
    let delay = this.reliable ? reliableDelayMs + this.prng.int(reliableDelayMsMax - reliableDelayMs + 1) : this.prng.int(unreliableDelayMsMax + 1);
    if (this.longReordering && !request && this.prng.chance(longReorderingProbability)) {
      delay += 200 + this.prng.int(1 + this.prng.int(2000));
    }
    return delay;
  }

  private deliver(from: NodeId, to: NodeId, fromIncarnation: number, toIncarnation: number, bytes: Uint8Array, request: boolean): void {
    const sender = this.endpoints.get(from);
    const receiver = this.endpoints.get(to);
    if (sender === undefined || receiver === undefined || receiver.handler === undefined) return;
    if ((sender.incarnation !== fromIncarnation && !this.sentSurvivesCrash) || receiver.incarnation !== toIncarnation) return;
    if (!this.linkUp(from, to)) return;
    if (request) this.rpcReceived.set(to, this.rpcCount(to) + 1);
    this.hashDelivery(from, to, bytes);
    receiver.handler(this.codec.decode(bytes));
  }

  private hashDelivery(from: NodeId, to: NodeId, bytes: Uint8Array): void {
    let h = this.traceHash;
    h = Math.imul(h ^ this.scheduler.nowMs, 0x01000193);
    h = Math.imul(h ^ (from * 256 + to), 0x01000193);
    for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
    this.traceHash = h >>> 0;
  }
}
