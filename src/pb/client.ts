// A client of a primary/backup service: finds the primary through ZooKeeper (the
// ephemeral /pb/<service>/primary node, watched), sends each request with its client id
// and a per-client sequence number, and on any failure asks again, with the same
// sequence number, wherever the primary is then. The machine answers a repeated request
// from the reply it remembered, so a request that ran on the old primary is not run twice
// on the new one; and the client takes only one reply per request, so an output the new
// primary repeats is deduplicated. Replies from an epoch older than one already seen are
// refused (a deposed primary cannot answer).

import { realClock } from '../platform/clock.js';
import { connectPb, type PbConnection } from '../platform/pb-net.js';
import { randomClientId } from '../platform/server-random.js';
import { Err, isZkError, ZkClient, type WatchEvent } from '../zkclient/index.js';
import { checkServiceName, decodePrimaryRecord, servicePaths, type PrimaryRecord } from './coordination.js';
import type { KvOp, KvOutput } from './kv.js';

export type PbReply =
  | { readonly type: 'reply'; readonly epoch: number; readonly output: KvOutput }
  | { readonly type: 'error'; readonly code: 'not-primary' | 'not-serving' | 'overloaded' | 'bad-request' | 'unknown'; readonly message: string };

export class PbClientError extends Error {
  override name = 'PbClientError';
  constructor(
    /** 'bad-request': refused, will never succeed; 'unavailable': no primary answered in time (the request may or may not have run). */
    readonly code: 'bad-request' | 'unavailable',
    message: string,
  ) {
    super(message);
  }
}

export interface PbClientOptions {
  readonly zkServers: readonly string[];
  readonly service: string;
  /** How long one request keeps trying. */
  readonly retryDeadlineMs?: number;
  readonly callTimeoutMs?: number;
  readonly clientId?: number;
  readonly sessionTimeoutMs?: number;
}

export class PbClient {
  readonly clientId: number;
  private requestSeq = 0;
  private primary: PrimaryRecord | undefined;
  private highestEpoch = 0;
  private connection: { address: string; connection: PbConnection } | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  /** Replies the client threw away as repeats or from deposed primaries. */
  readonly counts = { retries: 0, staleEpochReplies: 0 };

  private constructor(
    private readonly zk: ZkClient,
    private readonly options: PbClientOptions,
  ) {
    this.clientId = options.clientId ?? randomClientId();
  }

  static async connect(options: PbClientOptions): Promise<PbClient> {
    const bad = checkServiceName(options.service);
    if (bad !== undefined) throw new PbClientError('bad-request', bad);
    const zk = await ZkClient.connect({ servers: options.zkServers, sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000 });
    const client = new PbClient(zk, options);
    await client.refresh().catch(() => undefined);
    return client;
  }

  /** The primary as last read from ZooKeeper. */
  currentPrimary(): PrimaryRecord | undefined {
    return this.primary;
  }

  /**
   * Runs one request, retrying it until a primary answers or the deadline passes. Calls run
   * one at a time, in order (a later call waits for the one before): the machine keeps only
   * each client's last request, so two at once would have the older refused as stale.
   */
  call(op: KvOp): Promise<{ output: KvOutput; epoch: number }> {
    const result = this.tail.then(() => this.callNow(op));
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async callNow(op: KvOp): Promise<{ output: KvOutput; epoch: number }> {
    const input = { clientId: this.clientId, requestSeq: ++this.requestSeq, op };
    const deadline = realClock.nowMs() + (this.options.retryDeadlineMs ?? 10_000);
    let lastReason = 'no primary is registered';
    for (let attempt = 0; realClock.nowMs() < deadline; attempt++) {
      if (attempt > 0) {
        this.counts.retries++;
        await new Promise<void>((resolve) => realClock.setTimer(Math.min(20 * attempt, 200), resolve));
      }
      const primary = this.primary ?? (await this.refresh().catch(() => undefined));
      if (primary === undefined) continue;
      let reply: PbReply;
      try {
        const connection = await this.connectTo(primary.address);
        reply = (await connection.call('client', input)) as PbReply;
      } catch (error) {
        lastReason = error instanceof Error ? error.message : String(error);
        this.forget(primary);
        continue;
      }
      if (reply.type === 'reply') {
        if (reply.epoch < this.highestEpoch) {
          this.counts.staleEpochReplies++;
          lastReason = `a reply of epoch ${reply.epoch} after epoch ${this.highestEpoch} was seen`;
          this.forget(primary);
          continue;
        }
        this.highestEpoch = reply.epoch;
        return { output: reply.output, epoch: reply.epoch };
      }
      if (reply.code === 'bad-request') throw new PbClientError('bad-request', reply.message);
      lastReason = `${reply.code}: ${reply.message}`;
      if (reply.code !== 'overloaded') this.forget(primary);
    }
    throw new PbClientError('unavailable', `no primary answered within ${this.options.retryDeadlineMs ?? 10_000} ms (last: ${lastReason}); the request may or may not have run`);
  }

  async close(): Promise<void> {
    this.connection?.connection.close();
    await this.zk.close().catch(() => undefined);
  }

  private forget(primary: PrimaryRecord): void {
    if (this.primary === primary) this.primary = undefined;
    if (this.connection?.address === primary.address) {
      this.connection.connection.close();
      this.connection = undefined;
    }
  }

  private async connectTo(address: string): Promise<PbConnection> {
    if (this.connection?.address === address) return this.connection.connection;
    this.connection?.connection.close();
    this.connection = undefined;
    const connection = await connectPb(address, this.options.callTimeoutMs ?? 3_000);
    this.connection = { address, connection };
    void connection.closed.then(() => {
      if (this.connection?.connection === connection) this.connection = undefined;
    });
    return connection;
  }

  private async refresh(): Promise<PrimaryRecord | undefined> {
    const watcher = (event: WatchEvent): void => {
      if (event.type !== 'sessionEnded') void this.refresh().catch(() => undefined);
    };
    try {
      const { data } = await this.zk.getData(servicePaths(this.options.service).primary, watcher);
      const record = decodePrimaryRecord(data);
      if (record.epoch >= this.highestEpoch) this.primary = record;
      return this.primary;
    } catch (error) {
      if (!isZkError(error, Err.noNode)) throw error;
      await this.zk.exists(servicePaths(this.options.service).primary, watcher);
      this.primary = undefined;
      return undefined;
    }
  }
}
