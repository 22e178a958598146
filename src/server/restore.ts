// `flotilla snapshot restore`: a fresh data directory built from a backup (backup.ts), to
// seed a new cluster, as etcd's `snapshot restore` does. Each group's directory gets the
// group's snapshot, with the new cluster's members as its voters, and a hard state that
// commits it; the member then starts from that snapshot with an empty log after it. Every
// member of the new cluster is restored from the same file.

import type { NodeId } from '../stdx/types.js';
import { FsDisk } from '../platform/fs-disk.js';
import { isEmptyOrMissingDirectory } from '../platform/server-files.js';
import { WalStorage } from '../runtime/wal-storage.js';
import { type Backup, BackupError, restoredSnapshot } from './backup.js';

/** Writes `backup` into `dataDir` (missing or empty) for a member of a cluster of `voters`. */
export async function restoreDataDirectory(backup: Backup, dataDir: string, voters: readonly NodeId[]): Promise<void> {
  if (!(await isEmptyOrMissingDirectory(dataDir))) throw new BackupError(`${dataDir} is not empty: restore builds a new data directory and never writes over one`);
  const disk = new FsDisk(dataDir);
  for (const group of backup.groups) {
    const storage = new WalStorage(disk, group.dir);
    await storage.load();
    const snapshot = restoredSnapshot(group, voters);
    await storage.save({ entries: [], hardState: { term: group.term, vote: 0 as NodeId, commit: group.index }, snapshot });
    await storage.close();
  }
}
