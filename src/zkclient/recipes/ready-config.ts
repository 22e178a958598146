// Configuration behind a `ready` znode — the ZooKeeper paper's example for its ordering
// guarantees (docs/zookeeper.md §4.1, §2.4):
//
//   <base>/ready          exists only while the configuration is complete
//   <base>/config/<key>   one znode per configuration key
//
// The publisher deletes `ready`, rewrites the key znodes and recreates `ready`, all
// pipelined (sent without waiting for replies; the session's FIFO order keeps them in
// order). A reader reads the keys only while `ready` exists, with a watch on it. Since a
// client receives a watch event before any data that reflects the change, a reader either
// reads a complete configuration or sees `ready`'s deletion event before its reads return;
// it then discards what it read and waits for `ready` to come back.
//
// One publisher at a time (e.g. the leader of an election). The rewrite and the new
// `ready` go in one multi pipelined behind the delete of `ready`, so `ready` never stands
// over a partial configuration, even if a write fails.

import { assert } from '../../stdx/assert.js';
import { Err, isZkError, type Data, type DataInput, type Op, type Watcher, type ZkClient } from '../client.js';
import { Cancellation, ensurePath, retrying, waitForWatch, type WaitOutcome } from './common.js';

export type Config = ReadonlyMap<string, Data>;

/** The reader's loop: one round per appearance of `ready`. */
const watchRoundsMax = 1_000_000;

function checkKey(key: string): void {
  assert(key.length > 0 && !key.includes('/') && key !== '.' && key !== '..', `config key ${JSON.stringify(key)} is a znode name`);
}

export class ReadyConfig {
  readonly readyPath: string;
  readonly configPath: string;

  constructor(
    readonly client: ZkClient,
    readonly basePath: string,
  ) {
    this.readyPath = `${basePath}/ready`;
    this.configPath = `${basePath}/config`;
  }

  /**
   * Replaces the whole configuration with `config`: deletes `ready`, then — pipelined right
   * behind it — one multi that writes every key (creating new ones, deleting stale ones) and
   * recreates `ready`. The multi is all or nothing, so `ready` only ever comes back over a
   * complete configuration; if it fails, `ready` stays deleted and publish rejects.
   * (New keys are created inside it, after `ready` is gone: created before, an empty new key
   * was visible under the old `ready` — a mixed configuration the multi-member tests caught.)
   */
  async publish(config: Readonly<Record<string, DataInput>>): Promise<void> {
    const keys = Object.keys(config).sort();
    keys.forEach(checkKey);
    await ensurePath(this.client, this.configPath);
    const existing = new Set(await retrying(this.client, () => this.client.getChildren(this.configPath)));
    const ops: Op[] = [];
    for (const key of keys) {
      const path = `${this.configPath}/${key}`;
      ops.push(existing.has(key) ? { op: 'setData', path, data: config[key]! } : { op: 'create', path, data: config[key]! });
    }
    for (const stale of [...existing].filter((key) => !(key in config)).sort()) ops.push({ op: 'delete', path: `${this.configPath}/${stale}` });
    ops.push({ op: 'create', path: this.readyPath });
    // The pipelined section: the multi is sent without waiting for the delete's reply.
    const deleted = this.client.delete(this.readyPath).catch((error: unknown) => (isZkError(error, Err.noNode) ? undefined : Promise.reject(error)));
    const written = this.client.multi(ops);
    const results = await Promise.allSettled([deleted, written]);
    const failed = results.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** The configuration if `ready` exists (read with the same checks as watch), else null. */
  async read(): Promise<Config | null> {
    let changed = false;
    const stat = await this.client.exists(this.readyPath, () => (changed = true));
    if (stat === null) return null;
    const config = await this.readKeys();
    return changed ? null : config;
  }

  /**
   * Calls `onConfig` with every complete configuration published from now on (the current
   * one first, if ready). Returns a stop function. `onError` hears why the loop ended early
   * (the session ended).
   */
  watch(onConfig: (config: Config) => void, onError: (error: Error) => void = () => {}): () => void {
    const cancellation = new Cancellation();
    void this.watchLoop(onConfig, cancellation).catch((error: unknown) => {
      if (!cancellation.cancelled) onError(error instanceof Error ? error : new Error(String(error)));
    });
    return () => cancellation.cancel();
  }

  private async watchLoop(onConfig: (config: Config) => void, cancellation: Cancellation): Promise<void> {
    for (let round = 0; round < watchRoundsMax && !cancellation.cancelled; round++) {
      let outcome: WaitOutcome;
      try {
        outcome = await waitForWatch(this.client, (watcher) => this.readIfReady(watcher, onConfig, cancellation), { cancel: cancellation });
      } catch (error) {
        // A read lost with its connection: start the round again on the new connection.
        if (isZkError(error, Err.connectionLoss)) continue;
        throw error;
      }
      if (outcome === 'cancelled') return;
    }
  }

  /** Arms a watch on ready; if ready exists, reads the keys and delivers them unless ready changed meanwhile. */
  private async readIfReady(watcher: Watcher, onConfig: (config: Config) => void, cancellation: Cancellation): Promise<boolean> {
    let readyChanged = false;
    const onReady: Watcher = (event) => {
      readyChanged = true;
      watcher(event);
    };
    const stat = await retrying(this.client, () => this.client.exists(this.readyPath, onReady));
    if (stat === null) return true; // not ready: wait for NodeCreated
    const config = await this.readKeys();
    // The ready watch fires before any reply that reflects a later change, so if it has not
    // fired, `config` is the complete configuration that `ready` stood for.
    if (!readyChanged && !cancellation.cancelled) onConfig(config);
    return true; // wait for ready's next change
  }

  private async readKeys(): Promise<Config> {
    const keys = (await retrying(this.client, () => this.client.getChildren(this.configPath))).sort();
    // Pipelined reads; a key deleted meanwhile means ready's watch has fired already.
    const values = await Promise.all(
      keys.map((key) =>
        this.client.getData(`${this.configPath}/${key}`).then(
          (reply) => reply.data,
          (error: unknown) => (isZkError(error, Err.noNode) ? null : Promise.reject(error)),
        ),
      ),
    );
    return new Map(keys.map((key, i) => [key, values[i]!] as const));
  }
}
