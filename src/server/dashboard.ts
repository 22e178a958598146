// The live dashboard's data: what this member knows of each Raft group it hosts, and the
// cluster as this member sees it, once a second to every open page (server-sent events on
// the admin port, admin.ts; the page itself is `dashboard/` at the checkout's root).
//
// A member knows its own status in each group; only a leader knows its followers' match
// and next index. To show every member's role, term and indexes, the feed asks each known
// member's admin port for its own view (`GET /dashboard/member`) once a round, with a short
// deadline, and combines the answers:
//
//   round  ask every peer (in parallel, at most one request in flight per peer)
//          a member that answered this round is up; one that did not is down, shown with
//          the values it last reported and how long ago that was
//   group  voters and learners from this member's applied configuration; the leader is
//          the up member claiming leadership in the highest term; lag = leader's last
//          index - follower's match
//
// The feed runs only while a page is open (a subscriber exists): a member nobody watches
// asks its peers nothing. Views from peers are validated (decodeMemberView) before use.

import type { Clock, Timer } from '../io/clock.js';
import type { RaftNode } from '../runtime/node.js';
import type { NodeId } from '../stdx/types.js';
import type { GroupName } from './membership.js';

export const dashboardLimits = {
  /** How often a snapshot goes to every open page. */
  intervalMs: 1000,
  /** A peer that has not answered within this long counts as down for the round. */
  fetchTimeoutMs: 800,
  /** Open pages (event streams) per member; one more is refused with 503. */
  subscribersMax: 32,
  /** Snapshots queued for a page that does not read them; at this many it is disconnected. */
  queuedSnapshotsMax: 30,
  /** Voters, learners or progress entries per group in a peer's answer; one with more is refused. */
  membersPerGroupMax: 64,
} as const;

export type ViewRole = 'follower' | 'precandidate' | 'candidate' | 'leader' | 'stopped';
const viewRoles: readonly ViewRole[] = ['follower', 'precandidate', 'candidate', 'leader', 'stopped'];
const viewGroups: readonly GroupName[] = ['kv', 'zk', 'etcd'];

/** A leader's view of one follower (raft/progress.ts). */
export interface FollowerProgress {
  readonly id: number;
  readonly state: string;
  readonly match: number;
  readonly next: number;
}

/** One member's own status in one group. */
export interface GroupView {
  readonly name: GroupName;
  readonly raftGroup: number;
  readonly role: ViewRole;
  readonly term: number;
  readonly leader: number;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly voters: readonly number[];
  readonly learners: readonly number[];
  /** Empty unless this member leads the group. */
  readonly progress: readonly FollowerProgress[];
}

/** The peers whose messages a member's transport drops (the dashboard's "cut link", faults.ts). */
export interface LinkCuts {
  readonly outgoing: readonly number[];
  readonly incoming: readonly number[];
}

/** What one member reports of itself (`GET /dashboard/member`). */
export interface MemberView {
  readonly id: number;
  readonly pid: number;
  readonly groups: readonly GroupView[];
  /** Links cut on this member; absent from members that predate fault injection. */
  readonly cuts?: LinkCuts;
}

/** Describes one group on this member, from its Raft node. */
export function describeGroup(name: GroupName, raftGroup: number, node: RaftNode): GroupView {
  const status = node.status();
  const membership = node.core.membership;
  const progress: FollowerProgress[] = [];
  if (status.role === 'leader' && !node.isStopped()) {
    for (const [id, text] of node.core.describeProgress()) {
      const parsed = parseProgress(id, text);
      if (parsed !== undefined) progress.push(parsed);
    }
  }
  return {
    name,
    raftGroup,
    role: node.isStopped() ? 'stopped' : status.role,
    term: status.term,
    leader: status.leader,
    commit: status.commit,
    applied: status.applied,
    lastIndex: status.lastIndex,
    voters: [...membership.voters],
    learners: [...membership.learners],
    progress,
  };
}

/** Reads Progress.describe()'s "replicate match=5 next=6 ..." (the text /status shows). */
export function parseProgress(id: number, text: string): FollowerProgress | undefined {
  const match = /^(probe|replicate|snapshot) match=(\d+) next=(\d+)/.exec(text);
  if (match === null) return undefined;
  return { id, state: match[1]!, match: Number(match[2]), next: Number(match[3]) };
}

// ---- Validating a peer's view (STYLE.md 6) ----

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isIdList(value: unknown): value is number[] {
  return Array.isArray(value) && value.length <= dashboardLimits.membersPerGroupMax && value.every(isCount);
}

function decodeProgress(raw: unknown): FollowerProgress | string {
  const p = raw as Record<string, unknown>;
  if (typeof p !== 'object' || p === null) return 'a progress entry is not an object';
  if (!isCount(p['id']) || !isCount(p['match']) || !isCount(p['next'])) return 'a progress entry needs id, match and next';
  if (p['state'] !== 'probe' && p['state'] !== 'replicate' && p['state'] !== 'snapshot') return 'a progress entry has an unknown state';
  return { id: p['id'], state: p['state'], match: p['match'], next: p['next'] };
}

function decodeGroupView(raw: unknown): GroupView | string {
  const g = raw as Record<string, unknown>;
  if (typeof g !== 'object' || g === null) return 'a group is not an object';
  if (!viewGroups.includes(g['name'] as GroupName)) return `unknown group ${JSON.stringify(g['name'])}`;
  if (!viewRoles.includes(g['role'] as ViewRole)) return `unknown role ${JSON.stringify(g['role'])}`;
  for (const field of ['raftGroup', 'term', 'leader', 'commit', 'applied', 'lastIndex']) {
    if (!isCount(g[field])) return `group ${String(g['name'])}: ${field} is not a count`;
  }
  if (!isIdList(g['voters']) || !isIdList(g['learners'])) return `group ${String(g['name'])}: voters and learners must be lists of ids`;
  const rawProgress = g['progress'];
  if (!Array.isArray(rawProgress) || rawProgress.length > dashboardLimits.membersPerGroupMax) return `group ${String(g['name'])}: progress is not a short list`;
  const progress: FollowerProgress[] = [];
  for (const entry of rawProgress) {
    const decoded = decodeProgress(entry);
    if (typeof decoded === 'string') return decoded;
    progress.push(decoded);
  }
  const n = (field: string) => g[field] as number;
  return {
    name: g['name'] as GroupName,
    raftGroup: n('raftGroup'),
    role: g['role'] as ViewRole,
    term: n('term'),
    leader: n('leader'),
    commit: n('commit'),
    applied: n('applied'),
    lastIndex: n('lastIndex'),
    voters: g['voters'],
    learners: g['learners'],
    progress,
  };
}

/** A peer's answer to `GET /dashboard/member`, checked field by field; a string says what is wrong. */
export function decodeMemberView(raw: unknown): MemberView | string {
  const m = raw as Record<string, unknown>;
  if (typeof m !== 'object' || m === null) return 'the answer is not an object';
  if (!isCount(m['id']) || !isCount(m['pid'])) return 'the answer needs id and pid';
  const rawGroups = m['groups'];
  if (!Array.isArray(rawGroups) || rawGroups.length > viewGroups.length) return 'groups is not a list of at most one entry per group';
  const groups: GroupView[] = [];
  for (const entry of rawGroups) {
    const decoded = decodeGroupView(entry);
    if (typeof decoded === 'string') return decoded;
    groups.push(decoded);
  }
  const rawCuts = m['cuts'] as Record<string, unknown> | undefined;
  if (rawCuts === undefined) return { id: m['id'], pid: m['pid'], groups };
  if (typeof rawCuts !== 'object' || rawCuts === null || !isIdList(rawCuts['outgoing']) || !isIdList(rawCuts['incoming'])) return 'cuts needs outgoing and incoming lists of ids';
  return { id: m['id'], pid: m['pid'], groups, cuts: { outgoing: rawCuts['outgoing'], incoming: rawCuts['incoming'] } };
}

// ---- Combining the views: one snapshot ----

export interface KnownMember {
  readonly id: NodeId;
  /** host:port of its admin port, once it has told us (MemberInfo). */
  readonly admin: string | undefined;
  /** This member's peer transport has a connection to it (always true for itself). */
  readonly connected: boolean;
}

export interface MemberSummary {
  readonly id: number;
  readonly admin: string | null;
  readonly self: boolean;
  readonly up: boolean;
  readonly connected: boolean;
  /** Milliseconds since it last answered; null if it never has. */
  readonly lastContactAgoMs: number | null;
  readonly pid: number | null;
  /** Why it is down, when it is. */
  readonly error: string | null;
}

export interface GroupMemberRow {
  readonly id: number;
  readonly voter: boolean;
  readonly up: boolean;
  /** Its own report; null when down (the indexes below are then the last it reported). */
  readonly role: ViewRole | null;
  readonly term: number | null;
  readonly leader: number | null;
  readonly commit: number | null;
  readonly applied: number | null;
  readonly lastIndex: number | null;
  /** The group leader's view of it; null where no leader reports one. */
  readonly state: string | null;
  readonly match: number | null;
  readonly next: number | null;
  readonly lag: number | null;
}

export interface GroupSummary {
  readonly name: GroupName;
  readonly raftGroup: number;
  /** The up member that leads in the highest term, or 0. */
  readonly leader: number;
  readonly term: number;
  /** The leader's commit and applied index (this member's when there is no leader). */
  readonly commit: number;
  readonly applied: number;
  readonly voters: readonly number[];
  readonly learners: readonly number[];
  readonly quorum: number;
  /** Voters that may fail with the group still able to commit. */
  readonly tolerated: number;
  readonly upVoters: number;
  readonly hasQuorum: boolean;
  readonly members: readonly GroupMemberRow[];
}

/** The fault buttons' state on the member serving the page (faults.ts); null: faults not allowed. */
export interface FaultsSummary {
  /** Members this member paused (SIGSTOP) and has not resumed. */
  readonly paused: readonly number[];
}

export interface DashboardSnapshot {
  readonly self: number;
  readonly intervalMs: number;
  readonly members: readonly MemberSummary[];
  readonly groups: readonly GroupSummary[];
  /** Directions of links cut (messages from `from` to `to` dropped), from every member's latest view. */
  readonly links: readonly { readonly from: number; readonly to: number }[];
  readonly faults: FaultsSummary | null;
}

interface Seen {
  readonly view: MemberView;
  readonly atMs: number;
}

/** The snapshot a round produces: `seen` holds each member's latest view, `upSince` the round's start. */
export function combineViews(
  self: NodeId,
  known: readonly KnownMember[],
  seen: ReadonlyMap<number, Seen>,
  errors: ReadonlyMap<number, string>,
  roundStartMs: number,
  nowMs: number,
): DashboardSnapshot {
  const isUp = (id: number) => (seen.get(id)?.atMs ?? -Infinity) >= roundStartMs;
  const members = [...known]
    .sort((a, b) => a.id - b.id)
    .map((member): MemberSummary => {
      const last = seen.get(member.id);
      const up = isUp(member.id);
      return {
        id: member.id,
        admin: member.admin ?? null,
        self: member.id === self,
        up,
        connected: member.connected,
        lastContactAgoMs: last === undefined ? null : Math.max(0, nowMs - last.atMs),
        pid: last?.view.pid ?? null,
        error: up ? null : (errors.get(member.id) ?? (member.admin === undefined ? 'its admin address is not known yet' : 'no answer yet')),
      };
    });
  const own = seen.get(self)?.view;
  const groups = (own?.groups ?? []).map((group) => summarizeGroup(group, seen, isUp));
  return { self, intervalMs: dashboardLimits.intervalMs, members, groups, links: cutLinks(seen), faults: null };
}

/** Each cut direction once, sorted: A drops what it sends to B, or B drops what it gets from A. */
export function cutLinks(seen: ReadonlyMap<number, { readonly view: MemberView }>): { from: number; to: number }[] {
  const links = new Map<string, { from: number; to: number }>();
  for (const { view } of seen.values()) {
    for (const to of view.cuts?.outgoing ?? []) links.set(`${view.id}>${to}`, { from: view.id, to });
    for (const from of view.cuts?.incoming ?? []) links.set(`${from}>${view.id}`, { from, to: view.id });
  }
  return [...links.values()].sort((a, b) => a.from - b.from || a.to - b.to);
}

function summarizeGroup(own: GroupView, seen: ReadonlyMap<number, Seen>, isUp: (id: number) => boolean): GroupSummary {
  const viewOf = (id: number) => seen.get(id)?.view.groups.find((g) => g.name === own.name);
  const ids = [...new Set([...own.voters, ...own.learners])].sort((a, b) => a - b);
  let leaderView: GroupView | undefined;
  let term = 0;
  for (const id of ids) {
    const view = viewOf(id);
    if (view === undefined || !isUp(id)) continue;
    term = Math.max(term, view.term);
    if (view.role === 'leader' && (leaderView === undefined || view.term > leaderView.term)) leaderView = view;
  }
  const leader = leaderView === undefined ? 0 : (ids.find((id) => viewOf(id) === leaderView) ?? 0);
  const rows = ids.map((id) => describeRow(id, own, viewOf(id), isUp(id), leader, leaderView));
  const quorum = Math.floor(own.voters.length / 2) + 1;
  const upVoters = own.voters.filter(isUp).length;
  return {
    name: own.name,
    raftGroup: own.raftGroup,
    leader,
    term,
    commit: leaderView?.commit ?? own.commit,
    applied: leaderView?.applied ?? own.applied,
    voters: own.voters,
    learners: own.learners,
    quorum,
    tolerated: Math.max(0, own.voters.length - quorum),
    upVoters,
    hasQuorum: upVoters >= quorum,
    members: rows,
  };
}

function describeRow(id: number, own: GroupView, view: GroupView | undefined, up: boolean, leader: number, leaderView: GroupView | undefined): GroupMemberRow {
  const progress = leaderView?.progress.find((p) => p.id === id);
  const isLeader = id === leader && leaderView !== undefined;
  const match = isLeader ? leaderView.lastIndex : (progress?.match ?? null);
  return {
    id,
    voter: own.voters.includes(id),
    up,
    role: up && view !== undefined ? view.role : null,
    term: view?.term ?? null,
    leader: up && view !== undefined ? view.leader : null,
    commit: view?.commit ?? null,
    applied: view?.applied ?? null,
    lastIndex: view?.lastIndex ?? null,
    state: isLeader ? 'leader' : (progress?.state ?? null),
    match,
    next: isLeader ? leaderView.lastIndex + 1 : (progress?.next ?? null),
    lag: match === null || leaderView === undefined ? null : Math.max(0, leaderView.lastIndex - match),
  };
}

// ---- The feed ----

export interface DashboardSources {
  readonly self: NodeId;
  readonly clock: Clock;
  /** This member's own view. */
  local(): MemberView;
  /** Every member this one knows (itself included). */
  members(): readonly KnownMember[];
  /** GETs `/dashboard/member` of the admin port at `admin` (host:port); rejects with a reason. */
  fetchView(admin: string, timeoutMs: number): Promise<unknown>;
  /** The fault buttons' state, when this member allows them (--allow-faults). */
  faults?(): FaultsSummary;
}

export interface Subscriber {
  /** Receives each snapshot as JSON; returns how many snapshots wait unread for this page. */
  send(json: string): number;
  /** The feed is done with this page (too slow, or the member is stopping). */
  close(): void;
}

export class DashboardFeed {
  private readonly subscribers = new Set<Subscriber>();
  private readonly seen = new Map<number, Seen>();
  private readonly errors = new Map<number, string>();
  private readonly inflight = new Set<number>();
  private round: Promise<DashboardSnapshot> | undefined;
  private latest: string | undefined;
  private timer: Timer | undefined;
  private stopped = false;

  constructor(private readonly sources: DashboardSources) {}

  /** The member's own view, for its peers' feeds. */
  member(): MemberView {
    return this.sources.local();
  }

  /** A snapshot taken now (or the one being taken). */
  snapshot(): Promise<DashboardSnapshot> {
    if (this.round === undefined) {
      this.round = this.takeSnapshot().finally(() => {
        this.round = undefined;
      });
    }
    return this.round;
  }

  /** Adds a page; undefined if subscribersMax are open (or the member is stopping). Returns the unsubscribe function. */
  subscribe(subscriber: Subscriber): (() => void) | undefined {
    if (this.stopped || this.subscribers.size >= dashboardLimits.subscribersMax) return undefined;
    this.subscribers.add(subscriber);
    if (this.latest !== undefined) subscriber.send(this.latest);
    if (this.timer === undefined) this.tick();
    return () => {
      this.subscribers.delete(subscriber);
    };
  }

  /** The pid member `id` reported last (a paused member no longer answers), if it ever did. */
  lastPid(id: number): number | undefined {
    return this.seen.get(id)?.view.pid;
  }

  subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Closes every page and stops the rounds. */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    for (const subscriber of this.subscribers) subscriber.close();
    this.subscribers.clear();
  }

  private tick(): void {
    if (this.stopped || this.subscribers.size === 0) {
      this.timer = undefined;
      this.latest = undefined;
      return;
    }
    this.timer = this.sources.clock.setTimer(dashboardLimits.intervalMs, () => this.tick());
    // A round still waiting for its peers is not broadcast twice.
    if (this.round !== undefined) return;
    void this.snapshot().then((snapshot) => this.broadcast(JSON.stringify(snapshot)));
  }

  private broadcast(json: string): void {
    this.latest = json;
    for (const subscriber of [...this.subscribers]) {
      const queued = subscriber.send(json);
      if (queued < dashboardLimits.queuedSnapshotsMax) continue;
      this.subscribers.delete(subscriber);
      subscriber.close();
    }
  }

  private async takeSnapshot(): Promise<DashboardSnapshot> {
    const { self, clock } = this.sources;
    const startMs = clock.nowMs();
    const known = this.sources.members();
    this.seen.set(self, { view: this.sources.local(), atMs: startMs });
    await Promise.all(known.filter((member) => member.id !== self).map((member) => this.ask(member, startMs)));
    return { ...combineViews(self, known, this.seen, this.errors, startMs, clock.nowMs()), faults: this.sources.faults?.() ?? null };
  }

  /** One peer's view for the round starting at `startMs`; never rejects. */
  private async ask(member: KnownMember, startMs: number): Promise<void> {
    if (member.admin === undefined || this.inflight.has(member.id)) return;
    this.inflight.add(member.id);
    try {
      const view = decodeMemberView(await this.sources.fetchView(member.admin, dashboardLimits.fetchTimeoutMs));
      if (typeof view === 'string') this.errors.set(member.id, `its answer was refused: ${view}`);
      else if (view.id !== member.id) this.errors.set(member.id, `${member.admin} answered as member ${view.id}`);
      else {
        this.seen.set(member.id, { view, atMs: Math.max(startMs, this.sources.clock.nowMs()) });
        this.errors.delete(member.id);
      }
    } catch (error) {
      this.errors.set(member.id, (error as Error).message);
    } finally {
      this.inflight.delete(member.id);
    }
  }
}
