// The etcd state machine's snapshot: the MVCC store, the lease table and the auth store in
// one encoding.
//
//   [format = 3, storeSnapshot (MvccStore.snapshot() bytes), [leaseId, ttl, leaseId, ttl, ...],
//    [enabled, authRevision, [[name, passwordHash | null, [role...]]...], [[name, [[type, key, rangeEnd]...]]...]]]
//
// with the leases by increasing id, users and roles by name. Format 2 (before auth) has no
// fourth field and restores with auth off and no users or roles. A snapshot taken before
// leases existed is the bare store snapshot (its own format 1, a 4-field list); it restores
// with no leases, which is right because no key could carry a lease then. Restore validates everything (STYLE.md 6) and
// throws an Error saying what is wrong.

import { Packr } from 'msgpackr';
import { type AuthRole, AuthStore, type AuthUser, type Permission, type PermissionType } from './auth.js';
import { leaseTtlMax } from './codec.js';
import { LeaseTable } from './leases.js';
import { MvccStore } from './mvcc.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });

/** The first field of the wrapped snapshot; 1 is the bare store's own format (before leases). */
const etcdSnapshotFormat = 3;
const beforeAuthFormat = 2;
const permissionTypes: readonly PermissionType[] = ['read', 'write', 'readwrite'];
const bareStoreFormat = 1;

export function encodeEtcdSnapshot(store: MvccStore, leases: LeaseTable, auth: AuthStore): Uint8Array {
  const flat = leases.list().flatMap((lease) => [lease.id, lease.ttl]);
  const plain = auth.toPlain();
  const users = plain.users.map((user) => [user.name, user.passwordHash ?? null, [...user.roles]]);
  const roles = plain.roles.map((role) => [role.name, role.permissions.map((p) => [permissionTypes.indexOf(p.type), p.key, p.rangeEnd])]);
  // A copy: msgpackr's result is a view into its reusable buffer.
  return Uint8Array.from(packr.pack([etcdSnapshotFormat, store.snapshot(), flat, [plain.enabled, plain.revision, users, roles]]));
}

export function decodeEtcdSnapshot(data: Uint8Array): { store: MvccStore; leases: LeaseTable; auth: AuthStore } {
  let raw: unknown;
  try {
    raw = packr.unpack(data);
  } catch (error) {
    throw snapshotError(`not MessagePack (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!Array.isArray(raw)) throw snapshotError('not a list');
  if (raw[0] === bareStoreFormat) {
    const store = MvccStore.restore(data);
    return { store, leases: checkedLeases(store, new LeaseTable()), auth: new AuthStore() };
  }
  if (raw[0] !== etcdSnapshotFormat && raw[0] !== beforeAuthFormat) throw snapshotError(`unknown format ${String(raw[0])}`);
  const fieldsWanted = raw[0] === beforeAuthFormat ? 3 : 4;
  if (raw.length !== fieldsWanted) throw snapshotError(`${raw.length} fields, not ${fieldsWanted}`);
  if (!(raw[1] instanceof Uint8Array)) throw snapshotError('the store is not bytes');
  const store = MvccStore.restore(raw[1]);
  const flat = raw[2];
  if (!Array.isArray(flat) || flat.length % 2 !== 0) throw snapshotError('the leases are not a list of (id, ttl) pairs');
  const leases = new LeaseTable();
  let previous = 0;
  for (let i = 0; i < flat.length; i += 2) {
    const id: unknown = flat[i];
    const ttl: unknown = flat[i + 1];
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= previous) throw snapshotError(`lease id ${String(id)} is not a positive integer above ${previous}`);
    if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 1 || ttl > leaseTtlMax) throw snapshotError(`lease ${id} has TTL ${String(ttl)}, not in [1, ${leaseTtlMax}]`);
    leases.grant(id, ttl);
    previous = id;
  }
  const auth = raw[0] === beforeAuthFormat ? new AuthStore() : decodeAuth(raw[3]);
  return { store, leases: checkedLeases(store, leases), auth };
}

function decodeAuth(raw: unknown): AuthStore {
  if (!Array.isArray(raw) || raw.length !== 4) throw snapshotError('the auth store is not a 4-field list');
  const [enabled, revision, users, roles] = raw as unknown[];
  if (typeof enabled !== 'boolean') throw snapshotError('auth enabled is not a boolean');
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 1) throw snapshotError('the auth revision is not a positive integer');
  if (!Array.isArray(users) || !Array.isArray(roles)) throw snapshotError('the auth users or roles are not lists');
  const text = (value: unknown, what: string): string => {
    if (typeof value !== 'string') throw snapshotError(`${what} is not text`);
    return value;
  };
  const bytes = (value: unknown, what: string): Uint8Array => {
    if (!(value instanceof Uint8Array)) throw snapshotError(`${what} is not bytes`);
    return value;
  };
  const decodedRoles: AuthRole[] = roles.map((role: unknown) => {
    if (!Array.isArray(role) || role.length !== 2 || !Array.isArray(role[1])) throw snapshotError('a role is not [name, permissions]');
    const name = text(role[0], 'a role name');
    const permissions = (role[1] as unknown[]).map((p): Permission => {
      if (!Array.isArray(p) || p.length !== 3) throw snapshotError(`a permission of role ${name} is not [type, key, rangeEnd]`);
      const type = typeof p[0] === 'number' ? permissionTypes[p[0]] : undefined;
      if (type === undefined) throw snapshotError(`a permission of role ${name} has an unknown type`);
      return { type, key: bytes(p[1], 'a permission key'), rangeEnd: bytes(p[2], 'a permission range end') };
    });
    return { name, permissions };
  });
  const decodedUsers: AuthUser[] = users.map((user: unknown) => {
    if (!Array.isArray(user) || user.length !== 3 || !Array.isArray(user[2])) throw snapshotError('a user is not [name, passwordHash, roles]');
    const name = text(user[0], 'a user name');
    return { name, passwordHash: user[1] === null ? undefined : text(user[1], `the password hash of ${name}`), roles: (user[2] as unknown[]).map((role) => text(role, `a role of ${name}`)) };
  });
  return AuthStore.fromPlain({ enabled, revision, users: decodedUsers, roles: decodedRoles });
}

/** Every live key's lease must be in the table (the state machine's invariant). */
function checkedLeases(store: MvccStore, leases: LeaseTable): LeaseTable {
  const all = store.range({
    key: new Uint8Array([0]),
    rangeEnd: new Uint8Array([0]),
    limit: 0,
    revision: 0,
    sortOrder: 'none',
    sortTarget: 'key',
    keysOnly: true,
    countOnly: false,
    minModRevision: 0,
    maxModRevision: 0,
    minCreateRevision: 0,
    maxCreateRevision: 0,
  });
  for (const kv of all.kvs) {
    if (kv.lease !== 0 && !leases.has(kv.lease)) throw snapshotError(`key ${Buffer.from(kv.key).toString('hex')} carries lease ${kv.lease}, which is not in the table`);
  }
  return leases;
}

function snapshotError(detail: string): Error {
  return new Error(`malformed etcd snapshot: ${detail}`);
}
