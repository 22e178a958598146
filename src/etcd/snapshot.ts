// The etcd state machine's snapshot: the MVCC store and the lease table in one encoding.
//
//   [format = 2, storeSnapshot (MvccStore.snapshot() bytes), [leaseId, ttl, leaseId, ttl, ...]]
//
// with the leases by increasing id. A snapshot taken before leases existed is the bare store
// snapshot (its own format 1, a 4-field list); it restores with no leases, which is right
// because no key could carry a lease then. Restore validates everything (STYLE.md 6) and
// throws an Error saying what is wrong.

import { Packr } from 'msgpackr';
import { leaseTtlMax } from './codec.js';
import { LeaseTable } from './leases.js';
import { MvccStore } from './mvcc.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });

/** The first field of the wrapped snapshot; 1 is the bare store's own format (before leases). */
const etcdSnapshotFormat = 2;
const bareStoreFormat = 1;

export function encodeEtcdSnapshot(store: MvccStore, leases: LeaseTable): Uint8Array {
  const flat = leases.list().flatMap((lease) => [lease.id, lease.ttl]);
  // A copy: msgpackr's result is a view into its reusable buffer.
  return Uint8Array.from(packr.pack([etcdSnapshotFormat, store.snapshot(), flat]));
}

export function decodeEtcdSnapshot(data: Uint8Array): { store: MvccStore; leases: LeaseTable } {
  let raw: unknown;
  try {
    raw = packr.unpack(data);
  } catch (error) {
    throw snapshotError(`not MessagePack (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!Array.isArray(raw)) throw snapshotError('not a list');
  if (raw[0] === bareStoreFormat) {
    const store = MvccStore.restore(data);
    return { store, leases: checkedLeases(store, new LeaseTable()) };
  }
  if (raw[0] !== etcdSnapshotFormat) throw snapshotError(`unknown format ${String(raw[0])}`);
  if (raw.length !== 3) throw snapshotError(`${raw.length} fields, not 3`);
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
  return { store, leases: checkedLeases(store, leases) };
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
