// What the ZooKeeper compatibility tests run against. The same test bodies run against a real
// Apache ZooKeeper (the reference behaviour) and, once it is wired, against Flotilla; env
// ZK_TARGET picks which (default 'zookeeper' until Flotilla's server exists).
//
// Also here: a TCP proxy that can cut a client off from its server without the client
// closing its session, which is how the tests make a session expire on any target.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { FlotillaZkCluster } from './flotilla-cluster.js';
import { fourLetter as sendFourLetter, realZooKeeperSkipReason, startRealZooKeeper } from './real-zookeeper.js';

export type TargetKind = 'zookeeper' | 'flotilla';

export interface TargetOptions {
  /**
   * The server's session clock tick. ZooKeeper negotiates session timeouts into
   * [2, 20] × tickTime; tests pass a small value (200) to make expiry fast.
   */
  tickTimeMs?: number;
}

export interface ZkTarget {
  /** For test names and failure messages, e.g. "zookeeper 3.8.0 (standalone)". */
  readonly name: string;
  /** One `host:port` per member; join with ',' for a client that may use any member. */
  readonly connectStrings: readonly string[];
  /** Sends a four-letter word to member `member` (index into connectStrings). */
  fourLetter?(member: number, word: string): Promise<string>;
  /** Stops every member and removes their files. Safe to call more than once. */
  stop(): Promise<void>;
}

const TARGET_KINDS: readonly TargetKind[] = ['zookeeper', 'flotilla'];

/** The targets to test: the one env ZK_TARGET names, else both. */
export function targetKinds(): TargetKind[] {
  const value = process.env['ZK_TARGET'];
  return value === undefined || value === '' ? [...TARGET_KINDS] : [targetKindFromEnv()];
}

/** The target named by env ZK_TARGET; 'zookeeper' when unset. */
export function targetKindFromEnv(): TargetKind {
  const value = process.env['ZK_TARGET'];
  if (value === undefined || value === '') return 'zookeeper';
  const kind = TARGET_KINDS.find((candidate) => candidate === value);
  if (kind === undefined) throw new Error(`ZK_TARGET must be one of ${TARGET_KINDS.join(', ')}, got ${JSON.stringify(value)}`);
  return kind;
}

/**
 * Why tests cannot run against `kind` on this machine, or undefined. Throws on CI when the
 * real ZooKeeper is missing (CI installs it, so that is a failure).
 */
export function targetSkipReason(kind: TargetKind): string | undefined {
  switch (kind) {
    case 'zookeeper':
      return realZooKeeperSkipReason();
    case 'flotilla':
      return undefined;
    default: {
      const never: never = kind;
      throw new Error(`unknown target ${String(never)}`);
    }
  }
}

export async function startTarget(kind: TargetKind, options: TargetOptions = {}): Promise<ZkTarget> {
  switch (kind) {
    case 'zookeeper':
      return startZooKeeperTarget(options);
    case 'flotilla':
      return startFlotillaTarget(options);
    default: {
      const never: never = kind;
      throw new Error(`unknown target ${String(never)}`);
    }
  }
}

async function startZooKeeperTarget(options: TargetOptions): Promise<ZkTarget> {
  const server = await startRealZooKeeper(options.tickTimeMs === undefined ? {} : { tickTimeMs: options.tickTimeMs });
  return {
    name: 'zookeeper 3.8.0 (standalone)',
    connectStrings: [server.connectString],
    fourLetter: (member, word) => {
      if (member !== 0) throw new Error(`the zookeeper target has one member (0), asked for ${member}`);
      return sendFourLetter(server.host, server.port, word);
    },
    stop: () => server.stop(),
  };
}

/** Flotilla as a target: three `flotilla server` processes; member 0 is the first. */
export async function startFlotillaTarget(options: TargetOptions): Promise<ZkTarget> {
  const cluster = await FlotillaZkCluster.start(options.tickTimeMs === undefined ? {} : { tickTimeMs: options.tickTimeMs });
  const ids = cluster.cluster.ids;
  return {
    name: 'flotilla (3 members)',
    connectStrings: cluster.connectStrings(),
    fourLetter: (member, word) => cluster.fourLetter(ids[member]!, word),
    stop: () => cluster.stop(),
  };
}

// ---- A proxy that can cut a client off -------------------------------------------------------

export interface CuttableProxy {
  /** `127.0.0.1:port` of the proxy; give this to the client instead of the server's. */
  readonly connectString: string;
  /**
   * Destroys every proxied connection and refuses (accepts and immediately closes) new ones
   * until heal(). Neither side sends anything: to the server the client simply went silent,
   * so its session lives on until it expires.
   */
  cut(): void;
  /** Forwards new connections again. */
  heal(): void;
  /** Connections accepted so far (for asserting that a client tried to reconnect). */
  acceptedCount(): number;
  stop(): Promise<void>;
}

/** Starts a proxy on a free loopback port forwarding to `upstream` ("host:port"). */
export function startCuttableProxy(upstream: string): Promise<CuttableProxy> {
  const colon = upstream.lastIndexOf(':');
  const host = upstream.slice(0, colon);
  const port = Number(upstream.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0) throw new Error(`upstream must be host:port, got ${upstream}`);
  const sockets = new Set<Socket>();
  let isCut = false;
  let accepted = 0;
  const server: Server = createServer((downstream) => {
    accepted++;
    if (isCut) {
      downstream.destroy();
      return;
    }
    const upstreamSocket = connect({ host, port });
    for (const socket of [downstream, upstreamSocket]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => {});
      socket.once('close', () => {
        sockets.delete(socket);
        downstream.destroy();
        upstreamSocket.destroy();
      });
    }
    downstream.pipe(upstreamSocket);
    upstreamSocket.pipe(downstream);
  });
  const destroyAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (typeof address !== 'object' || address === null) {
        reject(new Error('proxy: could not read the bound port'));
        return;
      }
      resolve({
        connectString: `127.0.0.1:${address.port}`,
        cut: () => {
          isCut = true;
          destroyAll();
        },
        heal: () => {
          isCut = false;
        },
        acceptedCount: () => accepted,
        stop: () => {
          destroyAll();
          return new Promise<void>((done) => server.close(() => done()));
        },
      });
    });
  });
}
