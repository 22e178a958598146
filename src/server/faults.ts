// The dashboard's fault buttons (issue 20): POST /faults/<action> on a member's admin port,
// allowed only when the member was started with --allow-faults (`npm start` sets it; any
// other member answers 403). Each one is logged (warn) on the member that carries it out.
//
//   stop      {member}              kill -9 (SIGKILL); under `npm start` its supervisor
//                                   restarts it after its back-off (1 s, doubling)
//   restart   {member}              SIGTERM: a clean shutdown, then the supervisor restarts it
//   pause     {member}              SIGSTOP: alive but silent (not the member serving the page:
//                                   it could not resume itself)
//   resume    {member}              SIGCONT
//   campaign  {member, group?}      the member's election timeout fires now (in one group, or
//                                   every group it hosts): it campaigns (pre-vote first, so it
//                                   wins only if a majority no longer hears the leader)
//   link      {from, to, cut, both?}  cut (cut: true) or heal the link from `from` to `to`
//                                   (both: also `to` to `from`): `from` drops what it sends
//                                   to `to`, and `to` drops what it gets from `from`
//   link-end  {member, peer, outgoing?, incoming?}  one member's side of a link (what
//                                   `link` asks each end to do)
//
// Signals go to the pid a member reported (dashboard.ts), so they reach only members on
// this machine: one whose admin address is not a loopback address is refused. A member
// other than this one runs `campaign` and `link-end` itself: the request is forwarded to
// its admin port.

import type { NodeId } from '../stdx/types.js';
import type { GroupName } from './membership.js';

export type FaultSignal = 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'SIGCONT';

export const faultActions = ['stop', 'restart', 'pause', 'resume', 'campaign', 'link', 'link-end'] as const;
export type FaultAction = (typeof faultActions)[number];

export interface FaultAnswer {
  readonly status: number;
  readonly body: object;
}

export interface FaultLogger {
  warn(fields: object, message: string): void;
}

export interface FaultSources {
  readonly self: NodeId;
  readonly logger: FaultLogger;
  readonly groups: readonly GroupName[];
  /** Every member this one knows, itself included. */
  members(): readonly NodeId[];
  /** host:port of a member's admin port, once known. */
  adminOf(id: NodeId): string | undefined;
  /** This process's pid. */
  ownPid(): number;
  /** Asks member `id` for its pid (its /dashboard/member view); rejects with a reason. */
  askPid(id: NodeId): Promise<number>;
  /** The pid member `id` reported last, if any (a paused member no longer answers). */
  lastPid(id: NodeId): number | undefined;
  signal(pid: number, signal: FaultSignal): void;
  /** Makes this member campaign in `group`; returns what happened, in words. */
  campaign(group: GroupName): string;
  linkCuts(): { outgoing: readonly number[]; incoming: readonly number[] };
  setLinkCut(peer: NodeId, cut: { outgoing: boolean; incoming: boolean }): void;
  /** POSTs `body` to /faults/<action> of member `id`'s admin port; a refusal comes back as an answer. */
  forward(id: NodeId, action: FaultAction, body: object): Promise<FaultAnswer>;
}

const ok = (body: object): FaultAnswer => ({ status: 200, body: { ok: true, ...body } });
const refuse = (status: number, error: string): FaultAnswer => ({ status, body: { error } });

/** The refusal of a member started without --allow-faults. */
export const faultsNotAllowed: FaultAnswer = refuse(
  403,
  'fault injection is not allowed on this member: it was started without --allow-faults (npm start sets it for its local cluster; never use it in production)',
);

class BadRequest extends Error {}

function isLoopback(admin: string): boolean {
  const host = admin.startsWith('[') ? admin.slice(1, admin.indexOf(']')) : admin.slice(0, admin.lastIndexOf(':'));
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export class Faults {
  /** Members this one paused and has not resumed, with the pid it stopped. */
  private readonly paused = new Map<NodeId, number>();

  constructor(private readonly sources: FaultSources) {}

  /** For the dashboard's snapshot. */
  describe(): { paused: number[] } {
    return { paused: [...this.paused.keys()].sort((a, b) => a - b) };
  }

  /** Runs `POST /faults/<action>` with the parsed JSON `body`; never rejects. */
  async handle(action: string, body: unknown): Promise<FaultAnswer> {
    try {
      if (!(faultActions as readonly string[]).includes(action)) throw new BadRequest(`unknown fault "${action}" (known: ${faultActions.join(', ')})`);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('the body must be a JSON object');
      return await this.run(action as FaultAction, body as Record<string, unknown>);
    } catch (error) {
      if (error instanceof BadRequest) return refuse(400, error.message);
      return refuse(500, (error as Error).message);
    }
  }

  private async run(action: FaultAction, body: Record<string, unknown>): Promise<FaultAnswer> {
    switch (action) {
      case 'stop':
      case 'restart':
      case 'pause':
      case 'resume':
        allowOnly(body, ['member']);
        return this.signal(action, this.member(body, 'member'));
      case 'campaign': {
        allowOnly(body, ['member', 'group']);
        const member = this.member(body, 'member');
        const group = body['group'];
        if (group !== undefined && !this.sources.groups.includes(group as GroupName)) throw new BadRequest(`group must be one of ${this.sources.groups.join(', ')}, not ${JSON.stringify(group)}`);
        if (member !== this.sources.self) return this.sources.forward(member, 'campaign', body);
        const groups = group === undefined ? this.sources.groups : [group as GroupName];
        const outcomes = groups.map((name) => `${name}: ${this.sources.campaign(name)}`);
        this.sources.logger.warn({ fault: 'campaign', groups }, 'fault injected: the election timeout fired now');
        return ok({ member, outcomes });
      }
      case 'link':
        return this.link(body);
      case 'link-end':
        return this.linkEnd(body);
    }
  }

  private member(body: Record<string, unknown>, field: string): NodeId {
    const value = body[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new BadRequest(`${field} must be a member id (a positive integer), not ${JSON.stringify(value)}`);
    if (!this.sources.members().includes(value as NodeId)) throw new BadRequest(`${field}: member ${value} is not in this cluster (members: ${this.sources.members().join(', ')})`);
    return value as NodeId;
  }

  private async signal(action: 'stop' | 'restart' | 'pause' | 'resume', member: NodeId): Promise<FaultAnswer> {
    const self = member === this.sources.self;
    if (action === 'pause' && self) return refuse(409, `member ${member} serves this page and could not resume itself: pause it from another member's dashboard`);
    if (action === 'resume' && self) return refuse(409, `member ${member} serves this page, so it is not paused`);
    if (!self) {
      const admin = this.sources.adminOf(member);
      if (admin === undefined) return refuse(409, `member ${member}'s admin address is not known yet`);
      if (!isLoopback(admin)) return refuse(409, `member ${member} is not on this machine (admin ${admin}): faults signal only members on a loopback address`);
    }
    let pid: number;
    if (self) pid = this.sources.ownPid();
    else if (action === 'resume' || this.paused.has(member)) {
      const known = this.paused.get(member) ?? this.sources.lastPid(member);
      if (known === undefined) return refuse(409, `member ${member}'s pid is not known: it never answered this member`);
      pid = known;
    } else {
      try {
        pid = await this.sources.askPid(member);
      } catch (error) {
        return refuse(409, `member ${member} did not say its pid (${(error as Error).message}): it is down or paused`);
      }
    }
    const signals: Record<typeof action, FaultSignal[]> = {
      stop: ['SIGKILL'],
      // A paused member handles SIGTERM only once it runs again.
      restart: this.paused.has(member) ? ['SIGTERM', 'SIGCONT'] : ['SIGTERM'],
      pause: ['SIGSTOP'],
      resume: ['SIGCONT'],
    };
    const what = {
      stop: 'killed (SIGKILL); npm start restarts it after its back-off',
      restart: 'asked to stop (SIGTERM); npm start restarts it after its back-off',
      pause: 'paused (SIGSTOP)',
      resume: 'resumed (SIGCONT)',
    }[action];
    this.sources.logger.warn({ fault: action, member, pid }, `fault injected: member ${member} ${what}`);
    if (action === 'pause') this.paused.set(member, pid);
    else this.paused.delete(member);
    try {
      for (const signal of signals[action]) this.sources.signal(pid, signal);
    } catch (error) {
      return refuse(409, `member ${member} (pid ${pid}): ${(error as Error).message}`);
    }
    return ok({ member, pid, done: `member ${member} ${what}` });
  }

  private async link(body: Record<string, unknown>): Promise<FaultAnswer> {
    allowOnly(body, ['from', 'to', 'cut', 'both']);
    const from = this.member(body, 'from');
    const to = this.member(body, 'to');
    if (from === to) throw new BadRequest('from and to must be two different members');
    const cut = body['cut'];
    if (typeof cut !== 'boolean') throw new BadRequest('cut must be true (cut the link) or false (heal it)');
    const both = body['both'] ?? false;
    if (typeof both !== 'boolean') throw new BadRequest('both must be true or false');
    const ends: [NodeId, object][] = [
      [from, { member: from, peer: to, outgoing: cut, ...(both ? { incoming: cut } : {}) }],
      [to, { member: to, peer: from, incoming: cut, ...(both ? { outgoing: cut } : {}) }],
    ];
    const answers = await Promise.all(
      ends.map(async ([member, request]) => {
        const answer =
          member === this.sources.self
            ? await this.linkEnd(request as Record<string, unknown>)
            : await this.sources.forward(member, 'link-end', request).catch((error: Error) => refuse(502, error.message));
        return { member, status: answer.status, answer: answer.body };
      }),
    );
    const applied = answers.filter((a) => a.status === 200).map((a) => a.member);
    const failed = answers.filter((a) => a.status !== 200).map((a) => ({ member: a.member, error: (a.answer as { error?: unknown }).error ?? `HTTP ${a.status}` }));
    const link = `${from} ${both ? '<->' : '->'} ${to}`;
    // One end suffices to cut (or, for a link it cut alone, to heal) a direction.
    if (applied.length === 0) return { status: 502, body: { error: `neither end of ${link} could be reached`, failed } };
    return ok({ link, cut, applied, failed });
  }

  private linkEnd(body: Record<string, unknown>): FaultAnswer {
    allowOnly(body, ['member', 'peer', 'outgoing', 'incoming']);
    const member = this.member(body, 'member');
    const peer = this.member(body, 'peer');
    if (member !== this.sources.self) throw new BadRequest(`link-end is carried out by member ${member} itself; this is member ${this.sources.self}`);
    if (peer === member) throw new BadRequest('peer must be another member');
    const current = this.sources.linkCuts();
    const next = { outgoing: current.outgoing.includes(peer), incoming: current.incoming.includes(peer) };
    for (const side of ['outgoing', 'incoming'] as const) {
      const value = body[side];
      if (value === undefined) continue;
      if (typeof value !== 'boolean') throw new BadRequest(`${side} must be true (drop) or false (deliver)`);
      next[side] = value;
    }
    this.sources.setLinkCut(peer, next);
    this.sources.logger.warn(
      { fault: 'link', peer, dropOutgoing: next.outgoing, dropIncoming: next.incoming },
      `fault injected: messages to member ${peer} ${next.outgoing ? 'dropped' : 'delivered'}, from it ${next.incoming ? 'dropped' : 'delivered'}`,
    );
    return ok({ member, peer, ...next });
  }
}

function allowOnly(body: Record<string, unknown>, fields: readonly string[]): void {
  for (const key of Object.keys(body)) if (!fields.includes(key)) throw new BadRequest(`unknown field "${key}" (expected ${fields.join(', ')})`);
}
