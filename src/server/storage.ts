// The member's Raft storage: the WAL-backed WalStorage (the key/value and ZooKeeper
// groups, each its own log) or SharedWalStorage (the sharded service's groups, one log for
// all of them: shard-host.ts), recovered before any port opens (a damaged data directory
// must stop the member before it talks to anyone), with every save timed for the fsync
// histogram and tracked so that shutdown can wait for it.

import { assert } from '../stdx/assert.js';
import type { Clock } from '../io/clock.js';
import type { Disk } from '../io/disk.js';
import type { RecoveryEvent } from '../storage/errors.js';
import type { PersistedState, RaftStorage, StorageUpdate } from '../runtime/storage.js';
import { WalStorage } from '../runtime/wal-storage.js';
import { SharedWalStorage } from '../runtime/shared-wal-storage.js';
import type { GroupRecovered, SharedWal } from '../storage/shared-wal.js';

/** What ServerStorage wraps: a log that recovered already (load() hands it over). */
type RecoveredStorage = Pick<RaftStorage, 'save' | 'sizeBytes'> & { close?(): Promise<void>; syncCount?(): number };

/** Where the Raft groups' logs and snapshots live under the data directory: key/value, ZooKeeper, etcd. */
export const GROUP_DIR = 'group-1';
export const ZK_GROUP_DIR = 'group-2';
export const ETCD_GROUP_DIR = 'group-4';

export class ServerStorage implements RaftStorage {
  private recovered: PersistedState | undefined;
  private inflight: Promise<void> | undefined = undefined;

  private constructor(
    private readonly wal: RecoveredStorage,
    recovered: PersistedState,
    private readonly clock: Clock,
    private readonly onSaved: (durationMs: number) => void,
  ) {
    this.recovered = recovered;
  }

  /** Recovers the log. Throws StorageError (naming file and offset) if it is damaged. */
  static async recover(disk: Disk, clock: Clock, onSaved: (durationMs: number) => void, dir = GROUP_DIR): Promise<{ storage: ServerStorage; events: readonly RecoveryEvent[] }> {
    const wal = new WalStorage(disk, dir);
    const state = await wal.load();
    return { storage: new ServerStorage(wal, state, clock, onSaved), events: wal.recoveryEvents };
  }

  /**
   * One group's storage on the process's shared log (the log itself is opened, and closed
   * after every group's storage, by its owner). Throws StorageError if the group's records
   * and its snapshot file do not fit together.
   */
  static async recoverShared(
    disk: Disk,
    wal: SharedWal,
    group: number,
    recovered: GroupRecovered | undefined,
    snapDir: string,
    clock: Clock,
    onSaved: (durationMs: number) => void,
  ): Promise<{ storage: ServerStorage; events: readonly RecoveryEvent[] }> {
    const { storage, events } = await SharedWalStorage.open(disk, wal, group, recovered, snapDir);
    const state = await storage.load();
    return { storage: new ServerStorage(storage, state, clock, onSaved), events };
  }

  /** The recovered state, handed over once (to RaftNode.open). */
  load(): Promise<PersistedState> {
    const state = this.recovered;
    assert(state !== undefined, 'load() runs once');
    this.recovered = undefined;
    return Promise.resolve(state);
  }

  save(update: StorageUpdate): Promise<void> {
    assert(this.inflight === undefined, 'save() calls never overlap');
    const started = this.clock.nowMs();
    // Cleared in the settle handlers themselves, before the caller's continuation runs
    // (it may call save() again at once).
    const saving = this.wal.save(update).then(
      () => {
        this.inflight = undefined;
        this.onSaved(this.clock.nowMs() - started);
      },
      (error: unknown) => {
        this.inflight = undefined;
        throw error;
      },
    );
    this.inflight = saving.catch(() => {});
    return saving;
  }

  sizeBytes(): number {
    return this.wal.sizeBytes();
  }

  /** fsyncs of this storage's own log (0 for a group on the shared log: its owner counts those). */
  syncCount(): number {
    return this.wal.syncCount?.() ?? 0;
  }

  /** Waits for the save in flight (if any), then closes the log. */
  async close(): Promise<void> {
    await this.inflight;
    await this.wal.close?.();
  }
}
