// `flotilla debug leader`: every Raft group's leader, and each member's process id, read
// from the members' admin ports (GET /status). The key/value group (1) and the ZooKeeper
// group (2) elect their leaders independently, so they are often different members.
// Starting from the given admin addresses, the members' peers' admin addresses are
// followed too, so one address of a running member is enough.
//
// Exit codes: 0 printed; 1 no member answered.

import { type Command, InvalidArgumentError } from 'commander';
import { getJson, HttpGetError } from '../platform/http-get.js';
import { exit, writeErr, writeOut } from '../platform/process.js';
import { formatAddress, parseAddress } from '../server/config.js';
import { localCluster } from './local-cluster.js';

export const debugLimits = {
  /** How long one member's /status may take. */
  statusTimeoutMs: 2_000,
  /** Admin addresses visited at most (the given ones and the peers they name). */
  membersMax: 64,
} as const;

/** The part of a member's /status this command reads (server/server.ts describeStatus). */
interface MemberStatus {
  readonly id: number;
  readonly pid: number | null;
  readonly role: string;
  readonly term: number;
  readonly leader: number;
  readonly client: string | null;
  readonly zkPort: string | null;
  readonly zk: { readonly role: string; readonly term: number; readonly leader: number } | null;
  readonly peerAdmins: readonly string[];
}

type Answer = { readonly admin: string; readonly status: MemberStatus } | { readonly admin: string; readonly problem: string };

interface GroupLeader {
  readonly group: string;
  readonly leader: number;
  readonly term: number;
  readonly pid: number | null;
  readonly address: string | null;
}

export function registerDebug(program: Command): void {
  const defaultAdmins = localCluster.adminAddresses().join(',');
  const debug = program.command('debug').description("ask a running cluster about itself (its members' admin ports)");
  debug
    .command('leader')
    .description("print each Raft group's leader (key/value, ZooKeeper) and every member's process id")
    .option('--admin <list>', 'admin addresses (host:port,...) of some members; their peers are found from them', defaultAdmins)
    .option('--json', 'print the result as JSON')
    .action((options: { admin: string; json?: boolean }) => debugLeader(adminList(options.admin), options.json === true));
}

async function debugLeader(admins: readonly string[], json: boolean): Promise<void> {
  const answers = await collectStatuses(admins);
  const members = answers.flatMap((answer) => ('status' in answer ? [answer.status] : []));
  if (members.length === 0) {
    writeErr(
      `flotilla debug: no member answered on its admin port (${answers.map((answer) => `${answer.admin}: ${'problem' in answer ? answer.problem : 'ok'}`).join('; ')}); is the cluster running? (--admin host:port,...)\n`,
    );
    exit(1);
  }
  const groups = [
    groupLeader(
      'key/value',
      members,
      (member) => ({ role: member.role, term: member.term, leader: member.leader }),
      (member) => (member.client === null ? null : `client ${member.client}`),
    ),
    groupLeader(
      'zookeeper',
      members,
      (member) => member.zk,
      (member) => (member.zkPort === null ? null : `zookeeper ${member.zkPort}`),
    ),
  ];
  if (json) writeOut(`${JSON.stringify({ groups, members: answers.map(describeJson) })}\n`);
  else writeOut(describe(groups, answers));
  exit(0);
}

/** /status of every given member and of every peer they name, wave by wave. */
async function collectStatuses(admins: readonly string[]): Promise<Answer[]> {
  const queued = new Set(admins);
  let wave = [...admins];
  const answers: Answer[] = [];
  while (wave.length > 0 && answers.length < debugLimits.membersMax) {
    const results = await Promise.all(wave.slice(0, debugLimits.membersMax - answers.length).map((admin) => statusOf(admin)));
    answers.push(...results);
    wave = [];
    for (const answer of results) {
      if (!('status' in answer)) continue;
      for (const peer of answer.status.peerAdmins) {
        if (queued.has(peer)) continue;
        queued.add(peer);
        wave.push(peer);
      }
    }
  }
  // A member reached under two addresses (localhost and 127.0.0.1) is listed once.
  const seen = new Set<number>();
  const unique = answers.filter((answer) => {
    if (!('status' in answer)) return true;
    if (seen.has(answer.status.id)) return false;
    seen.add(answer.status.id);
    return true;
  });
  return unique.sort((a, b) => idOf(a) - idOf(b) || a.admin.localeCompare(b.admin));
}

function idOf(answer: Answer): number {
  return 'status' in answer ? answer.status.id : Number.MAX_SAFE_INTEGER;
}

async function statusOf(admin: string): Promise<Answer> {
  try {
    return { admin, status: parseStatus(await getJson(`http://${admin}/status`, debugLimits.statusTimeoutMs)) };
  } catch (error) {
    if (!(error instanceof HttpGetError || error instanceof TypeError)) throw error;
    return { admin, problem: error.message };
  }
}

/** Validates the fields used here (an older member may lack pid); a malformed answer is a TypeError. */
function parseStatus(value: unknown): MemberStatus {
  const status = value as Record<string, unknown>;
  const number = (field: unknown, name: string): number => {
    if (typeof field !== 'number') throw new TypeError(`/status has no numeric ${name}`);
    return field;
  };
  const zk = status['zk'] as Record<string, unknown> | undefined;
  const addresses = status['addresses'] as Record<string, unknown> | undefined;
  const peers = Array.isArray(status['peers']) ? (status['peers'] as Record<string, unknown>[]) : [];
  return {
    id: number(status['id'], 'id'),
    pid: typeof status['pid'] === 'number' ? status['pid'] : null,
    role: String(status['role']),
    term: number(status['term'], 'term'),
    leader: number(status['leader'], 'leader'),
    client: typeof addresses?.['client'] === 'string' ? addresses['client'] : null,
    zkPort: typeof addresses?.['zk'] === 'string' ? addresses['zk'] : null,
    zk: zk === undefined ? null : { role: String(zk['role']), term: number(zk['term'], 'zk.term'), leader: number(zk['leader'], 'zk.leader') },
    peerAdmins: peers.flatMap((peer) => (typeof peer['admin'] === 'string' ? [peer['admin']] : [])),
  };
}

/**
 * The group's leader: the member that says it leads in the highest term; if none that
 * answered does, the leader most members name (it may be the one not answering).
 */
function groupLeader(
  group: string,
  members: readonly MemberStatus[],
  view: (member: MemberStatus) => { role: string; term: number; leader: number } | null,
  address: (member: MemberStatus) => string | null,
): GroupLeader {
  const views = members.flatMap((member) => {
    const seen = view(member);
    return seen === null ? [] : [{ member, ...seen }];
  });
  const leading = views.filter((entry) => entry.role === 'leader').sort((a, b) => b.term - a.term)[0];
  if (leading !== undefined) return { group, leader: leading.member.id, term: leading.term, pid: leading.member.pid, address: address(leading.member) };
  const votes = new Map<number, number>();
  for (const entry of views) if (entry.leader !== 0) votes.set(entry.leader, (votes.get(entry.leader) ?? 0) + 1);
  const named = [...votes.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0] ?? 0;
  const known = members.find((member) => member.id === named);
  return { group, leader: named, term: Math.max(0, ...views.map((entry) => entry.term)), pid: known?.pid ?? null, address: known === undefined ? null : address(known) };
}

function describe(groups: readonly GroupLeader[], answers: readonly Answer[]): string {
  const lines = groups.map((group) => {
    if (group.leader === 0) return `${group.group} group: no leader known (term ${group.term})`;
    const pid = group.pid === null ? 'pid unknown (its admin port did not answer)' : `pid ${group.pid}`;
    return `${group.group} group: leader member ${group.leader}, ${pid} (term ${group.term}${group.address === null ? '' : `; ${group.address}`})`;
  });
  lines.push('members:');
  for (const answer of answers) {
    if ('problem' in answer) {
      lines.push(`  ?          admin ${answer.admin}: not answering (${answer.problem})`);
      continue;
    }
    const status = answer.status;
    lines.push(`  member ${status.id}   pid ${status.pid ?? '?'}   admin ${answer.admin}   key/value ${status.role}   zookeeper ${status.zk?.role ?? '?'}`);
  }
  return `${lines.join('\n')}\n`;
}

function describeJson(answer: Answer): object {
  if ('problem' in answer) return { admin: answer.admin, problem: answer.problem };
  const status = answer.status;
  return {
    id: status.id,
    pid: status.pid,
    admin: answer.admin,
    client: status.client,
    zookeeper: status.zkPort,
    kv: { role: status.role, term: status.term, leader: status.leader },
    zk: status.zk,
  };
}

function adminList(raw: string): string[] {
  const items = raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  if (items.length === 0) throw new InvalidArgumentError('--admin: no addresses given');
  return items.map((item) => {
    try {
      return formatAddress(parseAddress(item, '--admin'));
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  });
}
