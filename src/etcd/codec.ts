// The etcd service's log entries: MessagePack arrays without field names, validated field by
// field on decode (STYLE.md 6), so a damaged or foreign entry is refused, never trusted.
//
//   command  [origin, opcode, request] or [origin, opcode, request, [user, authRevision]]
//     put      0  [key, value, lease, prevKv, ignoreValue, ignoreLease]
//     delete   1  [key, rangeEnd, prevKv]
//     txn      2  [[compare...], [op...], [op...]]   compare: [result, target, key, rangeEnd, operand]
//                                                    op: [0 range [...]] | [1 put [...]] | [2 delete [...]] | [3 txn [...]]
//     compact  3  revision
//     leaseGrant   4  [id, ttl]     id in [1, 2^53), ttl in [1, leaseTtlMax] seconds (the proposer applied the minimum)
//     leaseRevoke  5  id
//     auth     6  [op, ...fields]    op: index in auth.ts authOps; fields by op (below, authToArray)
//
//   range    [key, rangeEnd, limit, revision, sortOrder, sortTarget, keysOnly, countOnly,
//             minMod, maxMod, minCreate, maxCreate]
//
// `origin` names the member and request that proposed it ("member.incarnation.n"), so the
// member that took the request learns its result from its own apply (service.ts). The
// fourth field, on every client's request, names the caller its token showed (user "" and
// revision 0 without one), so that permissions are checked as the entry applies, against
// the auth store every member has then (auth.ts); a member's own entries (a lease expiry)
// have none.

import { Packr } from 'msgpackr';
import { type AuthCaller, type AuthRequest, authOps, type Permission, type PermissionType } from './auth.js';
import type { Compare, CompareResult, CompareTarget, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, SortOrder, SortTarget, TxnRequest } from './mvcc.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });

export type EtcdCommand = EtcdCommandBody & {
  /** The client the request came from, as its token said; undefined for a member's own entry. */
  readonly as?: AuthCaller;
};

type EtcdCommandBody =
  | { readonly kind: 'put'; readonly origin: string; readonly request: PutRequest }
  | { readonly kind: 'delete'; readonly origin: string; readonly request: DeleteRangeRequest }
  | { readonly kind: 'txn'; readonly origin: string; readonly request: TxnRequest }
  | { readonly kind: 'compact'; readonly origin: string; readonly revision: number }
  | { readonly kind: 'leaseGrant'; readonly origin: string; readonly id: number; readonly ttl: number }
  | { readonly kind: 'leaseRevoke'; readonly origin: string; readonly id: number }
  | { readonly kind: 'auth'; readonly origin: string; readonly request: AuthRequest };

/** etcd's lease.MaxLeaseTTL (seconds): a longer grant is "etcdserver: too large lease TTL". */
export const leaseTtlMax = 9_000_000_000;

export class EtcdDecodeError extends Error {
  override name = 'EtcdDecodeError';
}

const sortOrders: readonly SortOrder[] = ['none', 'ascend', 'descend'];
const sortTargets: readonly SortTarget[] = ['key', 'version', 'create', 'mod', 'value'];
const compareResults: readonly CompareResult[] = ['equal', 'greater', 'less', 'not_equal'];
const compareTargets: readonly CompareTarget[] = ['version', 'create', 'mod', 'value', 'lease'];
/** Nested transactions deeper than this are refused (etcd bounds them by the message size). */
const txnDepthMax = 16;

export function encodeCommand(command: EtcdCommand): Uint8Array {
  const caller = command.as === undefined ? [] : [[command.as.user, command.as.revision]];
  const [opcode, request] = opcodeAndRequest(command);
  return packr.pack([command.origin, opcode, request, ...caller]);
}

function opcodeAndRequest(command: EtcdCommandBody): [number, unknown] {
  switch (command.kind) {
    case 'put':
      return [0, putToArray(command.request)];
    case 'delete':
      return [1, deleteToArray(command.request)];
    case 'txn':
      return [2, txnToArray(command.request)];
    case 'compact':
      return [3, command.revision];
    case 'leaseGrant':
      return [4, [command.id, command.ttl]];
    case 'leaseRevoke':
      return [5, command.id];
    case 'auth':
      return [6, authToArray(command.request)];
    default:
      return command satisfies never;
  }
}

export function decodeCommand(bytes: Uint8Array): EtcdCommand {
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (error) {
    throw new EtcdDecodeError(`not MessagePack: ${(error as Error).message}`);
  }
  const fields = list(raw, 'command');
  if (fields.length !== 3 && fields.length !== 4) throw new EtcdDecodeError(`command has ${fields.length} fields, not 3 or 4`);
  const origin = text(fields[0], 'origin');
  const body = bodyFromArray(fields, origin);
  if (fields.length === 3) return body;
  const caller = list(fields[3], 'caller', 2);
  return { ...body, as: { user: text(caller[0], 'caller user'), revision: count(caller[1], 'caller auth revision') } };
}

function bodyFromArray(fields: unknown[], origin: string): EtcdCommandBody {
  switch (fields[1]) {
    case 0:
      return { kind: 'put', origin, request: putFromArray(fields[2]) };
    case 1:
      return { kind: 'delete', origin, request: deleteFromArray(fields[2]) };
    case 2:
      return { kind: 'txn', origin, request: txnFromArray(fields[2], 0) };
    case 3:
      return { kind: 'compact', origin, revision: count(fields[2], 'revision') };
    case 4: {
      const grant = list(fields[2], 'leaseGrant', 2);
      const ttl = count(grant[1], 'ttl');
      if (ttl < 1 || ttl > leaseTtlMax) throw new EtcdDecodeError(`lease ttl ${ttl} is not in [1, ${leaseTtlMax}]`);
      return { kind: 'leaseGrant', origin, id: leaseId(grant[0]), ttl };
    }
    case 5:
      return { kind: 'leaseRevoke', origin, id: leaseId(fields[2]) };
    case 6:
      return { kind: 'auth', origin, request: authFromArray(fields[2]) };
    default:
      throw new EtcdDecodeError(`unknown opcode ${String(fields[1])}`);
  }
}

function putToArray(r: PutRequest): unknown[] {
  return [r.key, r.value, r.lease, r.prevKv, r.ignoreValue, r.ignoreLease];
}

function putFromArray(raw: unknown): PutRequest {
  const f = list(raw, 'put', 6);
  return {
    key: bytes(f[0], 'key'),
    value: bytes(f[1], 'value'),
    lease: count(f[2], 'lease'),
    prevKv: flag(f[3], 'prevKv'),
    ignoreValue: flag(f[4], 'ignoreValue'),
    ignoreLease: flag(f[5], 'ignoreLease'),
  };
}

function deleteToArray(r: DeleteRangeRequest): unknown[] {
  return [r.key, r.rangeEnd, r.prevKv];
}

function deleteFromArray(raw: unknown): DeleteRangeRequest {
  const f = list(raw, 'delete', 3);
  return { key: bytes(f[0], 'key'), rangeEnd: bytes(f[1], 'rangeEnd'), prevKv: flag(f[2], 'prevKv') };
}

export function rangeToArray(r: RangeRequest): unknown[] {
  return [
    r.key,
    r.rangeEnd,
    r.limit,
    r.revision,
    sortOrders.indexOf(r.sortOrder),
    sortTargets.indexOf(r.sortTarget),
    r.keysOnly,
    r.countOnly,
    r.minModRevision,
    r.maxModRevision,
    r.minCreateRevision,
    r.maxCreateRevision,
  ];
}

function rangeFromArray(raw: unknown): RangeRequest {
  const f = list(raw, 'range', 12);
  return {
    key: bytes(f[0], 'key'),
    rangeEnd: bytes(f[1], 'rangeEnd'),
    limit: count(f[2], 'limit'),
    revision: count(f[3], 'revision'),
    sortOrder: pick(sortOrders, f[4], 'sortOrder'),
    sortTarget: pick(sortTargets, f[5], 'sortTarget'),
    keysOnly: flag(f[6], 'keysOnly'),
    countOnly: flag(f[7], 'countOnly'),
    minModRevision: count(f[8], 'minModRevision'),
    maxModRevision: count(f[9], 'maxModRevision'),
    minCreateRevision: count(f[10], 'minCreateRevision'),
    maxCreateRevision: count(f[11], 'maxCreateRevision'),
  };
}

function txnToArray(r: TxnRequest): unknown[] {
  return [r.compare.map((c) => [compareResults.indexOf(c.result), compareTargets.indexOf(c.target), c.key, c.rangeEnd, c.operand]), r.success.map(opToArray), r.failure.map(opToArray)];
}

function opToArray(op: RequestOp): unknown[] {
  if ('range' in op) return [0, rangeToArray(op.range)];
  if ('put' in op) return [1, putToArray(op.put)];
  if ('deleteRange' in op) return [2, deleteToArray(op.deleteRange)];
  return [3, txnToArray(op.txn)];
}

function txnFromArray(raw: unknown, depth: number): TxnRequest {
  if (depth > txnDepthMax) throw new EtcdDecodeError(`transactions nested deeper than ${txnDepthMax}`);
  const f = list(raw, 'txn', 3);
  const compare = list(f[0], 'compare').map((c): Compare => {
    const g = list(c, 'compare', 5);
    const target = pick(compareTargets, g[1], 'target');
    const operand = target === 'value' ? bytes(g[4], 'operand') : count(g[4], 'operand');
    return { result: pick(compareResults, g[0], 'result'), target, key: bytes(g[2], 'key'), rangeEnd: bytes(g[3], 'rangeEnd'), operand };
  });
  const ops = (value: unknown, what: string) => list(value, what).map((op) => opFromArray(op, depth));
  return { compare, success: ops(f[1], 'success'), failure: ops(f[2], 'failure') };
}

function opFromArray(raw: unknown, depth: number): RequestOp {
  const f = list(raw, 'op', 2);
  switch (f[0]) {
    case 0:
      return { range: rangeFromArray(f[1]) };
    case 1:
      return { put: putFromArray(f[1]) };
    case 2:
      return { deleteRange: deleteFromArray(f[1]) };
    case 3:
      return { txn: txnFromArray(f[1], depth + 1) };
    default:
      throw new EtcdDecodeError(`unknown txn op ${String(f[0])}`);
  }
}

const permissionTypes: readonly PermissionType[] = ['read', 'write', 'readwrite'];

/** A password hash, or null for a user without one. */
function authToArray(r: AuthRequest): unknown[] {
  const op = authOps.indexOf(r.op);
  switch (r.op) {
    case 'enable':
    case 'disable':
      return [op];
    case 'userAdd':
    case 'userChangePassword':
      return [op, r.name, r.passwordHash ?? null];
    case 'userDelete':
    case 'roleAdd':
      return [op, r.name];
    case 'userGrantRole':
      return [op, r.user, r.role];
    case 'userRevokeRole':
      return [op, r.name, r.role];
    case 'roleDelete':
      return [op, r.role];
    case 'roleGrantPermission':
      return [op, r.name, permissionTypes.indexOf(r.permission.type), r.permission.key, r.permission.rangeEnd];
    case 'roleRevokePermission':
      return [op, r.role, r.key, r.rangeEnd];
    default:
      return r satisfies never;
  }
}

function authFromArray(raw: unknown): AuthRequest {
  const f = list(raw, 'auth');
  const op = pick(authOps, f[0], 'auth op');
  const fields = (n: number) => {
    if (f.length !== n + 1) throw new EtcdDecodeError(`auth ${op} has ${f.length - 1} fields, not ${n}`);
  };
  const hash = (value: unknown) => (value === null ? undefined : text(value, 'password hash'));
  switch (op) {
    case 'enable':
    case 'disable':
      fields(0);
      return { op };
    case 'userAdd':
    case 'userChangePassword':
      fields(2);
      return { op, name: text(f[1], 'name'), passwordHash: hash(f[2]) };
    case 'userDelete':
    case 'roleAdd':
      fields(1);
      return { op, name: text(f[1], 'name') };
    case 'userGrantRole':
      fields(2);
      return { op, user: text(f[1], 'user'), role: text(f[2], 'role') };
    case 'userRevokeRole':
      fields(2);
      return { op, name: text(f[1], 'name'), role: text(f[2], 'role') };
    case 'roleDelete':
      fields(1);
      return { op, role: text(f[1], 'role') };
    case 'roleGrantPermission': {
      fields(4);
      const permission: Permission = { type: pick(permissionTypes, f[2], 'permission type'), key: bytes(f[3], 'key'), rangeEnd: bytes(f[4], 'rangeEnd') };
      return { op, name: text(f[1], 'name'), permission };
    }
    case 'roleRevokePermission':
      fields(3);
      return { op, role: text(f[1], 'role'), key: bytes(f[2], 'key'), rangeEnd: bytes(f[3], 'rangeEnd') };
    default:
      return op satisfies never;
  }
}

// ---- Field checks ----

function list(value: unknown, what: string, length?: number): unknown[] {
  if (!Array.isArray(value)) throw new EtcdDecodeError(`${what} is not a list`);
  if (length !== undefined && value.length !== length) throw new EtcdDecodeError(`${what} has ${value.length} fields, not ${length}`);
  return value;
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new EtcdDecodeError(`${what} is not text`);
  return value;
}

function bytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new EtcdDecodeError(`${what} is not bytes`);
  return value;
}

function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new EtcdDecodeError(`${what} is not a non-negative integer`);
  return value;
}

/** A lease id in a log entry: positive (0 is etcd's NoLease) and exact as a number. */
function leaseId(value: unknown): number {
  const id = count(value, 'lease id');
  if (id === 0) throw new EtcdDecodeError('lease id is 0');
  return id;
}

function flag(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw new EtcdDecodeError(`${what} is not a boolean`);
  return value;
}

function pick<T>(values: readonly T[], code: unknown, what: string): T {
  const value = typeof code === 'number' ? values[code] : undefined;
  if (value === undefined) throw new EtcdDecodeError(`${what} code ${String(code)} is unknown`);
  return value;
}
