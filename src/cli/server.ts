// `flotilla server ...`: one member of a cluster, as an OS process (server/).
// `flotilla debug leader`: which member leads, asked on the native client protocol.
//
// Exit codes: 0 after a clean shutdown (SIGTERM, SIGINT); 1 on a failure while running;
// 2 for a configuration error; 3 when the data directory is damaged and the member refuses
// to start (the message names the file and the byte offset).

import { type Command, InvalidArgumentError, Option } from 'commander';
import { StorageError } from '../storage/errors.js';
import { RealClock, realClock } from '../platform/clock.js';
import { exit, onSignal, writeErr, writeOut } from '../platform/process.js';
import { absolutePath, readTextFile } from '../platform/server-files.js';
import { ConfigError, configFileInput, describeConfig, formatAddress, parseAddress, resolveConfig, secretFromEnvFile, type ConfigInput, type ServerConfig } from '../server/config.js';
import { createMemberLogger } from '../server/logging.js';
import { FlotillaServer } from '../server/server.js';
import { FlotillaClient } from '../server/client.js';
import { localCluster } from './start.js';

export const exitCodes = { ok: 0, failed: 1, config: 2, damagedData: 3 } as const;

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
  zkTickMs?: string;
  zkSuperDigest?: string;
}

export function registerServer(program: Command): void {
  program
    .command('server')
    .description('run one member of a Flotilla cluster')
    .option('--config <file>', 'a JSON file with any of the settings below (flags win)')
    .option('--id <n>', 'this member id (1, 2, ...)')
    .option('--peers <list>', 'every member, this one included: 1=host:port,2=host:port,... (peer ports)')
    .option('--data <dir>', 'data directory (created if missing; a restart resumes from it)')
    .option('--host <host>', 'interface to listen on (default: this member\'s host in --peers)')
    .option('--advertise-host <host>', 'host that peers and clients use to reach this member')
    .option('--peer-port <port>', 'peer port (default: this member\'s port in --peers)')
    .option('--client-port <port>', 'client port (0: any free port; printed in the "listening" log line)')
    .option('--admin-port <port>', 'admin HTTP port: /status and /metrics (0: any free port)')
    .option('--tick-ms <ms>', 'milliseconds per Raft tick (default 100; elections take 10-20 ticks)')
    .option('--cluster-secret <secret>', 'shared secret of the cluster (visible in ps: prefer --cluster-secret-file)')
    .option('--cluster-secret-file <file>', 'an env-file with FLOTILLA_CLUSTER_SECRET=...')
    .option('--log-level <level>', 'fatal, error, warn, info (default), debug, trace')
    .option('--raft-state-bytes-max <bytes>', 'snapshot the key/value store once the Raft log reaches this size (default 64 MiB)')
    .option('--request-timeout-ms <ms>', 'how long a request waits for its command to apply or its read to be confirmed (default 1000)')
    .option('--zk-port <port>', 'ZooKeeper client port (default 2181; 0: any free port)')
    .option('--zk-tick-ms <ms>', "ZooKeeper's tickTime: session timeouts are clamped to 2-20 ticks (default 2000)")
    .option('--zk-super-digest <id>', 'a ZooKeeper superuser, as user:base64(sha1(user:password))')
    .addOption(new Option('--read-mode <mode>', 'TESTS ONLY: unsafe-local or unsafe-leader-local serve reads without ReadIndex').hideHelp())
    .action((flags: ServerFlags) => runServer(flags));
  registerDebug(program);
}

async function runServer(flags: ServerFlags): Promise<void> {
  let config: ServerConfig;
  try {
    config = await loadConfig(flags);
  } catch (error) {
    if (!(error instanceof ConfigError || error instanceof SyntaxError || isFileError(error))) throw error;
    writeErr(`flotilla server: ${(error as Error).message}\n`);
    exit(exitCodes.config);
  }
  const logger = createMemberLogger(config.id, config.logLevel);
  logger.info({ config: describeConfig(config) }, 'starting');
  let server: FlotillaServer;
  try {
    server = await FlotillaServer.start(config, logger, realClock);
  } catch (error) {
    if (!(error instanceof StorageError)) throw error;
    const where = `${absolutePath(`${config.dataDir}/${error.file}`)}${error.offset === undefined ? '' : ` at byte offset ${error.offset}`}`;
    logger.fatal({ code: error.code, file: error.file, offset: error.offset }, `refusing to start: ${error.message}`);
    writeErr(`flotilla server: member ${config.id} refuses to start: the data in ${where} is damaged (${error.code}).\n${error.message}\n`);
    exit(exitCodes.damagedData);
  }
  const addresses = server.addresses();
  logger.info({ ports: { peer: addresses.peer.port, client: addresses.client.port, admin: addresses.admin.port, zk: addresses.zk.port }, client: formatAddress(addresses.client), admin: formatAddress(addresses.admin), zk: formatAddress(addresses.zk) }, 'listening');
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
  exit(await server.done);
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
    zkTickMs: flags.zkTickMs,
    zkSuperDigest: flags.zkSuperDigest,
  };
  const secretFile = flags.clusterSecretFile ?? (typeof file.clusterSecretFile === 'string' ? file.clusterSecretFile : undefined);
  const secret = secretFile === undefined ? undefined : secretFromEnvFile(await readTextFile(secretFile), secretFile);
  return resolveConfig(file, fromFlags, secret);
}

function isFileError(error: unknown): boolean {
  return typeof (error as { code?: unknown } | undefined)?.code === 'string' && typeof (error as { path?: unknown }).path === 'string';
}

// ---- flotilla debug ----

function registerDebug(program: Command): void {
  const defaultMembers = localCluster.clientAddresses().join(',');
  const debug = program.command('debug').description('ask a cluster about itself on the native client protocol (`flotilla kv` reads and writes)');
  debug.command('leader').description('ask the cluster for its leader')
    .option('--members <list>', 'client addresses host:port,...', defaultMembers)
    .action((options: { members: string }) => withClient(options.members, async (client) => {
      const { leader, client: address } = await client.leader();
      writeOut(leader === 0 ? 'no leader known\n' : `leader: member ${leader}${address === null ? '' : ` (client port ${formatAddress(address)})`}\n`);
    }));
}

async function withClient(members: string, body: (client: FlotillaClient) => Promise<void>): Promise<void> {
  const endpoints = members.split(',').map((text) => {
    try {
      return parseAddress(text.trim(), '--members');
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  });
  const client = new FlotillaClient({ endpoints, callDeadlineMs: 10_000 });
  try {
    await body(client);
  } catch (error) {
    writeErr(`flotilla debug: ${(error as Error).message}\n`);
    exit(exitCodes.failed);
  } finally {
    client.close();
  }
}
