// `flotilla zk ls|get|set|create|delete|stat|watch`: a ZooKeeper ensemble (Apache
// ZooKeeper or Flotilla's compatible service) from the command line, through ZkClient
// (zkclient/). Output follows zkCli.sh where it has a convention (`Created <path>`, the
// `stat` field names), with children sorted for deterministic output.
//
// Data comes from the command line or, with --file, from a file or standard input (the
// kernel limits one argument to 128 KiB; value-input.ts).
//
// Exit codes: 0 done; 1 ZooKeeper answered with an error (its code name is printed, e.g.
// NONODE) or no server could be reached (CONNECTIONLOSS), or --file could not be read;
// 2 bad usage.

import { type Command, InvalidArgumentError, Option } from 'commander';
import { posix } from 'node:path';
import { exit, onSignal, writeErr, writeOut } from '../platform/process.js';
import { Err, ZkClient, ZkError, isZkError, requestBytesMax, type Data, type Stat, type WatchEvent, type Watcher } from '../zkclient/index.js';
import { TlsLoadError } from '../platform/tls.js';
import { clientTls, type TlsFlags } from './tls-options.js';
import { ARGUMENT_BYTES_MAX, STDIN_NAME, UsageError, ValueTooLargeError, isFileError, valueFileHelp, valueFrom } from './value-input.js';
import { localZkServers, zkServerList } from './zk-servers.js';

export const zkExitCodes = { ok: 0, zkError: 1, usage: 2 } as const;

interface ZkFlags extends TlsFlags {
  server: string[];
  timeoutMs: number;
}

type Output = string | undefined;

/** The ZooKeeper ports of the cluster `npm start` runs (ZooKeeper's usual 2181, then 2182, 2183). */
/** `watch` names at most this many children on a NodeChildrenChanged line. */
const WATCH_CHILDREN_SHOWN_MAX = 100;
/** `watch` re-reads a node this often at most when it keeps appearing and vanishing under it. */
const WATCH_ARM_ATTEMPTS_MAX = 16;

const limitsHelp = `
Limits: one request (path and data) has at most ${requestBytesMax} bytes (ZooKeeper's jute.maxbuffer,
about 1 MiB). Data on the command line is also limited by the OS to ${ARGUMENT_BYTES_MAX} bytes (${ARGUMENT_BYTES_MAX / 1024} KiB):
for larger data use --file PATH, or --file ${STDIN_NAME} to read standard input:
  flotilla zk set /config --file ${STDIN_NAME} < config.json`;

export function registerZk(program: Command): void {
  const zk = program
    .command('zk')
    .description('read, write and watch znodes on a ZooKeeper-compatible server')
    .addOption(new Option('--server <list>', 'servers, host:port,... (any one of them)').argParser(zkServerList).default([...localZkServers], localZkServers.join(',')))
    .option('--timeout-ms <ms>', 'session timeout; also how long to try to connect', positiveInteger('--timeout-ms'), 5_000)
    .option('--cacert <file>', "the CA certificate (PEM) that signed the server's certificate: connect with TLS (to a secure client port)")
    .option('--cert <file>', 'a client certificate (PEM), for servers that require one')
    .option('--key <file>', "the client certificate's key (PEM)")
    // Usage errors exit 2 (zkExitCodes.usage); --help still exits 0. Subcommands created
    // below inherit this.
    .exitOverride((error) => exit(error.exitCode === 0 ? zkExitCodes.ok : zkExitCodes.usage));

  zk.command('ls')
    .argument('<path>')
    .description('list the children of a znode, sorted')
    .action((path: string, _options: object, command: Command) => run(command, async (client) => lines((await client.getChildren(path)).sort())));
  zk.command('get')
    .argument('<path>')
    .description("print a znode's data (UTF-8)")
    .action((path: string, _options: object, command: Command) =>
      run(command, async (client) => {
        const { data } = await client.getData(path);
        return `${data === null ? 'null' : Buffer.from(data).toString('utf8')}\n`;
      }),
    );
  zk.command('set')
    .argument('<path>')
    .argument('[data]', 'the new data, UTF-8 (or --file)')
    .description("replace a znode's data")
    .option('-v, --version <version>', 'only if the data version is this (-1: any)', versionNumber, -1)
    .option('--file <path>', valueFileHelp)
    .addHelpText('after', limitsHelp)
    .action((path: string, data: string | undefined, options: { version: number; file?: string }, command: Command) =>
      run(
        command,
        async (client, bytes) => {
          const stat = await client.setData(path, bytes, options.version);
          return `Set ${path} (data version ${stat.version}, ${stat.dataLength} bytes)\n`;
        },
        () => dataOf(data, options.file),
      ),
    );
  zk.command('create')
    .argument('<path>')
    .argument('[data]', 'the data, UTF-8 (or --file; default: empty)')
    .description('create a znode')
    .option('-e, --ephemeral', "deleted when this command's session ends")
    .option('-s, --sequential', 'append a sequence number to the name')
    .option('--file <path>', valueFileHelp)
    .addHelpText('after', limitsHelp)
    .action((path: string, data: string | undefined, options: { ephemeral?: boolean; sequential?: boolean; file?: string }, command: Command) =>
      run(
        command,
        async (client, bytes) => {
          const mode = options.ephemeral === true ? (options.sequential === true ? 'ephemeral-sequential' : 'ephemeral') : options.sequential === true ? 'persistent-sequential' : 'persistent';
          try {
            return `Created ${await client.create(path, bytes, { mode })}\n`;
          } catch (error) {
            // A create answers NONODE only when the parent is missing; say which node that is.
            if (isZkError(error, Err.noNode)) throw new ZkError(Err.noNode, `create ${path}: the parent node ${posix.dirname(path)} does not exist (create it first)`);
            throw error;
          }
        },
        async () => (data === undefined && options.file === undefined ? new Uint8Array(0) : dataOf(data, options.file)),
      ),
    );
  zk.command('delete')
    .argument('<path>')
    .description('delete a znode (it must have no children)')
    .option('-v, --version <version>', 'only if the data version is this (-1: any)', versionNumber, -1)
    .action((path: string, options: { version: number }, command: Command) =>
      run(command, async (client) => {
        await client.delete(path, options.version);
        return `Deleted ${path}\n`;
      }),
    );
  zk.command('stat')
    .argument('<path>')
    .description("print a znode's Stat")
    .action((path: string, _options: object, command: Command) =>
      run(command, async (client) => {
        const stat = await client.exists(path);
        if (stat === null) throw new ZkError(Err.noNode, path);
        return describeStat(stat);
      }),
    );
  zk.command('watch')
    .argument('<path>')
    .description("print a znode's data, then each data, existence and child change with the new data, until Ctrl-C")
    .option('--count <n>', 'stop after this many events', positiveInteger('--count'))
    .addHelpText(
      'after',
      `
Output: first "<path> = <data>" (or "<path> does not exist"), then one line per event:
  NodeCreated <path> = <data>        NodeDataChanged <path> = <data>
  NodeDeleted <path>                 NodeChildrenChanged <path> children: <names>
The data is what the node holds when the watch is set again after the event (ZooKeeper's
watches fire once; changes in between are seen as their latest value).`,
    )
    .action((path: string, options: { count?: number }, command: Command) => run(command, (client) => watch(client, path, options.count ?? Infinity)));
}

/**
 * Connects, runs `body`, prints its output and exits. `prepare` runs first, before any
 * connection is made (reading --file: a usage error or a missing file fails at once).
 */
async function run<T>(command: Command, body: (client: ZkClient, prepared: T) => Promise<Output>, prepare?: () => Promise<T>): Promise<void> {
  const flags = command.optsWithGlobals<ZkFlags>();
  let client: ZkClient | undefined;
  let code: number = zkExitCodes.ok;
  try {
    const prepared = (await prepare?.()) as T;
    const tls = clientTls(flags);
    client = await ZkClient.connect({ servers: flags.server, sessionTimeoutMs: flags.timeoutMs, initialConnectDeadlineMs: flags.timeoutMs, tls });
    const out = await body(client, prepared);
    if (out !== undefined) writeOut(out);
  } catch (error) {
    code = describeFailure(error);
  } finally {
    await client?.close();
  }
  exit(code);
}

/** Prints an operating error and returns its exit code; anything else is a bug and is rethrown. */
function describeFailure(error: unknown): number {
  if (error instanceof UsageError || error instanceof TlsLoadError) {
    writeErr(`flotilla zk: ${error.message}\n`);
    return zkExitCodes.usage;
  }
  if (error instanceof ZkError || error instanceof ValueTooLargeError) writeErr(`flotilla zk: ${error.message}\n`);
  else if (isFileError(error)) writeErr(`flotilla zk: cannot read the data: ${error.message}\n`);
  else throw error;
  return zkExitCodes.zkError;
}

/** The data argument or --file's contents, refused locally beyond jute.maxbuffer. */
function dataOf(argument: string | undefined, file: string | undefined): Promise<Uint8Array> {
  return valueFrom(argument, file, requestBytesMax, "ZooKeeper's jute.maxbuffer");
}

const eventNames: Readonly<Record<WatchEvent['type'], string>> = {
  created: 'NodeCreated',
  deleted: 'NodeDeleted',
  dataChanged: 'NodeDataChanged',
  childrenChanged: 'NodeChildrenChanged',
  sessionEnded: 'SessionEnded',
};

/**
 * Prints the node's state, then each event on it with the state read when the watch is
 * set again, until `count` events or Ctrl-C. One watcher function is armed each time, so
 * an event that hits both the data and the child watch is printed once (the client keeps
 * sets).
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
  const initial = await arm(client, path, watcher);
  writeOut(initial === null ? `${path} does not exist\n` : `${path} = ${describeData(initial.data)}\n`);
  // Unbounded by design when no --count is given: it runs until Ctrl-C or the session ends.
  for (let printed = 0; printed < count; printed++) {
    while (events.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    const event = events.shift()!;
    if (event.type === 'sessionEnded') throw await client.whenEnded();
    const state = await arm(client, path, watcher);
    writeOut(`${eventNames[event.type]} ${event.path}${describeEventState(event.type, state)}\n`);
  }
  return undefined;
}

interface NodeState {
  readonly data: Data;
  readonly children: readonly string[];
}

/**
 * Reads the node and sets the watches again: data and child watches while it exists, an
 * exists watch while it does not. Returns what was read (null: no node).
 */
async function arm(client: ZkClient, path: string, watcher: Watcher): Promise<NodeState | null> {
  for (let attempt = 0; attempt < WATCH_ARM_ATTEMPTS_MAX; attempt++) {
    try {
      const { data } = await client.getData(path, watcher);
      const children = await client.getChildren(path, watcher);
      return { data, children: children.sort() };
    } catch (error) {
      ignoreNoNode(error);
    }
    // Gone: watch for its creation. If it was created meanwhile, read it again.
    if ((await client.exists(path, watcher)) === null) return null;
  }
  throw new ZkError(Err.runtimeInconsistency, `${path} kept appearing and vanishing while it was read ${WATCH_ARM_ATTEMPTS_MAX} times`);
}

function describeEventState(type: WatchEvent['type'], state: NodeState | null): string {
  if (state === null) return type === 'deleted' ? '' : ' (does not exist now)';
  if (type === 'childrenChanged') {
    const shown = state.children.slice(0, WATCH_CHILDREN_SHOWN_MAX).join(' ');
    const more = state.children.length > WATCH_CHILDREN_SHOWN_MAX ? ` ... (${state.children.length} in all)` : '';
    return ` children: ${state.children.length === 0 ? '(none)' : shown}${more}`;
  }
  return `${type === 'deleted' ? ' (created again)' : ''} = ${describeData(state.data)}`;
}

function describeData(data: Data): string {
  return data === null ? 'null' : Buffer.from(data).toString('utf8');
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
