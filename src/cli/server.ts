// `flotilla server ...`: one member of a cluster, as an OS process (server/).
// `flotilla debug leader` (debug.ts) is registered with it.
//
// Before anything in the data directory is read, the member takes the directory's lock
// (DIR/LOCK, holding its pid; platform/data-lock.ts): a second process on the same data
// would recover and append to a live member's write-ahead log.
//
// Exit codes: 0 after a clean shutdown (SIGTERM, SIGINT); 1 on a failure while running (or
// a port already in use); 2 for a configuration error; 3 when the data directory is damaged
// and the member refuses to start (the message names the file and the byte offset); 4 when
// another live process holds the data directory (the message names its pid).
//
// SIGHUP reloads the TLS certificate, key and CA files (src/server/README.md "TLS").

import { type Command, Option } from 'commander';
import { StorageError } from '../storage/errors.js';
import { RealClock, realClock } from '../platform/clock.js';
import { acquireDataLock, type DataLock } from '../platform/data-lock.js';
import { exit, onSignal, writeErr } from '../platform/process.js';
import { absolutePath, fileExists, readTextFile } from '../platform/server-files.js';
import { getJson } from '../platform/http-get.js';
import { loadClientTls, TlsLoadError } from '../platform/tls.js';
import { nodeId } from '../stdx/types.js';
import { ConfigError, configFileInput, describeConfig, formatAddress, parseAddress, resolveConfig, secretFromEnvFile, type ConfigInput, type ServerConfig } from '../server/config.js';
import { createMemberLogger } from '../server/logging.js';
import { FlotillaServer } from '../server/server.js';

export const exitCodes = { ok: 0, failed: 1, config: 2, damagedData: 3, dataInUse: 4 } as const;

/** After SIGTERM, a member that has not stopped within this time exits anyway (code 1). */
const SHUTDOWN_DEADLINE_MS = 10_000;

interface ServerFlags {
  config?: string;
  id?: string;
  peers?: string;
  data?: string;
  host?: string;
  advertiseHost?: string;
  peerPort?: string;
  clientPort?: string;
  adminPort?: string;
  tickMs?: string;
  clusterSecret?: string;
  clusterSecretFile?: string;
  logLevel?: string;
  raftStateBytesMax?: string;
  requestTimeoutMs?: string;
  readMode?: string;
  zkPort?: string;
  etcdPort?: string;
  zkTickMs?: string;
  etcdWatchProgressNotifyMs?: string;
  zkSuperDigest?: string;
  join?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  clientCertAuth?: boolean;
  zkSecurePort?: string;
  shards?: string;
  shardUnsafe?: string;
  allowFaults?: boolean;
}

export function registerServer(program: Command): void {
  program
    .command('server')
    .description('run one member of a Flotilla cluster')
    .option('--config <file>', 'a JSON file with any of the settings below (flags win)')
    .option('--id <n>', 'this member id (1, 2, ...)')
    .option('--peers <list>', 'every member, this one included: 1=host:port,2=host:port,... (peer ports)')
    .option('--data <dir>', 'data directory (created if missing; a restart resumes from it)')
    .option('--host <host>', "interface to listen on (default: this member's host in --peers)")
    .option('--advertise-host <host>', 'host that peers and clients use to reach this member')
    .option('--peer-port <port>', "peer port (default: this member's port in --peers)")
    .option('--client-port <port>', 'client port (0: any free port; printed in the "listening" log line)')
    .option('--admin-port <port>', 'admin HTTP port: /status and /metrics (0: any free port)')
    .option('--tick-ms <ms>', 'milliseconds per Raft tick (default 100; elections take 10-20 ticks)')
    .option('--cluster-secret <secret>', 'shared secret of the cluster (visible in ps: prefer --cluster-secret-file)')
    .option('--cluster-secret-file <file>', 'an env-file with FLOTILLA_CLUSTER_SECRET=...')
    .option('--log-level <level>', 'fatal, error, warn, info (default), debug, trace')
    .option('--raft-state-bytes-max <bytes>', 'snapshot the key/value store once the Raft log reaches this size (default 64 MiB)')
    .option('--request-timeout-ms <ms>', 'how long a request waits for its command to apply or its read to be confirmed (default 1000)')
    .option('--shards <layout>', 'also host the shard controller and sharded key/value groups: "ctrl=1,2,3;100=1,2,3;101=1,2,3" (group → member ids)')
    .option('--zk-port <port>', 'ZooKeeper client port (default 2181; 0: any free port)')
    .option('--etcd-port <port>', "etcd's v3 gRPC API (etcdctl, etcd clients; default 2379; 0: any free port)")
    .option('--etcd-watch-progress-notify-ms <ms>', 'how often an idle etcd watch created with progress_notify hears the current revision (default 600000, as etcd)')
    .option('--zk-tick-ms <ms>', "ZooKeeper's tickTime: session timeouts are clamped to 2-20 ticks (default 2000)")
    .option('--zk-super-digest <id>', 'a ZooKeeper superuser, as user:base64(sha1(user:password))')
    .option('--tls-cert <file>', "this member's certificate (PEM): TLS on the peer, client and admin ports; it is also the client certificate shown to peers")
    .option('--tls-key <file>', "the certificate's private key (PEM, unencrypted)")
    .option('--tls-ca <file>', 'the CA certificate(s) (PEM) that sign the members’ (and clients’) certificates')
    .option('--client-cert-auth', 'require a client certificate signed by the CA on the client, admin and ZooKeeper secure ports (peers always need one)')
    .option('--zk-secure-port <port>', "ZooKeeper's secureClientPort: the ZooKeeper protocol over TLS (0: any free port); --zk-port stays plain")
    .option(
      '--join <admin>',
      "join a running cluster: learn its members from one member's admin address (host:port); --peers then needs name only this member, and an empty --data. Then run flotilla member add and promote",
    )
    .addOption(new Option('--shard-unsafe <bug>', 'TESTS ONLY: serve-before-arrival serves a shard before its data arrives').hideHelp())
    .option('--allow-faults', "the dashboard's fault buttons: kill, pause and resume members, cut links, force elections (a local test cluster only; npm start sets it)")
    .addOption(new Option('--read-mode <mode>', 'TESTS ONLY: unsafe-local or unsafe-leader-local serve reads without ReadIndex').hideHelp())
    .action((flags: ServerFlags) => runServer(flags));
}

async function runServer(flags: ServerFlags): Promise<void> {
  let config: ServerConfig;
  try {
    config = await loadConfig(flags);
  } catch (error) {
    if (!(error instanceof ConfigError || error instanceof SyntaxError || error instanceof TlsLoadError || isFileError(error))) throw error;
    writeErr(`flotilla server: ${(error as Error).message}\n`);
    exit(exitCodes.config);
  }
  const logger = createMemberLogger(config.id, config.logLevel);
  const lock = await lockDataDirectory(config, logger);
  if (flags.join !== undefined) config = await joinCluster(config, flags.join, logger, lock);
  logger.info({ config: describeConfig(config), ...(lock.tookOverPid === undefined ? {} : { staleLockPid: lock.tookOverPid }) }, 'starting');
  let server: FlotillaServer;
  try {
    server = await FlotillaServer.start(config, logger, realClock);
  } catch (error) {
    await lock.release();
    if (error instanceof StorageError) {
      const where = `${absolutePath(`${config.dataDir}/${error.file}`)}${error.offset === undefined ? '' : ` at byte offset ${error.offset}`}`;
      logger.fatal({ code: error.code, file: error.file, offset: error.offset }, `refusing to start: ${error.message}`);
      writeErr(`flotilla server: member ${config.id} refuses to start: the data in ${where} is damaged (${error.code}).\n${error.message}\n`);
      exit(exitCodes.damagedData);
    }
    if (error instanceof TlsLoadError) {
      logger.fatal({ error: error.message }, 'refusing to start: the TLS files are not usable');
      writeErr(`flotilla server: member ${config.id} refuses to start: ${error.message}\n`);
      exit(exitCodes.config);
    }
    if (isAddressInUse(error)) {
      logger.fatal({ address: `${error.address}:${error.port}` }, 'cannot listen: the address is in use');
      writeErr(`flotilla server: member ${config.id} cannot listen on ${error.address}:${error.port}: the address is in use (by another member or program).\n`);
      exit(exitCodes.failed);
    }
    throw error;
  }
  // Before "listening": whoever sees that line may send SIGTERM at once, and without a
  // handler the signal would kill the member instead of stopping it cleanly.
  const stop = (signal: string) => {
    // A member that cannot finish its shutdown must still go away.
    new RealClock({ keepAlive: false }).setTimer(SHUTDOWN_DEADLINE_MS, () => {
      logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown did not finish in time; exiting');
      exit(exitCodes.failed);
    });
    void server.shutdown(signal);
  };
  onSignal('SIGTERM', () => stop('SIGTERM'));
  onSignal('SIGINT', () => stop('SIGINT'));
  onSignal('SIGHUP', () => server.reloadTls());
  const addresses = server.addresses();
  logger.info(
    {
      ports: {
        peer: addresses.peer.port,
        client: addresses.client.port,
        admin: addresses.admin.port,
        zk: addresses.zk.port,
        ...(addresses.zkSecure === undefined ? {} : { zkSecure: addresses.zkSecure.port }),
        etcd: addresses.etcd.port,
      },
      client: formatAddress(addresses.client),
      admin: formatAddress(addresses.admin),
      zk: formatAddress(addresses.zk),
      ...(addresses.zkSecure === undefined ? {} : { zkSecure: formatAddress(addresses.zkSecure) }),
      etcd: formatAddress(addresses.etcd),
      tls: config.tls !== undefined,
    },
    'listening',
  );
  const code = await server.done;
  await lock.release();
  exit(code);
}

/**
 * --join: a member with a new data directory learns the cluster's members (and their peer
 * addresses) from one member's /status, and starts with no bootstrap voters, waiting to be
 * added (`flotilla member add`). A member that already has an address book joined before.
 */
async function joinCluster(config: ServerConfig, admin: string, logger: ReturnType<typeof createMemberLogger>, lock: DataLock): Promise<ServerConfig> {
  if (await fileExists(`${config.dataDir}/members.json`)) {
    logger.info({ join: admin }, 'this member already belongs to a cluster (its data directory has members.json): --join is ignored');
    return config;
  }
  let status: { id?: unknown; addresses?: { peer?: unknown }; peers?: { id?: unknown; peer?: unknown }[] };
  try {
    const tls = config.tls === undefined ? undefined : loadClientTls({ cacert: config.tls.caFile, cert: config.tls.certFile, key: config.tls.keyFile });
    status = (await getJson(`${tls === undefined ? 'http' : 'https'}://${admin}/status`, 5000, tls)) as typeof status;
  } catch (error) {
    await lock.release();
    writeErr(`flotilla server: cannot join through ${admin}: ${(error as Error).message}\n`);
    exit(exitCodes.config);
  }
  const members = new Map(config.members);
  const add = (id: unknown, peer: unknown) => {
    if (typeof id === 'number' && typeof peer === 'string' && id !== config.id) members.set(nodeId(id), parseAddress(peer, `member ${id}`));
  };
  add(status.id, status.addresses?.peer);
  for (const peer of status.peers ?? []) add(peer.id, peer.peer);
  logger.info({ join: admin, members: [...members.keys()] }, 'joining a running cluster: waiting to be added (flotilla member add)');
  return { ...config, members, join: true };
}

/** Takes the data directory's lock, or exits 4 naming the live process that holds it. */
async function lockDataDirectory(config: ServerConfig, logger: ReturnType<typeof createMemberLogger>): Promise<DataLock> {
  const result = await acquireDataLock(config.dataDir);
  if (result.acquired) return result.lock;
  const directory = absolutePath(config.dataDir);
  logger.fatal({ dataDir: directory, pid: result.pid, lockFile: result.file }, `refusing to start: the data directory is in use by process ${result.pid}`);
  writeErr(
    `flotilla server: member ${config.id} refuses to start: its data directory ${directory} is in use by a running process (pid ${result.pid}). ` +
      `Nothing in it was read. Stop that process first; if it is not a flotilla process, delete ${result.file}.\n`,
  );
  exit(exitCodes.dataInUse);
}

function isAddressInUse(error: unknown): error is { code: 'EADDRINUSE'; address: string; port: number } {
  return (error as { code?: unknown } | undefined)?.code === 'EADDRINUSE';
}

async function loadConfig(flags: ServerFlags): Promise<ServerConfig> {
  const file = flags.config === undefined ? {} : configFileInput(JSON.parse(await readTextFile(flags.config)), flags.config);
  const fromFlags: ConfigInput = {
    id: flags.id,
    peers: flags.peers,
    dataDir: flags.data,
    host: flags.host,
    advertiseHost: flags.advertiseHost,
    peerPort: flags.peerPort,
    clientPort: flags.clientPort,
    adminPort: flags.adminPort,
    tickMs: flags.tickMs,
    clusterSecret: flags.clusterSecret,
    clusterSecretFile: flags.clusterSecretFile,
    logLevel: flags.logLevel,
    raftStateBytesMax: flags.raftStateBytesMax,
    requestTimeoutMs: flags.requestTimeoutMs,
    readMode: flags.readMode,
    zkPort: flags.zkPort,
    etcdPort: flags.etcdPort,
    zkTickMs: flags.zkTickMs,
    etcdProgressNotifyMs: flags.etcdWatchProgressNotifyMs,
    zkSuperDigest: flags.zkSuperDigest,
    tlsCert: flags.tlsCert,
    tlsKey: flags.tlsKey,
    tlsCa: flags.tlsCa,
    clientCertAuth: flags.clientCertAuth,
    zkSecurePort: flags.zkSecurePort,
    shards: flags.shards,
    shardUnsafe: flags.shardUnsafe,
    allowFaults: flags.allowFaults,
  };
  const secretFile = flags.clusterSecretFile ?? (typeof file.clusterSecretFile === 'string' ? file.clusterSecretFile : undefined);
  const secret = secretFile === undefined ? undefined : secretFromEnvFile(await readTextFile(secretFile), secretFile);
  return resolveConfig(file, fromFlags, secret);
}

function isFileError(error: unknown): boolean {
  return typeof (error as { code?: unknown } | undefined)?.code === 'string' && typeof (error as { path?: unknown }).path === 'string';
}
