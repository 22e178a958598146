// Types for node-zookeeper-client 1.1.3 (pure JavaScript, ships no types), covering only what
// the compatibility tests use. Read from its index.js and lib/*.js; longs (zxids, times,
// session ids) arrive as 8-byte big-endian Buffers.

declare module 'node-zookeeper-client' {
  import type { EventEmitter } from 'node:events';
  import type { Socket } from 'node:net';

  export interface Stat {
    czxid: Buffer;
    mzxid: Buffer;
    ctime: Buffer;
    mtime: Buffer;
    version: number;
    cversion: number;
    aversion: number;
    ephemeralOwner: Buffer;
    dataLength: number;
    numChildren: number;
    pzxid: Buffer;
  }

  export class Id {
    constructor(scheme: string, id: string);
    scheme: string;
    id: string;
    static readonly ANYONE_ID_UNSAFE: Id;
    static readonly AUTH_IDS: Id;
  }

  export class ACL {
    constructor(permission: number, id: Id);
    permission: number;
    id: Id;
    static readonly OPEN_ACL_UNSAFE: ACL[];
    static readonly CREATOR_ALL_ACL: ACL[];
    static readonly READ_ACL_UNSAFE: ACL[];
  }

  export const Permission: { READ: 1; WRITE: 2; CREATE: 4; DELETE: 8; ADMIN: 16; ALL: 31 };
  export const CreateMode: { PERSISTENT: 0; EPHEMERAL: 1; PERSISTENT_SEQUENTIAL: 2; EPHEMERAL_SEQUENTIAL: 3 };

  export class State {
    name: string;
    code: number;
    getName(): string;
    getCode(): number;
    static readonly DISCONNECTED: State;
    static readonly SYNC_CONNECTED: State;
    static readonly AUTH_FAILED: State;
    static readonly CONNECTED_READ_ONLY: State;
    static readonly SASL_AUTHENTICATED: State;
    static readonly EXPIRED: State;
  }

  export class Event {
    type: number;
    name: string;
    path: string;
    getType(): number;
    getName(): string;
    getPath(): string;
    static readonly NODE_CREATED: 1;
    static readonly NODE_DELETED: 2;
    static readonly NODE_DATA_CHANGED: 3;
    static readonly NODE_CHILDREN_CHANGED: 4;
  }

  export class Exception extends Error {
    code: number;
    path: string | undefined;
    getCode(): number;
    getName(): string;
    getPath(): string | undefined;
    static readonly OK: 0;
    static readonly SYSTEM_ERROR: -1;
    static readonly RUNTIME_INCONSISTENCY: -2;
    static readonly CONNECTION_LOSS: -4;
    static readonly BAD_ARGUMENTS: -8;
    static readonly NO_NODE: -101;
    static readonly NO_AUTH: -102;
    static readonly BAD_VERSION: -103;
    static readonly NO_CHILDREN_FOR_EPHEMERALS: -108;
    static readonly NODE_EXISTS: -110;
    static readonly NOT_EMPTY: -111;
    static readonly SESSION_EXPIRED: -112;
    static readonly INVALID_ACL: -114;
    static readonly AUTH_FAILED: -115;
  }

  /** One entry of a multi's reply: type is the op code, or -1 with err for a failed multi. */
  export interface TransactionResult {
    type: number;
    path?: string;
    stat?: Stat;
    err?: number;
  }

  export class Transaction {
    create(path: string, data?: Buffer | null, acls?: ACL[], mode?: number): Transaction;
    /** Beware (1.1.3): `version || -1`, so version 0 is sent as -1 ("any"). */
    check(path: string, version?: number): Transaction;
    /** Beware (1.1.3): version 0 is sent as -1. */
    setData(path: string, data: Buffer | null, version?: number): Transaction;
    /** Beware (1.1.3): version 0 is sent as -1. */
    remove(path: string, version?: number): Transaction;
    commit(callback: (error: Exception | null | undefined, results: TransactionResult[]) => void): void;
  }

  export interface ClientOptions {
    /** Requested session timeout in ms (default 30000); the server clamps it. */
    sessionTimeout?: number;
    /** Upper bound of the random delay between reconnect rounds, ms (default 1000). */
    spinDelay?: number;
    /** Retries on CONNECTION_LOSS (default 0). */
    retries?: number;
  }

  export interface WatcherEventRecord {
    type: number;
    state: number;
    path: string;
  }

  /** Internals of 1.1.3 that the tests reach into (see nzc.test.ts for why). */
  export interface ConnectionManager extends EventEmitter {
    /** -2 CLOSED, -1 CLOSING, 0 DISCONNECTED, 1 CONNECTING, 2 CONNECTED, -3 SESSION_EXPIRED. */
    state: number;
    socket: Socket | undefined;
    connect(): void;
    /** Receives every watch notification frame the server sends, before local dispatch. */
    watcherManager: { emit(event: WatcherEventRecord): void };
  }

  type Callback<T> = (error: Exception | null | undefined, result: T) => void;
  type Watcher = (event: Event) => void;

  export class Client extends EventEmitter {
    connectionManager: ConnectionManager;
    connect(): void;
    close(): void;
    getState(): State;
    getSessionId(): Buffer;
    getSessionPassword(): Buffer;
    getSessionTimeout(): number;
    addAuthInfo(scheme: string, auth: Buffer): void;
    create(path: string, data: Buffer | null, acls: ACL[], mode: number, callback: Callback<string>): void;
    remove(path: string, version: number, callback: (error: Exception | null | undefined) => void): void;
    setData(path: string, data: Buffer | null, version: number, callback: Callback<Stat>): void;
    getData(path: string, watcher: Watcher | undefined, callback: (error: Exception | null | undefined, data: Buffer | null | undefined, stat: Stat) => void): void;
    exists(path: string, watcher: Watcher | undefined, callback: Callback<Stat | null>): void;
    getChildren(path: string, watcher: Watcher | undefined, callback: (error: Exception | null | undefined, children: string[], stat: Stat) => void): void;
    getACL(path: string, callback: (error: Exception | null | undefined, acls: ACL[], stat: Stat) => void): void;
    transaction(): Transaction;
  }

  export function createClient(connectString: string, options?: ClientOptions): Client;
}
