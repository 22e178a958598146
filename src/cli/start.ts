// `flotilla start` (what `npm start` runs): a local three-member cluster, each member its
// own `flotilla server` process on 127.0.0.1, with data under ./data/member-N. Logs go to
// ./data/member-N/server.log; warnings and errors are echoed here. Ctrl-C stops all three
// cleanly; running it again resumes from the data.

import type { Command } from 'commander';
import { realClock, RealClock } from '../platform/clock.js';
import { exit, onSignal, writeErr, writeOut } from '../platform/process.js';
import { absolutePath, ensureDirectory, fileExists, openLineFile, writePrivateFile, type LineFile } from '../platform/server-files.js';
import { randomSecretHex } from '../platform/server-random.js';
import { spawnServerChild, type ServerChild } from '../platform/server-children.js';
import { SECRET_ENV_KEY } from '../server/config.js';

export const localCluster = {
  memberCount: 3,
  host: '127.0.0.1',
  peerPortBase: 7100,
  clientPortBase: 7200,
  adminPortBase: 7300,
  /** ZooKeeper's usual port and the next two. */
  zkPortBase: 2180,
  secretBytes: 32,
  /** How long the members may take to open their ports. */
  startTimeoutMs: 30_000,
  /** After Ctrl-C, members still running after this are killed. */
  stopTimeoutMs: 15_000,
  clientAddresses(): string[] {
    return memberIds().map((id) => `${this.host}:${this.clientPortBase + id}`);
  },
} as const;

/** pino's numeric level for warn: lines at or above it are echoed to the terminal. */
const PINO_WARN_LEVEL = 40;

function memberIds(): number[] {
  return Array.from({ length: localCluster.memberCount }, (_, i) => i + 1);
}

interface Member {
  readonly id: number;
  readonly child: ServerChild;
  readonly log: LineFile;
  listening: boolean;
}

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run a local three-member cluster (data under ./data; Ctrl-C stops it)')
    .option('--data <dir>', 'data directory', './data')
    .option('--tick-ms <ms>', 'milliseconds per Raft tick', '100')
    .action((options: { data: string; tickMs: string }) => runStart(options));
}

async function runStart(options: { data: string; tickMs: string }): Promise<void> {
  const data = absolutePath(options.data);
  await ensureDirectory(data);
  const secretFile = `${data}/cluster.env`;
  if (!(await fileExists(secretFile))) await writePrivateFile(secretFile, `# The local cluster's shared secret (peers authenticate each other with it).\n${SECRET_ENV_KEY}=${randomSecretHex(localCluster.secretBytes)}\n`);
  const peers = memberIds().map((id) => `${id}=${localCluster.host}:${localCluster.peerPortBase + id}`).join(',');
  const members: Member[] = [];
  let stopping = false;
  for (const id of memberIds()) {
    await ensureDirectory(`${data}/member-${id}`);
    members.push(spawnMember(id, data, peers, secretFile, options.tickMs, () => stopping));
  }
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    writeOut('\nstopping the members (SIGTERM)...\n');
    await stopMembers(members);
    exit(code);
  };
  onSignal('SIGINT', () => void stopAll(0));
  onSignal('SIGTERM', () => void stopAll(0));
  const started = await waitForListening(members);
  if (!started) {
    writeErr(`flotilla start: not every member started (see ${data}/member-N/server.log)\n`);
    await stopAll(1);
    return;
  }
  writeOut(describeCluster(data));
}

function spawnMember(id: number, data: string, peers: string, secretFile: string, tickMs: string, isStopping: () => boolean): Member {
  const log = openLineFile(`${data}/member-${id}/server.log`);
  const args = [
    'server', '--id', String(id), '--peers', peers, '--data', `${data}/member-${id}`,
    '--client-port', String(localCluster.clientPortBase + id), '--admin-port', String(localCluster.adminPortBase + id),
    '--zk-port', String(localCluster.zkPortBase + id), '--zk-tick-ms', '2000',
    '--tick-ms', tickMs, '--cluster-secret-file', secretFile,
  ];
  const member: Member = {
    id,
    log,
    listening: false,
    child: spawnServerChild({
      args,
      onStdoutLine: (line) => {
        log.write(line);
        const entry = parseLogLine(line);
        if (entry?.msg === 'listening') member.listening = true;
        if (entry !== undefined && entry.level >= PINO_WARN_LEVEL) writeOut(`[member ${id}] ${entry.msg}\n`);
      },
      onStderrLine: (line) => {
        log.write(line);
        writeErr(`[member ${id}] ${line}\n`);
      },
    }),
  };
  void member.child.exited.then((exited) => {
    if (!isStopping()) writeErr(`[member ${id}] exited (code ${exited.code}, signal ${exited.signal}); the other members keep running\n`);
  });
  return member;
}

function parseLogLine(line: string): { level: number; msg: string } | undefined {
  try {
    const value = JSON.parse(line) as { level?: unknown; msg?: unknown };
    return typeof value.level === 'number' && typeof value.msg === 'string' ? { level: value.level, msg: value.msg } : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves true once every member printed its "listening" line, false if one exited first. */
async function waitForListening(members: readonly Member[]): Promise<boolean> {
  const deadline = realClock.nowMs() + localCluster.startTimeoutMs;
  while (realClock.nowMs() < deadline) {
    if (members.every((member) => member.listening)) return true;
    if (members.some((member) => !member.child.isRunning())) return false;
    await new Promise<void>((resolve) => realClock.setTimer(50, resolve));
  }
  return false;
}

async function stopMembers(members: readonly Member[]): Promise<void> {
  for (const member of members) member.child.kill('SIGTERM');
  const killer = new RealClock({ keepAlive: false }).setTimer(localCluster.stopTimeoutMs, () => {
    for (const member of members) member.child.kill('SIGKILL');
  });
  const exits = await Promise.all(members.map((member) => member.child.exited));
  killer.cancel();
  for (const [i, exited] of exits.entries()) writeOut(`member ${members[i]!.id}: exited with code ${exited.code}${exited.signal === null ? '' : ` (${exited.signal})`}\n`);
  await Promise.all(members.map((member) => member.log.close()));
}

function describeCluster(data: string): string {
  const rows = memberIds().map((id) => `  member ${id}   peer ${localCluster.host}:${localCluster.peerPortBase + id}   client ${localCluster.host}:${localCluster.clientPortBase + id}   admin http://${localCluster.host}:${localCluster.adminPortBase + id}   zookeeper ${localCluster.host}:${localCluster.zkPortBase + id}`);
  const admin = `localhost:${localCluster.adminPortBase + 1}`;
  return [
    '',
    `Flotilla: a local cluster of ${localCluster.memberCount} members is running (data and logs in ${data}).`,
    ...rows,
    '',
    'Try:',
    `  curl -s ${admin}/status`,
    `  curl -s ${admin}/metrics | grep ^flotilla_`,
    '  npx flotilla kv put greeting hello',
    '  npx flotilla kv get greeting',
    '  npx flotilla kv scan --json',
    '  npx flotilla debug leader',
    `  npx flotilla zk create /hello world && npx flotilla zk get /hello`,
    `  /usr/share/zookeeper/bin/zkCli.sh -server ${memberIds().map((id) => `${localCluster.host}:${localCluster.zkPortBase + id}`).join(',')}`,
    `  echo srvr | nc ${localCluster.host} ${localCluster.zkPortBase + 1}`,
    '',
    'Ctrl-C stops all members; `npm start` again resumes from the data.',
    '',
  ].join('\n');
}
