// `flotilla start` (what `npm start` runs): a local three-member cluster, each member its
// own `flotilla server` process on 127.0.0.1, with data under ./data/member-N. Logs go to
// ./data/member-N/server.log; warnings and errors are echoed here. Ctrl-C stops all three
// cleanly; running it again resumes from the data.
//
// The data directory's lock (./data/LOCK, holding this process's pid) is taken before
// anything is read or started, so a second `npm start` says that a cluster is running
// instead of opening the live members' logs (and then failing on their ports).
//
// A member that dies (kill -9, a crash) is restarted with a back-off, 1 s doubling to
// 30 s, reset once it has run a minute. A member that refuses to start — its data is
// damaged (exit 3), its directory is in use (4), its configuration is wrong (2) — is
// reported with its reason and left stopped; restarting would not help, and the others
// keep serving.
//
// `--sharded` also starts the sharded key/value service on the same members: the shard
// controller and three key/value groups (gids 100-102), each its own Raft group on all
// three (localCluster.shardLayout; server/shard-host.ts).

import { join } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Timer } from '../io/clock.js';
import { realClock, RealClock } from '../platform/clock.js';
import { acquireDataLock, type DataLock } from '../platform/data-lock.js';
import { exit, onSignal, writeErr, writeOut } from '../platform/process.js';
import { absolutePath, ensureDirectory, fileExists, openLineFile, writePrivateFile, type LineFile } from '../platform/server-files.js';
import { randomSecretHex } from '../platform/server-random.js';
import { spawnServerChild, type ServerChild } from '../platform/server-children.js';
import type { ChildExit } from '../platform/spawn.js';
import { SECRET_ENV_KEY } from '../server/config.js';
import { checkout } from './checkout.js';
import { localCluster, memberIds } from './local-cluster.js';
import { exitCodes as serverExitCodes } from './server.js';

export const startLimits = {
  /** The first restart of a member that died waits this long; each quick death doubles it. */
  restartDelayMsMin: 1_000,
  restartDelayMsMax: 30_000,
  /** A member that ran this long before it died is restarted after restartDelayMsMin again. */
  restartResetAfterMs: 60_000,
  /** Lines of a member's standard error kept (whether it explained why it stopped). */
  stderrTailLinesMax: 10,
} as const;

export const startExitCodes = { ok: 0, failed: 1, dataInUse: 4 } as const;

/** `flotilla server` exit codes that mean "refuses to start": a restart would fail the same way. */
const refusals: ReadonlyMap<number, string> = new Map([
  [serverExitCodes.config, 'its configuration is wrong'],
  [serverExitCodes.damagedData, 'its data is damaged'],
  [serverExitCodes.dataInUse, 'its data directory is in use by another process'],
]);

/** pino's numeric level for warn: lines at or above it are echoed to the terminal. */
const PINO_WARN_LEVEL = 40;

interface MemberPorts {
  readonly peer: number;
  readonly client: number;
  readonly admin: number;
  readonly zk: number;
  readonly etcd: number;
}

interface Member {
  readonly id: number;
  readonly ports: MemberPorts;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly log: LineFile;
  child: ServerChild | undefined;
  /** starting: spawned, not listening yet; running: listening; waiting: to be restarted; refused: left stopped. */
  state: 'starting' | 'running' | 'waiting' | 'refused';
  startedAtMs: number;
  restartDelayMs: number;
  restarts: number;
  readonly stderrTail: string[];
  restartTimer: Timer | undefined;
}

interface StartOptions {
  data: string;
  tickMs: string;
  ports?: MemberPorts[];
  sharded?: boolean;
}

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run a local three-member cluster (data under ./data; Ctrl-C stops it; a killed member is restarted)')
    .option('--data <dir>', 'data directory', './data')
    .option('--tick-ms <ms>', 'milliseconds per Raft tick', '100')
    .option('--sharded', `also run the sharded key/value service: the shard controller and groups 100, 101, 102 on every member (--shards "${localCluster.shardLayout}")`)
    .addOption(new Option('--ports <list>', 'TESTS ONLY: peer:client:admin:zookeeper:etcd ports of each member, comma-separated').argParser(parsePorts).hideHelp())
    .action((options: StartOptions) => runStart(options));
}

async function runStart(options: StartOptions): Promise<void> {
  const data = absolutePath(options.data);
  const lock = await acquireDataLock(data);
  if (!lock.acquired) {
    writeErr(
      `flotilla start: a cluster is already running from ${options.data} (pid ${lock.pid}); stop it first (Ctrl-C where it runs, or kill ${lock.pid}). If no such process is running, delete ${lock.file}.\n`,
    );
    exit(startExitCodes.dataInUse);
  }
  const secretFile = `${data}/cluster.env`;
  if (!(await fileExists(secretFile)))
    await writePrivateFile(secretFile, `# The local cluster's shared secret (peers authenticate each other with it).\n${SECRET_ENV_KEY}=${randomSecretHex(localCluster.secretBytes)}\n`);
  const ports = options.ports ?? defaultPorts();
  const peers = memberIds()
    .map((id) => `${id}=${localCluster.host}:${ports[id - 1]!.peer}`)
    .join(',');
  const members: Member[] = [];
  for (const id of memberIds()) {
    await ensureDirectory(`${data}/member-${id}`);
    members.push(newMember(id, ports[id - 1]!, data, peers, secretFile, options.tickMs, options.sharded === true));
  }
  const supervisor = new Supervisor(members, lock.lock);
  onSignal('SIGINT', () => void supervisor.stop(startExitCodes.ok));
  onSignal('SIGTERM', () => void supervisor.stop(startExitCodes.ok));
  for (const member of members) supervisor.launch(member);
  await supervisor.waitForStart(localCluster.startTimeoutMs);
  const running = members.filter((member) => member.state === 'running').length;
  if (running === 0) {
    writeErr(`flotilla start: no member started (see ${data}/member-N/server.log)\n`);
    await supervisor.stop(startExitCodes.failed);
    return;
  }
  writeOut(describeCluster(data, members, options.sharded === true));
}

function newMember(id: number, ports: MemberPorts, data: string, peers: string, secretFile: string, tickMs: string, sharded: boolean): Member {
  const flags: [string, string][] = [
    ['--id', String(id)],
    ['--peers', peers],
    ['--data', `${data}/member-${id}`],
    ['--client-port', String(ports.client)],
    ['--admin-port', String(ports.admin)],
    ['--zk-port', String(ports.zk)],
    ['--etcd-port', String(ports.etcd)],
    ['--zk-tick-ms', '2000'],
    ['--tick-ms', tickMs],
    ['--cluster-secret-file', secretFile],
    ...(sharded ? [['--shards', localCluster.shardLayout] as [string, string]] : []),
  ];
  // --allow-faults: the dashboard's fault buttons (a member stopped with them is restarted below).
  const args = ['server', ...flags.flat(), '--allow-faults'];
  const logFile = `${data}/member-${id}/server.log`;
  return {
    id,
    ports,
    args,
    logFile,
    log: openLineFile(logFile),
    child: undefined,
    state: 'starting',
    startedAtMs: 0,
    restartDelayMs: startLimits.restartDelayMsMin,
    restarts: 0,
    stderrTail: [],
    restartTimer: undefined,
  };
}

/** Runs the members: starts them, restarts one that dies, leaves one that refuses, stops them all. */
class Supervisor {
  private stopping = false;

  constructor(
    private readonly members: readonly Member[],
    private readonly lock: DataLock,
  ) {}

  launch(member: Member): void {
    member.state = 'starting';
    member.startedAtMs = realClock.nowMs();
    member.stderrTail.length = 0;
    const child = spawnServerChild({
      args: member.args,
      onStdoutLine: (line) => this.stdoutLine(member, line),
      onStderrLine: (line) => {
        member.log.write(line);
        member.stderrTail.push(line);
        if (member.stderrTail.length > startLimits.stderrTailLinesMax) member.stderrTail.shift();
        writeErr(`[member ${member.id}] ${line}\n`);
      },
    });
    member.child = child;
    void child.exited.then((exited) => this.exited(member, child, exited));
  }

  /** Resolves once every member is running or refused, or after `timeoutMs`. */
  async waitForStart(timeoutMs: number): Promise<void> {
    const deadline = realClock.nowMs() + timeoutMs;
    while (realClock.nowMs() < deadline && !this.stopping) {
      if (this.members.every((member) => member.state === 'running' || member.state === 'refused')) return;
      await new Promise<void>((resolve) => realClock.setTimer(50, resolve));
    }
  }

  async stop(code: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    writeOut('\nstopping the members (SIGTERM)...\n');
    for (const member of this.members) member.restartTimer?.cancel();
    const running = this.members.flatMap((member) => (member.child?.isRunning() === true ? [{ member, child: member.child }] : []));
    for (const { child } of running) child.kill('SIGTERM');
    const killer = new RealClock({ keepAlive: false }).setTimer(localCluster.stopTimeoutMs, () => {
      for (const { child } of running) child.kill('SIGKILL');
    });
    const exits = await Promise.all(running.map(({ child }) => child.exited));
    killer.cancel();
    for (const [i, exited] of exits.entries()) writeOut(`member ${running[i]!.member.id}: exited with code ${exited.code}${exited.signal === null ? '' : ` (${exited.signal})`}\n`);
    await Promise.all(this.members.map((member) => member.log.close()));
    await this.lock.release();
    exit(code);
  }

  private stdoutLine(member: Member, line: string): void {
    member.log.write(line);
    const entry = parseLogLine(line);
    if (entry?.msg === 'listening') {
      if (member.restarts > 0) writeOut(`[member ${member.id}] restarted (pid ${member.child?.pid ?? '?'}) and listening again\n`);
      member.state = 'running';
    }
    if (entry !== undefined && entry.level >= PINO_WARN_LEVEL) writeOut(`[member ${member.id}] ${entry.msg}\n`);
  }

  /** The commands that replace a member whose data is damaged (README: Operating Flotilla). */
  private describeReplacement(member: Member): string {
    const other = this.members.find((m) => m.id !== member.id && m.state === 'running') ?? this.members.find((m) => m.id !== member.id);
    const dataIndex = member.args.indexOf('--data');
    const dir = member.args[dataIndex + 1]!;
    const peers = member.args[member.args.indexOf('--peers') + 1]!;
    const peer =
      peers
        .split(',')
        .find((item) => item.startsWith(`${member.id}=`))
        ?.slice(`${member.id}=`.length) ?? '?';
    const join = other === undefined ? '' : ` --join ${localCluster.host}:${other.ports.admin}`;
    return [
      `[member ${member.id}] to replace it while the others serve (it catches up from them by snapshot):`,
      `    flotilla member remove ${member.id}`,
      `    mv ${dir} ${dir}.damaged`,
      `    flotilla ${member.args.join(' ')}${join}      # in another terminal: starts empty and waits to be added`,
      `    flotilla member add ${member.id} ${peer}`,
      `    flotilla member promote ${member.id}        # repeat until it says done (refused while it catches up)`,
      '',
    ].join('\n');
  }

  private exited(member: Member, child: ServerChild, exited: ChildExit): void {
    if (this.stopping || member.child !== child) return;
    const how = exited.signal === null ? `exit code ${exited.code}` : `signal ${exited.signal}`;
    const refusal = exited.code === null ? undefined : refusals.get(exited.code);
    if (refusal !== undefined) {
      member.state = 'refused';
      // Its own explanation was echoed as it came (stderr); repeat it only if there was none.
      const reason = member.stderrTail.length > 0 ? ' (its message is above)' : '';
      writeErr(
        `[member ${member.id}] refuses to start (${how}): ${refusal}${reason}. It is not restarted; the other members keep serving. Fix the cause (see ${member.logFile}) and run \`npm start\` again.\n`,
      );
      if (exited.code === serverExitCodes.damagedData) writeErr(this.describeReplacement(member));
      return;
    }
    const ranMs = realClock.nowMs() - member.startedAtMs;
    if (ranMs >= startLimits.restartResetAfterMs) member.restartDelayMs = startLimits.restartDelayMsMin;
    const delayMs = member.restartDelayMs;
    member.restartDelayMs = Math.min(startLimits.restartDelayMsMax, delayMs * 2);
    member.state = 'waiting';
    writeErr(`[member ${member.id}] exited (${how}); the other members keep serving; restarting it in ${delayMs / 1000} s\n`);
    member.restartTimer = realClock.setTimer(delayMs, () => {
      member.restartTimer = undefined;
      if (this.stopping) return;
      member.restarts++;
      this.launch(member);
    });
  }
}

function parseLogLine(line: string): { level: number; msg: string } | undefined {
  try {
    const value = JSON.parse(line) as { level?: unknown; msg?: unknown };
    return typeof value.level === 'number' && typeof value.msg === 'string' ? { level: value.level, msg: value.msg } : undefined;
  } catch {
    return undefined;
  }
}

function defaultPorts(): MemberPorts[] {
  return memberIds().map((id) => ({
    peer: localCluster.peerPortBase + id,
    client: localCluster.clientPortBase + id,
    admin: localCluster.adminPortBase + id,
    zk: localCluster.zkPortBase + id,
    etcd: localCluster.etcdPorts[id - 1]!,
  }));
}

/** --ports: "peer:client:admin:zk:etcd" for each member, comma-separated. */
function parsePorts(raw: string): MemberPorts[] {
  const items = raw.split(',');
  if (items.length !== localCluster.memberCount) throw new InvalidArgumentError(`${localCluster.memberCount} members need ${localCluster.memberCount} entries, got ${items.length}`);
  return items.map((item) => {
    const ports = item.split(':').map(Number);
    if (ports.length !== 5 || ports.some((port) => !Number.isInteger(port) || port < 1 || port > 65_535)) throw new InvalidArgumentError(`${JSON.stringify(item)} is not peer:client:admin:zk:etcd`);
    return { peer: ports[0]!, client: ports[1]!, admin: ports[2]!, zk: ports[3]!, etcd: ports[4]! };
  });
}

function describeCluster(data: string, members: readonly Member[], sharded: boolean): string {
  const host = localCluster.host;
  const rows = members.map((member) => {
    const state = member.state === 'running' ? '' : `   (${member.state === 'refused' ? 'refused to start: see above' : 'not listening yet'})`;
    return `  member ${member.id}   peer ${host}:${member.ports.peer}   client ${host}:${member.ports.client}   admin http://${host}:${member.ports.admin}   zookeeper ${host}:${member.ports.zk}   etcd ${host}:${member.ports.etcd}${state}`;
  });
  const running = members.filter((member) => member.state === 'running').length;
  const admin = `localhost:${members[0]!.ports.admin}`;
  const bin = checkout() === null ? undefined : join(checkout()!.root, 'bin');
  return [
    '',
    `Flotilla: a local cluster of ${members.length} members is running${running < members.length ? ` (${running} of them serving)` : ''} (data and logs in ${data}).`,
    ...rows,
    '',
    `Dashboard: http://${host}:${members[0]!.ports.admin}/   (live view of every group; each member's admin port serves one)`,
    '',
    `Try (\`flotilla\` is ${bin === undefined ? 'bin/flotilla in the checkout' : `${bin}/flotilla`}: put that folder on PATH, or run \`npm link\` once; see README.md):`,
    ...(bin === undefined ? [] : [`  export PATH="${bin}:$PATH"`]),
    `  curl -s ${admin}/status`,
    `  curl -s ${admin}/metrics | grep ^flotilla_`,
    '  flotilla kv put greeting hello',
    '  flotilla kv get greeting',
    '  flotilla kv scan --json',
    "  flotilla debug leader                  # each group's leader and every member's pid",
    '  flotilla zk create /hello world && flotilla zk get /hello',
    `  /usr/share/zookeeper/bin/zkCli.sh -server ${members.map((member) => `${host}:${member.ports.zk}`).join(',')}`,
    `  echo srvr | nc ${host} ${members[0]!.ports.zk}`,
    `  etcdctl --endpoints=${host}:${members[0]!.ports.etcd} put foo bar`,
    `  etcdctl --endpoints=${members.map((member) => `${host}:${member.ports.etcd}`).join(',')} get foo -w json`,
    `  etcdctl --endpoints=${host}:${members[0]!.ports.etcd} member list`,
    ...(sharded ? shardedExample() : []),
    '',
    `A member that stops (kill -9) is restarted after ${startLimits.restartDelayMsMin / 1000} s, then 2 s, 4 s, ... up to ${startLimits.restartDelayMsMax / 1000} s;`,
    'one that refuses to start (damaged data, data directory in use) is reported and left stopped.',
    'Ctrl-C stops all members; `npm start` again resumes from the data.',
    '',
  ].join('\n');
}

/** The sharded service's example commands (`--sharded`). */
function shardedExample(): string[] {
  return [
    '',
    'The sharded key/value service (shard controller and groups 100, 101, 102 on every member):',
    '  flotilla shard join 100 101 102          # once: the groups join and the 10 shards are spread over them',
    "  flotilla kv put --sharded apple red     # routed to the group that serves the key's shard",
    '  flotilla kv get --sharded apple',
    '  flotilla shard query                     # the configuration: which group serves each shard',
    '  flotilla shard move 7 100                # shard 7 (keys starting with "a": apple) moves to group 100',
  ];
}
