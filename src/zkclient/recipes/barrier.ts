// A barrier (docs/zookeeper.md §4.1): while the barrier node exists,
// processes that call wait() block; removing the node releases all of them. Each waiter
// exists-watches the node, so removal wakes every waiter once — which is the point.

import { Err, isZkError, type ZkClient } from '../client.js';
import { deadlineFrom, deleteIfPresent, ensurePath, retrying, waitForWatch } from './common.js';

/** exists → event → exists … ends when the node is gone; each round needs a change to the node. */
const waitRoundsMax = 1_000_000;

export class Barrier {
  constructor(
    readonly client: ZkClient,
    readonly path: string,
  ) {}

  /** Raises the barrier (creates the node and its parents); already up is fine. */
  async set(): Promise<void> {
    const parent = this.path.slice(0, this.path.lastIndexOf('/'));
    if (parent.length > 0) await ensurePath(this.client, parent);
    try {
      await retrying(this.client, () => this.client.create(this.path));
    } catch (error) {
      if (!isZkError(error, Err.nodeExists)) throw error;
    }
  }

  /** Lowers the barrier: every waiter proceeds. Already down is fine. */
  async remove(): Promise<void> {
    await deleteIfPresent(this.client, this.path);
  }

  /** Resolves true once the barrier node is gone, false if `timeoutMs` passed first. */
  async wait(options: { timeoutMs?: number } = {}): Promise<boolean> {
    const deadlineMs = deadlineFrom(this.client, options.timeoutMs);
    for (let round = 0; round < waitRoundsMax; round++) {
      const outcome = await waitForWatch(this.client, async (watcher) => (await retrying(this.client, () => this.client.exists(this.path, watcher))) !== null, { deadlineMs });
      if (outcome === 'absent') return true;
      if (outcome === 'timeout') return false;
      // The event: usually NodeDeleted. Look without a watch, so none is left armed on a gone node.
      if ((await retrying(this.client, () => this.client.exists(this.path))) === null) return true;
    }
    throw new Error(`barrier ${this.path} changed ${waitRoundsMax} times without coming down`);
  }
}
