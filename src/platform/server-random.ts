// Real randomness for the server process: the seed of a member's Raft PRNG (randomized
// election timeouts) and fresh cluster secrets. The simulator seeds the same PRNG from its
// run seed instead, which is why this lives in platform/ and nowhere else.

import { randomBytes, randomInt } from 'node:crypto';

/** A seed for stdx/prng, from the operating system's random source. */
export function randomSeed(): number {
  return randomInt(0, 0x7fff_ffff);
}

/** `bytes` random bytes as hex: a cluster secret for a new local cluster. */
export function randomSecretHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** A random client (session) id in [1, 2^48): collisions among live clients are negligible. */
export function randomClientId(): number {
  return randomInt(1, 2 ** 48);
}
