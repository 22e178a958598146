// A distributed FIFO queue (docs/zookeeper.md §4.1): producers create
// PERSISTENT_SEQUENTIAL `item-N` children of the queue node; a consumer takes the lowest
// item by reading and deleting it. The getData and the delete are pipelined (one round
// trip); a delete that fails NONODE means another consumer took that item first, so the
// consumer moves to the next. Only a consumer that finds the queue empty sets a child
// watch, and it lists again when the watch fires.
//
// An item is delivered to at most one consumer (at most once): a take whose delete's reply
// is lost (CONNECTIONLOSS) fails, and that item may be gone. A put whose reply is lost may
// or may not have enqueued its item; put does not retry it.

import { Err, isZkError, type Data, type DataInput, type ZkClient } from '../client.js';
import { deadlineFrom, ensurePath, retrying, waitForWatch } from './common.js';

const itemPrefix = 'item-';
/** Each round either takes an item or waits for the children to change. */
const takeRoundsMax = 1_000_000;

function itemsOf(children: readonly string[]): string[] {
  return children.filter((child) => child.startsWith(itemPrefix)).sort((a, b) => Number(a.slice(itemPrefix.length)) - Number(b.slice(itemPrefix.length)));
}

export class Queue {
  private ready: Promise<void> | undefined = undefined;

  constructor(
    readonly client: ZkClient,
    readonly path: string,
  ) {}

  /** Enqueues `data`; resolves with the item's node name. */
  async put(data: DataInput): Promise<string> {
    await this.ensure();
    const created = await this.client.create(`${this.path}/${itemPrefix}`, data, { mode: 'persistent-sequential' });
    return created.slice(this.path.length + 1);
  }

  /** Takes the oldest item, or null if the queue is empty. */
  async poll(): Promise<Data | null> {
    await this.ensure();
    const taken = await this.takeFrom(itemsOf(await retrying(this.client, () => this.client.getChildren(this.path))));
    return taken === undefined ? null : taken.data;
  }

  /** Takes the oldest item, waiting for one; resolves null if `timeoutMs` passed first. */
  async take(options: { timeoutMs?: number } = {}): Promise<Data | null> {
    await this.ensure();
    const deadlineMs = deadlineFrom(this.client, options.timeoutMs);
    for (let round = 0; round < takeRoundsMax; round++) {
      const taken = await this.takeFrom(itemsOf(await retrying(this.client, () => this.client.getChildren(this.path))));
      if (taken !== undefined) return taken.data;
      // Empty: list again with a child watch; wait only if it is still empty.
      const outcome = await waitForWatch(this.client, async (watcher) => itemsOf(await retrying(this.client, () => this.client.getChildren(this.path, watcher))).length === 0, { deadlineMs });
      if (outcome === 'timeout') return null;
    }
    throw new Error(`queue ${this.path}: no item after ${takeRoundsMax} rounds`);
  }

  /** Tries the items lowest first; undefined when every one was taken by someone else. */
  private async takeFrom(items: readonly string[]): Promise<{ data: Data } | undefined> {
    for (const item of items) {
      const path = `${this.path}/${item}`;
      const [read, removed] = await Promise.allSettled([this.client.getData(path), this.client.delete(path)]);
      if (removed.status === 'fulfilled') {
        if (read.status === 'fulfilled') return { data: read.value.data };
        throw read.reason; // deleted by us but unreadable: cannot happen in FIFO order
      }
      if (!isZkError(removed.reason, Err.noNode)) throw removed.reason;
    }
    return undefined;
  }

  private ensure(): Promise<void> {
    this.ready ??= ensurePath(this.client, this.path).catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }
}
