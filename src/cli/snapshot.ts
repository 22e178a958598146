// `flotilla snapshot save|restore|status`: backups of a running member, and new data
// directories built from them (server/backup.ts, server/restore.ts), as etcdctl's
// `snapshot save` and etcdutl's `snapshot restore` / `snapshot status`.
//
//   flotilla snapshot save backup.flot --admin 127.0.0.1:7301
//   flotilla snapshot restore backup.flot --data ./new/1 --id 1 --peers 1=h1:7101,2=h2:7102,3=h3:7103
//
// Exit codes: 0 done; 1 the member could not be reached or refused; 2 bad usage or a
// damaged backup file (nothing was written).

import type { Command } from 'commander';
import type { NodeId } from '../stdx/types.js';
import { readBytesFile, writeFileDurably } from '../platform/files.js';
import { getBytes } from '../platform/http-get.js';
import { exit, writeErr, writeOut } from '../platform/process.js';
import { sha256 } from '../platform/zk-host.js';
import { type Backup, BackupError, decodeBackup } from '../server/backup.js';
import { ConfigError, parseAddress, parsePeers } from '../server/config.js';
import { restoreDataDirectory } from '../server/restore.js';
import { localCluster } from './local-cluster.js';
import { TlsLoadError } from '../platform/tls.js';
import { addTlsOptions, adminUrl, clientTls, type TlsFlags } from './tls-options.js';

export const snapshotLimits = {
  /** How long a member may take to confirm and encode its state. */
  saveTimeoutMs: 60_000,
  /** The largest backup file restore reads. */
  backupBytesMax: 4 * 1024 * 1024 * 1024 - 1,
} as const;

export function registerSnapshot(program: Command): void {
  const snapshot = program.command('snapshot').description('back up a running member, and seed a new cluster from a backup');
  addTlsOptions(snapshot.command('save'))
    .argument('<file>', 'where to write the backup (replaced atomically)')
    .description("save a consistent backup of every group's state from one member (confirmed by the leader, so it holds every acknowledged write)")
    .option('--admin <host:port>', "the member's admin address", localCluster.adminAddresses()[0]!)
    .action((file: string, options: { admin: string } & TlsFlags) => save(file, options.admin, options));
  snapshot
    .command('restore')
    .argument('<file>', 'a backup made by snapshot save')
    .description('build a new data directory from a backup, for one member of a new cluster (restore every member from the same file)')
    .requiredOption('--data <dir>', 'the new data directory (must be missing or empty)')
    .requiredOption('--id <n>', "this member's id in the new cluster")
    .requiredOption('--peers <list>', "the new cluster's members, id=host:port,... (as flotilla server --peers)")
    .action((file: string, options: { data: string; id: string; peers: string }) => restore(file, options));
  snapshot
    .command('status')
    .argument('<file>', 'a backup made by snapshot save')
    .description("check a backup's checksum and print what it holds")
    .action((file: string) => status(file));
}

async function save(file: string, admin: string, flags: TlsFlags): Promise<void> {
  const address = usage(() => parseAddress(admin, '--admin'));
  const tls = usage(() => clientTls(flags));
  let answer: { status: number; bytes: Uint8Array };
  try {
    answer = await getBytes(adminUrl(`${address.host}:${address.port}`, '/backup', tls), snapshotLimits.saveTimeoutMs, tls);
  } catch (error) {
    fail(1, `could not reach the member's admin port ${admin}: ${(error as Error).message}`);
  }
  const { status, bytes } = answer;
  if (status !== 200) fail(1, `the member at ${admin} refused the backup: HTTP ${status} ${new TextDecoder().decode(bytes).slice(0, 500)}`);
  // Check what arrived before it replaces anything.
  const backup = checked(() => decodeBackup(bytes, sha256), 'the member sent');
  writeFileDurably(file, bytes);
  writeOut(`saved ${file}: ${describe(backup, bytes.length)}\n`);
}

async function restore(file: string, options: { data: string; id: string; peers: string }): Promise<void> {
  const id = Number(options.id);
  const peers = usage(() => parsePeers(options.peers));
  if (!Number.isSafeInteger(id) || !peers.has(id as NodeId)) fail(2, `--id ${options.id} is not one of the members in --peers (${[...peers.keys()].join(', ')})`);
  const backup = readBackup(file);
  try {
    await restoreDataDirectory(backup, options.data, [...peers.keys()]);
  } catch (error) {
    if (error instanceof BackupError) fail(2, error.message);
    throw error;
  }
  writeOut(`restored ${file} into ${options.data} for member ${id} of ${[...peers.keys()].join(', ')}: ${describe(backup)}\n`);
  writeOut(`start it with: flotilla server --id ${id} --peers ${options.peers} --data ${options.data} --cluster-secret-file <file>\n`);
}

function status(file: string): void {
  const backup = readBackup(file);
  writeOut(`${file}: checksum ok; ${describe(backup)}\n`);
}

function readBackup(file: string): Backup {
  let bytes: Uint8Array;
  try {
    bytes = readBytesFile(file, snapshotLimits.backupBytesMax);
  } catch (error) {
    fail(2, `cannot read ${file}: ${(error as Error).message}`);
  }
  return checked(() => decodeBackup(bytes, sha256), file);
}

function describe(backup: Backup, bytes?: number): string {
  const groups = backup.groups.map((g) => `${g.name} at index ${g.index} (term ${g.term}, ${g.data.length} bytes)`).join(', ');
  return `member ${backup.member}, taken ${new Date(backup.createdMs).toISOString()}; ${groups}${bytes === undefined ? '' : `; ${bytes} bytes in all`}`;
}

function checked(parse: () => Backup, what: string): Backup {
  try {
    return parse();
  } catch (error) {
    if (error instanceof BackupError) fail(2, `${what}: ${error.message}`);
    throw error;
  }
}

function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ConfigError || error instanceof TlsLoadError) fail(2, error.message);
    throw error;
  }
}

function fail(code: number, message: string): never {
  writeErr(`flotilla snapshot: ${message}\n`);
  exit(code);
}
