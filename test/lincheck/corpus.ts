// Where the Porcupine corpus lives: ../shared/linearizability/porcupine-data next to the
// repository, or its copy in test/fixtures (used when ../shared is not beside the checkout).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repositoryRoot } from '../repo.js';

export function findCorpusDir(): string {
  const root = repositoryRoot();
  const shared = join(root, '..', 'shared', 'linearizability', 'porcupine-data');
  // The same files, vendored, for a checkout without ../shared beside it.
  const vendored = join(root, 'test', 'fixtures', 'porcupine-data');
  if (existsSync(shared)) return shared;
  if (existsSync(vendored)) return vendored;
  throw new Error(`cannot find ${shared} or ${vendored}`);
}

/** The 23 etcd logs Porcupine expects to be linearizable; the other 79 (095 aside) are not. */
export const etcdLinearizable: ReadonlySet<number> = new Set([2, 5, 7, 18, 25, 31, 38, 45, 48, 49, 51, 53, 56, 67, 75, 76, 80, 87, 92, 98, 100, 101, 102]);
/** etcd_095.log is empty ("etcd cluster failed to start up in test 95"): no verdict. */
export const etcdNumbers: readonly number[] = Array.from({ length: 103 }, (_, i) => i).filter((i) => i !== 95);
export const etcdName = (i: number): string => `etcd_${String(i).padStart(3, '0')}.log`;
export const kvFiles: readonly string[] = ['c01-ok', 'c01-bad', 'c10-ok', 'c10-bad', 'c50-ok', 'c50-bad'];
/** Porcupine runs its unpartitioned model on these only. */
export const kvWholeFiles: readonly string[] = ['c01-ok', 'c01-bad', 'c10-ok', 'c10-bad'];
