export { Wal, walDefaults, type WalOptions, type WalWrite, type WalRecovered, type WalStats } from './wal.js';
export type { WalEntry } from './segment.js';
export { SnapshotFiles, snapshotFileDefaults, snapshotName, type SnapshotFileOptions, type StoredSnapshot } from './snapshot-file.js';
export { StorageError, describeRecoveryEvent, type StorageErrorCode, type RecoveryEvent } from './errors.js';
