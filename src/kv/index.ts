// flotilla/kv: the replicated key/value service. See README.md.

export * from './codec.js';
export { kvDefaults, type KvLimits } from './limits.js';
export { KvStateMachine, type KvUnsafe } from './state-machine.js';
export { SessionTable, type Session, type SessionDecision } from './sessions.js';
export { KvStore, StoreCapture, compareKeys, type ScanPage } from './store.js';
export { KvSnapshotEncoder, type SessionRecord } from './snapshot.js';
export {
  KvService,
  requestTimeoutMsDefault,
  type KvReadMode,
  type KvRequest,
  type KvResponse,
  type KvServiceErrorCode,
  type KvServiceOptions,
} from './service.js';
