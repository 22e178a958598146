// The etcd auth store (src/etcd/auth.ts) on its own: permission checks against an independent
// oracle over seeded random roles, the apply rules etcd has for root, the log encoding of
// every auth change, and the snapshot (with auth, and from before auth existed).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthError, type AuthRequest, AuthStore, type Permission } from '../../src/etcd/auth.js';
import { decodeCommand, encodeCommand } from '../../src/etcd/codec.js';
import { LeaseTable } from '../../src/etcd/leases.js';
import { MvccStore } from '../../src/etcd/mvcc.js';
import { decodeEtcdSnapshot, encodeEtcdSnapshot } from '../../src/etcd/snapshot.js';
import { EtcdStateMachine } from '../../src/etcd/state-machine.js';
import { Prng } from '../../src/stdx/prng.js';
import type { Index } from '../../src/stdx/types.js';
import { Packr } from 'msgpackr';

const b = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'));
const none = new Uint8Array(0);
/** A value with every byte string as hex (decoded bytes are Buffers, the originals Uint8Arrays). */
const plain = (value: unknown): unknown =>
  JSON.parse(
    JSON.stringify(value, (_key, v: unknown) =>
      v instanceof Uint8Array ? Buffer.from(v).toString('hex') : (v as { type?: string; data?: number[] })?.type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('hex') : v,
    ),
  );
const cmp = (x: Uint8Array, y: Uint8Array) => Buffer.compare(Buffer.from(x), Buffer.from(y));

/** [start, end) with end undefined for "no end" — a permission or a request as an interval. */
function interval(key: Uint8Array, rangeEnd: Uint8Array): { start: Uint8Array; end: Uint8Array | undefined } {
  if (rangeEnd.length === 0) return { start: key, end: new Uint8Array([...key, 0]) };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start: key, end: undefined };
  return { start: key, end: rangeEnd };
}

/**
 * The oracle: a union of half-open intervals covers [s, e) iff s and every interval end that
 * falls inside [s, e) lie in some interval (a gap in the union can only begin at s or at an end).
 */
function oracle(perms: readonly Permission[], type: 'read' | 'write', key: Uint8Array, rangeEnd: Uint8Array): boolean {
  const ivs = perms.filter((p) => p.type === 'readwrite' || p.type === type).map((p) => interval(p.key, p.rangeEnd));
  const want = interval(key, rangeEnd);
  if (want.end !== undefined && cmp(want.start, want.end) >= 0) return true; // an empty range
  const inside = (point: Uint8Array) => ivs.some((iv) => cmp(iv.start, point) <= 0 && (iv.end === undefined || cmp(point, iv.end) < 0));
  const points = [want.start, ...ivs.map((iv) => iv.end).filter((end): end is Uint8Array => end !== undefined && cmp(end, want.start) > 0 && (want.end === undefined || cmp(end, want.end) < 0))];
  if (want.end === undefined && ivs.every((iv) => iv.end !== undefined)) return false;
  return points.every(inside);
}

function randomKey(prng: Prng): Uint8Array {
  const length = 1 + prng.int(3);
  return new Uint8Array(Array.from({ length }, () => [0x61, 0x62, 0x63, 0x00][prng.int(4)]!));
}

function randomRange(prng: Prng, key: Uint8Array): Uint8Array {
  const roll = prng.int(4);
  if (roll === 0) return none;
  if (roll === 1) return new Uint8Array([0]);
  if (roll === 2) {
    for (let attempt = 0; attempt < 10; attempt++) {
      const end = randomKey(prng);
      if (cmp(key, end) < 0) return end;
    }
  }
  return new Uint8Array([...key, 0x61]);
}

function store(...requests: AuthRequest[]): AuthStore {
  const auth = new AuthStore();
  for (const request of requests) auth.apply(request);
  return auth;
}

const setup: AuthRequest[] = [
  { op: 'userAdd', name: 'root', passwordHash: 'h' },
  { op: 'userGrantRole', user: 'root', role: 'root' },
  { op: 'userAdd', name: 'u', passwordHash: 'h' },
];

test('permission checks agree with an interval oracle over seeded random roles (200 seeds × 50 requests)', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const prng = new Prng(seed);
    const perms: Permission[] = [];
    const requests: AuthRequest[] = [...setup];
    for (let role = 0; role < 1 + prng.int(2); role++) {
      requests.push({ op: 'roleAdd', name: `r${role}` }, { op: 'userGrantRole', user: 'u', role: `r${role}` });
      for (let i = 0; i < prng.int(5); i++) {
        const key = randomKey(prng);
        const permission: Permission = { type: prng.pick(['read', 'write', 'readwrite'] as const), key, rangeEnd: randomRange(prng, key) };
        requests.push({ op: 'roleGrantPermission', name: `r${role}`, permission });
        // A second grant of the same (key, range end) in the same role replaces the first's type.
        const same = perms.findIndex((p) => (p as Permission & { role: number }).role === role && cmp(p.key, key) === 0 && cmp(p.rangeEnd, permission.rangeEnd) === 0);
        if (same >= 0) perms.splice(same, 1);
        perms.push({ ...permission, role } as Permission);
      }
    }
    requests.push({ op: 'enable' });
    const auth = store(...requests);
    for (let i = 0; i < 50; i++) {
      const key = randomKey(prng);
      const rangeEnd = randomRange(prng, key);
      const type = prng.pick(['read', 'write'] as const);
      const expected = oracle(perms, type, key, rangeEnd);
      let allowed = true;
      try {
        auth.checkKeys('u', auth.revision, key, rangeEnd, type);
      } catch (error) {
        assert.ok(error instanceof AuthError && error.code === 'permission-denied', String(error));
        allowed = false;
      }
      assert.equal(
        allowed,
        expected,
        `seed ${seed}: ${type} [${Buffer.from(key).toString('hex')}, ${Buffer.from(rangeEnd).toString('hex')}) with ${JSON.stringify(perms.map((p) => [p.type, Buffer.from(p.key).toString('hex'), Buffer.from(p.rangeEnd).toString('hex')]))}`,
      );
      // The root role may do anything.
      auth.checkKeys('root', auth.revision, key, rangeEnd, type);
    }
  }
});

test("etcd's rules: enable needs a root user with the root role; root cannot be deleted or lose its role while auth is on; tokens from before a change are old", () => {
  const codeOf = (run: () => void) => {
    try {
      run();
    } catch (error) {
      return error instanceof AuthError ? error.code : String(error);
    }
    return 'ok';
  };
  const auth = new AuthStore();
  assert.equal(
    codeOf(() => auth.apply({ op: 'enable' })),
    'root-user-not-exist',
  );
  auth.apply({ op: 'userAdd', name: 'root', passwordHash: 'h' });
  assert.equal(
    codeOf(() => auth.apply({ op: 'enable' })),
    'root-role-not-exist',
  );
  assert.equal(
    codeOf(() => auth.apply({ op: 'userGrantRole', user: 'root', role: 'nothing' })),
    'role-not-found',
  );
  auth.apply({ op: 'userGrantRole', user: 'root', role: 'root' }); // the root role needs no roleAdd
  const before = auth.revision;
  auth.apply({ op: 'enable' });
  assert.equal(auth.revision, before, 'enabling commits no revision (etcd)');
  assert.equal(
    codeOf(() => auth.apply({ op: 'userDelete', name: 'root' })),
    'invalid-auth-mgmt',
  );
  assert.equal(
    codeOf(() => auth.apply({ op: 'userRevokeRole', name: 'root', role: 'root' })),
    'invalid-auth-mgmt',
  );
  assert.equal(
    codeOf(() => auth.apply({ op: 'roleDelete', role: 'root' })),
    'invalid-auth-mgmt',
  );
  assert.equal(
    codeOf(() => auth.checkAdmin('')),
    'user-empty',
  );
  assert.equal(
    codeOf(() => auth.checkKeys('', 0, b('k'), none, 'read')),
    'user-empty',
  );
  const issued = auth.revision;
  auth.apply({ op: 'userAdd', name: 'x', passwordHash: undefined });
  assert.equal(
    codeOf(() => auth.checkKeys('root', issued, b('k'), none, 'read')),
    'auth-old-revision',
  );
  assert.equal(
    codeOf(() => auth.checkKeys('root', auth.revision, b('k'), none, 'read')),
    'ok',
  );
  assert.equal(
    codeOf(() => auth.apply({ op: 'roleGrantPermission', name: 'root', permission: { type: 'read', key: none, rangeEnd: none } })),
    'invalid-auth-mgmt',
  );
  auth.apply({ op: 'disable' });
  assert.equal(
    codeOf(() => auth.checkKeys('', 0, b('k'), none, 'write')),
    'ok',
    'anything goes while auth is off',
  );
});

test('every auth change survives the log encoding, with and without a caller; a damaged one is refused', () => {
  const requests: AuthRequest[] = [
    { op: 'enable' },
    { op: 'disable' },
    { op: 'userAdd', name: 'a', passwordHash: 'scrypt$1' },
    { op: 'userAdd', name: 'nopw', passwordHash: undefined },
    { op: 'userDelete', name: 'a' },
    { op: 'userChangePassword', name: 'a', passwordHash: 'scrypt$2' },
    { op: 'userGrantRole', user: 'a', role: 'r' },
    { op: 'userRevokeRole', name: 'a', role: 'r' },
    { op: 'roleAdd', name: 'r' },
    { op: 'roleDelete', role: 'r' },
    { op: 'roleGrantPermission', name: 'r', permission: { type: 'readwrite', key: b('k'), rangeEnd: b('l') } },
    { op: 'roleRevokePermission', role: 'r', key: b('k'), rangeEnd: new Uint8Array([0]) },
  ];
  for (const request of requests) {
    for (const as of [undefined, { user: 'a', revision: 7 }]) {
      const command = { kind: 'auth' as const, origin: '1.x.1', request, ...(as === undefined ? {} : { as }) };
      assert.deepEqual(plain(decodeCommand(encodeCommand(command))), plain(command));
    }
  }
  const good = encodeCommand({ kind: 'auth', origin: 'o', request: { op: 'roleAdd', name: 'r' } });
  for (let i = 0; i < good.length; i++) {
    const bad = Uint8Array.from(good);
    bad[i] = bad[i]! ^ 0xff;
    try {
      decodeCommand(bad);
    } catch (error) {
      assert.equal((error as Error).name, 'EtcdDecodeError', `byte ${i}: ${String(error)}`);
    }
  }
});

test('the snapshot carries users, roles, permissions, the enabled flag and the auth revision; a snapshot from before auth restores with auth off', () => {
  const machine = new EtcdStateMachine();
  let index = 0;
  const apply = (request: AuthRequest) => machine.apply(encodeCommand({ kind: 'auth', origin: `o.${++index}`, request }), index as Index);
  for (const request of [
    ...setup,
    { op: 'roleAdd', name: 'r' } as const,
    { op: 'roleGrantPermission', name: 'r', permission: { type: 'write', key: b('a'), rangeEnd: b('c') } } as const,
    { op: 'userGrantRole', user: 'u', role: 'r' } as const,
    { op: 'enable' } as const,
  ])
    apply(request);
  assert.equal(machine.auth.enabled, true);
  const restored = new EtcdStateMachine();
  restored.restore(machine.snapshot(), index as Index);
  assert.deepEqual(plain(restored.auth.toPlain()), plain(machine.auth.toPlain()));
  assert.equal(restored.auth.enabled, true);
  // Format 2 (store and leases, no auth).
  const older = new Packr({ useRecords: false, variableMapSize: true }).pack([2, new MvccStore().snapshot(), []]);
  const before = decodeEtcdSnapshot(older);
  assert.equal(before.auth.enabled, false);
  assert.deepEqual(before.auth.userList(), []);
  // A damaged auth part is refused with a message, not restored half.
  const damaged = new Packr({ useRecords: false, variableMapSize: true }).pack([3, new MvccStore().snapshot(), [], [true, 0, [], []]]);
  assert.throws(() => decodeEtcdSnapshot(damaged), /auth revision/);
  assert.ok(encodeEtcdSnapshot(new MvccStore(), new LeaseTable(), new AuthStore()).length > 0);
});
