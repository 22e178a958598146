// etcd's Auth service on the etcd port, and the tokens that say who a request is from.
//
// The users, roles and permissions are the etcd state machine's (etcd/auth.ts), changed only
// through the log. What this file adds is the edge:
//
//  * Authenticate checks a password against the hash in the store (after a read barrier, so
//    a user added a moment ago through another member is known) and answers a token;
//  * a token is `<payload>.<mac>`: the payload names the user, the auth revision it was
//    issued at and when it expires (wall clock ms), the MAC is HMAC-SHA-256 under a key every
//    member derives from the cluster secret. Any member can check any member's token, with
//    no state and no log entry (etcd's JWT provider works so; its default "simple" tokens are
//    kept in each member's memory instead). A token expires tokenTtlMs after issue (etcd's
//    --auth-token-ttl, 300 s): clients re-authenticate on "invalid auth token", as
//    etcd's simple tokens make them do;
//  * a request's caller is its token's (user, revision), or anonymous ("" and 0) without one,
//    or anything at all while auth is off. Writes carry the caller into the log and are
//    checked as they apply; reads, watches and lease questions are checked here.
//
// Auth management (user/role add, delete, grant, revoke; enable, disable; user and role
// lists) needs a root once auth is on, as etcd's IsAdminPermitted says; a user may read its
// own UserGet and the RoleGet of roles it holds.

import type { GrpcCall, GrpcMessage, GrpcServiceHandlers } from '../platform/grpc-host.js';
import { type AuthCaller, AuthError, type AuthRequest, type AuthStore, type PermissionType } from '../etcd/auth.js';
import type { EtcdService } from '../etcd/service.js';

/** What the gate needs from the host (only platform/ does crypto and reads the wall clock). */
export interface EtcdAuthHost {
  hashPassword(password: string): Promise<string>;
  verifyPassword(password: string, hash: string): Promise<boolean>;
  /** The MAC of a token's payload, under a key every member of the cluster shares. */
  sign(payload: Uint8Array): Uint8Array;
  /** Constant-time equality of two MACs. */
  sameBytes(a: Uint8Array, b: Uint8Array): boolean;
  wallClockMs(): number;
  readonly tokenTtlMs: number;
}

/** etcd's default --auth-token-ttl. */
export const etcdTokenTtlMs = 300_000;
/** A token longer than this is not one of ours (etcd's are shorter still). */
const tokenCharsMax = 4096;

const anonymous: AuthCaller = { user: '', revision: 0 };

export class EtcdAuthGate {
  constructor(
    private readonly service: EtcdService,
    private readonly host: EtcdAuthHost,
  ) {}

  get store(): AuthStore {
    return this.service.machine.auth;
  }

  /** The key/value store's revision, for response headers. */
  kvRevision(): number {
    return this.service.machine.store.revision;
  }

  /** Who a request is from. Throws AuthError 'invalid-auth-token' for a token that is forged, expired or names a user that is gone. */
  caller(call: GrpcCall): AuthCaller {
    if (!this.store.enabled) return anonymous;
    const token = call.metadata('token');
    if (token === undefined || token === '') return anonymous;
    const caller = this.verify(token);
    if (caller === undefined || this.store.user(caller.user) === undefined) throw new AuthError('invalid-auth-token');
    return caller;
  }

  /** Read permission on [key, rangeEnd) for the request's caller (AuthError if denied). */
  checkRead(call: GrpcCall, key: Uint8Array, rangeEnd: Uint8Array): void {
    if (!this.store.enabled) return;
    const caller = this.caller(call);
    this.store.checkKeys(caller.user, caller.revision, key, rangeEnd, 'read');
  }

  /** A root, or `type` permission on every key the lease holds (etcd's checkLeaseRenew / checkLeaseTimeToLive). */
  checkLease(call: GrpcCall, lease: number, type: 'read' | 'write'): void {
    if (!this.store.enabled) return;
    const caller = this.caller(call);
    if (caller.user === '') throw new AuthError('user-empty');
    if (this.store.isRoot(caller.user)) return;
    for (const key of this.service.machine.store.keysWithLease(lease)) this.store.checkKeys(caller.user, caller.revision, key, new Uint8Array(0), type);
  }

  checkAdmin(call: GrpcCall): void {
    if (!this.store.enabled) return;
    this.store.checkAdmin(this.caller(call).user);
  }

  issue(user: string, revision: number): string {
    const payload = Buffer.from(JSON.stringify([user, revision, this.host.wallClockMs() + this.host.tokenTtlMs]));
    return `${payload.toString('base64url')}.${Buffer.from(this.host.sign(payload)).toString('base64url')}`;
  }

  private verify(token: string): AuthCaller | undefined {
    if (token.length > tokenCharsMax) return undefined;
    const dot = token.indexOf('.');
    if (dot < 0) return undefined;
    const payload = Buffer.from(token.slice(0, dot), 'base64url');
    const mac = Buffer.from(token.slice(dot + 1), 'base64url');
    if (!this.host.sameBytes(this.host.sign(payload), mac)) return undefined;
    let fields: unknown;
    try {
      fields = JSON.parse(payload.toString());
    } catch {
      return undefined;
    }
    if (!Array.isArray(fields) || fields.length !== 3) return undefined;
    const [user, revision, expires] = fields as unknown[];
    if (typeof user !== 'string' || typeof revision !== 'number' || typeof expires !== 'number') return undefined;
    if (expires <= this.host.wallClockMs()) return undefined;
    return { user, revision };
  }

  /** etcd's Authenticate: the password checked here, a token for the store's current auth revision. */
  async authenticate(name: string, password: string): Promise<string> {
    await this.service.readBarrier();
    const store = this.store;
    if (!store.enabled) throw new AuthError('auth-not-enabled');
    const user = store.user(name);
    if (user?.passwordHash === undefined) throw new AuthError('auth-failed');
    const revision = store.revision;
    if (!(await this.host.verifyPassword(password, user.passwordHash))) throw new AuthError('auth-failed');
    return this.issue(name, revision);
  }

  hash(password: string): Promise<string> {
    return this.host.hashPassword(password);
  }
}

/** What the Auth handlers need of the rest of the etcd API (etcd-api.ts). */
export interface EtcdApiCore {
  /** Proposes an auth change for `caller` and waits for it to apply; its etcd error becomes its gRPC status. */
  writeAuth(request: AuthRequest, caller: AuthCaller): Promise<{ revision: number }>;
  /** Waits until this member has applied everything committed before the call. */
  barrier(): Promise<void>;
  header(revision: number): GrpcMessage;
  failure(error: unknown): Error;
}

const permissionTypes: Record<string, PermissionType> = { READ: 'read', WRITE: 'write', READWRITE: 'readwrite' };
const permissionNames: Record<PermissionType, string> = { read: 'READ', write: 'WRITE', readwrite: 'READWRITE' };

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function bytes(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? value : new Uint8Array(0);
}

/** etcdserverpb.Auth's handlers. */
export function etcdAuthService(gate: EtcdAuthGate, api: EtcdApiCore): GrpcServiceHandlers {
  const guarded = (handler: (r: GrpcMessage, call: GrpcCall) => Promise<GrpcMessage>) => async (r: GrpcMessage, call: GrpcCall) => {
    try {
      return await handler(r, call);
    } catch (error) {
      throw api.failure(error);
    }
  };
  /** An auth change: proposed with the caller; the state machine checks that a root sent it. */
  const change = (request: (r: GrpcMessage) => AuthRequest | Promise<AuthRequest>) =>
    guarded(async (r, call) => {
      const caller = gate.caller(call);
      const done = await api.writeAuth(await request(r), caller);
      return { header: api.header(done.revision) };
    });
  const revision = () => gate.kvRevision();
  return {
    unary: {
      AuthEnable: change(() => ({ op: 'enable' })),
      AuthDisable: change(() => ({ op: 'disable' })),
      Authenticate: guarded(async (r) => {
        const token = await gate.authenticate(text(r['name']), text(r['password']));
        return { header: api.header(revision()), token };
      }),
      UserAdd: change(async (r) => {
        const name = text(r['name']);
        if (name.length === 0) throw new AuthError('user-empty');
        const noPassword = (r['options'] as GrpcMessage | null | undefined)?.['no_password'] === true;
        return { op: 'userAdd', name, passwordHash: noPassword ? undefined : await gate.hash(text(r['password'])) };
      }),
      UserDelete: change((r) => ({ op: 'userDelete', name: text(r['name']) })),
      UserChangePassword: change(async (r) => ({ op: 'userChangePassword', name: text(r['name']), passwordHash: await gate.hash(text(r['password'])) })),
      UserGrantRole: change((r) => ({ op: 'userGrantRole', user: text(r['user']), role: text(r['role']) })),
      UserRevokeRole: change((r) => ({ op: 'userRevokeRole', name: text(r['name']), role: text(r['role']) })),
      RoleAdd: change((r) => {
        const name = text(r['name']);
        if (name.length === 0) throw new AuthError('role-empty');
        return { op: 'roleAdd', name };
      }),
      RoleDelete: change((r) => ({ op: 'roleDelete', role: text(r['role']) })),
      RoleGrantPermission: change((r) => {
        const perm = r['perm'] as GrpcMessage | null | undefined;
        const type = perm === null || perm === undefined ? undefined : permissionTypes[String(perm['permType'])];
        if (perm === null || perm === undefined || type === undefined) throw new AuthError('invalid-auth-mgmt');
        return { op: 'roleGrantPermission', name: text(r['name']), permission: { type, key: bytes(perm['key']), rangeEnd: bytes(perm['range_end']) } };
      }),
      RoleRevokePermission: change((r) => ({ op: 'roleRevokePermission', role: text(r['role']), key: bytes(r['key']), rangeEnd: bytes(r['range_end']) })),
      UserGet: guarded(async (r, call) => {
        await api.barrier();
        const name = text(r['name']);
        const caller = gate.caller(call);
        if (caller.user !== name) gate.checkAdmin(call);
        const user = gate.store.user(name);
        if (user === undefined) throw new AuthError('user-not-found');
        return { header: api.header(revision()), roles: [...user.roles] };
      }),
      UserList: guarded(async (_r, call) => {
        await api.barrier();
        gate.checkAdmin(call);
        return { header: api.header(revision()), users: gate.store.userList().map((user) => user.name) };
      }),
      RoleGet: guarded(async (r, call) => {
        await api.barrier();
        const role = text(r['role']);
        const caller = gate.caller(call);
        if (gate.store.user(caller.user)?.roles.includes(role) !== true) gate.checkAdmin(call);
        const perm = gate.store.rolePermissions(role).map((p) => ({ permType: permissionNames[p.type], key: Buffer.from(p.key), range_end: Buffer.from(p.rangeEnd) }));
        return { header: api.header(revision()), perm };
      }),
      RoleList: guarded(async (_r, call) => {
        await api.barrier();
        gate.checkAdmin(call);
        return { header: api.header(revision()), roles: gate.store.roleList().map((role) => role.name) };
      }),
    },
  };
}
