// labrpc's Call, for the kvraft clerks (docs/6824-tests.md §1.1): a clerk's request to
// a server either returns the handler's reply or fails, and the failure comes the way the
// lab's does —
//
//   reliable                             1–5 ms each way, drawn per message, so concurrent
//                                        calls overtake each other (sim/network.ts's reliable
//                                        latency: labrpc adds none, but then a clerk's whole
//                                        call would take no time next to Raft's hops)
//   endpoint disabled, or no server      fails after 0–99 ms (the kv testers' short delays),
//                                        or 0–6999 ms with longDelays (the Raft tester's)
//   unreliable                           0–26 ms before delivery; 10% of requests lost,
//                                        10% of replies lost (the handler did run)
//   server deleted or endpoint disabled  checked every 100 ms while the handler runs: fails
//     while the handler runs
//   server deleted when the handler      fails: a reply from a server whose Persister was
//     returns                            already superseded must not count
//   loseReplies(clerk)                   every reply to that clerk is lost after the handler
//                                        ran (a scripted form of the unreliable reply loss, so
//                                        a test can make a clerk retry a write that applied)
//
// so clerks never need timeouts of their own. Arguments and replies travel as MessagePack
// bytes (no shared objects, real byte counts), and the Raft messages between servers use
// sim/network.ts.

import { Packr } from 'msgpackr';
import type { Prng } from '../stdx/prng.js';
import type { Scheduler } from '../sim/scheduler.js';
import { reliableDelayMs, reliableDelayMsMax } from '../sim/network.js';

const packr = new Packr({ useRecords: false });

export const disabledFailureDelayMsMax = 99;
/** With longDelays: a call to a disabled endpoint or missing server fails after up to 7 s. */
export const longFailureDelayMsMax = 6999;
export const unreliableDelayMsMax = 26;
export const unreliableLossProbability = 0.1;
/** How often a waiting Call checks whether its server died or its endpoint was disabled. */
export const callCheckIntervalMs = 100;

export type RpcHandler<A, R> = (args: A) => Promise<R>;

interface ServerSlot<A, R> {
  readonly handler: RpcHandler<A, R>;
  /** Distinguishes the incarnations installed under one server number. */
  readonly incarnation: number;
}

export class ClerkNetwork<A, R> {
  reliable = true;
  /** labrpc's LongDelays: failures to reach a server take up to 7 s instead of 0.1 s. */
  longDelays = false;
  /** Calls made (labrpc's total RPC count). */
  rpcTotal = 0;
  /** Bytes of arguments sent and replies delivered. */
  bytesTotal = 0;
  private readonly servers: (ServerSlot<A, R> | undefined)[];
  private incarnations = 0;
  /** Enabled (clerk, server) endpoints, as `${clerk}>${server}`. */
  private readonly enabled = new Set<string>();
  /** Clerks whose every reply is lost (loseReplies). */
  private readonly repliesLost = new Set<number>();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly prng: Prng,
    serverCount: number,
  ) {
    this.servers = new Array<ServerSlot<A, R> | undefined>(serverCount).fill(undefined);
  }

  /** AddServer: a new incarnation answers under number `server`. */
  addServer(server: number, handler: RpcHandler<A, R>): void {
    this.servers[server] = { handler, incarnation: ++this.incarnations };
  }

  /** DeleteServer: calls to it fail, and calls waiting on it fail at their next check. */
  deleteServer(server: number): void {
    this.servers[server] = undefined;
  }

  enable(clerk: number, server: number, on: boolean): void {
    if (on) this.enabled.add(`${clerk}>${server}`);
    else this.enabled.delete(`${clerk}>${server}`);
  }

  isEnabled(clerk: number, server: number): boolean {
    return this.enabled.has(`${clerk}>${server}`);
  }

  /** While `lost`, every reply to `clerk` is lost after the server's handler ran. */
  loseReplies(clerk: number, lost: boolean): void {
    if (lost) this.repliesLost.add(clerk);
    else this.repliesLost.delete(clerk);
  }

  /** Resolves with the reply, or undefined for any failure. Never rejects. */
  async call(clerk: number, server: number, args: A): Promise<R | undefined> {
    const encoded = packr.pack(args);
    this.rpcTotal++;
    this.bytesTotal += encoded.length;
    const slot = this.servers[server];
    if (!this.isEnabled(clerk, server) || slot === undefined) {
      await this.delay(this.prng.int((this.longDelays ? longFailureDelayMsMax : disabledFailureDelayMsMax) + 1));
      return undefined;
    }
    if (this.reliable) await this.delay(this.reliableDelayMs());
    else {
      await this.delay(this.prng.int(unreliableDelayMsMax + 1));
      if (this.prng.chance(unreliableLossProbability)) return undefined;
    }
    const reply = await this.runHandler(clerk, server, slot, packr.unpack(encoded) as A);
    if (reply === undefined || this.servers[server] !== slot || this.repliesLost.has(clerk)) return undefined;
    if (!this.reliable && this.prng.chance(unreliableLossProbability)) return undefined;
    if (this.reliable) await this.delay(this.reliableDelayMs());
    if (this.servers[server] !== slot) return undefined;
    const replyBytes = packr.pack(reply);
    this.bytesTotal += replyBytes.length;
    return packr.unpack(replyBytes) as R;
  }

  /** The handler's reply, or undefined once the server died or the endpoint was disabled. */
  private runHandler(clerk: number, server: number, slot: ServerSlot<A, R>, args: A): Promise<R | undefined> {
    return new Promise<R | undefined>((resolve, reject) => {
      let settled = false;
      const check = (): void => {
        if (settled) return;
        if (this.servers[server] !== slot || !this.isEnabled(clerk, server)) {
          settled = true;
          resolve(undefined);
          return;
        }
        this.scheduler.after(callCheckIntervalMs, check);
      };
      this.scheduler.after(callCheckIntervalMs, check);
      slot.handler(args).then(
        (reply) => {
          if (settled) return;
          settled = true;
          resolve(reply);
        },
        (error: unknown) => {
          settled = true;
          reject(error);
        },
      );
    });
  }

  private reliableDelayMs(): number {
    return reliableDelayMs + this.prng.int(reliableDelayMsMax - reliableDelayMs + 1);
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.scheduler.after(ms, resolve));
  }
}
