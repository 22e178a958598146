// etcd's auth store (etcd 3.4's auth/store.go, minus its token provider and its bcrypt): users
// with password hashes and roles, roles with permissions on key ranges, the enabled flag and
// the auth revision, which rises by one with every change so that a token issued before a
// change is known to be old. Pure and deterministic: the state machine applies the log's
// auth requests to it; the gRPC layer asks it who may do what.
//
// Passwords arrive here already hashed (the member that took the request hashed them before
// proposing, with its own salt; the hash is in the log), so every member stores the same
// bytes and none of them runs the hash while applying.
//
// Permissions are etcd's: READ, WRITE or READWRITE on a key (range_end empty), a range
// [key, range_end), or every key from `key` on (range_end "\0"). A request on one key needs a
// permission whose range holds the key; a request on a range needs the union of a user's
// permissions of that type to cover all of it. The root role may do anything.

import type { Bytes, DeleteRangeRequest, PutRequest, RequestOp, TxnRequest } from './mvcc.js';

export type PermissionType = 'read' | 'write' | 'readwrite';

export interface Permission {
  readonly type: PermissionType;
  readonly key: Bytes;
  readonly rangeEnd: Bytes;
}

export interface AuthUser {
  readonly name: string;
  /** The password's hash as the host's hasher wrote it; undefined for a user made with no password (it cannot authenticate). */
  readonly passwordHash: string | undefined;
  /** Sorted, distinct. */
  readonly roles: readonly string[];
}

export interface AuthRole {
  readonly name: string;
  /** Sorted by key, no two with the same (key, rangeEnd). */
  readonly permissions: readonly Permission[];
}

/** One auth change, as the log carries it. */
export type AuthRequest =
  | { readonly op: 'enable' }
  | { readonly op: 'disable' }
  | { readonly op: 'userAdd'; readonly name: string; readonly passwordHash: string | undefined }
  | { readonly op: 'userDelete'; readonly name: string }
  | { readonly op: 'userChangePassword'; readonly name: string; readonly passwordHash: string | undefined }
  | { readonly op: 'userGrantRole'; readonly user: string; readonly role: string }
  | { readonly op: 'userRevokeRole'; readonly name: string; readonly role: string }
  | { readonly op: 'roleAdd'; readonly name: string }
  | { readonly op: 'roleDelete'; readonly role: string }
  | { readonly op: 'roleGrantPermission'; readonly name: string; readonly permission: Permission }
  | { readonly op: 'roleRevokePermission'; readonly role: string; readonly key: Bytes; readonly rangeEnd: Bytes };

export const authOps = [
  'enable',
  'disable',
  'userAdd',
  'userDelete',
  'userChangePassword',
  'userGrantRole',
  'userRevokeRole',
  'roleAdd',
  'roleDelete',
  'roleGrantPermission',
  'roleRevokePermission',
] as const;

export type AuthErrorCode =
  | 'root-user-not-exist'
  | 'root-role-not-exist'
  | 'user-already-exist'
  | 'user-empty'
  | 'user-not-found'
  | 'role-already-exist'
  | 'role-not-found'
  | 'role-empty'
  | 'auth-failed'
  | 'permission-denied'
  | 'role-not-granted'
  | 'permission-not-granted'
  | 'auth-not-enabled'
  | 'invalid-auth-token'
  | 'invalid-auth-mgmt'
  | 'auth-old-revision'
  | 'no-password-user';

/** etcd's rpctypes messages, as clients match on them. */
export const authErrorMessages: Record<AuthErrorCode, string> = {
  'root-user-not-exist': 'etcdserver: root user does not exist',
  'root-role-not-exist': 'etcdserver: root user does not have root role',
  'user-already-exist': 'etcdserver: user name already exists',
  'user-empty': 'etcdserver: user name is empty',
  'user-not-found': 'etcdserver: user name not found',
  'role-already-exist': 'etcdserver: role name already exists',
  'role-not-found': 'etcdserver: role name not found',
  'role-empty': 'etcdserver: role name is empty',
  'auth-failed': 'etcdserver: authentication failed, invalid user ID or password',
  'permission-denied': 'etcdserver: permission denied',
  'role-not-granted': 'etcdserver: role is not granted to the user',
  'permission-not-granted': 'etcdserver: permission is not granted to the role',
  'auth-not-enabled': 'etcdserver: authentication is not enabled',
  'invalid-auth-token': 'etcdserver: invalid auth token',
  'invalid-auth-mgmt': 'etcdserver: invalid auth management',
  'auth-old-revision': 'etcdserver: revision of auth store is old',
  'no-password-user': 'etcdserver: authentication failed, invalid user ID or password',
};

export class AuthError extends Error {
  override name = 'AuthError';
  constructor(readonly code: AuthErrorCode) {
    super(authErrorMessages[code]);
  }
}

export const rootUser = 'root';
export const rootRole = 'root';
/** Users, roles and permissions per role the store holds at most (etcd has no bound; STYLE.md 7). */
export const authEntriesMax = 10_000;

function compareBytes(a: Bytes, b: Bytes): number {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length));
}

function sameBytes(a: Bytes, b: Bytes): boolean {
  return compareBytes(a, b) === 0;
}

const isOpenEnded = (rangeEnd: Bytes) => rangeEnd.length === 1 && rangeEnd[0] === 0;

/** etcd's isValidPermissionRange: a key, and either no range end, "\0", or an end above the key. */
export function isValidPermissionRange(key: Bytes, rangeEnd: Bytes): boolean {
  if (key.length === 0) return false;
  return rangeEnd.length === 0 || isOpenEnded(rangeEnd) || compareBytes(key, rangeEnd) < 0;
}

export class AuthStore {
  enabled = false;
  /** Rises by one with every change (etcd starts it at 1 on a fresh store). */
  revision = 1;
  private readonly users = new Map<string, AuthUser>();
  private readonly roles = new Map<string, AuthRole>();

  user(name: string): AuthUser | undefined {
    return this.users.get(name);
  }

  role(name: string): AuthRole | undefined {
    return this.roles.get(name);
  }

  /** Every user, by name. */
  userList(): AuthUser[] {
    return [...this.users.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Every role, by name. */
  roleList(): AuthRole[] {
    return [...this.roles.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** A role's permissions as RoleGet shows them (etcd 3.4 shows none for the root role, which may do anything). */
  rolePermissions(name: string): readonly Permission[] {
    const role = this.roles.get(name);
    if (role === undefined) throw new AuthError('role-not-found');
    return role.permissions;
  }

  /** Applies one change; throws AuthError (before changing anything) when etcd would refuse it. */
  apply(request: AuthRequest): void {
    const changed = this.execute(request);
    if (changed) this.revision++;
  }

  /** Whether anything changed (etcd commits a new auth revision only then). */
  private execute(request: AuthRequest): boolean {
    switch (request.op) {
      case 'enable': {
        if (this.enabled) return false;
        const root = this.users.get(rootUser);
        if (root === undefined) throw new AuthError('root-user-not-exist');
        if (!root.roles.includes(rootRole)) throw new AuthError('root-role-not-exist');
        this.enabled = true;
        // etcd's AuthEnable does not commit a revision; the tokens issued from now on carry the current one.
        return false;
      }
      case 'disable':
        if (!this.enabled) return false;
        this.enabled = false;
        return true;
      case 'userAdd':
        if (request.name.length === 0) throw new AuthError('user-empty');
        if (this.users.has(request.name)) throw new AuthError('user-already-exist');
        this.checkRoom(this.users.size);
        this.users.set(request.name, { name: request.name, passwordHash: request.passwordHash, roles: [] });
        return true;
      case 'userDelete':
        if (this.enabled && request.name === rootUser) throw new AuthError('invalid-auth-mgmt');
        if (!this.users.delete(request.name)) throw new AuthError('user-not-found');
        return true;
      case 'userChangePassword': {
        const user = this.users.get(request.name);
        if (user === undefined) throw new AuthError('user-not-found');
        // A user made with no password keeps none (etcd ignores the new one).
        this.users.set(request.name, { ...user, passwordHash: user.passwordHash === undefined ? undefined : request.passwordHash });
        return true;
      }
      case 'userGrantRole': {
        const user = this.users.get(request.user);
        if (user === undefined) throw new AuthError('user-not-found');
        if (request.role !== rootRole && !this.roles.has(request.role)) throw new AuthError('role-not-found');
        if (user.roles.includes(request.role)) return false;
        this.users.set(user.name, { ...user, roles: [...user.roles, request.role].sort() });
        return true;
      }
      case 'userRevokeRole': {
        if (this.enabled && request.name === rootUser && request.role === rootRole) throw new AuthError('invalid-auth-mgmt');
        const user = this.users.get(request.name);
        if (user === undefined) throw new AuthError('user-not-found');
        if (!user.roles.includes(request.role)) throw new AuthError('role-not-granted');
        this.users.set(user.name, { ...user, roles: user.roles.filter((role) => role !== request.role) });
        return true;
      }
      case 'roleAdd':
        if (request.name.length === 0) throw new AuthError('role-empty');
        if (this.roles.has(request.name)) throw new AuthError('role-already-exist');
        this.checkRoom(this.roles.size);
        this.roles.set(request.name, { name: request.name, permissions: [] });
        return true;
      case 'roleDelete':
        if (this.enabled && request.role === rootRole) throw new AuthError('invalid-auth-mgmt');
        if (!this.roles.delete(request.role)) throw new AuthError('role-not-found');
        for (const user of this.users.values()) {
          if (user.roles.includes(request.role)) this.users.set(user.name, { ...user, roles: user.roles.filter((role) => role !== request.role) });
        }
        return true;
      case 'roleGrantPermission': {
        const { permission } = request;
        if (!isValidPermissionRange(permission.key, permission.rangeEnd)) throw new AuthError('invalid-auth-mgmt');
        const role = this.roles.get(request.name);
        if (role === undefined) throw new AuthError('role-not-found');
        const same = role.permissions.findIndex((p) => sameBytes(p.key, permission.key) && sameBytes(p.rangeEnd, permission.rangeEnd));
        if (same < 0) this.checkRoom(role.permissions.length);
        const permissions = same >= 0 ? role.permissions.map((p, i) => (i === same ? { ...p, type: permission.type } : p)) : [...role.permissions, permission];
        this.roles.set(role.name, { name: role.name, permissions: permissions.sort((a, b) => compareBytes(a.key, b.key)) });
        return true;
      }
      case 'roleRevokePermission': {
        const role = this.roles.get(request.role);
        if (role === undefined) throw new AuthError('role-not-found');
        const kept = role.permissions.filter((p) => !sameBytes(p.key, request.key) || !sameBytes(p.rangeEnd, request.rangeEnd));
        if (kept.length === role.permissions.length) throw new AuthError('permission-not-granted');
        this.roles.set(role.name, { name: role.name, permissions: kept });
        return true;
      }
      default:
        return request satisfies never;
    }
  }

  private checkRoom(size: number): void {
    // A refusal etcd does not have; the clearest of its messages for "no".
    if (size >= authEntriesMax) throw new AuthError('invalid-auth-mgmt');
  }

  /** Whether `name` holds the root role. */
  isRoot(name: string): boolean {
    return this.users.get(name)?.roles.includes(rootRole) === true;
  }

  /**
   * etcd's isOpPermitted: may `name` (whose token carries `tokenRevision`) read or write
   * [key, rangeEnd)? Throws AuthError: 'auth-old-revision' for a token from before the last
   * change, 'permission-denied' otherwise. Always allowed while auth is disabled.
   */
  checkKeys(name: string, tokenRevision: number, key: Bytes, rangeEnd: Bytes, type: 'read' | 'write'): void {
    if (!this.enabled) return;
    if (name.length === 0) throw new AuthError('user-empty');
    if (tokenRevision < this.revision) throw new AuthError('auth-old-revision');
    const user = this.users.get(name);
    if (user === undefined) throw new AuthError('permission-denied');
    if (user.roles.includes(rootRole)) return;
    const ranges: Array<{ key: Bytes; end: Bytes | undefined }> = [];
    for (const roleName of user.roles) {
      for (const p of this.roles.get(roleName)?.permissions ?? []) {
        if (p.type !== 'readwrite' && p.type !== type) continue;
        ranges.push({ key: p.key, end: p.rangeEnd.length === 0 ? pointEnd(p.key) : isOpenEnded(p.rangeEnd) ? undefined : p.rangeEnd });
      }
    }
    const wanted = { key, end: rangeEnd.length === 0 ? pointEnd(key) : isOpenEnded(rangeEnd) ? undefined : rangeEnd };
    if (!covered(ranges, wanted)) throw new AuthError('permission-denied');
  }

  /** etcd's IsAdminPermitted: only a root may manage auth once it is enabled. */
  checkAdmin(name: string): void {
    if (!this.enabled) return;
    if (name.length === 0) throw new AuthError('user-empty');
    const user = this.users.get(name);
    if (user === undefined) throw new AuthError('user-not-found');
    if (!user.roles.includes(rootRole)) throw new AuthError('permission-denied');
  }

  /** For the snapshot: everything, in a fixed order (STYLE.md 15). */
  toPlain(): { enabled: boolean; revision: number; users: AuthUser[]; roles: AuthRole[] } {
    return { enabled: this.enabled, revision: this.revision, users: this.userList(), roles: this.roleList() };
  }

  static fromPlain(plain: { enabled: boolean; revision: number; users: readonly AuthUser[]; roles: readonly AuthRole[] }): AuthStore {
    const store = new AuthStore();
    store.enabled = plain.enabled;
    store.revision = plain.revision;
    for (const user of plain.users) store.users.set(user.name, user);
    for (const role of plain.roles) store.roles.set(role.name, role);
    return store;
  }
}

/** Who sent a request, as its token said when the member took it (user '' and revision 0: no token). */
export interface AuthCaller {
  readonly user: string;
  /** The auth revision the caller's token was issued at. */
  readonly revision: number;
}

/**
 * etcd's apply-time checks (apply_auth.go) of a write by `caller`; throws AuthError. `leaseKeys`
 * gives the keys a lease holds: a put that attaches a lease, or a revoke, needs write
 * permission on every key the lease already holds (else the caller could delete keys it may
 * not write by revoking their lease), unless the caller is a root.
 */
export class AuthChecks {
  constructor(
    private readonly auth: AuthStore,
    private readonly caller: AuthCaller,
    private readonly leaseKeys: (lease: number) => readonly Bytes[],
  ) {}

  private check(key: Bytes, rangeEnd: Bytes, type: 'read' | 'write'): void {
    this.auth.checkKeys(this.caller.user, this.caller.revision, key, rangeEnd, type);
  }

  put(r: PutRequest): void {
    this.check(r.key, new Uint8Array(0), 'write');
    if (r.lease !== 0) this.lease(r.lease);
    if (r.prevKv) this.check(r.key, new Uint8Array(0), 'read');
  }

  deleteRange(r: DeleteRangeRequest): void {
    this.check(r.key, r.rangeEnd, 'write');
    if (r.prevKv) this.check(r.key, r.rangeEnd, 'read');
  }

  /** Compares need read permission; the ops of BOTH branches are checked, as etcd does. */
  txn(r: TxnRequest): void {
    for (const compare of r.compare) this.check(compare.key, compare.rangeEnd, 'read');
    for (const op of [...r.success, ...r.failure]) this.op(op);
  }

  private op(op: RequestOp): void {
    if ('range' in op) this.check(op.range.key, op.range.rangeEnd, 'read');
    else if ('put' in op) this.put(op.put);
    else if ('deleteRange' in op) this.deleteRange(op.deleteRange);
    else this.txn(op.txn);
  }

  /** A revoke of `lease`, or a put attaching it. */
  lease(lease: number): void {
    if (this.auth.enabled && this.auth.isRoot(this.caller.user)) return;
    for (const key of this.leaseKeys(lease)) this.check(key, new Uint8Array(0), 'write');
  }
}

/** The smallest key after `key`: [key, key+"\0") holds exactly `key`. */
function pointEnd(key: Bytes): Bytes {
  const end = new Uint8Array(key.length + 1);
  end.set(key);
  return end;
}

/** Whether the union of `ranges` ([key, end), end undefined: no end) covers all of `wanted`. */
function covered(ranges: Array<{ key: Bytes; end: Bytes | undefined }>, wanted: { key: Bytes; end: Bytes | undefined }): boolean {
  // [wanted.key, reach) is covered so far; reach undefined: everything from wanted.key on.
  let reach: Bytes = wanted.key;
  for (const range of [...ranges].sort((a, b) => compareBytes(a.key, b.key))) {
    if (compareBytes(range.key, reach) > 0) break; // a gap at reach: later ranges start later still
    if (range.end === undefined) return true;
    if (compareBytes(range.end, reach) > 0) reach = range.end;
    if (wanted.end !== undefined && compareBytes(reach, wanted.end) >= 0) return true;
  }
  return false;
}
