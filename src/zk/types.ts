// The data types the znode tree, the jute codec and the front-end share.
//
// zxids are Raft log indexes and session ids are derived from them, so both stay below
// 2^53 and are plain numbers inside Flotilla; the jute codec turns them into 64-bit longs.

export interface Id {
  readonly scheme: string;
  readonly id: string;
}

export interface Acl {
  readonly perms: number;
  readonly id: Id;
}

/** A znode's Stat as clients see it (68 bytes on the wire, §1.6). */
export interface Stat {
  readonly czxid: number;
  readonly mzxid: number;
  readonly ctime: number;
  readonly mtime: number;
  readonly version: number;
  readonly cversion: number;
  readonly aversion: number;
  readonly ephemeralOwner: number;
  readonly dataLength: number;
  readonly numChildren: number;
  readonly pzxid: number;
}

/** null data is distinct from empty data (§1.2). */
export type Data = Uint8Array | null;

/** The writes that go through the log, one per request or one per multi sub-operation. */
export type WriteOp =
  | { readonly op: 'create'; readonly path: string; readonly data: Data; readonly acl: readonly Acl[]; readonly flags: number; readonly withStat: boolean }
  | { readonly op: 'delete'; readonly path: string; readonly version: number }
  | { readonly op: 'setData'; readonly path: string; readonly data: Data; readonly version: number }
  | { readonly op: 'setACL'; readonly path: string; readonly acl: readonly Acl[]; readonly version: number }
  | { readonly op: 'check'; readonly path: string; readonly version: number };

/** The result of one write (or multi sub-operation). */
export type WriteResult =
  | { readonly op: 'create'; readonly path: string; readonly stat: Stat; readonly withStat: boolean }
  | { readonly op: 'delete' }
  | { readonly op: 'setData'; readonly stat: Stat }
  | { readonly op: 'setACL'; readonly stat: Stat }
  | { readonly op: 'check' }
  | { readonly op: 'error'; readonly err: number };

/** A change that fires watches: the path and the event type (§2.4). */
export interface WatchTrigger {
  readonly path: string;
  readonly type: 'created' | 'deleted' | 'dataChanged' | 'childrenChanged';
}
