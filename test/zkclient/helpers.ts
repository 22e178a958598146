// Shared by the zkclient tests: a server per suite — a real ZooKeeper 3.8 (is the client
// right?) or a three-member Flotilla cluster (do the client and recipes work on a live
// Flotilla?) — clients that are always closed, and bounded waits.

import { after, before } from 'node:test';
import { startTarget, targetKinds, type TargetKind, type ZkTarget } from '../zk/target.js';
import { ZkClient, type ZkClientOptions } from '../../src/zkclient/index.js';

/** ZooKeeper's tick for the tests: sessions may last 400 ms .. 4 s. */
export const TICK_MS = 200;
export const SESSION_MS = 4_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects if `promise` does not settle within `ms`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` until it returns true, or fails after `timeoutMs`. */
export async function waitUntil(what: string, timeoutMs: number, probe: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** What a test file talks to: one server address (for proxies) and the whole connect string. */
export interface ZkServer {
  readonly host: string;
  readonly port: number;
  /**
   * The first member only. Tests that check one client's write from another client's
   * session assume one server, as ZooKeeper's "read your own server" semantics need
   * (across members a reader must sync first); `members` lists them all.
   */
  readonly connectString: string;
  readonly members: readonly string[];
  fourLetter(word: string): Promise<string>;
}

export interface Harness {
  readonly kind: TargetKind;
  readonly server: () => ZkServer;
  /** Connects a client that is closed after the file's tests (closing twice is harmless). */
  connect(options?: Partial<ZkClientOptions>): Promise<ZkClient>;
}

/**
 * Starts the target for the enclosing suite (in before) — a real ZooKeeper, or a
 * three-member Flotilla cluster whose first member is `host:port` — and stops it and every
 * client (in after).
 */
export function zkHarness(kind: TargetKind, tickTimeMs = TICK_MS): Harness {
  let target: ZkTarget | undefined;
  let server: ZkServer | undefined;
  const clients: ZkClient[] = [];
  before(async () => {
    target = await startTarget(kind, { tickTimeMs });
    const [host, port] = target.connectStrings[0]!.split(':') as [string, string];
    const started = target;
    server = { host, port: Number(port), connectString: target.connectStrings[0]!, members: target.connectStrings, fourLetter: (word) => started.fourLetter!(0, word) };
  });
  after(async () => {
    await Promise.allSettled(clients.map((client) => within(5_000, 'close', client.close())));
    await target?.stop();
  });
  return {
    kind,
    server: () => {
      if (server === undefined) throw new Error(`the ${kind} target is not running`);
      return server;
    },
    connect: async (options = {}) => {
      if (server === undefined) throw new Error(`the ${kind} target is not running`);
      const client = await within(10_000, 'connect', ZkClient.connect({ servers: server.connectString.split(','), sessionTimeoutMs: SESSION_MS, ...options }));
      clients.push(client);
      return client;
    },
  };
}

/** The targets a zkclient test file runs against: ZK_TARGET's, else both. */
export { targetKinds };

/** A unique path prefix per test, so tests sharing a server never see each other's nodes. */
let pathCounter = 0;
export function uniquePath(name: string): string {
  pathCounter++;
  return `/${name}-${pathCounter}`;
}
