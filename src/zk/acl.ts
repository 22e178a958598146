// ACL checks and ACL validation (docs/zookeeper.md §2.7).
//
// A caller is the list of ids its connection holds: always `ip:<address>`, plus one
// `digest:user:hash` per accepted digest auth packet, plus `super:` for the super user. The
// front-end builds that list; here it is only compared. Schemes beyond world, auth, digest
// and ip (x509, sasl) are not supported and make an ACL invalid.

import type { Acl, Id } from './types.js';

/**
 * Whether `ids` may do `perm` (one Perm bit) on a node with `acl`. An empty ACL allows
 * everything, and a super id passes every check (ZooKeeperServer.checkACL).
 */
export function checkAcl(acl: readonly Acl[], perm: number, ids: readonly Id[]): boolean {
  if (acl.length === 0) return true;
  if (ids.some((id) => id.scheme === 'super')) return true;
  for (const entry of acl) {
    if ((entry.perms & perm) === 0) continue;
    if (entry.id.scheme === 'world' && entry.id.id === 'anyone') return true;
    for (const id of ids) {
      if (id.scheme === entry.id.scheme && idMatches(entry.id.scheme, id.id, entry.id.id)) return true;
    }
  }
  return false;
}

/** Whether the caller's id `held` of `scheme` satisfies the ACL's id `expression`. */
function idMatches(scheme: string, held: string, expression: string): boolean {
  switch (scheme) {
    case 'digest':
      return held === expression;
    case 'ip':
      return ipMatches(held, expression);
    default:
      return false;
  }
}

/**
 * The ACL a create or setACL stores, or undefined for INVALIDACL (PrepRequestProcessor.
 * fixupACL): duplicates dropped, each `auth` entry replaced by all of the caller's digest
 * ids with the entry's perms (none: invalid), and every other id checked by its scheme.
 */
export function validateAcl(acl: readonly Acl[], ids: readonly Id[]): readonly Acl[] | undefined {
  const unique = withoutDuplicates(acl);
  if (unique.length === 0) return undefined;
  const fixed: Acl[] = [];
  for (const entry of unique) {
    const { scheme, id } = entry.id;
    if (scheme === 'world' && id === 'anyone') {
      fixed.push(entry);
    } else if (scheme === 'auth') {
      // Only schemes that authenticate a user count (digest here); the ip id does not.
      const users = ids.filter((held) => held.scheme === 'digest');
      if (users.length === 0) return undefined;
      for (const user of users) fixed.push({ perms: entry.perms, id: { scheme: 'digest', id: user.id } });
    } else if (idValid(scheme, id)) {
      fixed.push(entry);
    } else {
      return undefined;
    }
  }
  return fixed;
}

function idValid(scheme: string, id: string): boolean {
  switch (scheme) {
    case 'digest': {
      // user:base64(sha1) — Java splits on ':' and wants two non-empty-ended parts.
      const colon = id.indexOf(':');
      return colon >= 0 && id.indexOf(':', colon + 1) < 0 && colon < id.length - 1;
    }
    case 'ip':
      return parseCidr(id) !== undefined;
    default:
      // 'world' with an id other than 'anyone', or a scheme this server does not know.
      return false;
  }
}

function withoutDuplicates(acl: readonly Acl[]): Acl[] {
  const seen = new Set<string>();
  const unique: Acl[] = [];
  for (const entry of acl) {
    const key = `${entry.perms}\u0000${entry.id.scheme}\u0000${entry.id.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(entry);
  }
  return unique;
}

/** getACL without ADMIN: the hash part of digest ids is hidden ("bob:x"), as ZooKeeper 3.8 does. */
export function maskAcl(acl: readonly Acl[]): Acl[] {
  return acl.map((entry) => {
    if (entry.id.scheme !== 'digest') return entry;
    const colon = entry.id.id.indexOf(':');
    const user = colon < 0 ? entry.id.id : entry.id.id.slice(0, colon);
    return { perms: entry.perms, id: { scheme: 'digest', id: `${user}:x` } };
  });
}

// ---- ip ------------------------------------------------------------------------------------

interface Cidr {
  readonly bytes: Uint8Array;
  /** Invariant: 0 <= bits <= bytes.length * 8. */
  readonly bits: number;
}

/**
 * Whether the client address `address` lies in the ACL's `expression` (an address, or
 * `address/bits`). IPv4-mapped IPv6 addresses (Node reports "::ffff:127.0.0.1" on a dual
 * stack socket) are compared as the IPv4 address they carry.
 */
export function ipMatches(address: string, expression: string): boolean {
  const cidr = parseCidr(expression);
  const client = parseAddress(address);
  if (cidr === undefined || client === undefined) return false;
  const acl = unmapped(cidr);
  const held = unmapped({ bytes: client, bits: client.length * 8 }).bytes;
  if (held.length !== acl.bytes.length) return false;
  for (let bit = 0; bit < acl.bits; bit += 8) {
    const take = Math.min(8, acl.bits - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((held[bit >> 3]! & mask) !== (acl.bytes[bit >> 3]! & mask)) return false;
  }
  return true;
}

function parseCidr(expression: string): Cidr | undefined {
  const slash = expression.indexOf('/');
  const bytes = parseAddress(slash < 0 ? expression : expression.slice(0, slash));
  if (bytes === undefined) return undefined;
  if (slash < 0) return { bytes, bits: bytes.length * 8 };
  const bitsText = expression.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  return bits <= bytes.length * 8 ? { bytes, bits } : undefined;
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address, its prefix shortened to match. */
function unmapped(cidr: Cidr): Cidr {
  const b = cidr.bytes;
  if (b.length !== 16 || cidr.bits < 96) return cidr;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return cidr;
  if (b[10] !== 0xff || b[11] !== 0xff) return cidr;
  return { bytes: b.subarray(12), bits: cidr.bits - 96 };
}

/** Dotted IPv4 (4 bytes) or IPv6 (16 bytes), else undefined. */
function parseAddress(text: string): Uint8Array | undefined {
  return text.includes(':') ? parseIpv6(text) : parseIpv4(text);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    bytes[i] = Number(part);
  }
  return bytes;
}

/** RFC 4291 §2.2 text forms: eight groups, one '::' for a run of zeros, a dotted IPv4 tail. No zone ids. */
function parseIpv6(text: string): Uint8Array | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const compressed = halves.length === 2;
  const head = parseGroups(halves[0]!, !compressed);
  const tail = compressed ? parseGroups(halves[1]!, true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const count = head.length + tail.length;
  if (compressed ? count > 7 : count !== 8) return undefined;
  const groups = [...head, ...new Array<number>(8 - count).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    bytes[2 * i] = groups[i]! >> 8;
    bytes[2 * i + 1] = groups[i]! & 0xff;
  }
  return bytes;
}

/** Colon-separated hex groups ('' is none); `last`: this run ends the text, so it may end in dotted IPv4. */
function parseGroups(text: string, last: boolean): number[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (last && i === parts.length - 1 && part.includes('.')) {
      const v4 = parseIpv4(part);
      if (v4 === undefined) return undefined;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
      groups.push(parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}
