// flotilla/shardctrler: the shard controller (6.824 lab 4A/5A) as a replicated service. See README.md.

export * from './codec.js';
export * from './config.js';
export { shardCtrlerDefaults, type ShardCtrlerLimits } from './limits.js';
export { ShardCtrlerStateMachine, type ShardCtrlerUnsafe } from './state-machine.js';
export {
  ShardCtrlerService,
  shardCtrlerRequestTimeoutMsDefault,
  type ShardCtrlerErrorCode,
  type ShardCtrlerRequest,
  type ShardCtrlerResponse,
  type ShardCtrlerServiceOptions,
} from './service.js';
