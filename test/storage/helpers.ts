import assert from 'node:assert/strict';
import { Scheduler } from '../../src/sim/scheduler.js';
import { SimDisk, type SimDiskOptions } from '../../src/sim/disk.js';
import { yieldToHost } from '../../src/platform/host.js';
import { Prng } from '../../src/stdx/prng.js';

/** Drives virtual time until `promise` settles (at most `maxMs`), then returns its outcome. */
export async function run<T>(scheduler: Scheduler, promise: Promise<T>, maxMs = 60_000): Promise<T> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await scheduler.waitFor(() => settled, maxMs, 1);
  assert.ok(settled, 'operation did not settle in virtual time');
  return promise;
}

export interface SimSetup {
  readonly scheduler: Scheduler;
  readonly disk: SimDisk;
  readonly prng: Prng;
  /** Runs a promise to completion on virtual time. */
  readonly go: <T>(promise: Promise<T>) => Promise<T>;
}

export function simSetup(seed: number, options: Partial<SimDiskOptions> = {}): SimSetup {
  const scheduler = new Scheduler(yieldToHost);
  const prng = new Prng(seed);
  const disk = new SimDisk(scheduler, prng.fork(), options);
  return { scheduler, disk, prng, go: (promise) => run(scheduler, promise) };
}

export function bytes(text: string): Buffer {
  return Buffer.from(text);
}

export function text(data: Uint8Array | undefined): string | undefined {
  return data === undefined ? undefined : Buffer.from(data).toString();
}
