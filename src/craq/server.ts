// One CRAQ node as an OS process's service: its write-ahead log on the real disk, its TCP
// port for peers and clients, its membership in the chain through ZooKeeper. `flotilla
// craq node` (cli/craq.ts) runs this; everything here is wiring — the protocol is
// node.ts, the I/O is platform/.
//
// Order at start: take the data directory's lock, recover the WAL, listen (the port must
// be known before registering, since the znode carries the address), open a ZooKeeper
// session and register (which gives the node its id), then build the node from what the
// WAL recovered and start following the chain. A node whose session expires is no longer
// in the chain; it stops (exit code 1) and a supervisor restarts it, and it rejoins at the
// tail as a new member from its own WAL plus what it missed.

import { realClock } from '../platform/clock.js';
import { acquireDataLock, type DataLock } from '../platform/data-lock.js';
import { FsDisk } from '../platform/fs-disk.js';
import { CraqPeerLinks, startCraqServer } from '../platform/craq-net.js';
import type { RpcServer } from '../platform/rpc.js';
import { ZkClient } from '../zkclient/index.js';
import { decodeClientRequest, decodePeerMessage } from './codec.js';
import { CraqHost } from './host.js';
import { ChainWatcher, Registration, checkChainName } from './membership.js';
import { CraqNode } from './node.js';
import type { ClientReply, ClientRequest, PeerMessage } from './types.js';
import { Throttle } from './throttle.js';
import { CraqWal } from './wal.js';

export interface CraqNodeProcessOptions {
  readonly zkServers: readonly string[];
  readonly dataDir: string;
  readonly chain: string;
  readonly host: string;
  readonly port: number;
  /** The host peers and clients dial (default: host). */
  readonly advertiseHost?: string;
  readonly sessionTimeoutMs: number;
  readonly tickMs: number;
  /** Client requests started per second at most (an emulated per-node capacity; throttle.ts). */
  readonly serveRateMax?: number;
  /** One structured log line. */
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** The session ended or the node failed: the process should exit. */
  readonly onFatal: (reason: string) => void;
}

export class CraqConfigError extends Error {
  override name = 'CraqConfigError';
}

export class CraqDataInUseError extends Error {
  override name = 'CraqDataInUseError';
}

export interface RunningCraqNode {
  readonly id: number;
  readonly port: number;
  stop(): Promise<void>;
}

export async function runCraqNode(options: CraqNodeProcessOptions): Promise<RunningCraqNode> {
  const badChain = checkChainName(options.chain);
  if (badChain !== undefined) throw new CraqConfigError(badChain);
  if (options.zkServers.length === 0) throw new CraqConfigError('--zk names no server');
  const lock = await takeLock(options.dataDir);
  const { storage, recovered } = await CraqWal.open(new FsDisk(options.dataDir), 'craq');
  options.log('info', 'recovered', { committedSeq: recovered.writes.at(-1)?.seq ?? recovered.snapshot?.seq ?? 0, snapshotSeq: recovered.snapshot?.seq ?? 0 });

  let host: CraqHost | undefined;
  const throttle = options.serveRateMax === undefined ? undefined : new Throttle(realClock, options.serveRateMax);
  const pendingPeerMessages: PeerMessage[] = [];
  const server: RpcServer = await startCraqServer<PeerMessage, ClientRequest, ClientReply>({
    host: options.host,
    port: options.port,
    decodePeer: decodePeerMessage,
    decodeClient: decodeClientRequest,
    onPeer: (message) => (host === undefined ? pendingPeerMessages.length < 1024 && pendingPeerMessages.push(message) : host.receive(message)),
    onClient: (request) => serveClient(host, throttle, request),
    log: (message) => options.log('warn', message),
  });
  const address = `${options.advertiseHost ?? options.host}:${server.port}`;

  const zk = await ZkClient.connect({ servers: options.zkServers, sessionTimeoutMs: options.sessionTimeoutMs });
  zk.on('state', (state, reason) => {
    options.log(state === 'connected' ? 'info' : 'warn', 'zookeeper', { state, reason });
    if (state === 'expired' || state === 'auth-failed') options.onFatal(`the ZooKeeper session ended (${state}): this node is out of the chain; restart it to rejoin`);
  });
  const registration = await Registration.register({ client: zk, chain: options.chain, address, clock: realClock, onLease: (untilMs) => host?.setLease(untilMs) });
  const links = new CraqPeerLinks<PeerMessage>();
  host = new CraqHost(new CraqNode(registration.id, {}, recovered), { clock: realClock, transport: links, storage, tickMs: options.tickMs });
  host.start();
  for (const message of pendingPeerMessages.splice(0)) host.receive(message);

  const watcher = new ChainWatcher(
    zk,
    realClock,
    options.chain,
    (view) => {
      links.setAddresses(view.addresses);
      host?.setConfig(view.config);
      options.log('info', 'chain', { epoch: view.config.epoch, members: view.config.members, role: describeRole(registration.id, view.config.members) });
    },
    (error) => options.onFatal(`watching the chain failed: ${error instanceof Error ? error.message : String(error)}`),
  );
  watcher.start();
  options.log('info', 'listening', { id: registration.id, port: server.port, address, chain: options.chain });

  const failureCheck = setFailureCheck(host, options);
  return {
    id: registration.id,
    port: server.port,
    stop: async () => {
      failureCheck.cancel();
      watcher.stop();
      registration.stop();
      host?.stop();
      links.close();
      await server.close();
      await zk.close().catch(() => undefined);
      await storage.close().catch(() => undefined);
      await lock.release();
    },
  };
}

async function serveClient(host: CraqHost | undefined, throttle: Throttle | undefined, request: ClientRequest): Promise<ClientReply> {
  if (host === undefined) return { type: 'error', code: 'not-serving', message: 'the node is starting' };
  if (throttle !== undefined && !(await throttle.admit())) return { type: 'error', code: 'overloaded', message: 'the node is at its --serve-rate-max' };
  return host.request(request);
}

function describeRole(id: number, members: readonly number[]): string {
  const position = members.indexOf(id);
  if (position < 0) return 'out';
  if (members.length === 1) return 'head+tail';
  return position === 0 ? 'head' : position === members.length - 1 ? 'tail' : 'middle';
}

/** A host that stopped on its own (a failed disk write, a broken invariant) ends the process. */
function setFailureCheck(host: CraqHost, options: CraqNodeProcessOptions): { cancel(): void } {
  let timer = realClock.setTimer(500, check);
  function check(): void {
    const failure = host.failed();
    if (failure !== undefined) {
      options.onFatal(`the node failed: ${failure instanceof Error ? failure.message : String(failure)}`);
      return;
    }
    timer = realClock.setTimer(500, check);
  }
  return { cancel: () => timer.cancel() };
}

async function takeLock(dataDir: string): Promise<DataLock> {
  const result = await acquireDataLock(dataDir);
  if (result.acquired) return result.lock;
  throw new CraqDataInUseError(`the data directory ${dataDir} is in use by a running process (pid ${result.pid}); stop it first, or delete ${result.file} if it is not a flotilla process`);
}
