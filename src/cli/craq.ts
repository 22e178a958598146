// `flotilla craq node|put|get|status`: CRAQ chain nodes as processes, and a client for
// them (src/craq/README.md). Membership lives in a ZooKeeper-compatible service — a
// running `flotilla server`'s ZooKeeper port, or Apache ZooKeeper.
//
// Exit codes: 0 done; 1 a failure (no node answered, a write of unknown outcome, the
// node's ZooKeeper session ended); 2 bad usage; 4 the data directory is in use.

import { type Command, InvalidArgumentError, Option } from 'commander';
import { realClock } from '../platform/clock.js';
import { exit, onSignal, writeErr, writeOut } from '../platform/process.js';
import { CraqClient, CraqClientError } from '../craq/client.js';
import { CraqConfigError, CraqDataInUseError, runCraqNode, type RunningCraqNode } from '../craq/server.js';
import type { ReadMode } from '../craq/types.js';
import { localZkServers, zkServerList } from './zk-servers.js';

export const craqExitCodes = { ok: 0, failed: 1, usage: 2, dataInUse: 4 } as const;

function integer(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (!/^\d+$/.test(value) || number < min || number > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return number;
  };
}

function readMode(value: string): ReadMode {
  if (value === 'strong' || value === 'eventual') return { kind: value };
  const match = /^bounded:(\d{1,9})$/.exec(value);
  if (match !== null) return { kind: 'bounded', versionsMax: Number(match[1]) };
  throw new InvalidArgumentError('--mode must be strong, eventual or bounded:N (N versions newer than committed at most)');
}

function chainList(value: string): string[] {
  const chains = value.split(',').filter((part) => part.length > 0);
  if (chains.length === 0) throw new InvalidArgumentError('name at least one chain');
  return chains;
}

interface ClientFlags {
  zk: string[];
  chains: string[];
  timeoutMs: number;
}

export function registerCraq(program: Command): void {
  const craq = program
    .command('craq')
    .description('CRAQ: chain replication with apportioned queries, chains kept in ZooKeeper')
    .exitOverride((error) => exit(error.exitCode === 0 ? craqExitCodes.ok : craqExitCodes.usage));

  craq
    .command('node')
    .description('run one chain node: registers under /craq/<chain> and joins the chain at the tail')
    .addOption(new Option('--zk <list>', 'ZooKeeper servers, host:port,...').argParser(zkServerList).default([...localZkServers], localZkServers.join(',')))
    .requiredOption('--data <dir>', 'data directory (write-ahead log)')
    .option('--chain <name>', 'the chain to join', 'default')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--advertise-host <host>', 'address peers and clients dial (default: --host)')
    .option('--port <n>', 'port for peers and clients (0: any)', integer('--port', 0, 65_535), 0)
    .option('--session-timeout-ms <ms>', 'ZooKeeper session timeout: how soon a dead node leaves the chain', integer('--session-timeout-ms', 100, 600_000), 4_000)
    .option('--tick-ms <ms>', 'how often the node re-sends what may have been lost', integer('--tick-ms', 1, 10_000), 20)
    .option('--serve-rate-max <n>', 'client requests started per second at most: an emulated per-node capacity, for benchmarks on one machine', integer('--serve-rate-max', 1, 10_000_000))
    .action(async (flags: NodeFlags) => {
      await runNodeCommand(flags);
    });

  const clientOptions = (command: Command): Command =>
    command
      .addOption(new Option('--zk <list>', 'ZooKeeper servers, host:port,...').argParser(zkServerList).default([...localZkServers], localZkServers.join(',')))
      .option('--chains <list>', 'the chains keys are spread over, in the same order for every client', chainList, ['default'])
      .option('--timeout-ms <ms>', 'how long to keep trying', integer('--timeout-ms', 1, 600_000), 10_000);

  clientOptions(craq.command('put').argument('<key>').argument('<value>').description("write a value at the head of the key's chain")).action(
    async (key: string, value: string, flags: ClientFlags) => {
      await withClient(flags, async (client) => {
        const { version } = await client.write(key, value);
        writeOut(`version ${version}\n`);
      });
    },
  );

  clientOptions(craq.command('get').argument('<key>').description('read a key from a random node of its chain (or --node)'))
    .option('--mode <mode>', 'strong, eventual or bounded:N', readMode, { kind: 'strong' } as ReadMode)
    .option('--node <id>', 'read at this node id (see `craq status`)', integer('--node', 1, 2 ** 40))
    .action(async (key: string, flags: ClientFlags & { mode: ReadMode; node?: number }) => {
      await withClient(flags, async (client) => {
        if (flags.node !== undefined) {
          const reply = await waitForView(client, client.chainOf(key), flags.timeoutMs).then(() => client.readAt(client.chainOf(key), flags.node as never, key, flags.mode));
          if (reply.type !== 'read') throw new CraqClientError('unavailable', reply.type === 'error' ? reply.message : `unexpected ${reply.type} reply`);
          writeOut(`${reply.value ?? '(absent)'}\tversion ${reply.version}${reply.clean ? '' : ' (dirty)'}\tnode ${flags.node}\n`);
          return;
        }
        const result = await client.read(key, flags.mode);
        writeOut(`${result.value ?? '(absent)'}\tversion ${result.version}${result.clean ? '' : ' (dirty)'}\tnode ${result.node}\n`);
      });
    });

  clientOptions(craq.command('status').description('print each chain: epoch and members (head first) with their addresses')).action(async (flags: ClientFlags) => {
    await withClient(flags, async (client) => {
      for (const chain of flags.chains) {
        const view = await waitForView(client, chain, flags.timeoutMs);
        const members = view.config.members.map((id) => `${id}@${view.addresses.get(id)}`).join(' -> ');
        writeOut(`${chain}\tepoch ${view.config.epoch}\t${members.length === 0 ? '(no members)' : members}\n`);
      }
    });
  });
}

async function waitForView(client: CraqClient, chain: string, timeoutMs: number): Promise<NonNullable<ReturnType<CraqClient['view']>>> {
  const step = 50;
  for (let waited = 0; waited <= timeoutMs; waited += step) {
    const view = client.view(chain);
    if (view !== undefined) return view;
    await new Promise<void>((resolve) => realClock.setTimer(step, resolve));
  }
  throw new CraqClientError('unavailable', `no view of chain ${chain} within ${timeoutMs} ms`);
}

async function withClient(flags: ClientFlags, body: (client: CraqClient) => Promise<void>): Promise<void> {
  let client: CraqClient | undefined;
  try {
    client = await CraqClient.connect({ zkServers: flags.zk, chains: flags.chains, retryDeadlineMs: flags.timeoutMs, sessionTimeoutMs: Math.max(flags.timeoutMs, 2_000) });
    await body(client);
    await client.close();
    exit(craqExitCodes.ok);
  } catch (error) {
    await client?.close();
    writeErr(`flotilla craq: ${error instanceof Error ? error.message : String(error)}\n`);
    exit(error instanceof CraqClientError && error.code === 'bad-request' ? craqExitCodes.usage : craqExitCodes.failed);
  }
}

interface NodeFlags {
  zk: string[];
  data: string;
  chain: string;
  host: string;
  advertiseHost?: string;
  port: number;
  sessionTimeoutMs: number;
  tickMs: number;
  serveRateMax?: number;
}

async function runNodeCommand(flags: NodeFlags): Promise<void> {
  const log = (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void => writeOut(`${JSON.stringify({ level, msg, ...fields })}\n`);
  let node: RunningCraqNode | undefined;
  const fatal = (reason: string): void => {
    log('error', 'stopping', { reason });
    writeErr(`flotilla craq node: ${reason}\n`);
    exit(craqExitCodes.failed);
  };
  try {
    node = await runCraqNode({
      zkServers: flags.zk,
      dataDir: flags.data,
      chain: flags.chain,
      host: flags.host,
      port: flags.port,
      ...(flags.advertiseHost === undefined ? {} : { advertiseHost: flags.advertiseHost }),
      sessionTimeoutMs: flags.sessionTimeoutMs,
      tickMs: flags.tickMs,
      ...(flags.serveRateMax === undefined ? {} : { serveRateMax: flags.serveRateMax }),
      log,
      onFatal: fatal,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    writeErr(`flotilla craq node: ${message}\n`);
    exit(error instanceof CraqConfigError ? craqExitCodes.usage : error instanceof CraqDataInUseError ? craqExitCodes.dataInUse : craqExitCodes.failed);
  }
  const running = node;
  const shutdown = (): void => {
    void running.stop().then(() => exit(craqExitCodes.ok));
  };
  onSignal('SIGTERM', shutdown);
  onSignal('SIGINT', shutdown);
}
