// The sharded service's requests on the client port (protocol.ts `{type:'shard', body}`),
// and their replies (`{type:'result', result}`): MessagePack arrays, validated field by
// field on decode (STYLE.md 6). Clients, `flotilla shard`, and the groups themselves
// (a group's controller polls, shard pulls and deletions) all speak it:
//
//   request                                               reply
//   ['c', op, client, seq, ack, forwarded]                 ['config', config] | ['done', num]
//      op: ['query', num] | ['join', [gid, [server..]..]]   | ['refused', code, message]     (not applied)
//        | ['leave', [gid..]] | ['move', shard, gid]       | ['failed', code, message, leader] (retry)
//   ['k', gid, op, key, value, client, seq]                [err, value]        (ShardKvReply)
//   ['p', gid, 'pull'|'delete', num, [shard..]             [err, shards, sessions          (PeerReply)
//      (, afterShard, afterKey)]                             (, moreShard, moreKey)]
//      (a pull returns a page of at most pullBytesMax; `more` is the cursor of the next
//      page, sent back as `after`; sessions come with the last page)
//
// A join whose server list is empty asks the member to fill it from the layout
// (shard-layout.ts: "host:port/gid" of each member of the group). `forwarded` marks a
// controller request one member already handed to the controller's leader: it is not
// forwarded again.

import { type ShardConfig, configFromArray, configToArray, count, integer, pack, ShardDecodeError, type ShardOp, text, unpackArray } from '../shardctrler/index.js';
import type { PeerArgs, PeerReply, ShardKvReply, ShardKvRequest } from '../shardkv/index.js';

export type CtrlOp = { readonly kind: 'query'; readonly num: number } | ShardOp;

export interface CtrlSession {
  readonly client: number;
  readonly seq: number;
  readonly ack: number;
}

export type ShardRequest =
  | { readonly kind: 'ctrl'; readonly op: CtrlOp; readonly session: CtrlSession; readonly forwarded: boolean }
  | { readonly kind: 'kv'; readonly gid: number; readonly request: ShardKvRequest }
  | { readonly kind: 'peer'; readonly gid: number; readonly args: PeerArgs };

export type CtrlReply =
  | { readonly kind: 'config'; readonly config: ShardConfig }
  | { readonly kind: 'done'; readonly num: number }
  /** The controller refused the command (a gid that already joined, ...): nothing changed. */
  | { readonly kind: 'refused'; readonly code: string; readonly message: string }
  /** No answer from the controller's leader (not-leader, timeout, ...): retry, maybe elsewhere. */
  | { readonly kind: 'failed'; readonly code: string; readonly message: string; readonly leader: number };

export { ShardDecodeError };

export function encodeShardRequest(request: ShardRequest): Uint8Array {
  switch (request.kind) {
    case 'ctrl':
      return pack(['c', ctrlOpToArray(request.op), request.session.client, request.session.seq, request.session.ack, request.forwarded ? 1 : 0]);
    case 'kv': {
      const r = request.request;
      return pack(['k', request.gid, r.op, r.key, r.value, r.client, r.seq]);
    }
    case 'peer': {
      const { args } = request;
      return pack(['p', request.gid, args.kind, args.num, [...args.shards], ...(args.after === undefined ? [] : [args.after.shard, args.after.key])]);
    }
    default:
      return request satisfies never;
  }
}

function ctrlOpToArray(op: CtrlOp): unknown[] {
  switch (op.kind) {
    case 'query':
      return ['query', op.num];
    case 'join':
      return ['join', op.groups.flatMap(([gid, servers]) => [gid, [...servers]])];
    case 'leave':
      return ['leave', [...op.gids]];
    case 'move':
      return ['move', op.shard, op.gid];
    default:
      return op satisfies never;
  }
}

/** Throws ShardDecodeError. */
export function decodeShardRequest(bytes: Uint8Array): ShardRequest {
  const raw = unpackArray(bytes, 'shard request');
  switch (raw[0]) {
    case 'c':
      expectLength(raw, 6, 'controller request');
      return {
        kind: 'ctrl',
        op: ctrlOpFromArray(raw[1]),
        session: { client: count(raw[2], 'client'), seq: count(raw[3], 'seq'), ack: count(raw[4], 'ack') },
        forwarded: raw[5] === 1,
      };
    case 'k': {
      expectLength(raw, 7, 'key/value request');
      const op = text(raw[2], 'op');
      if (op !== 'get' && op !== 'put' && op !== 'append') throw new ShardDecodeError(`unknown op ${op}`);
      return { kind: 'kv', gid: count(raw[1], 'gid'), request: { op, key: text(raw[3], 'key'), value: text(raw[4], 'value'), client: count(raw[5], 'client'), seq: count(raw[6], 'seq') } };
    }
    case 'p': {
      if (raw.length !== 5 && raw.length !== 7) throw new ShardDecodeError(`peer request has ${raw.length} fields, not 5 or 7`);
      const kind = text(raw[2], 'kind');
      if (kind !== 'pull' && kind !== 'delete') throw new ShardDecodeError(`unknown peer call ${kind}`);
      if (!Array.isArray(raw[4])) throw new ShardDecodeError('shards is not a list');
      const after = raw.length === 7 ? { after: { shard: count(raw[5], 'after shard'), key: text(raw[6], 'after key') } } : {};
      return { kind: 'peer', gid: count(raw[1], 'gid'), args: { kind, num: count(raw[3], 'num'), shards: (raw[4] as unknown[]).map((shard) => count(shard, 'shard')), ...after } };
    }
    default:
      throw new ShardDecodeError(`unknown shard request ${JSON.stringify(raw[0])}`);
  }
}

function ctrlOpFromArray(raw: unknown): CtrlOp {
  if (!Array.isArray(raw) || raw.length < 2) throw new ShardDecodeError('a controller op is [kind, ...]');
  switch (raw[0]) {
    case 'query':
      return { kind: 'query', num: integer(raw[1], 'num') };
    case 'join': {
      const flat: unknown = raw[1];
      if (!Array.isArray(flat) || flat.length % 2 !== 0) throw new ShardDecodeError('join: groups are not [gid, servers] pairs');
      const groups: Array<[number, string[]]> = [];
      for (let i = 0; i < flat.length; i += 2) {
        const servers: unknown = flat[i + 1];
        if (!Array.isArray(servers)) throw new ShardDecodeError('join: servers are not a list');
        groups.push([count(flat[i], 'gid'), servers.map((server) => text(server, 'server'))]);
      }
      return { kind: 'join', groups };
    }
    case 'leave':
      if (!Array.isArray(raw[1])) throw new ShardDecodeError('leave: gids are not a list');
      return { kind: 'leave', gids: (raw[1] as unknown[]).map((gid) => count(gid, 'gid')) };
    case 'move':
      return { kind: 'move', shard: integer(raw[1], 'shard'), gid: count(raw[2], 'gid') };
    default:
      throw new ShardDecodeError(`unknown controller op ${JSON.stringify(raw[0])}`);
  }
}

export function encodeCtrlReply(reply: CtrlReply): Uint8Array {
  switch (reply.kind) {
    case 'config':
      return pack(['config', configToArray(reply.config)]);
    case 'done':
      return pack(['done', reply.num]);
    case 'refused':
      return pack(['refused', reply.code, reply.message]);
    case 'failed':
      return pack(['failed', reply.code, reply.message, reply.leader]);
    default:
      return reply satisfies never;
  }
}

export function decodeCtrlReply(bytes: Uint8Array): CtrlReply {
  const raw = unpackArray(bytes, 'controller reply');
  switch (raw[0]) {
    case 'config':
      return { kind: 'config', config: configFromArray(raw[1]) };
    case 'done':
      return { kind: 'done', num: count(raw[1], 'num') };
    case 'refused':
      return { kind: 'refused', code: text(raw[1], 'code'), message: text(raw[2], 'message') };
    case 'failed':
      return { kind: 'failed', code: text(raw[1], 'code'), message: text(raw[2], 'message'), leader: count(raw[3], 'leader') };
    default:
      throw new ShardDecodeError(`unknown controller reply ${JSON.stringify(raw[0])}`);
  }
}

const kvErrs: ReadonlySet<string> = new Set(['OK', 'ErrWrongGroup', 'ErrWrongLeader', 'ErrRetry', 'ErrFatal']);
const peerErrs: ReadonlySet<string> = new Set(['OK', 'ErrWrongLeader', 'ErrNotReady', 'ErrGone', 'ErrRetry', 'ErrFatal']);

export function encodeKvReply(reply: ShardKvReply): Uint8Array {
  return pack([reply.err, reply.value]);
}

export function decodeKvReply(bytes: Uint8Array): ShardKvReply {
  const raw = unpackArray(bytes, 'key/value reply');
  const err = text(raw[0], 'err');
  if (!kvErrs.has(err)) throw new ShardDecodeError(`unknown key/value reply ${err}`);
  return { err: err as ShardKvReply['err'], value: text(raw[1], 'value') };
}

export function encodePeerReply(reply: PeerReply): Uint8Array {
  return pack([reply.err, reply.shards, reply.sessions, ...(reply.more === undefined ? [] : [reply.more.shard, reply.more.key])]);
}

/** The shard data and sessions are checked by the caller (shardkv's shardsFromArray). */
export function decodePeerReply(bytes: Uint8Array): PeerReply {
  const raw = unpackArray(bytes, 'peer reply');
  const err = text(raw[0], 'err');
  if (!peerErrs.has(err)) throw new ShardDecodeError(`unknown peer reply ${err}`);
  if (!Array.isArray(raw[1]) || !Array.isArray(raw[2])) throw new ShardDecodeError('peer reply: shards and sessions are lists');
  if (raw.length !== 3 && raw.length !== 5) throw new ShardDecodeError(`peer reply has ${raw.length} fields, not 3 or 5`);
  const more = raw.length === 5 ? { more: { shard: count(raw[3], 'more shard'), key: text(raw[4], 'more key') } } : {};
  return { err: err as PeerReply['err'], shards: raw[1] as unknown[], sessions: raw[2] as unknown[], ...more };
}

function expectLength(raw: unknown[], length: number, what: string): void {
  if (raw.length !== length) throw new ShardDecodeError(`${what} has ${raw.length} fields, not ${length}`);
}
