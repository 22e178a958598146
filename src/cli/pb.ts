// `flotilla pb serve|put|get|incr|token|status`: a primary/backup replicated key/value
// service (src/pb/README.md). Run `serve` twice on the same --service: the first becomes
// primary, the second its backup; kill the primary and the backup takes over. The primary
// is found and chosen through a ZooKeeper-compatible service — a running `flotilla
// server`'s ZooKeeper port, or Apache ZooKeeper.
//
// Exit codes: 0 done; 1 a failure (no primary answered, the replica halted or was
// deposed); 2 bad usage; 4 the data directory is in use.

import { type Command, InvalidArgumentError, Option } from 'commander';
import { exit, onSignal, writeErr, writeOut } from '../platform/process.js';
import { PbClient, PbClientError } from '../pb/client.js';
import { PbConfigError, checkServiceName, readService, servicePaths } from '../pb/coordination.js';
import { PbDataInUseError, runPbNode, type RunningPbNode } from '../pb/server.js';
import type { KvOp } from '../pb/kv.js';
import { ZkClient } from '../zkclient/index.js';
import { localZkServers, zkServerList } from './zk-servers.js';

export const pbExitCodes = { ok: 0, failed: 1, usage: 2, dataInUse: 4 } as const;

function integer(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (!/^-?\d+$/.test(value) || number < min || number > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return number;
  };
}

function serviceName(value: string): string {
  const bad = checkServiceName(value);
  if (bad !== undefined) throw new InvalidArgumentError(bad);
  return value;
}

interface ClientFlags {
  zk: string[];
  service: string;
  timeoutMs: number;
}

interface ServeFlags {
  zk: string[];
  data: string;
  service: string;
  host: string;
  advertiseHost?: string;
  port: number;
  sessionTimeoutMs: number;
  tickMs: number;
}

export function registerPb(program: Command): void {
  const pb = program
    .command('pb')
    .description('primary/backup replication: a logged, replayed key/value machine; the primary chosen by test-and-set in ZooKeeper')
    .exitOverride((error) => exit(error.exitCode === 0 ? pbExitCodes.ok : pbExitCodes.usage));

  pb.command('serve')
    .description('run one replica: primary if none is live, else the backup of the live one')
    .addOption(new Option('--zk <list>', 'ZooKeeper servers, host:port,...').argParser(zkServerList).default([...localZkServers], localZkServers.join(',')))
    .requiredOption('--data <dir>', 'data directory (holds the lock that keeps two replicas off one directory)')
    .option('--service <name>', 'the service (/pb/<name> in ZooKeeper)', serviceName, 'default')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--advertise-host <host>', 'address the other replica and clients dial (default: --host)')
    .option('--port <n>', 'port for the logging channel and clients (0: any)', integer('--port', 0, 65_535), 0)
    .option('--session-timeout-ms <ms>', 'ZooKeeper session timeout: how soon a dead primary is replaced', integer('--session-timeout-ms', 100, 600_000), 4_000)
    .option('--tick-ms <ms>', 'how often due timers of the machine are fired', integer('--tick-ms', 1, 10_000), 10)
    .action(async (flags: ServeFlags) => {
      await serve(flags);
    });

  const clientCommand = (name: string, description: string): Command =>
    pb
      .command(name)
      .description(description)
      .addOption(new Option('--zk <list>', 'ZooKeeper servers, host:port,...').argParser(zkServerList).default([...localZkServers], localZkServers.join(',')))
      .option('--service <name>', 'the service', serviceName, 'default')
      .option('--timeout-ms <ms>', 'how long to keep trying', integer('--timeout-ms', 1, 600_000), 10_000);

  clientCommand('put', 'write a value')
    .argument('<key>')
    .argument('<value>')
    .option('--ttl-ms <ms>', 'the key expires this long after the write', integer('--ttl-ms', 1, 24 * 3600 * 1000))
    .action(async (key: string, value: string, flags: ClientFlags & { ttlMs?: number }) => {
      await run(flags, { type: 'put', key, value, ...(flags.ttlMs === undefined ? {} : { ttlMs: flags.ttlMs }) });
    });
  clientCommand('get', 'read a value (through the log, like every request)')
    .argument('<key>')
    .action(async (key: string, flags: ClientFlags) => {
      await run(flags, { type: 'get', key });
    });
  clientCommand('incr', 'add to a counter')
    .argument('<key>')
    .argument('[by]', 'the amount (default 1)', integer('by', -(2 ** 40), 2 ** 40), 1)
    .action(async (key: string, by: number, flags: ClientFlags) => {
      await run(flags, { type: 'incr', key, by });
    });
  clientCommand('token', 'store a fresh random token at a key')
    .argument('<key>')
    .action(async (key: string, flags: ClientFlags) => {
      await run(flags, { type: 'token', key });
    });
  clientCommand('status', 'print the epoch, the primary and the in-sync backup').action(async (flags: ClientFlags) => {
    let zk: ZkClient | undefined;
    try {
      zk = await ZkClient.connect({ servers: flags.zk, sessionTimeoutMs: Math.max(2_000, flags.timeoutMs) });
      const paths = servicePaths(flags.service);
      const { record } = await readService(zk, paths);
      const primary = await zk.getData(paths.primary).then(
        ({ data }) => new TextDecoder().decode(data ?? new Uint8Array()),
        () => '(none)',
      );
      writeOut(`${flags.service}\tepoch ${record.epoch}\tprimary ${primary}\tin-sync backup ${record.inSync ?? '(none)'}\n`);
      await zk.close();
      exit(pbExitCodes.ok);
    } catch (error) {
      await zk?.close().catch(() => undefined);
      writeErr(`flotilla pb: ${error instanceof Error ? error.message : String(error)}\n`);
      exit(pbExitCodes.failed);
    }
  });
}

async function run(flags: ClientFlags, op: KvOp): Promise<void> {
  let client: PbClient | undefined;
  try {
    client = await PbClient.connect({ zkServers: flags.zk, service: flags.service, retryDeadlineMs: flags.timeoutMs, sessionTimeoutMs: Math.max(flags.timeoutMs, 2_000) });
    const { output, epoch } = await client.call(op);
    await client.close();
    if (output.type === 'error') {
      writeErr(`flotilla pb: ${output.message}\n`);
      exit(output.code === 'bad-request' ? pbExitCodes.usage : pbExitCodes.failed);
    }
    writeOut(`${output.value ?? '(absent)'}\tversion ${output.version}\tepoch ${epoch}\n`);
    exit(pbExitCodes.ok);
  } catch (error) {
    await client?.close();
    writeErr(`flotilla pb: ${error instanceof Error ? error.message : String(error)}\n`);
    exit(error instanceof PbClientError && error.code === 'bad-request' ? pbExitCodes.usage : pbExitCodes.failed);
  }
}

async function serve(flags: ServeFlags): Promise<void> {
  const log = (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void => writeOut(`${JSON.stringify({ level, msg, ...fields })}\n`);
  const fatal = (reason: string): void => {
    log('error', 'stopping', { reason });
    writeErr(`flotilla pb serve: ${reason}\n`);
    exit(pbExitCodes.failed);
  };
  let node: RunningPbNode;
  try {
    node = await runPbNode({
      zkServers: flags.zk,
      dataDir: flags.data,
      service: flags.service,
      host: flags.host,
      port: flags.port,
      ...(flags.advertiseHost === undefined ? {} : { advertiseHost: flags.advertiseHost }),
      sessionTimeoutMs: flags.sessionTimeoutMs,
      tickMs: flags.tickMs,
      log,
      onFatal: fatal,
    });
  } catch (error) {
    writeErr(`flotilla pb serve: ${error instanceof Error ? error.message : String(error)}\n`);
    exit(error instanceof PbConfigError ? pbExitCodes.usage : error instanceof PbDataInUseError ? pbExitCodes.dataInUse : pbExitCodes.failed);
  }
  const running = node;
  const shutdown = (): void => {
    void running.stop().then(() => exit(pbExitCodes.ok));
  };
  onSignal('SIGTERM', shutdown);
  onSignal('SIGINT', shutdown);
}
