// flotilla/shardkv: the sharded key/value service (6.824 lab 5B and both challenges). See README.md.

export * from './codec.js';
export { key2shard, ShardKvStateMachine, type PendingWork, type ShardKvUnsafe, type ShardState } from './state-machine.js';
export {
  ShardKvService,
  shardKvPollMsDefault,
  shardKvPullBytesMaxDefault,
  shardKvRequestTimeoutMsDefault,
  type PeerArgs,
  type PeerReply,
  type ShardKvReply,
  type ShardKvRequest,
  type ShardKvServiceOptions,
} from './service.js';
