// A seeded PRNG with forkable streams: xoshiro128** seeded through splitmix32.
// Every source of randomness in Flotilla is one of these, injected, so a seed replays a
// run exactly. fork() derives an independent stream (one per node, the network, the
// disk) so that adding draws in one place does not shift the draws of another.

function splitmix32(state: number): [value: number, next: number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [z >>> 0, next];
}

export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    let state = seed | 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [value, next] = splitmix32(state);
      words.push(value);
      state = next;
    }
    this.s0 = words[0]!;
    this.s1 = words[1]!;
    this.s2 = words[2]!;
    this.s3 = words[3]!;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer in [0, bound). Bound must be a positive safe integer. */
  int(bound: number): number {
    if (!(bound > 0 && Number.isSafeInteger(bound))) throw new RangeError(`bad bound ${bound}`);
    if (bound <= 0x100000000) return Math.floor(this.nextFloat() * bound);
    const high = this.nextUint32() * 0x100000000 + this.nextUint32();
    return high % bound;
  }

  /** An integer in [low, high], both inclusive. */
  range(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  /** True with the given probability. */
  chance(probability: number): boolean {
    return this.nextFloat() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(items.length)]!;
  }

  /** An independent stream derived from this one. */
  fork(): Prng {
    return new Prng(this.nextUint32() ^ Math.imul(this.nextUint32(), 0x27d4eb2d));
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
