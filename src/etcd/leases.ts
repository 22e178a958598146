// The replicated lease table of the etcd service: lease id -> granted TTL (seconds). Which
// keys a lease holds is the store's business (MvccStore.keysWithLease); when a lease expires
// is the leader's (service.ts keeps the deadlines, in memory, as etcd's primary lessor does).
// Pure and deterministic: members that apply the same grants and revokes hold the same table.

import { assert } from '../stdx/assert.js';

export interface Lease {
  readonly id: number;
  /** Seconds, as granted (after the minimum TTL was applied by the proposer). */
  readonly ttl: number;
}

export class LeaseTable {
  /** Invariant: ids in [1, 2^53), ttls >= 1. */
  private readonly byId = new Map<number, number>();

  get size(): number {
    return this.byId.size;
  }

  has(id: number): boolean {
    return this.byId.has(id);
  }

  /** The granted TTL of `id`, undefined if there is no such lease. */
  ttl(id: number): number | undefined {
    return this.byId.get(id);
  }

  grant(id: number, ttl: number): void {
    assert(Number.isSafeInteger(id) && id > 0, 'a lease id is a positive safe integer');
    assert(Number.isSafeInteger(ttl) && ttl >= 1, 'a lease TTL is a positive integer');
    assert(!this.byId.has(id), 'a granted lease is new');
    this.byId.set(id, ttl);
  }

  revoke(id: number): void {
    assert(this.byId.delete(id), 'a revoked lease exists');
  }

  /** Every lease, by id (STYLE.md 15: the order shows in LeaseLeases and in snapshots). */
  list(): Lease[] {
    return [...this.byId].map(([id, ttl]) => ({ id, ttl })).sort((a, b) => a.id - b.id);
  }
}
