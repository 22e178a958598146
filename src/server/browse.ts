// The dashboard's data browsers (issue 20): the key/value store and the ZooKeeper tree as
// this member has applied them, read from its local state (no Raft round: a follower may be
// a little behind; the answer says which member and which applied index it shows).
//
//   GET /browse/kv?prefix=&after=&limit=   keys starting with `prefix`, after `after`, at most
//                                          `limit` (1..200, default 50): key, version (the log
//                                          index of its last write), size, and the value as
//                                          text (UTF-8) or base64, cut at 4 KiB; `next` to page on
//   GET /browse/zk?path=/a/b               one znode: data (text or base64, cut at 4 KiB), its
//                                          Stat, ephemeral owner, ACL and children (sorted, at
//                                          most 1000)
//
// Bad parameters get a 400 naming the parameter; a znode that does not exist a 404.

import type { KvEntry } from '../kv/codec.js';
import type { Acl, Stat } from '../zk/types.js';

export const browseLimits = {
  keysDefault: 50,
  keysMax: 200,
  prefixBytesMax: 1024,
  pathBytesMax: 1024,
  valueBytesShown: 4096,
  childrenMax: 1000,
} as const;

export interface BrowseAnswer {
  readonly status: number;
  readonly body: object;
}

/** A value for display: UTF-8 text when it is, else base64; cut at valueBytesShown. */
export interface ShownValue {
  readonly bytes: number;
  readonly text: string | null;
  readonly base64: string | null;
  readonly truncated: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function showValue(value: Uint8Array | null): ShownValue | null {
  if (value === null) return null;
  const shown = value.subarray(0, browseLimits.valueBytesShown);
  const truncated = shown.length < value.length;
  let text: string | null = null;
  try {
    // A cut may split a character: decode what is whole (stream mode keeps the tail back).
    text = truncated ? new TextDecoder('utf-8', { fatal: true }).decode(shown, { stream: true }) : utf8.decode(shown);
  } catch {
    text = null;
  }
  return { bytes: value.length, text, base64: text === null ? toBase64(shown) : null, truncated };
}

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export interface KvBrowseSource {
  readonly member: number;
  applied(): number;
  /** The store's scan (KvStore.scan through the state machine's query). */
  scan(prefix: string, after: string, limit: number): { entries: readonly KvEntry[]; next: string | null };
}

export function browseKeys(source: KvBrowseSource, params: URLSearchParams): BrowseAnswer {
  const prefix = params.get('prefix') ?? '';
  const after = params.get('after') ?? '';
  const rawLimit = params.get('limit');
  if (new TextEncoder().encode(prefix).length > browseLimits.prefixBytesMax) return bad(`prefix is longer than ${browseLimits.prefixBytesMax} bytes`);
  if (new TextEncoder().encode(after).length > browseLimits.prefixBytesMax) return bad(`after is longer than ${browseLimits.prefixBytesMax} bytes`);
  let limit: number = browseLimits.keysDefault;
  if (rawLimit !== null) {
    limit = /^\d+$/.test(rawLimit) ? Number(rawLimit) : Number.NaN;
    if (!(limit >= 1 && limit <= browseLimits.keysMax)) return bad(`limit must be an integer from 1 to ${browseLimits.keysMax}, not ${JSON.stringify(rawLimit)}`);
  }
  const page = source.scan(prefix, after, limit);
  return {
    status: 200,
    body: {
      member: source.member,
      applied: source.applied(),
      prefix,
      entries: page.entries.map((entry) => ({ key: entry.key, version: entry.version, value: showValue(entry.value) })),
      next: page.next,
    },
  };
}

export interface ZnodeBrowseSource {
  readonly member: number;
  lastZxid(): number;
  node(path: string): { data: Uint8Array | null; acl: readonly Acl[]; children: ReadonlySet<string> } | undefined;
  stat(path: string): Stat | undefined;
}

/** ZooKeeper's permission bits (READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16) as "cdrwa" letters. */
export function describePerms(perms: number): string {
  return [
    [4, 'c'],
    [8, 'd'],
    [1, 'r'],
    [2, 'w'],
    [16, 'a'],
  ]
    .map(([bit, letter]) => ((perms & (bit as number)) !== 0 ? letter : '-'))
    .join('');
}

export function browseZnode(source: ZnodeBrowseSource, params: URLSearchParams): BrowseAnswer {
  const path = params.get('path') ?? '/';
  if (!path.startsWith('/') || (path.length > 1 && path.endsWith('/')) || path.includes('//') || path.includes('\u0000'))
    return bad(`path must be an absolute znode path like /a/b, not ${JSON.stringify(path)}`);
  if (new TextEncoder().encode(path).length > browseLimits.pathBytesMax) return bad(`path is longer than ${browseLimits.pathBytesMax} bytes`);
  const node = source.node(path);
  const stat = source.stat(path);
  if (node === undefined || stat === undefined) return { status: 404, body: { error: `no znode ${path} on member ${source.member}` } };
  const children = [...node.children].sort();
  return {
    status: 200,
    body: {
      member: source.member,
      lastZxid: source.lastZxid(),
      path,
      data: showValue(node.data),
      stat,
      ephemeralOwner: stat.ephemeralOwner === 0 ? null : `0x${BigInt.asUintN(64, BigInt(stat.ephemeralOwner)).toString(16)}`,
      acl: node.acl.map((acl) => ({ perms: describePerms(acl.perms), scheme: acl.id.scheme, id: acl.id.id })),
      children: children.slice(0, browseLimits.childrenMax),
      childrenTruncated: children.length > browseLimits.childrenMax,
    },
  };
}

function bad(error: string): BrowseAnswer {
  return { status: 400, body: { error } };
}
