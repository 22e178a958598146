// Configurations of the shard controller and the rebalancing that makes them (the 6.824
// shard controller, lab 4A/5A: shardctrler/common.go and its tests).
//
// A configuration numbers one assignment of the NShards shards to replica groups (gids) and
// lists each group's servers, in order. Configuration 0 has no groups and every shard on
// gid 0, which is no group. Configurations are immutable once made (frozen), so a later one
// may share a server list with an earlier one without either changing the other — the Go
// lab's "deep-copy every map" rule, enforced by the type system and Object.freeze instead.
//
// Rebalancing (after a Join or a Leave) moves as few shards as possible while making the
// largest and smallest shard counts per group differ by at most one:
//
//   step                                           | order (deterministic: never Map order)
//   -----------------------------------------------+----------------------------------------
//   1. each group's target: floor(N/g), and the    | groups by (current count desc, gid asc)
//      N mod g groups holding most get one more    |
//   2. shards on no live group (gid 0, departed)   | shard number ascending
//      go to the pool                              |
//   3. a group above its target gives back its     | gid ascending; its highest shards first
//      highest-numbered excess shards              |
//   4. the pool fills each group below its target  | gid ascending; lowest pool shard first
//
// Every shard that moves either had no live owner or left a group above its target, and
// every group below its target must receive at least its deficit, so no assignment with the
// same balance moves fewer shards. With more groups than shards, the N groups holding most
// (ties: lowest gid) keep one each and the others get none.

import { assert } from '../stdx/assert.js';

/** Shards in every configuration (the lab's NShards). */
export const shardCount = 10;

/** A replica group's id. 0 is no group (configuration 0's shards); real groups are >= 1. */
export type Gid = number;

export interface ShardConfig {
  /** Invariant: configs[num].num === num; 0 is the initial configuration. */
  readonly num: number;
  /** shards[s]: the gid serving shard s. Invariant: length shardCount; 0 only when there are no groups. */
  readonly shards: readonly Gid[];
  /** The groups and their servers, in the order they were joined with; keys never 0. */
  readonly groups: ReadonlyMap<Gid, readonly string[]>;
}

/** Configuration 0: no groups, every shard on gid 0. */
export function initialConfig(): ShardConfig {
  return freezeConfig({ num: 0, shards: new Array<Gid>(shardCount).fill(0), groups: new Map() });
}

export function freezeConfig(config: ShardConfig): ShardConfig {
  Object.freeze(config.shards);
  for (const servers of config.groups.values()) Object.freeze(servers);
  return Object.freeze(config);
}

/** The gids of a configuration, ascending (STYLE.md 15: never the Map's insertion order). */
export function sortedGids(groups: ReadonlyMap<Gid, unknown>): Gid[] {
  return [...groups.keys()].sort((a, b) => a - b);
}

/**
 * The assignment with the fewest moves from `shards` that balances over `gids` (see the
 * table above). `gids` must list each live group once; the order in which it lists them is
 * the order ties are broken in, so callers pass sortedGids(). Pure.
 */
export function rebalance(shards: readonly Gid[], gids: readonly Gid[]): Gid[] {
  assert(shards.length === shardCount, 'a configuration has shardCount shards');
  if (gids.length === 0) return new Array<Gid>(shardCount).fill(0);
  const live = new Set(gids);
  assert(live.size === gids.length, 'each gid once');
  assert(!live.has(0), 'gid 0 is no group');
  const owned = new Map<Gid, number[]>(gids.map((gid) => [gid, []]));
  const pool: number[] = [];
  for (let shard = 0; shard < shardCount; shard++) {
    const list = owned.get(shards[shard]!);
    if (list === undefined) pool.push(shard);
    else list.push(shard);
  }
  const targets = targetCounts(gids, owned);
  for (const gid of gids) {
    const list = owned.get(gid)!;
    const target = targets.get(gid)!;
    // Ascending lists: splice the highest-numbered excess off the end.
    if (list.length > target) pool.push(...list.splice(target));
  }
  pool.sort((a, b) => a - b);
  const result = [...shards];
  for (const gid of gids) {
    const list = owned.get(gid)!;
    const target = targets.get(gid)!;
    while (list.length < target) {
      const shard = pool.shift();
      assert(shard !== undefined, 'the pool holds every shard a group lacks');
      list.push(shard);
    }
    for (const shard of list) result[shard] = gid;
  }
  assert(pool.length === 0, 'every shard is assigned');
  return result;
}

/** Each group's shard count after rebalancing: the groups holding most get the remainder. */
function targetCounts(gids: readonly Gid[], owned: ReadonlyMap<Gid, readonly number[]>): Map<Gid, number> {
  const base = Math.floor(shardCount / gids.length);
  const extra = shardCount % gids.length;
  // Stable sort: equal counts keep the caller's order (gid ascending when sorted).
  const byLoad = [...gids].sort((a, b) => owned.get(b)!.length - owned.get(a)!.length);
  return new Map(byLoad.map((gid, rank) => [gid, base + (rank < extra ? 1 : 0)]));
}

/**
 * Rebalancing from scratch: shard s to the (s mod g)-th group. Balanced, deterministic, and
 * wrong — it ignores where shards are, so a Join moves most of them. Only for the planted
 * bug `moveEverything` (STYLE.md 18).
 */
export function rebalanceFromScratch(gids: readonly Gid[]): Gid[] {
  if (gids.length === 0) return new Array<Gid>(shardCount).fill(0);
  return Array.from({ length: shardCount }, (_, shard) => gids[shard % gids.length]!);
}

/** One line, deterministic (STYLE.md 11): `num=3 shards=[1,1,2,...] groups={1:[a,b],2:[c]}`. */
export function describeConfig(config: ShardConfig): string {
  const groups = sortedGids(config.groups).map((gid) => `${gid}:[${config.groups.get(gid)!.join(',')}]`);
  return `num=${config.num} shards=[${config.shards.join(',')}] groups={${groups.join(',')}}`;
}
