// `flotilla zk ls|get|set|create|delete|stat|watch`: a ZooKeeper ensemble (Apache
// ZooKeeper or Flotilla's compatible service) from the command line, through ZkClient
// (zkclient/). Output follows zkCli.sh where it has a convention (`Created <path>`, the
// `stat` field names), with children sorted for deterministic output.
//
// Exit codes: 0 done; 1 ZooKeeper answered with an error (its code name is printed, e.g.
// NONODE) or no server could be reached (CONNECTIONLOSS); 2 bad usage.

import { type Command, InvalidArgumentError, Option } from 'commander';
import { exit, onSignal, writeErr, writeOut } from '../platform/process.js';
import { Err, ZkClient, ZkError, type Stat, type WatchEvent } from '../zkclient/index.js';

export const zkExitCodes = { ok: 0, zkError: 1, usage: 2 } as const;

interface ZkFlags {
  server: string[];
  timeoutMs: number;
}

type Output = string | undefined;

/** The ZooKeeper ports of the cluster `npm start` runs (ZooKeeper's usual 2181, then 2182, 2183). */
const localServers = ['127.0.0.1:2181', '127.0.0.1:2182', '127.0.0.1:2183'];

export function registerZk(program: Command): void {
  const zk = program
    .command('zk')
    .description('read, write and watch znodes on a ZooKeeper-compatible server')
    .addOption(new Option('--server <list>', 'servers, host:port,... (any one of them)').argParser(serverList).default(localServers, localServers.join(',')))
    .option('--timeout-ms <ms>', 'session timeout; also how long to try to connect', positiveInteger('--timeout-ms'), 5_000)
    // Usage errors exit 2 (zkExitCodes.usage); --help still exits 0. Subcommands created
    // below inherit this.
    .exitOverride((error) => exit(error.exitCode === 0 ? zkExitCodes.ok : zkExitCodes.usage));

  zk.command('ls').argument('<path>').description('list the children of a znode, sorted')
    .action((path: string, _options: object, command: Command) => run(command, async (client) => lines((await client.getChildren(path)).sort())));
  zk.command('get').argument('<path>').description("print a znode's data (UTF-8)")
    .action((path: string, _options: object, command: Command) => run(command, async (client) => {
      const { data } = await client.getData(path);
      return `${data === null ? 'null' : Buffer.from(data).toString('utf8')}\n`;
    }));
  zk.command('set').argument('<path>').argument('<data>').description("replace a znode's data")
    .option('-v, --version <version>', 'only if the data version is this (-1: any)', versionNumber, -1)
    .action((path: string, data: string, options: { version: number }, command: Command) => run(command, async (client) => {
      await client.setData(path, data, options.version);
      return undefined;
    }));
  zk.command('create').argument('<path>').argument('[data]', 'the data (UTF-8)', '').description('create a znode')
    .option('-e, --ephemeral', 'deleted when this command\'s session ends')
    .option('-s, --sequential', 'append a sequence number to the name')
    .action((path: string, data: string, options: { ephemeral?: boolean; sequential?: boolean }, command: Command) => run(command, async (client) => {
      const mode = options.ephemeral === true ? (options.sequential === true ? 'ephemeral-sequential' : 'ephemeral') : options.sequential === true ? 'persistent-sequential' : 'persistent';
      return `Created ${await client.create(path, data, { mode })}\n`;
    }));
  zk.command('delete').argument('<path>').description('delete a znode (it must have no children)')
    .option('-v, --version <version>', 'only if the data version is this (-1: any)', versionNumber, -1)
    .action((path: string, options: { version: number }, command: Command) => run(command, async (client) => {
      await client.delete(path, options.version);
      return undefined;
    }));
  zk.command('stat').argument('<path>').description("print a znode's Stat")
    .action((path: string, _options: object, command: Command) => run(command, async (client) => {
      const stat = await client.exists(path);
      if (stat === null) throw new ZkError(Err.noNode, path);
      return describeStat(stat);
    }));
  zk.command('watch').argument('<path>').description("print a znode's data, existence and child events until Ctrl-C")
    .option('--count <n>', 'stop after this many events', positiveInteger('--count'))
    .action((path: string, options: { count?: number }, command: Command) => run(command, (client) => watch(client, path, options.count ?? Infinity)));
}

async function run(command: Command, body: (client: ZkClient) => Promise<Output>): Promise<void> {
  const flags = command.optsWithGlobals<ZkFlags>();
  let client: ZkClient | undefined;
  let code: number = zkExitCodes.ok;
  try {
    client = await ZkClient.connect({ servers: flags.server, sessionTimeoutMs: flags.timeoutMs, initialConnectDeadlineMs: flags.timeoutMs });
    const out = await body(client);
    if (out !== undefined) writeOut(out);
  } catch (error) {
    if (!(error instanceof ZkError)) throw error;
    writeErr(`flotilla zk: ${error.message}\n`);
    code = zkExitCodes.zkError;
  } finally {
    await client?.close();
  }
  exit(code);
}

const eventNames: Readonly<Record<WatchEvent['type'], string>> = {
  created: 'NodeCreated',
  deleted: 'NodeDeleted',
  dataChanged: 'NodeDataChanged',
  childrenChanged: 'NodeChildrenChanged',
  sessionEnded: 'SessionEnded',
};

/**
 * Keeps an exists watch (and, while the node exists, a child watch) armed on `path` and
 * prints each event, until `count` events or Ctrl-C. One watcher function is armed each
 * time, so an event that hits both watches is printed once (the client keeps sets).
 */
async function watch(client: ZkClient, path: string, count: number): Promise<Output> {
  const events: WatchEvent[] = [];
  let wake: (() => void) | undefined;
  const watcher = (event: WatchEvent) => {
    events.push(event);
    wake?.();
  };
  const stop = () => void client.close().then(() => exit(zkExitCodes.ok));
  onSignal('SIGINT', stop);
  onSignal('SIGTERM', stop);
  // Unbounded by design when no --count is given: it runs until Ctrl-C or the session ends.
  for (let printed = 0; printed < count; printed++) {
    if ((await client.exists(path, watcher)) !== null) await client.getChildren(path, watcher).catch(ignoreNoNode);
    while (events.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    const event = events.shift()!;
    if (event.type === 'sessionEnded') throw await client.whenEnded();
    writeOut(`${eventNames[event.type]} ${event.path}\n`);
  }
  return undefined;
}

function ignoreNoNode(error: unknown): void {
  if (!(error instanceof ZkError && error.code === Err.noNode)) throw error;
}

function describeStat(stat: Stat): string {
  const hex = (value: number) => `0x${value.toString(16)}`;
  const fields: [string, string][] = [
    ['cZxid', hex(stat.czxid)],
    ['ctime', String(stat.ctime)],
    ['mZxid', hex(stat.mzxid)],
    ['mtime', String(stat.mtime)],
    ['pZxid', hex(stat.pzxid)],
    ['cversion', String(stat.cversion)],
    ['dataVersion', String(stat.version)],
    ['aclVersion', String(stat.aversion)],
    ['ephemeralOwner', hex(stat.ephemeralOwner)],
    ['dataLength', String(stat.dataLength)],
    ['numChildren', String(stat.numChildren)],
  ];
  return lines(fields.map(([name, value]) => `${name} = ${value}`));
}

function lines(items: readonly string[]): string {
  return items.map((item) => `${item}\n`).join('');
}

function serverList(raw: string): string[] {
  const servers = raw.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
  if (servers.length === 0) throw new InvalidArgumentError('no servers given');
  for (const server of servers) {
    const match = /^\[?[^\]\s]+?\]?:(\d+)$/.exec(server);
    if (match === null || Number(match[1]) < 1 || Number(match[1]) > 65_535) throw new InvalidArgumentError(`${JSON.stringify(server)} is not host:port`);
  }
  return servers;
}

function positiveInteger(what: string): (raw: string) => number {
  return (raw) => {
    if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new InvalidArgumentError(`${what}: ${JSON.stringify(raw)} is not a positive integer`);
    return Number(raw);
  };
}

function versionNumber(raw: string): number {
  if (!/^-?\d+$/.test(raw) || Number(raw) < -1 || Number(raw) > 0x7fff_ffff) throw new InvalidArgumentError(`${JSON.stringify(raw)} is not a version (-1 or more)`);
  return Number(raw);
}
