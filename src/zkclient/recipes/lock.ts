// Locks without the herd effect (docs/zookeeper.md §4.1):
//
//   Lock           EPHEMERAL_SEQUENTIAL `<guid>-lock-N` under the lock path; the lowest holds it.
//   ReadWriteLock  `<guid>-read-N` waits only for the next lower `write-`;
//                  `<guid>-write-N` waits for the next lower node of either kind.
//
// A waiter lists the children without a watch and exists-watches only the node it waits
// for, so each release wakes exactly one waiter (or, for a writer's release, the readers
// that may now all proceed — which is intended, not a herd). The GUID in each name lets a
// participant find its own node after a create whose reply was lost. Locks are not
// re-entrant, and they are held only while the session lives: after 'expired' the server
// has deleted the node, and `isHeld` says false.

import { assert } from '../../stdx/assert.js';
import { Err, isZkError, type ZkClient } from '../client.js';
import { createProtected, deadlineFrom, deleteIfPresent, ensurePath, newGuid, nextLower, sessionEnded, waitForTurn, type PredecessorRule } from './common.js';

export interface LockOptions {
  /** Names this participant's nodes; default a random one. */
  readonly guid?: string;
}

export interface AcquireOptions {
  /** Give up (and remove the node) after this long; default wait for as long as it takes. */
  readonly timeoutMs?: number;
}

/** A lock of one kind under a path, sharing the sequence with the other kinds in `kinds`. */
export class SequenceLock {
  /** Watch events this participant's waits received; with no herd, at most one per acquire. */
  wakeups = 0;
  private node: string | undefined = undefined;
  private held = false;

  constructor(
    readonly client: ZkClient,
    readonly path: string,
    readonly kind: string,
    private readonly kinds: readonly string[],
    private readonly predecessor: PredecessorRule,
    readonly guid: string,
  ) {
    assert(kinds.includes(kind), 'the kind is one of the kinds');
  }

  /** Held, and the session that holds it is alive. */
  get isHeld(): boolean {
    return this.held && !sessionEnded(this.client);
  }

  /** This participant's node while acquiring or holding, else undefined. */
  get nodePath(): string | undefined {
    return this.node;
  }

  /** Resolves true once held, false if `timeoutMs` passed first (its node is then removed). */
  async acquire(options: AcquireOptions = {}): Promise<boolean> {
    assert(this.node === undefined, 'acquire while holding or acquiring: locks are not re-entrant');
    const deadlineMs = deadlineFrom(this.client, options.timeoutMs);
    await ensurePath(this.client, this.path);
    const node = await createProtected(this.client, this.path, `${this.guid}-${this.kind}-`, 'ephemeral-sequential');
    this.node = node;
    let outcome: 'ready' | 'timeout' | 'cancelled';
    try {
      outcome = await waitForTurn(this.client, this.path, node.slice(this.path.length + 1), this.kinds, this.predecessor, { deadlineMs, onWake: () => this.wakeups++ });
    } catch (error) {
      this.node = undefined;
      await this.removeQuietly(node);
      throw error;
    }
    if (outcome === 'ready') {
      this.held = true;
      return true;
    }
    this.node = undefined;
    await deleteIfPresent(this.client, node);
    return false;
  }

  /** Releases the lock by deleting the node; a node already gone (session ended) counts as released. */
  async release(): Promise<void> {
    const node = this.node;
    assert(node !== undefined && this.held, 'release of a lock not held');
    this.node = undefined;
    this.held = false;
    await this.removeQuietly(node);
  }

  private async removeQuietly(node: string): Promise<void> {
    try {
      await deleteIfPresent(this.client, node);
    } catch (error) {
      // An ended session has no nodes left to delete: the server removed them.
      if (!isZkError(error, Err.sessionExpired) && !isZkError(error, Err.authFailed)) throw error;
    }
  }
}

/** An exclusive lock. */
export class Lock extends SequenceLock {
  constructor(client: ZkClient, path: string, options: LockOptions = {}) {
    super(client, path, 'lock', ['lock'], nextLower, options.guid ?? newGuid());
  }
}

/** A reader waits for the highest write- node below it, if any. */
const lowerWriter: PredecessorRule = (nodes, mine) => {
  for (let i = mine - 1; i >= 0; i--) if (nodes[i]!.kind === 'write') return nodes[i];
  return undefined;
};

/** A shared (read) / exclusive (write) lock; the two halves share one sequence under `path`. */
export class ReadWriteLock {
  readonly readLock: SequenceLock;
  readonly writeLock: SequenceLock;

  constructor(client: ZkClient, path: string, options: LockOptions = {}) {
    const guid = options.guid ?? newGuid();
    this.readLock = new SequenceLock(client, path, 'read', ['read', 'write'], lowerWriter, guid);
    this.writeLock = new SequenceLock(client, path, 'write', ['read', 'write'], nextLower, guid);
  }
}
