// The etcd service's replicated state machine: the MVCC store (mvcc.ts), the lease table
// (leases.ts) and the auth store (auth.ts), fed by the log. Deterministic and total: apply() answers every entry, a
// malformed one included, and never throws. Each applied command's outcome (result or etcd
// error, the revision after it, the events it made) goes to the listener, which is how the
// member that proposed it answers its client (service.ts) and how watches learn of changes.
//
// Leases (etcd 3.4's lessor, lease/lessor.go, minus its clock): the table holds each lease's
// granted TTL; which keys a lease holds comes from the store. Expiry is not decided here:
// the leader's service proposes a leaseRevoke when a lease runs out, so every member deletes
// the same keys at the same revision.

import type { Index } from '../stdx/types.js';
import type { ReplicatedService } from '../runtime/replica.js';
import { AuthChecks, AuthError, type AuthErrorCode, AuthStore } from './auth.js';
import { decodeCommand, EtcdDecodeError, type EtcdCommand } from './codec.js';
import { LeaseTable } from './leases.js';
import { type DeleteRangeResult, MvccError, type MvccErrorCode, MvccStore, type PutRequest, type PutResult, type TxnRequest, type TxnResult, type WatchEvent } from './mvcc.js';
import { decodeEtcdSnapshot, encodeEtcdSnapshot } from './snapshot.js';

export type EtcdResult =
  | { readonly kind: 'put'; readonly result: PutResult }
  | { readonly kind: 'delete'; readonly result: DeleteRangeResult }
  | { readonly kind: 'txn'; readonly result: TxnResult }
  | { readonly kind: 'compact' }
  | { readonly kind: 'leaseGrant'; readonly id: number; readonly ttl: number }
  | { readonly kind: 'leaseRevoke'; readonly deleted: number }
  | { readonly kind: 'auth' };

/** The lessor's errors, as etcd's lease package names them. */
export type LeaseErrorCode = 'lease-not-found' | 'lease-exists';

export const leaseErrorMessages: Record<LeaseErrorCode, string> = {
  'lease-not-found': 'etcdserver: requested lease not found',
  'lease-exists': 'etcdserver: lease already exists',
};

export type EtcdOutcome =
  | { readonly ok: true; readonly result: EtcdResult; readonly revision: number }
  | { readonly ok: false; readonly code: MvccErrorCode | LeaseErrorCode | AuthErrorCode | 'malformed'; readonly message: string; readonly revision: number };

export interface EtcdApplyListener {
  applied(command: EtcdCommand | undefined, outcome: EtcdOutcome, events: readonly WatchEvent[], index: Index): void;
}

/** A lease error raised while applying, turned into the outcome like an MvccError. */
class LeaseError extends Error {
  constructor(readonly code: LeaseErrorCode) {
    super(leaseErrorMessages[code]);
  }
}

const empty = new Uint8Array(0);

export class EtcdStateMachine implements ReplicatedService {
  store = new MvccStore();
  /** Invariant: every lease a live key of the store carries is in the table. */
  leases = new LeaseTable();
  /** Users, roles, permissions and whether auth is on (auth.ts). */
  auth = new AuthStore();
  appliedIndex = 0;
  listener: EtcdApplyListener | undefined = undefined;

  apply(command: Uint8Array, index: Index): Uint8Array {
    this.appliedIndex = index;
    let decoded: EtcdCommand;
    try {
      decoded = decodeCommand(command);
    } catch (error) {
      if (!(error instanceof EtcdDecodeError)) throw error;
      this.listener?.applied(undefined, { ok: false, code: 'malformed', message: `etcdserver: malformed entry: ${error.message}`, revision: this.store.revision }, [], index);
      return empty;
    }
    let outcome: EtcdOutcome;
    let events: readonly WatchEvent[] = [];
    try {
      this.authorize(decoded);
      const done = this.execute(decoded);
      events = done.events;
      outcome = { ok: true, result: done.result, revision: this.store.revision };
    } catch (error) {
      if (!(error instanceof MvccError) && !(error instanceof LeaseError) && !(error instanceof AuthError)) throw error;
      outcome = { ok: false, code: error.code, message: error.message, revision: this.store.revision };
    }
    this.listener?.applied(decoded, outcome, events, index);
    return empty;
  }

  /** Applies one command; throws MvccError, LeaseError or AuthError (before any change) for an etcd error. */
  private execute(command: EtcdCommand): { result: EtcdResult; events: readonly WatchEvent[] } {
    switch (command.kind) {
      case 'put': {
        this.checkLease(command.request);
        const done = this.store.put(command.request);
        return { result: { kind: 'put', result: done.result }, events: done.events };
      }
      case 'delete': {
        const done = this.store.deleteRange(command.request);
        return { result: { kind: 'delete', result: done.result }, events: done.events };
      }
      case 'txn': {
        this.checkTxnLeases(command.request);
        const done = this.store.txn(command.request);
        return { result: { kind: 'txn', result: done.result }, events: done.events };
      }
      case 'compact':
        this.store.compact(command.revision);
        return { result: { kind: 'compact' }, events: [] };
      case 'leaseGrant':
        if (this.leases.has(command.id)) throw new LeaseError('lease-exists');
        this.leases.grant(command.id, command.ttl);
        return { result: { kind: 'leaseGrant', id: command.id, ttl: command.ttl }, events: [] };
      case 'leaseRevoke': {
        if (!this.leases.has(command.id)) throw new LeaseError('lease-not-found');
        // Every key of the lease goes in one revision, so a watcher sees the revoke as one response.
        const done = this.store.deleteKeys(this.store.keysWithLease(command.id));
        this.leases.revoke(command.id);
        return { result: { kind: 'leaseRevoke', deleted: done.result.deleted }, events: done.events };
      }
      case 'auth':
        this.auth.apply(command.request);
        return { result: { kind: 'auth' }, events: [] };
      default:
        return command satisfies never;
    }
  }

  /**
   * etcd's authApplierV3: while auth is on, a client's write is checked against the auth
   * store as it is NOW, at this entry (a permission revoked after the member took the request
   * still stops it); auth changes need a root. A member's own entries (no caller) pass.
   */
  private authorize(command: EtcdCommand): void {
    const caller = command.as;
    if (caller === undefined || !this.auth.enabled) return;
    const checks = new AuthChecks(this.auth, caller, (lease) => this.store.keysWithLease(lease));
    switch (command.kind) {
      case 'auth':
        this.auth.checkAdmin(caller.user);
        return;
      case 'put':
        checks.put(command.request);
        return;
      case 'delete':
        checks.deleteRange(command.request);
        return;
      case 'txn':
        checks.txn(command.request);
        return;
      case 'leaseRevoke':
        checks.lease(command.id);
        return;
      case 'compact':
      case 'leaseGrant':
        return; // etcd checks neither
      default:
        return command satisfies never;
    }
  }

  /** applierV3backend.Put: a put naming a lease needs the lease (checked before the key's ignore_* flags). */
  private checkLease(request: PutRequest): void {
    if (request.lease !== 0 && !this.leases.has(request.lease)) throw new LeaseError('lease-not-found');
  }

  /**
   * apply.go checkRequestPut on the txn's chosen path, op by op: an ignore_value/ignore_lease
   * put of a missing key is the store's key-not-found (it checks that itself), otherwise an
   * unknown lease is lease-not-found; whichever comes first wins, as in etcd.
   */
  private checkTxnLeases(request: TxnRequest): void {
    for (const op of this.store.opsOnTxnPath(request)) {
      if (!('put' in op)) continue;
      const put = op.put;
      if ((put.ignoreValue || put.ignoreLease) && this.store.range(liveKeyProbe(put.key)).count === 0) return;
      this.checkLease(put);
    }
  }

  snapshot(): Uint8Array {
    return encodeEtcdSnapshot(this.store, this.leases, this.auth);
  }

  restore(data: Uint8Array, index: Index): void {
    const restored = decodeEtcdSnapshot(data);
    this.store = restored.store;
    this.leases = restored.leases;
    this.auth = restored.auth;
    this.appliedIndex = index;
  }
}

function liveKeyProbe(key: Uint8Array) {
  return {
    key,
    rangeEnd: empty,
    limit: 0,
    revision: 0,
    sortOrder: 'none',
    sortTarget: 'key',
    keysOnly: true,
    countOnly: true,
    minModRevision: 0,
    maxModRevision: 0,
    minCreateRevision: 0,
    maxCreateRevision: 0,
  } as const;
}
