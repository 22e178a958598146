// flotilla/lincheck: a linearizability checker (Wing & Gong search, Lowe's memoization,
// P-compositionality), its models, history readers, and explanations. See README.md.

export type {
  CheckOptions,
  CheckResult,
  Model,
  Operation,
  PartitionOutcome,
  PartitionResult,
  SearchStats,
  Verdict,
} from './types.js';
export { check, cacheBytesMaxDefault } from './checker.js';
export {
  registerModel,
  kvModel,
  kvModelWhole,
  etcdModel,
  describeValue,
  type RegisterInput,
  type RegisterOutput,
  type KvInput,
  type KvOutput,
  type KvValue,
  type KvStore,
  type EtcdInput,
  type EtcdOutput,
  type EtcdState,
} from './models.js';
export {
  parseRegisterJsonl,
  parseKvJsonl,
  parseEtcdJsonl,
  parseJepsenEtcd,
  parseJepsenKv,
  modelNames,
  historyOperationsMax,
  type ModelName,
  type ParseResult,
} from './parse.js';
export { describeResult } from './explain.js';
export { renderHtml } from './html.js';
export { hashString } from './tables.js';
