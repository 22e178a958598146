// A backup of a member: every Raft group's state machine as of one consistent point per
// group, in one file, and the data directory built from it to seed a new cluster (etcd's
// `snapshot save` / `snapshot restore`).
//
// File layout (all integers big-endian):
//
//   magic "FLOTBAK1"            8 bytes
//   header length               4 bytes
//   header                      JSON: { format, createdMs, member, groups: [{ name, dir,
//                               index, term, bytes }] }
//   group data                  each group's snapshot bytes, in header order
//   SHA-256                     32 bytes, of everything before it
//
// The checksum is checked before anything is parsed, so a damaged or truncated file is
// refused whole, with the reason, and nothing is written.

import { type Index, type NodeId, type Term, index, term } from '../stdx/types.js';
import type { Snapshot } from '../raft/types.js';

export const backupMagic = 'FLOTBAK1';
export const backupFormat = 1;
const checksumBytes = 32;
/** A header larger than this is not one of ours (a few hundred bytes in practice). */
const headerBytesMax = 64 * 1024;

export interface BackupGroup {
  /** 'kv' or 'zk'. */
  readonly name: string;
  /** The group's directory under the data directory (group-1, group-2). */
  readonly dir: string;
  readonly index: Index;
  readonly term: Term;
  readonly data: Uint8Array;
}

export interface Backup {
  readonly createdMs: number;
  /** The member the backup was taken from. */
  readonly member: NodeId;
  readonly groups: readonly BackupGroup[];
}

export class BackupError extends Error {
  override name = 'BackupError';
}

export function encodeBackup(backup: Backup, sha256: (bytes: Uint8Array) => Uint8Array): Uint8Array {
  const header = new TextEncoder().encode(
    JSON.stringify({
      format: backupFormat,
      createdMs: backup.createdMs,
      member: backup.member,
      groups: backup.groups.map((g) => ({ name: g.name, dir: g.dir, index: g.index, term: g.term, bytes: g.data.length })),
    }),
  );
  const bodyBytes = backupMagic.length + 4 + header.length + backup.groups.reduce((sum, g) => sum + g.data.length, 0);
  const out = new Uint8Array(bodyBytes + checksumBytes);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(backupMagic), 0);
  view.setUint32(backupMagic.length, header.length);
  let at = backupMagic.length + 4;
  out.set(header, at);
  at += header.length;
  for (const group of backup.groups) {
    out.set(group.data, at);
    at += group.data.length;
  }
  out.set(sha256(out.subarray(0, bodyBytes)), bodyBytes);
  return out;
}

/** Parses a backup file; throws BackupError saying what is wrong with it. */
export function decodeBackup(bytes: Uint8Array, sha256: (bytes: Uint8Array) => Uint8Array): Backup {
  const minimum = backupMagic.length + 4 + checksumBytes;
  if (bytes.length < minimum) throw new BackupError(`the file has ${bytes.length} bytes, too few for a Flotilla backup (truncated?)`);
  if (new TextDecoder().decode(bytes.subarray(0, backupMagic.length)) !== backupMagic) throw new BackupError(`not a Flotilla backup (it does not start with ${backupMagic})`);
  const bodyBytes = bytes.length - checksumBytes;
  const expected = sha256(bytes.subarray(0, bodyBytes));
  if (!equalBytes(expected, bytes.subarray(bodyBytes))) {
    throw new BackupError('the checksum does not match: the file is damaged or truncated (nothing was restored)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = view.getUint32(backupMagic.length);
  const headerStart = backupMagic.length + 4;
  if (headerBytes > headerBytesMax || headerStart + headerBytes > bodyBytes) throw new BackupError(`the header length ${headerBytes} does not fit the file`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerBytes)));
  } catch (error) {
    throw new BackupError(`the header is not JSON: ${(error as Error).message}`);
  }
  const { createdMs, member, groups } = validateHeader(header);
  let at = headerStart + headerBytes;
  const out: BackupGroup[] = [];
  for (const g of groups) {
    if (at + g.bytes > bodyBytes) throw new BackupError(`group ${g.name} claims ${g.bytes} bytes past the end of the file`);
    out.push({ name: g.name, dir: g.dir, index: index(g.index), term: term(g.term), data: bytes.slice(at, at + g.bytes) });
    at += g.bytes;
  }
  if (at !== bodyBytes) throw new BackupError(`${bodyBytes - at} bytes follow the last group`);
  return { createdMs, member: member as NodeId, groups: out };
}

interface HeaderGroup {
  name: string;
  dir: string;
  index: number;
  term: number;
  bytes: number;
}

function validateHeader(raw: unknown): { createdMs: number; member: number; groups: HeaderGroup[] } {
  const h = raw as { format?: unknown; createdMs?: unknown; member?: unknown; groups?: unknown };
  if (typeof h !== 'object' || h === null) throw new BackupError('the header is not an object');
  if (h.format !== backupFormat) throw new BackupError(`backup format ${String(h.format)}; this version reads format ${backupFormat}`);
  if (!isCount(h.createdMs) || !isCount(h.member)) throw new BackupError('the header lacks createdMs or member');
  if (!Array.isArray(h.groups) || h.groups.length === 0 || h.groups.length > 64) throw new BackupError('the header lists no groups');
  const groups = h.groups.map((g: unknown): HeaderGroup => {
    const x = g as Partial<HeaderGroup>;
    if (typeof x !== 'object' || x === null || typeof x.name !== 'string' || typeof x.dir !== 'string' || !/^group-\d+$/.test(x.dir))
      throw new BackupError('a group entry lacks a name or a group-N directory');
    if (!isCount(x.index) || x.index === 0 || !isCount(x.term) || x.term === 0 || !isCount(x.bytes)) throw new BackupError(`group ${x.name} has a bad index, term or size`);
    return { name: x.name, dir: x.dir, index: x.index, term: x.term, bytes: x.bytes };
  });
  if (new Set(groups.map((g) => g.dir)).size !== groups.length) throw new BackupError('two groups share a directory');
  return { createdMs: h.createdMs, member: h.member, groups };
}

/**
 * The snapshot a restored member starts from: the group's state at the backup's index and
 * term, with the new cluster's members as voters (the old cluster's are gone).
 */
export function restoredSnapshot(group: BackupGroup, voters: readonly NodeId[]): Snapshot {
  return { meta: { index: group.index, term: group.term, voters: [...voters].sort((a, b) => a - b), learners: [] }, data: group.data };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
