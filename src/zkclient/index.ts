// `flotilla/zk`: Flotilla's ZooKeeper client and the coordination recipes on it (README.md).

export {
  ZkClient,
  ZkError,
  isZkError,
  codeName,
  toData,
  Err,
  Perm,
  OPEN_ACL_UNSAFE,
  READ_ACL_UNSAFE,
  CREATOR_ALL_ACL,
  requestBytesMax,
  replyBytesMax,
  throttledOpCode,
  type Acl,
  type CreateModeName,
  type CreateOptions,
  type Credential,
  type Data,
  type DataInput,
  type Id,
  type MultiResult,
  type Op,
  type Stat,
  type StateListener,
  type WatchEvent,
  type WatchEventType,
  type Watcher,
  type ZkClientOptions,
  type ZkState,
} from './client.js';

export { loadClientTls, TlsLoadError, type ClientTls, type ClientTlsFiles } from '../platform/tls.js';
export { Lock, ReadWriteLock, SequenceLock, type AcquireOptions, type LockOptions } from './recipes/lock.js';
export { LeaderElection, type ElectionOptions } from './recipes/election.js';
export { Barrier } from './recipes/barrier.js';
export { Queue } from './recipes/queue.js';
export { ReadyConfig, type Config } from './recipes/ready-config.js';
export { Cancellation } from './recipes/common.js';
