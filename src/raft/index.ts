export { RaftCore, type Ready, type Role, type ProposeResult, type InitialState } from './core.js';
export { type RaftConfig, defaultTiming, validateConfig } from './config.js';
export type { Message, MessageType } from './messages.js';
export { isRequest } from './messages.js';
export type { Entry, EntryType, HardState, Snapshot, SnapshotMeta } from './types.js';
export { encodeMessage, decodeMessage, DecodeError } from './codec.js';
