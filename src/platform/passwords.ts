// What etcd's auth needs from the host and cannot take itself (only platform/ does crypto):
// password hashing and checking, and the keyed MAC that signs auth tokens.
//
// Passwords are hashed with scrypt (N = 2^14, r = 8, p = 1: about 50 ms, bcrypt cost 10's order,
// which etcd uses) and a 16-byte random salt, written as `scrypt$<N>$<r>$<p>$<salt>$<hash>`
// (base64). Hashing runs on libuv's thread pool, so a member keeps serving while it works.

import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const N = 16_384;
const r = 8;
const p = 1;
const keyBytes = 32;
/** scrypt's memory is 128·N·r bytes: 16 MiB at these parameters; allow a hash made with up to 4× that. */
const maxmem = 4 * 128 * N * r + 1024 * 1024;

function derive(password: string, salt: Buffer, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyBytes, { ...cost, maxmem }, (error, key) => (error === null ? resolve(key) : reject(error)));
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, { N, r, p });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Whether `password` is the one `hash` was made from; false for a hash this code did not write. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [cost, blocks, parallel] = parts.slice(1, 4).map(Number) as [number, number, number];
  const ok = (value: number, max: number) => Number.isSafeInteger(value) && value >= 1 && value <= max;
  if (!ok(cost, 4 * N) || !ok(blocks, 4 * r) || !ok(parallel, 16)) return false;
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const expected = Buffer.from(parts[5] ?? '', 'base64');
  if (expected.length !== keyBytes) return false;
  try {
    return timingSafeEqual(await derive(password, salt, { N: cost, r: blocks, p: parallel }), expected);
  } catch {
    return false;
  }
}

/** HMAC-SHA-256 of `data` under `key`. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest());
}

/** Whether two byte strings are equal, in time that depends only on their lengths. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
