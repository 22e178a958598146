// One member as an OS process (DESIGN.md §8): the WAL-backed Raft node hosting a service,
// the peer transport, the client port and the admin HTTP port, wired together.
//
// Start-up order matters: the data directory is recovered before any port opens, so a
// damaged log stops the member before it can vote or answer anyone. Shutdown runs the
// other way: stop taking requests, stop the node, wait for the fsync in flight, close ports.

import type { Logger } from 'pino';
import { Prng } from '../stdx/prng.js';
import { type NodeId, nodeId } from '../stdx/types.js';
import type { Clock, Timer } from '../io/clock.js';
import { defaultTiming, type RaftConfig } from '../raft/config.js';
import type { Ready } from '../raft/core.js';
import { describeRecoveryEvent } from '../storage/errors.js';
import type { Replica } from '../runtime/replica.js';
import { KvService } from '../kv/index.js';
import { ZkService } from '../zk/service.js';
import { ZkFrontEnd } from '../zk/front-end.js';
import { fourLetterWords } from '../zk/four-letter.js';
import { fileDescriptors, hostEnvironment, randomBytesArray, sha1, sha256, wallClockMs } from '../platform/zk-host.js';
import type { RaftNode } from '../runtime/node.js';
import { FsDisk } from '../platform/fs-disk.js';
import { PeerTransport } from '../platform/peer-transport.js';
import { type FramedConnection, FramedServer } from '../platform/server-client-port.js';
import { HttpAdminServer } from '../platform/http-admin.js';
import { MemberTls } from '../platform/tls.js';
import { randomSeed } from '../platform/server-random.js';
import { directoryBytes } from '../platform/server-files.js';
import { processId } from '../platform/process.js';
import { adminApp } from './admin.js';
import { type BackupGroup, encodeBackup } from './backup.js';
import { decodeAddressBook, encodeAddressBook, type GroupName, groupNames, type MemberAction, MemberError, MembershipAdmin, membershipLimits } from './membership.js';
import { getJson, postJson } from '../platform/http-get.js';
import { dashboardAsset } from '../platform/dashboard-assets.js';
import { DashboardFeed, decodeMemberView, describeGroup } from './dashboard.js';
import { type FaultAnswer, Faults } from './faults.js';
import { browseKeys, browseZnode } from './browse.js';
import { signalProcess } from '../platform/process-signals.js';
import { ensureDirectory, fileExists, readTextFile as readTextFileAsync } from '../platform/server-files.js';
import { writeFileDurably } from '../platform/files.js';
import { ClientHandler } from './client-handler.js';
import { zkMembership } from './zk-membership.js';
import { formatAddress, type Address, type ServerConfig } from './config.js';
import { ServerMetrics } from './metrics.js';
import {
  decodePeerMessage,
  encodePeerMessage,
  ETCD_RAFT_GROUP_ID,
  ETCD_SERVICE_GROUP_ID,
  MEMBER_GROUP_ID,
  RAFT_GROUP_ID,
  ZK_RAFT_GROUP_ID,
  ZK_SERVICE_GROUP_ID,
  type MemberInfo,
  type PeerMessage,
} from './peer-codec.js';
import { ETCD_GROUP_DIR, GROUP_DIR, ServerStorage, ZK_GROUP_DIR } from './storage.js';
import { type EtcdMember, etcdServices } from './etcd-api.js';
import { type EtcdAuthHost, etcdTokenTtlMs } from './etcd-auth.js';
import { hashPassword, hmacSha256, sameBytes, verifyPassword } from '../platform/passwords.js';
import { EtcdService } from '../etcd/service.js';
import { etcdProtoFile, GrpcHost } from '../platform/grpc-host.js';
import { readBytesFile } from '../platform/files.js';
import { ShardHost } from './shard-host.js';

export const serverLimits = {
  /** How often a member re-announces its client and admin addresses to its peers. */
  memberInfoIntervalMs: 1000,
  /** The largest client request frame. */
  clientFrameBytesMax: 1 << 20,
  clientConnectionsMax: 1024,
  /** A client connection silent for this long is closed (clients reconnect on demand). */
  clientIdleTimeoutMs: 10 * 60 * 1000,
  /** ZooKeeper's jute.maxbuffer: the largest frame on the ZooKeeper port (§1.1). */
  zkFrameBytesMax: 0xfffff,
  /** A ZooKeeper write or session change not applied within this long closes the client's connection. */
  zkRequestTimeoutMsMin: 5000,
  /** A member without a leader this long closes its ZooKeeper connections, so clients move on. */
  zkLeaderlessCloseMs: 2000,
  /** How long a backup waits for a leader to confirm each group's state. */
  backupReadTimeoutMs: 5000,
  /** etcd's --max-request-bytes (1.5 MiB) plus room for gRPC's framing. */
  etcdRequestBytesMax: 1.5 * 1024 * 1024 + 64 * 1024,
  /** An etcd write not applied within this long fails with "etcdserver: request timed out" (etcd: 5 s + election). */
  etcdRequestTimeoutMsMin: 5000,
  /** PEM files (TLS) are read whole; none is this large. */
  pemBytesMax: 1 << 20,
} as const;

export interface ServerAddresses {
  readonly peer: Address;
  readonly client: Address;
  readonly admin: Address;
  readonly zk: Address;
  /** ZooKeeper's secure client port, if open. */
  readonly zkSecure: Address | undefined;
  /** etcd's v3 gRPC API. */
  readonly etcd: Address;
}

interface Parts {
  /** The voters this member bootstraps its groups with (members.json). */
  bootstrapVoters: readonly NodeId[];
  storage: ServerStorage;
  transport: PeerTransport<PeerMessage>;
  kv: KvService;
  replica: Replica;
  clientPort: FramedServer;
  admin: HttpAdminServer;
  zkStorage: ServerStorage;
  zk: ZkService;
  zkFront: ZkFrontEnd;
  zkPort: FramedServer;
  /** ZooKeeper's secureClientPort: the same front-end over TLS. */
  zkSecurePort: FramedServer | undefined;
  tls: MemberTls | undefined;
  /** The shard controller and sharded key/value groups this member hosts (--shards); undefined: not sharded. */
  shards: ShardHost | undefined;
  etcdStorage: ServerStorage;
  etcd: EtcdService;
  etcdPort: GrpcHost;
}

export class FlotillaServer {
  /** Resolves with the process exit code once the member has stopped. */
  readonly done: Promise<number>;
  private finish: (code: number) => void = () => {};
  private readonly members = new Map<NodeId, { client: Address; admin: Address; zk?: Address; etcd?: Address }>();
  private readonly handler: ClientHandler;
  private readonly metrics: ServerMetrics;
  private infoTimer: Timer | undefined = undefined;
  private lastLoggedLeader = 0;
  private stopping = false;
  /** Every member's peer address, this one's included: --peers, then what the log added (membership.ts). */
  private readonly peerAddresses: Map<NodeId, Address>;
  readonly membership: MembershipAdmin;
  readonly dashboard: DashboardFeed;
  /** The dashboard's fault buttons; undefined unless --allow-faults. */
  readonly faults: Faults | undefined;

  private constructor(
    private readonly config: ServerConfig,
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly parts: Parts,
  ) {
    this.done = new Promise((resolve) => {
      this.finish = resolve;
    });
    this.peerAddresses = new Map(config.members);
    this.membership = new MembershipAdmin({
      self: config.id,
      node: (group) => (group === 'kv' ? parts.replica.raft : group === 'zk' ? parts.zk.replica.raft : parts.etcd.replica.raft),
      adminAddressOf: (id) => this.members.get(id)?.admin,
      peerAddressOf: (id) => this.peerAddresses.get(id),
      learnPeer: (id, address) => this.learnPeer(id, address),
      forward: (admin, request) =>
        postJson(`${parts.tls === undefined ? 'http' : 'https'}://${formatAddress(admin)}/members`, request, membershipLimits.changeTimeoutMs + 5000, parts.tls?.clientTls()),
      clock,
      logger,
    });
    this.handler = new ClientHandler({
      replica: parts.replica,
      kv: parts.kv,
      clientAddressOf: (id) => this.members.get(id)?.client,
      recordOutcome: (outcome) => this.metrics.recordProposal(outcome),
      shard: parts.shards === undefined ? undefined : (body) => parts.shards!.handle(body),
    });
    this.metrics = new ServerMetrics(config.id, {
      status: () => parts.replica.raft.status(),
      logBytes: () => parts.storage.sizeBytes(),
      peerStats: () => parts.transport.stats(),
      walSyncs: () => parts.storage.syncCount() + parts.zkStorage.syncCount() + parts.etcdStorage.syncCount() + (parts.shards?.walStats().flushCount ?? 0),
      clientConnections: () => parts.clientPort.connectionCount(),
    });
    this.dashboard = new DashboardFeed({
      self: config.id,
      clock,
      local: () => ({
        id: config.id,
        pid: processId(),
        groups: [
          describeGroup('kv', RAFT_GROUP_ID, parts.replica.raft),
          describeGroup('zk', ZK_RAFT_GROUP_ID, parts.zk.replica.raft),
          describeGroup('etcd', ETCD_RAFT_GROUP_ID, parts.etcd.replica.raft),
        ],
        cuts: parts.transport.linkCuts(),
      }),
      members: () => {
        const connected = new Set(parts.transport.connectedPeers());
        return [...this.peerAddresses.keys()].map((id) => ({ id, admin: this.formatKnown(this.members.get(id)?.admin) ?? undefined, connected: id === config.id || connected.has(id) }));
      },
      fetchView: (admin, timeoutMs) => getJson(`${parts.tls === undefined ? 'http' : 'https'}://${admin}/dashboard/member`, timeoutMs, parts.tls?.clientTls()),
      ...(config.allowFaults === true ? { faults: () => this.faults?.describe() ?? { paused: [] } } : {}),
    });
    this.faults = config.allowFaults === true ? this.newFaults() : undefined;
  }

  /** The fault buttons (--allow-faults): signals by pid, campaigns, and the transport's link cuts. */
  private newFaults(): Faults {
    const { config, parts, logger } = this;
    const scheme = parts.tls === undefined ? 'http' : 'https';
    const adminOf = (id: NodeId) => this.formatKnown(this.members.get(id)?.admin) ?? undefined;
    const nodes = { kv: parts.replica.raft, zk: parts.zk.replica.raft, etcd: parts.etcd.replica.raft };
    return new Faults({
      self: config.id,
      logger,
      groups: ['kv', 'zk', 'etcd'],
      members: () => [...this.peerAddresses.keys()],
      adminOf,
      ownPid: processId,
      askPid: async (id) => {
        const view = decodeMemberView(await getJson(`${scheme}://${adminOf(id) ?? '?'}/dashboard/member`, 1000, parts.tls?.clientTls()));
        if (typeof view === 'string') throw new Error(view);
        if (view.id !== id) throw new Error(`its admin port answered as member ${view.id}`);
        return view.pid;
      },
      lastPid: (id) => this.dashboard.lastPid(id),
      // Signalling itself waits a moment, so that the answer leaves first.
      signal: (pid, signal) => (pid === processId() ? void this.clock.setTimer(100, () => signalProcess(pid, signal)) : signalProcess(pid, signal)),
      campaign: (group) => {
        const node = nodes[group];
        const status = node.status();
        if (node.isStopped()) return 'stopped';
        if (status.role === 'leader') return `already the leader (term ${status.term})`;
        if (!node.core.membership.voters.includes(config.id)) return 'a learner does not campaign';
        node.core.campaign();
        return `campaigning from term ${status.term} (pre-vote: it wins only if a majority no longer hears a leader)`;
      },
      linkCuts: () => parts.transport.linkCuts(),
      setLinkCut: (peer, cut) => parts.transport.setLinkCut(peer, cut),
      forward: async (id, action, body): Promise<FaultAnswer> => {
        const admin = adminOf(id);
        if (admin === undefined) return { status: 409, body: { error: `member ${id}'s admin address is not known yet` } };
        try {
          const answer = (await postJson(`${scheme}://${admin}/faults/${action}`, body, 2000, parts.tls?.clientTls())) as { status?: unknown; error?: unknown };
          return { status: typeof answer.error === 'string' && typeof answer.status === 'number' ? answer.status : 200, body: answer };
        } catch (error) {
          return { status: 502, body: { error: `member ${id} (${admin}) did not answer: ${(error as Error).message}` } };
        }
      },
    });
  }

  /** Recovers the data directory, opens the ports and starts the member. */
  static async start(given: ServerConfig, logger: Logger, clock: Clock): Promise<FlotillaServer> {
    // Callbacks wired before the server object exists reach it through `late`.
    const late: { server?: FlotillaServer } = {};
    const book = await openAddressBook(given);
    // Members added at run time come from the address book; --peers only seeds a new cluster.
    const config: ServerConfig = { ...given, members: book.addresses };
    const { storage, events } = await ServerStorage.recover(new FsDisk(config.dataDir), clock, (ms) => late.server?.metrics.recordFsync(ms));
    for (const event of events) logger.warn({ event: event.kind, file: event.file }, describeRecoveryEvent(event));
    const zkRecovered = await ServerStorage.recover(new FsDisk(config.dataDir), clock, (ms) => late.server?.metrics.recordFsync(ms), ZK_GROUP_DIR);
    for (const event of zkRecovered.events) logger.warn({ event: event.kind, file: event.file }, describeRecoveryEvent(event));
    const zkStorage = zkRecovered.storage;
    const etcdRecovered = await ServerStorage.recover(new FsDisk(config.dataDir), clock, (ms) => late.server?.metrics.recordFsync(ms), ETCD_GROUP_DIR);
    for (const event of etcdRecovered.events) logger.warn({ event: event.kind, file: event.file }, describeRecoveryEvent(event));
    const etcdStorage = etcdRecovered.storage;
    const shardStorages = config.shards === undefined ? undefined : await ShardHost.recover(config, config.shards, clock, logger, (ms) => late.server?.metrics.recordFsync(ms));
    const opened: {
      transport?: PeerTransport<PeerMessage>;
      kv?: KvService;
      clientPort?: FramedServer;
      zk?: ZkService;
      zkPort?: FramedServer;
      zkSecurePort?: FramedServer;
      shards?: ShardHost;
      etcd?: EtcdService;
      etcdPort?: GrpcHost;
    } = {};
    try {
      // Before any port opens: a TLS file that is missing or does not match stops the member here (TlsLoadError).
      const tls = config.tls === undefined ? undefined : MemberTls.load(config.tls, config.tls.clientCertAuth);
      if (tls !== undefined) logger.info({ certificate: tls.summary(), clientCertAuth: tls.clientCertAuth }, 'TLS on the peer, client and admin ports');
      opened.transport = await startTransport(
        config,
        tls,
        logger,
        (from, group, message) => late.server?.stepPeer(from, group, message),
        (id) => late.server?.peerClosed(id),
      );
      opened.kv = await openKv(
        config,
        book.bootstrapVoters,
        logger,
        clock,
        storage,
        opened.transport,
        (node, ready) => late.server?.observeReady(node, ready),
        (error) => late.server?.fail(error),
      );
      const kv = opened.kv;
      const replica = kv.replica;
      logger.info({ ...replica.raft.status(), appliedCommands: replica.appliedCommandCount }, 'recovered');
      if (config.shards !== undefined) {
        opened.shards = await ShardHost.open({
          config,
          layout: config.shards,
          logger,
          clock,
          transport: opened.transport,
          clientAddressOf: (id) => late.server?.members.get(id)?.client,
          onFatal: (error) => late.server?.fail(error),
          tls: tls?.clientTls(),
          storages: shardStorages!,
        });
      }
      opened.clientPort = await FramedServer.start({
        host: config.host,
        port: config.clientPort,
        name: 'client',
        logger,
        ...(tls === undefined ? {} : { tls: { member: tls, port: 'client' as const } }),
        limits: { frameBytesMax: serverLimits.clientFrameBytesMax, connectionsMax: serverLimits.clientConnectionsMax, idleTimeoutMs: serverLimits.clientIdleTimeoutMs },
        onFrame: (connection, body) => late.server?.handler.onFrame(connection, body),
        onClose: (connection) => late.server?.handler.onClose(connection),
      });
      const clientPort = opened.clientPort;
      opened.zk = await openZk(
        config,
        book.bootstrapVoters,
        logger,
        clock,
        zkStorage,
        opened.transport,
        (ready) => {
          late.server?.membership.observe(ready);
          if (ready.committedEntries.some((entry) => entry.type === 'config')) late.server?.parts.zkFront.configChanged();
        },
        (error) => late.server?.fail(error),
      );
      const zk = opened.zk;
      const zkFront = new ZkFrontEnd(
        zk,
        {
          sha1,
          ...(config.zkSuperDigest === undefined ? {} : { superDigest: config.zkSuperDigest }),
          conf: () => late.server?.zkConf() ?? [],
          environment: hostEnvironment,
          fileDescriptors,
          followers: () => followerCounts(zk, config.id),
          membership: zkMembership({
            node: () => zk.replica.raft,
            run: (request) => late.server?.membership.run(request) ?? Promise.reject(new Error('the member is starting')),
            peerAddressOf: (id) => late.server?.peerAddresses.get(id),
            zkAddressOf: (id) => late.server?.members.get(id)?.zk,
            clock,
            logger,
          }),
        },
        () => clock.nowMs(),
      );
      const zkPortOptions = {
        host: config.host,
        logger,
        limits: { frameBytesMax: serverLimits.zkFrameBytesMax, connectionsMax: serverLimits.clientConnectionsMax, idleTimeoutMs: serverLimits.clientIdleTimeoutMs },
        rawWords: { words: fourLetterWords, answer: (word: string) => zkFront.fourLetterWord(word) },
        onFrame: (connection: FramedConnection, body: Buffer) => zkFront.onFrame(connection, body),
        onClose: (connection: FramedConnection) => zkFront.onClose(connection),
      };
      opened.zkPort = await FramedServer.start({ ...zkPortOptions, port: config.zkPort, name: 'zookeeper' });
      const zkPort = opened.zkPort;
      if (tls !== undefined && config.zkSecurePort !== undefined) {
        opened.zkSecurePort = await FramedServer.start({ ...zkPortOptions, port: config.zkSecurePort, name: 'zookeeper-secure', tls: { member: tls, port: 'zookeeper' } });
      }
      opened.etcd = await openEtcd(
        config,
        book.bootstrapVoters,
        logger,
        clock,
        etcdStorage,
        opened.transport,
        (ready) => late.server?.membership.observe(ready),
        (error) => late.server?.fail(error),
      );
      const etcd = opened.etcd;
      opened.etcdPort = await GrpcHost.start({
        host: config.host,
        port: config.etcdPort,
        protoFile: etcdProtoFile(),
        receiveBytesMax: serverLimits.etcdRequestBytesMax,
        ...(config.tls === undefined
          ? {}
          : {
              tls: {
                key: readBytesFile(config.tls.keyFile, serverLimits.pemBytesMax),
                cert: readBytesFile(config.tls.certFile, serverLimits.pemBytesMax),
                ca: readBytesFile(config.tls.caFile, serverLimits.pemBytesMax),
                clientCertAuth: config.tls.clientCertAuth,
              },
            }),
        logger,
        services: etcdServices({
          service: etcd,
          clusterId: etcdClusterId(book.bootstrapVoters, config.clusterSecret),
          members: () => late.server?.etcdMembers() ?? [],
          dbSize: () => etcdStorage.sizeBytes(),
          authHost: etcdAuthHost(config.clusterSecret),
          clock,
          progressNotifyMs: config.etcdProgressNotifyMs,
          requestTimeoutMs: config.requestTimeoutMs,
          changeMembers: async (body) => late.server?.changeMembers(body) ?? { status: 503, body: { error: 'the member is starting' } },
        }),
      });
      const etcdPort = opened.etcdPort;
      const admin = await HttpAdminServer.start({ host: config.host, port: config.adminPort, logger, fetch: (request) => app.fetch(request), ...(tls === undefined ? {} : { tls }) });
      const server = new FlotillaServer(config, logger, clock, {
        bootstrapVoters: book.bootstrapVoters,
        storage,
        transport: opened.transport,
        kv,
        replica,
        clientPort,
        admin,
        zkStorage,
        zk,
        zkFront,
        zkPort,
        zkSecurePort: opened.zkSecurePort,
        tls,
        shards: opened.shards,
        etcdStorage,
        etcd,
        etcdPort,
      });
      const app = adminApp({
        status: () => server.describeStatus(),
        metrics: () => server.metrics.render(),
        backup: () => server.backup(),
        members: () => server.membership.describe(),
        changeMembers: (body) => server.changeMembers(body),
        dashboard: {
          asset: dashboardAsset,
          member: () => server.dashboard.member(),
          snapshot: () => server.dashboard.snapshot(),
          subscribe: (subscriber) => server.dashboard.subscribe(subscriber),
        },
        ...(server.faults === undefined ? {} : { faults: server.faults }),
        browse: {
          kv: (params) =>
            browseKeys(
              {
                member: config.id,
                applied: () => kv.machine.appliedIndex,
                scan: (prefix, after, limit) => {
                  const result = kv.machine.query({ kind: 'scan', prefix, after, limit });
                  return result.kind === 'scan' ? result : { entries: [], next: null };
                },
              },
              params,
            ),
          zk: (params) => browseZnode({ member: config.id, lastZxid: () => zk.machine.lastZxid, node: (path) => zk.machine.tree.node(path), stat: (path) => zk.machine.tree.stat(path) }, params),
        },
      });
      late.server = server;
      server.registerSelf();
      server.announce();
      return server;
    } catch (error) {
      opened.kv?.stop();
      opened.zk?.stop();
      opened.etcd?.stop();
      await opened.etcdPort?.close();
      if (opened.shards === undefined) await shardStorages?.close();
      else await opened.shards.close();
      await opened.zkSecurePort?.close();
      await opened.zkPort?.close();
      await opened.clientPort?.close();
      await opened.transport?.close();
      await storage.close();
      await zkStorage.close();
      await etcdStorage.close();
      throw error;
    }
  }

  addresses(): ServerAddresses {
    const advertised = (address: Address) => ({ host: this.config.advertiseHost, port: address.port });
    return {
      peer: advertised(this.parts.transport.address()),
      client: advertised(this.parts.clientPort.address()),
      admin: advertised(this.parts.admin.address()),
      zk: advertised(this.parts.zkPort.address()),
      zkSecure: this.parts.zkSecurePort === undefined ? undefined : advertised(this.parts.zkSecurePort.address()),
      etcd: advertised({ host: this.config.host, port: this.parts.etcdPort.port }),
    };
  }

  /**
   * SIGHUP: reads the TLS files again. Listeners serve the new certificate to every new
   * connection and new dials present it; open connections keep theirs. A failed reload
   * keeps the old certificate and says why.
   */
  reloadTls(): void {
    const tls = this.parts.tls;
    if (tls === undefined) {
      this.logger.info('SIGHUP: TLS is off; nothing to reload');
      return;
    }
    const result = tls.reload();
    if (result.ok) this.logger.info({ certificate: result.summary }, 'reloaded the TLS certificates: new connections use them');
    else this.logger.error({ error: result.error, certificate: tls.summary() }, 'TLS reload failed: still using the previous certificates');
  }

  /** `conf`'s lines (§2.11). */
  zkConf(): [string, string | number][] {
    const tick = this.config.zkTickMs;
    return [
      ['clientPort', this.parts.zkPort.address().port],
      ['secureClientPort', this.parts.zkSecurePort?.address().port ?? -1],
      ['dataDir', `${this.config.dataDir}/${ZK_GROUP_DIR}`],
      ['dataDirSize', this.parts.zkStorage.sizeBytes()],
      ['dataLogDir', `${this.config.dataDir}/${ZK_GROUP_DIR}`],
      ['dataLogSize', this.parts.zkStorage.sizeBytes()],
      ['tickTime', tick],
      ['maxClientCnxns', serverLimits.clientConnectionsMax],
      ['minSessionTimeout', 2 * tick],
      ['maxSessionTimeout', 20 * tick],
      ['clientPortListenBacklog', -1],
      ['serverId', this.config.id],
    ];
  }

  /** Stops taking requests, stops the node, waits for the fsync in flight, closes every port. */
  async shutdown(reason: string, exitCode = 0): Promise<number> {
    if (this.stopping) return this.done;
    this.stopping = true;
    this.logger.info({ reason }, 'shutting down');
    this.infoTimer?.cancel();
    this.dashboard.stop();
    this.handler.stopAccepting();
    this.parts.clientPort.stopAccepting();
    this.parts.zkFront.stopAccepting();
    this.parts.zkPort.stopAccepting();
    this.parts.zkSecurePort?.stopAccepting();
    this.parts.kv.stop();
    this.parts.zk.stop();
    this.parts.etcd.stop();
    await this.parts.etcdPort.close();
    await this.parts.shards?.close();
    await this.parts.storage.close();
    await this.parts.zkStorage.close();
    await this.parts.etcdStorage.close();
    await this.parts.clientPort.close();
    await this.parts.zkPort.close();
    await this.parts.zkSecurePort?.close();
    await this.parts.transport.close();
    await this.parts.admin.close();
    this.logger.info({ exitCode }, 'stopped');
    this.finish(exitCode);
    return exitCode;
  }

  /**
   * POST /members: a membership change (membership.ts) in the named group, or in every group
   * (key/value first) when none is named. Answers with the HTTP status to send.
   */
  async changeMembers(body: unknown): Promise<{ status: number; body: object }> {
    const raw = body as { action?: unknown; id?: unknown; peer?: unknown; group?: unknown; configIndex?: unknown };
    const actions: readonly MemberAction[] = ['add', 'promote', 'remove', 'transfer-leader'];
    if (typeof raw !== 'object' || raw === null || !actions.includes(raw.action as MemberAction)) return { status: 400, body: { error: `action must be one of ${actions.join(', ')}` } };
    if (typeof raw.id !== 'number' || !Number.isSafeInteger(raw.id) || raw.id <= 0 || raw.id > 0xffff_ffff) return { status: 400, body: { error: 'id must be a member id (a positive integer)' } };
    if (raw.peer !== undefined && typeof raw.peer !== 'string') return { status: 400, body: { error: 'peer must be host:port' } };
    if (raw.group !== undefined && !groupNames.includes(raw.group as GroupName)) return { status: 400, body: { error: `group must be one of ${groupNames.join(', ')}` } };
    if (raw.configIndex !== undefined && (typeof raw.configIndex !== 'number' || !Number.isSafeInteger(raw.configIndex) || raw.configIndex < 0))
      return { status: 400, body: { error: 'configIndex must be a log index' } };
    const groups = raw.group === undefined ? groupNames : [raw.group as GroupName];
    const results: object[] = [];
    for (const group of groups) {
      const request = {
        action: raw.action as MemberAction,
        id: nodeId(raw.id),
        group,
        ...(raw.peer === undefined ? {} : { peer: raw.peer as string }),
        ...(raw.configIndex === undefined ? {} : { configIndex: raw.configIndex as number }),
      };
      try {
        const result = await this.membership.run(request);
        if ('status' in result && typeof result.status === 'number' && result.status >= 400) return { status: result.status, body: { ...result, done: results } };
        results.push(result);
      } catch (error) {
        if (error instanceof MemberError) return { status: error.status, body: { error: error.message, done: results } };
        return { status: 503, body: { error: (error as Error).message, done: results } };
      }
    }
    return { status: 200, body: raw.group === undefined ? { results } : results[0]! };
  }

  /** Every group's state, each confirmed through ReadIndex, as one backup file (backup.ts). */
  async backup(): Promise<Uint8Array> {
    const groups: BackupGroup[] = [];
    for (const [name, dir, replica] of [
      ['kv', GROUP_DIR, this.parts.replica],
      ['zk', ZK_GROUP_DIR, this.parts.zk.replica],
      ['etcd', ETCD_GROUP_DIR, this.parts.etcd.replica],
    ] as const) {
      const state = await replica.backup(serverLimits.backupReadTimeoutMs);
      groups.push({ name, dir, ...state });
    }
    this.logger.info({ groups: groups.map((g) => ({ name: g.name, index: g.index, bytes: g.data.length })) }, 'backup taken');
    return encodeBackup({ createdMs: wallClockMs(), member: this.config.id, groups }, sha256);
  }

  async describeStatus(): Promise<object> {
    const raft = this.parts.replica.raft;
    const status = raft.status();
    const progress = status.role === 'leader' ? raft.core.describeProgress() : new Map<NodeId, string>();
    const connected = new Set(this.parts.transport.connectedPeers());
    const peers = [...this.peerAddresses]
      .filter(([id]) => id !== this.config.id)
      .map(([id, address]) => ({
        id,
        peer: formatAddress(address),
        client: this.formatKnown(this.members.get(id)?.client),
        admin: this.formatKnown(this.members.get(id)?.admin),
        connected: connected.has(id),
        progress: progress.get(id) ?? null,
      }));
    const addresses = this.addresses();
    return {
      ...status,
      // The OS process, so that an operator can find (and kill -9) the leader: `flotilla debug leader`.
      pid: processId(),
      logBytes: this.parts.storage.sizeBytes(),
      snapshotBytes: await directoryBytes(`${this.config.dataDir}/${GROUP_DIR}/snap`),
      pendingProposals: this.parts.replica.pendingCount(),
      clientConnections: this.parts.clientPort.connectionCount(),
      addresses: {
        peer: formatAddress(addresses.peer),
        client: formatAddress(addresses.client),
        admin: formatAddress(addresses.admin),
        zk: formatAddress(addresses.zk),
        ...(addresses.zkSecure === undefined ? {} : { zkSecure: formatAddress(addresses.zkSecure) }),
        etcd: formatAddress(addresses.etcd),
      },
      tls: this.parts.tls === undefined ? null : { clientCertAuth: this.parts.tls.clientCertAuth, serial: this.parts.tls.summary().serial },
      peers,
      zk: this.describeZk(),
      etcd: this.describeEtcd(),
      shards: this.parts.shards?.describe() ?? null,
    };
  }

  private describeEtcd(): object {
    const etcd = this.parts.etcd;
    const status = etcd.replica.raft.status();
    return { role: status.role, leader: status.leader, term: status.term, revision: etcd.machine.store.revision, compactRevision: etcd.machine.store.compactRevision };
  }

  /** etcd's MemberList: every voter and learner of the etcd group, with the addresses members gossip. */
  etcdMembers(): EtcdMember[] {
    const membership = this.parts.etcd.replica.raft.core.membership;
    const scheme = this.parts.tls === undefined ? 'http' : 'https';
    const entries = [...membership.voters.map((id) => [id, false] as const), ...membership.learners.map((id) => [id, true] as const)].sort(([a], [b]) => a - b);
    return entries.map(([id, isLearner]) => {
      const peer = this.peerAddresses.get(id);
      const etcd = this.members.get(id)?.etcd;
      return {
        id,
        name: `member-${id}`,
        peerUrls: peer === undefined ? [] : [`${scheme}://${formatAddress(peer)}`],
        clientUrls: etcd === undefined ? [] : [`${scheme}://${formatAddress(etcd)}`],
        isLearner,
      };
    });
  }

  private describeZk(): object {
    const zk = this.parts.zk;
    const status = zk.replica.raft.status();
    return {
      role: status.role,
      leader: status.leader,
      term: status.term,
      lastZxid: zk.machine.lastZxid,
      znodes: zk.machine.tree.nodeCount,
      sessions: [...zk.machine.sessions()].length,
      connections: this.parts.zkFront.connectionCount(),
      logBytes: this.parts.zkStorage.sizeBytes(),
    };
  }

  private formatKnown(address: Address | undefined): string | null {
    return address === undefined ? null : formatAddress(address);
  }

  private stepPeer(from: NodeId, group: number, message: PeerMessage): void {
    if (this.stopping) return;
    if (message.type === 'MemberInfo') {
      if (group !== MEMBER_GROUP_ID || message.from !== from) return this.dropPeerMessage(from, group, 'MemberInfo from the wrong group or sender');
      const known = this.members.get(from);
      this.members.set(from, { client: message.client, admin: message.admin, ...(message.zk === undefined ? {} : { zk: message.zk }), ...(message.etcd === undefined ? {} : { etcd: message.etcd }) });
      // A peer we had not heard from (or that moved) learns our addresses at once.
      if (known === undefined || formatAddress(known.client) !== formatAddress(message.client)) this.sendInfo(from);
      return;
    }
    if (message.type === 'EtcdForward') {
      if (group !== ETCD_SERVICE_GROUP_ID || message.from !== from) return this.dropPeerMessage(from, group, 'EtcdForward from the wrong group or sender');
      this.parts.etcd.proposeForwarded(message.command);
      return;
    }
    if (message.type === 'ZkForward' || message.type === 'ZkTouch') {
      if (group !== ZK_SERVICE_GROUP_ID || message.from !== from) return this.dropPeerMessage(from, group, `${message.type} from the wrong group or sender`);
      if (message.type === 'ZkForward') this.parts.zk.proposeForwarded(message.command);
      else this.parts.zk.touchedElsewhere(message.sessions);
      return;
    }
    const sharded = this.parts.shards?.hosts(group) === true;
    if ((group !== RAFT_GROUP_ID && group !== ZK_RAFT_GROUP_ID && group !== ETCD_RAFT_GROUP_ID && !sharded) || message.from !== from || message.to !== this.config.id) {
      return this.dropPeerMessage(from, group, `Raft message from ${message.from} to ${message.to} in group ${group}`);
    }
    if (sharded) this.parts.shards!.receive(group, message);
    else if (group === ZK_RAFT_GROUP_ID) this.parts.zk.replica.raft.receive(message);
    else if (group === ETCD_RAFT_GROUP_ID) this.parts.etcd.replica.raft.receive(message);
    else this.parts.replica.raft.receive(message);
  }

  /** A peer's connection closed: its process may be dead, so each group's follower may campaign early. */
  private peerClosed(id: NodeId): void {
    if (this.stopping) return;
    this.parts.shards?.peerClosed(id);
    for (const [group, node] of [
      ['kv', this.parts.replica.raft],
      ['zk', this.parts.zk.replica.raft],
      ['etcd', this.parts.etcd.replica.raft],
    ] as const) {
      const status = node.status();
      if (status.role !== 'follower' || status.leader !== id) continue;
      this.logger.info({ group, leader: id, term: status.term }, 'the connection to the leader closed: campaigning without waiting out the election timeout');
      node.peerUnreachable(id);
    }
  }

  private dropPeerMessage(from: NodeId, group: number, what: string): void {
    this.logger.warn({ peer: from, group }, `dropped a peer message: ${what}`);
  }

  private observeReady(node: RaftNode, ready: Ready): void {
    this.membership.observe(ready);
    const status = node.status();
    this.metrics.observeReady(ready, status);
    if (status.leader !== this.lastLoggedLeader) {
      this.lastLoggedLeader = status.leader;
      this.logger.info({ term: status.term, role: status.role, leader: status.leader }, 'leader changed');
    }
  }

  /** A member the log added (or moved): dial it, and remember it across restarts. */
  private learnPeer(id: NodeId, address: Address): void {
    if (id === this.config.id) return;
    const known = this.peerAddresses.get(id);
    if (known !== undefined && formatAddress(known) === formatAddress(address)) return;
    this.peerAddresses.set(id, address);
    this.parts.transport.setPeer(id, address);
    saveAddressBook(this.config.dataDir, this.parts.bootstrapVoters, this.peerAddresses);
    this.logger.info({ member: id, peer: formatAddress(address) }, "learned a member's peer address");
  }

  /** Storage failed: the node has stopped; the member must exit and recover on restart. */
  private fail(error: unknown): void {
    this.logger.fatal({ error: error instanceof Error ? error.message : String(error) }, 'storage failed; stopping (restart the member to recover)');
    void this.shutdown('storage failure', 1);
  }

  /** Tells every peer our client and admin addresses, now and every memberInfoIntervalMs. */
  private announce(): void {
    if (this.stopping) return;
    if (this.parts.zk.leaderlessFor(serverLimits.zkLeaderlessCloseMs)) this.parts.zkFront.closeAll('this member has no leader; the client should try another');
    for (const id of this.peerAddresses.keys()) if (id !== this.config.id) this.sendInfo(id);
    this.infoTimer = this.clock.setTimer(serverLimits.memberInfoIntervalMs, () => this.announce());
  }

  private sendInfo(to: NodeId): void {
    const { client, admin, zk, etcd } = this.addresses();
    const info: MemberInfo = { type: 'MemberInfo', from: this.config.id, client, admin, zk, etcd };
    this.parts.transport.send(to, MEMBER_GROUP_ID, info);
  }

  /** Our own addresses, for clientAddressOf(self). */
  private registerSelf(): void {
    const { client, admin, zk, etcd } = this.addresses();
    this.members.set(this.config.id, { client, admin, zk, etcd });
  }
}

function startTransport(
  config: ServerConfig,
  tls: MemberTls | undefined,
  logger: Logger,
  onMessage: (from: NodeId, group: number, message: PeerMessage) => void,
  onPeerClosed: (id: NodeId) => void,
): Promise<PeerTransport<PeerMessage>> {
  const peers = new Map([...config.members].filter(([id]) => id !== config.id));
  return PeerTransport.start<PeerMessage>({
    selfId: config.id,
    listen: { host: config.host, port: config.peerPort },
    peers,
    clusterSecret: config.clusterSecret,
    encode: encodePeerMessage,
    decode: decodePeerMessage,
    onMessage,
    onPeerClosed,
    logger,
    ...(tls === undefined ? {} : { tls }),
  });
}

/** mntr's zk_followers and zk_synced_followers (caught up to the commit index), on the leader only. */
function followerCounts(zk: ZkService, self: NodeId): { followers: number; synced: number } | undefined {
  const raft = zk.replica.raft;
  if (raft.isStopped()) return undefined;
  const status = raft.status();
  if (status.role !== 'leader') return undefined;
  const followers = [...raft.core.describeProgress().keys()].filter((id) => id !== self);
  return { followers: followers.length, synced: followers.filter((id) => (raft.core.matchOf(id) ?? 0) >= status.commit).length };
}

function openZk(
  config: ServerConfig,
  voters: readonly NodeId[],
  logger: Logger,
  clock: Clock,
  storage: ServerStorage,
  transport: PeerTransport<PeerMessage>,
  observe: (ready: Ready) => void,
  onFatal: (error: unknown) => void,
): Promise<ZkService> {
  return ZkService.open({
    config: { id: config.id, voters, ...defaultTiming, noopOnElection: true },
    observer: (_node, ready) => observe(ready),
    prng: new Prng(randomSeed()),
    clock,
    tickMs: config.tickMs,
    transport: transport.group(ZK_RAFT_GROUP_ID),
    storage,
    onFatal,
    raftStateBytesMax: config.raftStateBytesMax,
    // Every request that fits a ZooKeeper frame (jute.maxbuffer) fits a command, with room
    // for the command's own fields: an almost-1-MiB setData must not be refused by the log.
    limits: { commandBytesMax: 2 * serverLimits.zkFrameBytesMax },
    tickTimeMs: config.zkTickMs,
    requestTimeoutMs: Math.max(config.requestTimeoutMs, serverLimits.zkRequestTimeoutMsMin),
    wallClockMs,
    randomBytes: randomBytesArray,
    forward: (leader, command) => transport.send(leader, ZK_SERVICE_GROUP_ID, { type: 'ZkForward', from: config.id, command }),
    reportTouches: (leader, sessions) => transport.send(leader, ZK_SERVICE_GROUP_ID, { type: 'ZkTouch', from: config.id, sessions }),
  }).then((zk) => {
    logger.info({ lastZxid: zk.machine.lastZxid, znodes: zk.machine.tree.nodeCount }, 'zookeeper service recovered');
    return zk;
  });
}

function openEtcd(
  config: ServerConfig,
  voters: readonly NodeId[],
  logger: Logger,
  clock: Clock,
  storage: ServerStorage,
  transport: PeerTransport<PeerMessage>,
  observe: (ready: Ready) => void,
  onFatal: (error: unknown) => void,
): Promise<EtcdService> {
  return EtcdService.open({
    config: { id: config.id, voters, ...defaultTiming, noopOnElection: true },
    observer: (_node, ready) => observe(ready),
    prng: new Prng(randomSeed()),
    clock,
    tickMs: config.tickMs,
    transport: transport.group(ETCD_RAFT_GROUP_ID),
    storage,
    onFatal,
    raftStateBytesMax: config.raftStateBytesMax,
    // Every request the etcd port accepts fits a command, with room for the command's fields.
    limits: { commandBytesMax: 2 * serverLimits.etcdRequestBytesMax },
    requestTimeoutMs: Math.max(config.requestTimeoutMs, serverLimits.etcdRequestTimeoutMsMin),
    randomBytes: randomBytesArray,
    forward: (leader, command) => transport.send(leader, ETCD_SERVICE_GROUP_ID, { type: 'EtcdForward', from: config.id, command }),
  }).then((etcd) => {
    logger.info({ revision: etcd.machine.store.revision }, 'etcd service recovered');
    return etcd;
  });
}

/** Auth's host side: scrypt for passwords, and tokens signed under a key derived from the cluster secret (the same on every member). */
function etcdAuthHost(secret: string | Uint8Array): EtcdAuthHost {
  const key = hmacSha256(Buffer.from(secret), Buffer.from('flotilla-etcd-auth-token'));
  return { hashPassword, verifyPassword, sign: (payload) => hmacSha256(key, payload), sameBytes, wallClockMs, tokenTtlMs: etcdTokenTtlMs };
}

/** The header's cluster_id: the same on every member, derived from the bootstrap voters and the secret (which it does not reveal). */
function etcdClusterId(voters: readonly NodeId[], secret: string | Uint8Array): string {
  const digest = sha256(Buffer.concat([Buffer.from(`flotilla-etcd-cluster|${[...voters].sort((a, b) => a - b).join(',')}|`), Buffer.from(secret)]));
  return (BigInt(`0x${Buffer.from(digest).subarray(0, 8).toString('hex')}`) & 0x7fff_ffff_ffff_ffffn).toString();
}

function openKv(
  config: ServerConfig,
  voters: readonly NodeId[],
  logger: Logger,
  clock: Clock,
  storage: ServerStorage,
  transport: PeerTransport<PeerMessage>,
  observer: (node: RaftNode, ready: Ready) => void,
  onFatal: (error: unknown) => void,
): Promise<KvService> {
  const raftConfig: RaftConfig = {
    id: config.id,
    voters,
    ...defaultTiming,
    // A new leader commits an entry of its own term at once, which commits everything
    // before it (Raft §5.4.2) and lets waiting clients hear back promptly.
    noopOnElection: true,
  };
  logger.debug({ raft: raftConfig }, 'raft configuration');
  if (config.readMode !== 'read-index') logger.warn({ readMode: config.readMode }, 'UNSAFE: linearizable reads are served from local state without ReadIndex (a test-only setting)');
  return KvService.open({
    config: raftConfig,
    prng: new Prng(randomSeed()),
    clock,
    tickMs: config.tickMs,
    transport: transport.group(RAFT_GROUP_ID),
    storage,
    observer,
    onFatal,
    raftStateBytesMax: config.raftStateBytesMax,
    requestTimeoutMs: config.requestTimeoutMs,
    readMode: config.readMode,
  });
}

const addressBookFile = 'members.json';

/**
 * The member's address book (membership.ts): read from the data directory if this member
 * ran before, else made from --peers (a new cluster) or with no bootstrap voters (--join),
 * and written before the member talks to anyone. --peers still sets the address of every
 * member it names.
 */
async function openAddressBook(config: ServerConfig): Promise<{ bootstrapVoters: readonly NodeId[]; addresses: Map<NodeId, Address> }> {
  const file = `${config.dataDir}/${addressBookFile}`;
  await ensureDirectory(config.dataDir);
  if (await fileExists(file)) {
    let stored: ReturnType<typeof decodeAddressBook>;
    try {
      stored = decodeAddressBook(await readTextFileAsync(file));
    } catch (error) {
      throw new Error(`${file} is damaged (${(error as Error).message}); restore it from another member's copy or re-add this member`);
    }
    const addresses = new Map(stored.addresses);
    for (const [id, address] of config.members) addresses.set(id, address);
    if (addresses.size !== stored.addresses.size) saveAddressBook(config.dataDir, stored.bootstrapVoters, addresses);
    return { bootstrapVoters: stored.bootstrapVoters, addresses };
  }
  const bootstrapVoters = config.join === true ? [] : [...config.members.keys()].sort((a, b) => a - b);
  const addresses = new Map(config.members);
  saveAddressBook(config.dataDir, bootstrapVoters, addresses);
  return { bootstrapVoters, addresses };
}

function saveAddressBook(dataDir: string, bootstrapVoters: readonly NodeId[], addresses: ReadonlyMap<NodeId, Address>): void {
  writeFileDurably(`${dataDir}/${addressBookFile}`, new TextEncoder().encode(encodeAddressBook({ bootstrapVoters, addresses })));
}
