// `flotilla member list|add|promote|remove|transfer-leader`: membership of a running
// cluster through any member's admin API (server/membership.ts), which runs each change on
// the group's leader. Without --group a change is made in every group (key/value, then
// ZooKeeper), as a member serves both.
//
//   flotilla member add 4 127.0.0.1:7104      the new member (started with --join) as a learner
//   flotilla member promote 4                 a voter, once it has caught up
//   flotilla member remove 3
//   flotilla member transfer-leader 2
//
// Exit codes: 0 done; 1 refused or no member answered; 2 bad usage.

import { type Command, InvalidArgumentError } from 'commander';
import { getJson, HttpGetError, postJson } from '../platform/http-get.js';
import { exit, writeErr, writeOut } from '../platform/process.js';
import { localCluster } from './local-cluster.js';
import type { ClientTls } from '../platform/tls.js';
import { TlsLoadError } from '../platform/tls.js';
import { addTlsOptions, adminUrl, clientTls, type TlsFlags } from './tls-options.js';

export const memberLimits = {
  statusTimeoutMs: 2_000,
  /** A change may wait for an election, a transfer and an apply in each group. */
  changeTimeoutMs: 40_000,
} as const;

interface GroupView {
  readonly leader: number;
  readonly term: number;
  readonly members: readonly { id: number; kind: string; peer: string | null; match: number | null; lag: number | null; leader: boolean }[];
}

type Action = 'add' | 'promote' | 'remove' | 'transfer-leader';

export function registerMember(program: Command): void {
  const defaultAdmins = localCluster.adminAddresses().join(',');
  const member = program.command('member').description("list and change a running cluster's members (every Raft group)");
  const common = (command: Command) =>
    addTlsOptions(command)
      .option('--admin <list>', 'admin addresses (host:port,...) of members to ask; the first that answers is used', defaultAdmins)
      .option('--group <group>', 'only this group: kv or zk (default: every group)', group);
  common(member.command('list').description('each group: its voters and learners, peer addresses, match index and lag behind the leader'))
    .option('--json', 'print JSON')
    .action((options: { admin: string; group?: string; json?: boolean } & TlsFlags) => list(admins(options.admin), options.group, options.json === true, tlsOf(options)));
  common(
    member
      .command('add')
      .argument('<id>', 'the new member id', id)
      .argument('<peer>', 'its peer address, host:port')
      .description('add a member as a learner (start it first with flotilla server --join)'),
  ).action((memberId: number, peer: string, options: { admin: string; group?: string } & TlsFlags) =>
    change(admins(options.admin), { action: 'add', id: memberId, peer }, options.group, tlsOf(options)),
  );
  for (const [action, description] of [
    ['promote', 'make a learner a voter (refused until it has caught up)'],
    ['remove', 'remove a member (a leader hands over leadership first)'],
    ['transfer-leader', 'hand leadership to a voter'],
  ] as const) {
    common(member.command(action).argument('<id>', 'the member id', id).description(description)).action((memberId: number, options: { admin: string; group?: string } & TlsFlags) =>
      change(admins(options.admin), { action, id: memberId }, options.group, tlsOf(options)),
    );
  }
}

/** --cacert/--cert/--key read and checked, or exit 2 naming the problem. */
function tlsOf(flags: TlsFlags): ClientTls | undefined {
  try {
    return clientTls(flags);
  } catch (error) {
    if (error instanceof TlsLoadError) usage(error.message);
    throw error;
  }
}

async function change(admins: readonly string[], request: { action: Action; id: number; peer?: string }, group: string | undefined, tls: ClientTls | undefined): Promise<void> {
  const body = group === undefined ? request : { ...request, group };
  const problems: string[] = [];
  for (const admin of admins) {
    let answer: object;
    try {
      answer = await postJson(adminUrl(admin, '/members', tls), body, memberLimits.changeTimeoutMs, tls);
    } catch (error) {
      problems.push(`${admin}: ${error instanceof HttpGetError ? error.message : String(error)}`);
      continue;
    }
    const refused = answer as { error?: unknown; status?: unknown; done?: unknown };
    if (typeof refused.error === 'string') {
      // Without --group the change runs group by group: those done before the refusal stay
      // done, and the same command again would be refused by them ("not a learner").
      const done = Array.isArray(refused.done) ? (refused.done as object[]) : [];
      for (const result of done) writeOut(`${describeResult(result)}\n`);
      writeErr(`flotilla member ${request.action}: ${refused.error}\n`);
      const doneIn = done.map((result) => String((result as { group?: unknown }).group));
      const left = groups.filter((name) => !doneIn.includes(name));
      if (group === undefined && done.length > 0) {
        const finish = left.map((name) => `flotilla member ${request.action} ${request.id} --group ${name}`).join(', then ');
        writeErr(`flotilla member ${request.action} ${request.id}: done in ${doneIn.join(', ')}, not in ${left.join(', ')}; once the reason above is dealt with, finish with: ${finish}\n`);
      }
      exit(1);
    }
    const results = 'results' in answer ? (answer.results as object[]) : [answer];
    for (const result of results) writeOut(`${describeResult(result)}\n`);
    return;
  }
  writeErr(`flotilla member: no member answered (${problems.join('; ')}); is the cluster running? (--admin host:port,...)\n`);
  exit(1);
}

function describeResult(result: object): string {
  const r = result as { group?: string; action?: string; id?: number; voters?: number[]; learners?: number[]; leader?: number };
  if (r.action === 'transfer-leader') return `${r.group}: member ${r.leader} leads`;
  return `${r.group}: ${r.action} ${r.id} done; voters ${r.voters?.join(',') ?? '?'}${r.learners !== undefined && r.learners.length > 0 ? `, learners ${r.learners.join(',')}` : ''}`;
}

async function list(admins: readonly string[], only: string | undefined, json: boolean, tls: ClientTls | undefined): Promise<void> {
  const views = await collectViews(admins, tls);
  const groups = Object.keys(views).filter((name) => only === undefined || name === only);
  if (json) {
    writeOut(`${JSON.stringify(Object.fromEntries(groups.map((name) => [name, views[name]])))}\n`);
    return;
  }
  const lines: string[] = [];
  for (const name of groups) {
    const view = views[name]!;
    lines.push(`${name === 'kv' ? 'key/value' : 'zookeeper'} group: leader ${view.leader || 'none'}, term ${view.term}`);
    lines.push('  id  kind     peer                   match     lag');
    for (const m of view.members) {
      const match = m.match === null ? '-' : String(m.match);
      const lag = m.lag === null ? '-' : String(m.lag);
      lines.push(`  ${String(m.id).padEnd(3)} ${m.kind.padEnd(8)} ${(m.peer ?? '?').padEnd(22)} ${match.padEnd(9)} ${lag}${m.leader ? '  (leader)' : ''}`);
    }
  }
  writeOut(`${lines.join('\n')}\n`);
}

/**
 * Each group as its leader sees it (only the leader knows its members' match indexes): ask
 * the first member that answers, then each group's leader through its admin address.
 */
async function collectViews(admins: readonly string[], tls: ClientTls | undefined): Promise<Record<string, GroupView>> {
  const problems: string[] = [];
  for (const admin of admins) {
    try {
      const first = (await getJson(adminUrl(admin, '/members', tls), memberLimits.statusTimeoutMs, tls)) as Record<string, GroupView>;
      const status = (await getJson(adminUrl(admin, '/status', tls), memberLimits.statusTimeoutMs, tls)) as { id: number; peers: { id: number; admin: string | null }[] };
      const adminOf = new Map<number, string>([[status.id, admin], ...status.peers.flatMap((p) => (p.admin === null ? [] : [[p.id, p.admin] as [number, string]]))]);
      const views: Record<string, GroupView> = {};
      for (const [name, view] of Object.entries(first)) {
        const leaderAdmin = view.leader === status.id ? undefined : adminOf.get(view.leader);
        views[name] = (leaderAdmin === undefined ? undefined : (await leaderView(leaderAdmin, tls))?.[name]) ?? view;
      }
      return views;
    } catch (error) {
      problems.push(`${admin}: ${error instanceof HttpGetError ? error.message : String(error)}`);
    }
  }
  writeErr(`flotilla member: no member answered (${problems.join('; ')}); is the cluster running? (--admin host:port,...)\n`);
  exit(1);
}

/** The leader's own /members (with match indexes), or undefined if it does not answer. */
async function leaderView(admin: string, tls: ClientTls | undefined): Promise<Record<string, GroupView> | undefined> {
  try {
    return (await getJson(adminUrl(admin, '/members', tls), memberLimits.statusTimeoutMs, tls)) as Record<string, GroupView>;
  } catch {
    return undefined;
  }
}

function admins(raw: string): string[] {
  const list = raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  if (list.length === 0) usage('--admin needs at least one host:port');
  return list;
}

function id(raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError('a member id is a positive integer');
  return value;
}

/** Every group a member hosts, in the order a change without --group runs in them. */
const groups = ['kv', 'zk'];

function group(raw: string): string {
  if (!groups.includes(raw)) throw new InvalidArgumentError('kv or zk');
  return raw;
}

function usage(message: string): never {
  writeErr(`flotilla member: ${message}\n`);
  exit(2);
}
