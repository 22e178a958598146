// The Raft consensus core: synchronous, sans-IO and deterministic (DESIGN.md §2, modelled
// on etcd-io/raft's RawNode). Inputs: tick(), step(message), propose(data), readIndex(),
// compact(), transferLeadership(), proposeConfChange(). Output: a Ready with what to
// persist, what to send and what to apply; the shell handles one Ready at a time and then
// calls advance(ready).
//
// The I/O ordering contract: every message in a Ready may depend on the hard state,
// entries and snapshot in the same Ready (a granted vote, an acknowledged append), so the
// shell must make those durable before it sends a single message. The leader counts its
// own log toward commitment only once it is durable (advance() reports that).

import { assert, unreachable } from '../stdx/assert.js';
import type { Prng } from '../stdx/prng.js';
import { type Index, type NodeId, type Term, index, nodeId, term } from '../stdx/types.js';
import { type RaftConfig, validateConfig } from './config.js';
import { RaftLog } from './log.js';
import { type ConfChange, type Membership, applyConfChange, confContextBytesMax, decodeConfEntry, encodeConfEntry } from './membership.js';
import type { Append, AppendResponse, Heartbeat, HeartbeatResponse, Message, ReadIndexRequest, SnapshotChunk, SnapshotResponse, VoteRequest } from './messages.js';
import { Progress } from './progress.js';
import { committedIndex, majority, quorumActive, voteResult } from './quorum.js';
import { ReadOnly } from './read-only.js';
import type { Entry, HardState, Snapshot, SnapshotMeta } from './types.js';

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

/** A read that became safe: serve it once the state machine has applied `index`. */
export interface ReadState {
  readonly context: number;
  readonly index: Index;
}

export interface Ready {
  /** Set when the hard state changed since the last Ready. Persist before sending. */
  readonly hardState: HardState | undefined;
  /** Entries to make durable; they replace any persisted entries from entries[0].index. */
  readonly entries: readonly Entry[];
  /**
   * A snapshot to make durable (before the entries). If `applySnapshot` is set it came
   * from the leader and the service must also restore it, before the committed entries.
   */
  readonly snapshot: Snapshot | undefined;
  readonly applySnapshot: boolean;
  /** Messages to send, after the hard state, snapshot and entries are durable. */
  readonly messages: readonly Message[];
  /** Committed entries to apply to the service, in order. */
  readonly committedEntries: readonly Entry[];
  /** Reads confirmed since the last Ready. */
  readonly readStates: readonly ReadState[];
}

export type RefusalReason = 'not-leader' | 'too-many-uncommitted-bytes' | 'transferring' | 'conf-change-pending' | 'invalid-conf-change';

export type ProposeResult =
  | { readonly ok: true; readonly index: Index; readonly term: Term }
  | { readonly ok: false; readonly reason: RefusalReason; readonly leader: NodeId; readonly detail?: string };

export interface InitialState {
  readonly hardState: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | undefined;
}

export class RaftCore {
  readonly id: NodeId;
  role: Role = 'follower';
  term: Term;
  /** The candidate voted for in `term`, or 0. */
  vote: NodeId;
  /** The leader of `term` as far as this node knows, or 0. */
  leader: NodeId = nodeId(0);
  readonly log: RaftLog;
  /** The applied configuration. Change it only through setMembership(). */
  membership: Membership;
  /** Voters and learners, sorted (derived from membership, kept for the hot paths). */
  private memberIds: NodeId[] = [];

  private readonly config: RaftConfig;
  private readonly prng: Prng;
  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private ticks = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTicks = 0;
  private uncommittedBytes = 0;
  /**
   * Peers owed an Append (new entries or a newer commit) at the next Ready. The value says
   * whether to send one even with no entries: a heartbeat answer from a follower that lags
   * needs a pipeline probe, since its Appends or their answers may have been lost.
   */
  private readonly appendOwed = new Map<NodeId, boolean>();
  private messages: Message[] = [];
  private readStates: ReadState[] = [];
  private lastHardState: HardState;
  private readyOutstanding = false;
  /** The latest snapshot (sent to followers that need compacted entries). */
  private snapshot: Snapshot | undefined;
  /** A snapshot waiting for the next Ready: a local compaction or one received. */
  private pendingSnapshot: { snapshot: Snapshot; apply: boolean } | undefined;
  /** Chunks of a snapshot being received: its meta and the bytes so far. */
  private incoming: { meta: SnapshotMeta; chunks: Uint8Array[]; bytes: number } | undefined;
  /** Membership after each applied config entry since the snapshot, for snapshot metas. */
  private membershipHistory: { index: Index; membership: Membership }[] = [];
  /** Leader: the index of the last config entry; none may be proposed until it applies. */
  private pendingConfIndex: Index = index(0);
  private readOnly: ReadOnly;
  /** Leader: reads waiting for the first commit of this term. */
  private readsAwaitingCommit: { from: NodeId; context: number }[] = [];
  private leadTransferee: NodeId = nodeId(0);
  private transferElapsed = 0;
  /** Reads are waiting for a heartbeat round: one round at the next Ready serves them all. */
  private readRoundOwed = false;

  constructor(config: RaftConfig, prng: Prng, initial: InitialState) {
    const problem = validateConfig(config);
    assert(problem === undefined, `bad Raft configuration: ${problem}`);
    this.config = config;
    this.id = config.id;
    this.prng = prng;
    this.term = initial.hardState.term;
    this.vote = initial.hardState.vote;
    const snapshot = initial.snapshot;
    this.snapshot = snapshot;
    this.membership = { voters: [], learners: [] };
    this.setMembership(snapshot ? { voters: snapshot.meta.voters, learners: snapshot.meta.learners } : { voters: sortIds(config.voters), learners: sortIds(config.learners ?? []) });
    this.log = new RaftLog(snapshot?.meta.index ?? index(0), snapshot?.meta.term ?? term(0), initial.entries, initial.hardState.commit);
    this.log.keepConflictingSuffix = config.unsafe?.keepConflictingSuffix === true;
    this.membershipHistory = [{ index: this.log.snapshotIndex, membership: this.membership }];
    this.readOnly = new ReadOnly(this.id);
    this.lastHardState = this.hardState();
    this.resetElectionTimer();
  }

  // ---- Inputs -------------------------------------------------------------------------

  tick(): void {
    this.ticks++;
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  /** Starts an election now, as if the election timeout had passed (etcd's MsgHup). */
  campaign(): void {
    if (this.role === 'leader' || !this.isVoter()) return;
    this.electionElapsed = 0;
    this.startElection(this.config.preVote ? 'precandidate' : 'candidate', false);
  }

  /**
   * The shell saw its connection to `id` close, as the kernel closes a dead process's
   * sockets. If `id` is our leader, stop honouring its lease and campaign within a tick or
   * two instead of waiting out the election timeout. Safe, and not disruptive: the pre-vote
   * wins only if a majority lost the leader too (the others still hear from it, keep its
   * lease and refuse), and a leader that is alive after all makes us its follower again
   * with its next message. Off with lease reads, which count on every follower honouring
   * the lease for the whole election timeout.
   */
  peerUnreachable(id: NodeId): void {
    if (this.role !== 'follower' || this.leader !== id || id === this.id) return;
    if (!this.config.preVote || !this.config.checkQuorum || this.config.readMode === 'lease') return;
    this.leader = nodeId(0);
    // One or two ticks, drawn, so two followers that lost the same leader rarely split the vote.
    this.electionElapsed = Math.max(this.electionElapsed, this.randomizedElectionTicks - 1 - this.prng.int(2));
  }

  /** Proposes `data` for the log. Only a leader accepts; the shell reports the result. */
  propose(data: Uint8Array): ProposeResult {
    const refusal = this.refuseProposal(data.length);
    if (refusal !== undefined) return refusal;
    return this.appendProposal('normal', data);
  }

  /** Proposes a single-server membership change (at most one pending at a time). */
  proposeConfChange(change: ConfChange): ProposeResult {
    const refusal = this.refuseProposal(0);
    if (refusal !== undefined) return refusal;
    if (this.pendingConfIndex > this.log.applied) return this.refused('conf-change-pending');
    if ((change.context?.length ?? 0) > confContextBytesMax) return this.refused('invalid-conf-change', `the change's context exceeds ${confContextBytesMax} bytes`);
    const next = applyConfChange(this.membership, change);
    if (typeof next === 'string') return this.refused('invalid-conf-change', next);
    const result = this.appendProposal('config', encodeConfEntry({ change, membership: next }));
    if (result.ok) this.pendingConfIndex = result.index;
    return result;
  }

  /**
   * Asks for a linearizable read. The answer comes as a ReadState with this `context`
   * (nonzero, unique per node) in a later Ready; a read that cannot be served (no leader,
   * lost leadership) simply never gets one, and the shell times it out.
   */
  readIndex(context: number): void {
    assert(context > 0, 'read contexts are positive');
    if (this.role === 'leader') this.leaderReadIndex(this.id, context);
    else if (this.leader !== 0) this.send({ type: 'ReadIndex', to: this.leader, term: this.term, context });
  }

  /**
   * The service has a snapshot of its state at applied index `at`; the log up to there
   * may go once the snapshot is durable (it comes back in the next Ready to persist).
   */
  compact(at: Index, data: Uint8Array): boolean {
    if (at <= this.log.snapshotIndex || at > this.log.applied) return false;
    // A newer snapshot (one still waiting to be persisted, or one received from the
    // leader) supersedes this one; keeping `snapshot` the newest is what lets a future
    // leader send followers a snapshot that reaches its first log index.
    if (at <= (this.snapshot?.meta.index ?? 0) || this.pendingSnapshot?.apply === true) return false;
    const t = this.log.term(at);
    assert(t !== undefined, `compact at ${at}: no such entry`);
    const m = this.membershipAt(at);
    const snapshot: Snapshot = { meta: { index: at, term: t, voters: m.voters, learners: m.learners }, data };
    this.snapshot = snapshot;
    this.pendingSnapshot = { snapshot, apply: false };
    return true;
  }

  /** Hands leadership to `to` once its log is caught up (thesis §3.10). */
  transferLeadership(to: NodeId): boolean {
    if (this.role !== 'leader' || to === this.id || !this.membership.voters.includes(to)) return false;
    this.leadTransferee = to;
    this.transferElapsed = 0;
    const pr = this.progressOf(to);
    if (pr.match === this.log.lastIndex()) this.send({ type: 'TimeoutNow', to, term: this.term });
    else this.oweAppend(to, false);
    return true;
  }

  step(message: Message): void {
    assert(message.to === this.id, 'message delivered to the wrong node');
    if (!this.stepTerm(message)) return;
    switch (message.type) {
      case 'PreVote':
      case 'Vote':
        this.stepVoteRequest(message);
        return;
      default:
        break;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(message);
        return;
      case 'precandidate':
      case 'candidate':
        this.stepCandidate(message);
        return;
      case 'follower':
        this.stepFollower(message);
        return;
      default:
        unreachable(this.role, 'role');
    }
  }

  // ---- Ready / advance ----------------------------------------------------------------

  hasReady(): boolean {
    assert(!this.readyOutstanding, 'hasReady() while a Ready is outstanding');
    return (
      this.messages.length > 0 ||
      this.readStates.length > 0 ||
      this.appendOwed.size > 0 ||
      this.readRoundOwed ||
      this.pendingSnapshot !== undefined ||
      this.log.stableIndex < this.log.lastIndex() ||
      this.log.committed > this.log.applied ||
      !sameHardState(this.hardState(), this.lastHardState)
    );
  }

  ready(): Ready {
    assert(!this.readyOutstanding, 'only one Ready may be outstanding (STYLE.md 3)');
    this.flushAppends();
    if (this.readRoundOwed && this.role === 'leader') this.broadcastHeartbeat();
    this.readRoundOwed = false;
    const hardState = this.hardState();
    const pending = this.pendingSnapshot;
    const appliedThrough = pending?.apply === true ? Math.max(this.log.applied, pending.snapshot.meta.index) : this.log.applied;
    const ready: Ready = {
      hardState: sameHardState(hardState, this.lastHardState) ? undefined : hardState,
      entries: this.log.unstableEntries(),
      snapshot: pending?.snapshot,
      applySnapshot: pending?.apply === true,
      messages: this.messages,
      committedEntries: this.log.nextCommittedEntries(this.config.applyBytesMax, appliedThrough),
      readStates: this.readStates,
    };
    this.pendingSnapshot = undefined;
    this.messages = [];
    this.readStates = [];
    this.readyOutstanding = true;
    return ready;
  }

  /** The shell has persisted, sent and applied everything in `ready`. */
  advance(ready: Ready): void {
    assert(this.readyOutstanding, 'advance() without an outstanding Ready');
    this.readyOutstanding = false;
    if (ready.hardState !== undefined) this.lastHardState = ready.hardState;
    if (ready.snapshot !== undefined) {
      if (ready.applySnapshot) this.log.appliedSnapshot(ready.snapshot.meta.index);
      else this.log.compact(ready.snapshot.meta.index);
      this.membershipHistory = this.membershipHistory.filter((_h, i, all) => i === all.length - 1 || all[i + 1]!.index > this.log.snapshotIndex);
    }
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    for (const entry of ready.committedEntries) {
      this.log.appliedTo(entry.index);
      // A config entry a newer received snapshot covers is already in its membership.
      if (entry.type === 'config' && entry.index > this.log.snapshotIndex) this.applyConfEntry(entry);
    }
    if (this.role === 'leader') {
      // Our own log counts toward the quorum only once it is durable.
      this.progressOf(this.id).maybeUpdate(this.log.stableIndex);
      this.maybeCommit();
    }
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** The peers' replication state, for /status and tests; empty unless leader. */
  describeProgress(): Map<NodeId, string> {
    const out = new Map<NodeId, string>();
    for (const id of this.members()) {
      const pr = this.progress.get(id);
      if (pr !== undefined) out.set(id, pr.describe());
    }
    return out;
  }

  /** A follower's match index, as the leader sees it (for promoting caught-up learners). */
  matchOf(id: NodeId): Index | undefined {
    return this.progress.get(id)?.match;
  }

  // ---- Term handling (first, for every message) ----------------------------------------

  /** Handles the message's term. Returns false if the message is to be ignored. */
  private stepTerm(m: Message): boolean {
    if (m.term > this.term) return this.stepHigherTerm(m);
    if (m.term < this.term) {
      this.stepLowerTerm(m);
      return false;
    }
    return true;
  }

  private stepHigherTerm(m: Message): boolean {
    if (m.type === 'PreVote' || m.type === 'Vote') {
      // Leader lease (thesis §4.2.3): while we hear from a live leader, ignore requests
      // from a disruptive server, without even adopting its term.
      const inLease = this.config.checkQuorum && this.leader !== 0 && this.electionElapsed < this.config.electionTicks;
      if (inLease && !m.transfer) return false;
    }
    // A PreVote never changes our term; a granted PreVoteResp carries a future term.
    if (m.type === 'PreVote') return true;
    if (m.type === 'PreVoteResp' && !m.reject) return true;
    const fromLeader = m.type === 'App' || m.type === 'Heartbeat' || m.type === 'Snap';
    this.becomeFollower(m.term, fromLeader ? m.from : nodeId(0));
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if (m.type === 'App' || m.type === 'Heartbeat' || m.type === 'Snap') {
      // A stale leader (say, one that was partitioned) learns the newer term from this
      // answer and steps down; without it, check-quorum and pre-vote could leave it stuck.
      this.send({ type: 'AppResp', to: m.from, term: this.term, index: index(0), reject: true, hintIndex: index(0), hintTerm: term(0) });
    } else if (m.type === 'PreVote') {
      this.send({ type: 'PreVoteResp', to: m.from, term: this.term, reject: true });
    }
  }

  // ---- Elections -------------------------------------------------------------------------

  private stepVoteRequest(m: VoteRequest): void {
    const canVote = this.vote === m.from || (this.vote === 0 && this.leader === 0) || (m.type === 'PreVote' && m.term > this.term);
    const logOk = this.config.unsafe?.grantVoteWithoutLogCheck === true || this.log.isUpToDate(m.lastIndex, m.lastTerm);
    const responseType = m.type === 'Vote' ? 'VoteResp' : 'PreVoteResp';
    if (canVote && logOk) {
      // A PreVote answer carries the request's term so the candidate can count it.
      this.send({ type: responseType, to: m.from, term: m.term, reject: false });
      if (m.type === 'Vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: responseType, to: m.from, term: this.term, reject: true });
    }
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTicks) this.campaign();
  }

  private startElection(role: 'precandidate' | 'candidate', transfer: boolean): void {
    if (role === 'precandidate') this.becomePreCandidate();
    else this.becomeCandidate();
    const campaignTerm = role === 'precandidate' ? term(this.term + 1) : this.term;
    this.recordVote(this.id, true);
    if (this.checkElection()) return;
    const type = role === 'precandidate' ? 'PreVote' : 'Vote';
    for (const id of this.membership.voters) {
      if (id === this.id) continue;
      this.send({ type, to: id, term: campaignTerm, lastIndex: this.log.lastIndex(), lastTerm: this.log.lastTerm(), transfer });
    }
  }

  private recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Acts on the votes so far. Returns true if the election is decided. */
  private checkElection(): boolean {
    const result = voteResult(this.membership.voters, this.votes, this.quorum());
    if (result === 'pending') return false;
    if (result === 'lost') {
      this.becomeFollower(this.term, nodeId(0));
    } else if (this.role === 'precandidate') {
      this.startElection('candidate', false);
    } else {
      this.becomeLeader();
    }
    return true;
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'App':
      case 'Heartbeat':
      case 'Snap':
        // Another node won this term.
        this.becomeFollower(this.term, m.from);
        this.stepFollower(m);
        return;
      case 'PreVoteResp':
        if (this.role === 'precandidate') {
          this.recordVote(m.from, !m.reject);
          this.checkElection();
        }
        return;
      case 'VoteResp':
        if (this.role === 'candidate') {
          this.recordVote(m.from, !m.reject);
          this.checkElection();
        }
        return;
      default:
        return;
    }
  }

  // ---- Follower ----------------------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'App':
        this.heardFromLeader(m.from);
        this.stepAppend(m);
        return;
      case 'Heartbeat':
        this.heardFromLeader(m.from);
        this.stepHeartbeat(m);
        return;
      case 'Snap':
        this.heardFromLeader(m.from);
        this.stepSnapshotChunk(m);
        return;
      case 'TimeoutNow':
        // The leader hands over: campaign now, skipping pre-vote and the voters' leases.
        if (this.isVoter()) this.startElection('candidate', true);
        return;
      case 'ReadIndexResp':
        this.readStates.push({ context: m.context, index: m.index });
        return;
      default:
        return;
    }
  }

  private heardFromLeader(leader: NodeId): void {
    this.electionElapsed = 0;
    this.leader = leader;
  }

  private stepAppend(m: Append): void {
    if (m.prevIndex < this.log.committed) {
      // Everything up to our commit index matches any leader's log (Leader Completeness).
      this.sendAppendResponse(m.from, this.log.committed);
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.entries);
    if (lastNew !== undefined) {
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.sendAppendResponse(m.from, lastNew);
      return;
    }
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(m.prevIndex, m.prevTerm);
    this.send({ type: 'AppResp', to: m.from, term: this.term, index: m.prevIndex, reject: true, hintIndex, hintTerm });
  }

  private sendAppendResponse(to: NodeId, matched: Index): void {
    this.send({ type: 'AppResp', to, term: this.term, index: matched, reject: false, hintIndex: index(0), hintTerm: term(0) });
  }

  private stepHeartbeat(m: Heartbeat): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'HeartbeatResp', to: m.from, term: this.term, context: m.context });
  }

  /** Assembles a snapshot from in-order chunks; installs it when the last one arrives. */
  private stepSnapshotChunk(m: SnapshotChunk): void {
    if (m.meta.index <= this.log.committed) {
      // We already hold everything it covers.
      this.incoming = undefined;
      this.sendAppendResponse(m.from, this.log.committed);
      return;
    }
    if (m.offset === 0) this.incoming = { meta: m.meta, chunks: [], bytes: 0 };
    const incoming = this.incoming;
    if (incoming === undefined || incoming.meta.index !== m.meta.index || incoming.meta.term !== m.meta.term || incoming.bytes !== m.offset) {
      // Out of order or a different snapshot: tell the leader where we are.
      const same = incoming !== undefined && incoming.meta.index === m.meta.index;
      this.send({ type: 'SnapResp', to: m.from, term: this.term, index: m.meta.index, offset: same ? incoming.bytes : 0 });
      return;
    }
    incoming.chunks.push(m.data);
    incoming.bytes += m.data.length;
    if (!m.done) {
      this.send({ type: 'SnapResp', to: m.from, term: this.term, index: m.meta.index, offset: incoming.bytes });
      return;
    }
    this.incoming = undefined;
    this.installSnapshot({ meta: incoming.meta, data: concat(incoming.chunks, incoming.bytes) });
    this.sendAppendResponse(m.from, this.log.lastIndex());
  }

  private installSnapshot(snapshot: Snapshot): void {
    const meta = snapshot.meta;
    this.log.restore(meta.index, meta.term);
    this.snapshot = snapshot;
    this.pendingSnapshot = { snapshot, apply: true };
    this.setMembership({ voters: meta.voters, learners: meta.learners });
    this.membershipHistory = [{ index: meta.index, membership: this.membership }];
  }

  // ---- Leader ------------------------------------------------------------------------------

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.leadTransferee !== 0 && ++this.transferElapsed >= this.config.electionTicks) {
      // The target did not take over within an election timeout: give up, serve again.
      this.leadTransferee = nodeId(0);
    }
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum && !this.checkQuorumActive()) {
        this.becomeFollower(this.term, nodeId(0));
        return;
      }
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  private checkQuorumActive(): boolean {
    const active = quorumActive(this.membership.voters, (id) => id === this.id || this.progressOf(id).recentActive);
    for (const [id, pr] of this.progress) if (id !== this.id) pr.recentActive = false;
    return active;
  }

  /** One heartbeat round to every member; its acknowledgements confirm reads and the lease. */
  private broadcastHeartbeat(): void {
    const round = this.readOnly.startRound(this.ticks);
    for (const id of this.members()) {
      if (id !== this.id) this.sendHeartbeat(id, this.progressOf(id), round);
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'AppResp':
        this.stepAppendResponse(m);
        return;
      case 'HeartbeatResp':
        this.stepHeartbeatResponse(m);
        return;
      case 'SnapResp':
        this.stepSnapshotResponse(m);
        return;
      case 'ReadIndex':
        this.stepForwardedRead(m);
        return;
      default:
        return;
    }
  }

  private stepAppendResponse(m: AppendResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      // Fast backtracking: skip every entry of a term the follower does not have.
      let hint = m.hintIndex;
      if (m.hintTerm > 0) hint = this.log.findConflictByTerm(m.hintIndex, m.hintTerm)[0];
      if (this.config.unsafe?.backtrackOneEntry === true) hint = index(Math.max(0, m.index - 1));
      if (pr.maybeDecrease(m.index, hint)) this.oweAppend(m.from, false);
      return;
    }
    const wasPaused = pr.isPaused();
    const updated = pr.maybeUpdate(m.index);
    // A probe answered at the match we already knew still proves where the follower is.
    const probeConfirmed = pr.state === 'probe' && pr.match === m.index;
    if (!updated && !probeConfirmed) {
      if (wasPaused && !pr.isPaused()) this.oweAppend(m.from, false);
      return;
    }
    if (pr.state === 'snapshot' && pr.match >= pr.snapshotIndex) pr.becomeProbe();
    if (pr.state === 'probe') pr.becomeReplicate();
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: 'TimeoutNow', to: m.from, term: this.term });
    }
    if (this.maybeCommit()) return;
    // More to send, or a commit this follower has not heard of: its answer came after the
    // quorum's, so the commit update went out before it matched. Without this, the follower
    // learns the commit only at the next heartbeat (a client waiting on that follower's
    // apply — a ZooKeeper write taken by a follower — waited up to a tick).
    if (pr.match < this.log.lastIndex() || pr.commitSent < Math.min(pr.match, this.log.committed)) this.oweAppend(m.from, false);
  }

  private stepHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.onHeartbeatResponse();
    if (pr.match < this.log.lastIndex() || pr.state === 'snapshot') this.oweAppend(m.from, true);
    if (m.context > 0) {
      for (const read of this.readOnly.ack(m.from, m.context, this.membership.voters)) this.releaseRead(read.from, read.context, read.index);
    }
  }

  private stepSnapshotResponse(m: SnapshotResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined || pr.state !== 'snapshot') return;
    pr.recentActive = true;
    pr.snapshotOffset = m.index === pr.snapshotIndex ? m.offset : 0;
    pr.chunkSent = false;
    this.oweAppend(m.from, true);
  }

  /** Votes or replicas that make a majority of the voters (smaller only in a planted bug). */
  private quorum(): number {
    const n = this.membership.voters.length;
    return this.config.unsafe?.smallQuorum === true ? Math.max(1, Math.floor(n / 2)) : majority(n);
  }

  /** Raft §5.3–5.4: commit the quorum's match index if it is of the current term. */
  private maybeCommit(): boolean {
    const candidate = committedIndex(this.membership.voters, (id) => this.progress.get(id)?.match ?? 0, this.quorum());
    if (candidate <= this.log.committed) return false;
    const currentTermOnly = this.config.unsafe?.commitPreviousTermByCounting !== true;
    if (currentTermOnly && this.log.term(candidate) !== this.term) return false;
    for (let i = this.log.committed + 1; i <= candidate; i++) this.uncommittedBytes -= this.log.entry(i).data.length;
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes);
    this.log.commitTo(candidate);
    // Tell followers promptly, so they apply without waiting for the next heartbeat.
    for (const id of this.members()) if (id !== this.id) this.oweAppend(id, false);
    if (this.log.term(candidate) === this.term) this.serveReadsAwaitingCommit();
    return true;
  }

  private refuseProposal(bytes: number): ProposeResult | undefined {
    if (this.role !== 'leader') return this.refused('not-leader');
    if (this.leadTransferee !== 0) return this.refused('transferring');
    if (this.uncommittedBytes + bytes > this.config.uncommittedBytesMax && this.uncommittedBytes > 0) {
      return this.refused('too-many-uncommitted-bytes');
    }
    return undefined;
  }

  private refused(reason: RefusalReason, detail?: string): ProposeResult {
    return detail === undefined ? { ok: false, reason, leader: this.leader } : { ok: false, reason, leader: this.leader, detail };
  }

  private appendProposal(type: Entry['type'], data: Uint8Array): ProposeResult {
    const entry: Entry = { term: this.term, index: index(this.log.lastIndex() + 1), type, data };
    this.appendEntry(entry);
    return { ok: true, index: entry.index, term: this.term };
  }

  private appendEntry(entry: Entry): void {
    this.log.append([entry]);
    this.uncommittedBytes += entry.data.length;
    for (const id of this.members()) if (id !== this.id) this.oweAppend(id, false);
  }

  /** Sends the Appends owed since the last Ready: one per follower, however many proposals. */
  private flushAppends(): void {
    if (this.role !== 'leader') {
      this.appendOwed.clear();
      return;
    }
    for (const [id, sendIfEmpty] of [...this.appendOwed].sort(([a], [b]) => a - b)) {
      if (this.progress.has(id)) this.maybeSendAppend(id, sendIfEmpty);
    }
    this.appendOwed.clear();
  }

  private oweAppend(to: NodeId, sendIfEmpty: boolean): void {
    this.appendOwed.set(to, sendIfEmpty || this.appendOwed.get(to) === true);
  }

  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progressOf(to);
    if (pr.isPaused()) return false;
    if (pr.state === 'snapshot' || pr.next <= this.log.snapshotIndex) return this.sendSnapshotChunk(to, pr);
    const last = this.log.lastIndex();
    const entries = pr.next <= last ? this.log.slice(pr.next, last, this.config.appendBytesMax) : [];
    if (entries.length === 0 && pr.state === 'replicate' && !sendIfEmpty) {
      // Nothing new to ship: at most a commit update, sent as a heartbeat because an
      // empty Append would race the Appends still in flight and be rejected.
      const commit = index(Math.min(pr.match, this.log.committed));
      if (commit <= pr.commitSent) return false;
      this.sendHeartbeat(to, pr, 0);
      return true;
    }
    const prevIndex = index(pr.next - 1);
    const prevTerm = this.log.term(prevIndex);
    assert(prevTerm !== undefined, 'prevIndex is at or after the snapshot');
    const commit = this.log.committed;
    this.send({ type: 'App', to, term: this.term, prevIndex, prevTerm, entries, commit });
    pr.commitSent = index(Math.max(pr.commitSent, Math.min(commit, prevIndex + entries.length)));
    pr.sentAppend(prevIndex + entries.length, entries.length);
    return true;
  }

  /** Sends the next chunk of the latest snapshot (restarting if a newer one replaced it). */
  private sendSnapshotChunk(to: NodeId, pr: Progress): boolean {
    const snapshot = this.snapshot;
    assert(snapshot !== undefined, 'entries were compacted, so a snapshot exists');
    if (pr.state !== 'snapshot' || pr.snapshotIndex !== snapshot.meta.index) pr.becomeSnapshot(snapshot.meta.index);
    const offset = Math.min(pr.snapshotOffset, snapshot.data.length);
    const end = Math.min(offset + this.config.snapshotChunkBytes, snapshot.data.length);
    const data = snapshot.data.subarray(offset, end);
    this.send({ type: 'Snap', to, term: this.term, meta: snapshot.meta, offset, data, done: end === snapshot.data.length });
    pr.chunkSent = true;
    return true;
  }

  private sendHeartbeat(to: NodeId, pr: Progress, context: number): void {
    const commit = index(Math.min(pr.match, this.log.committed));
    pr.commitSent = index(Math.max(pr.commitSent, commit));
    this.send({ type: 'Heartbeat', to, term: this.term, commit, context });
  }

  // ---- Reads (thesis §6.4) ------------------------------------------------------------------

  private stepForwardedRead(m: ReadIndexRequest): void {
    this.leaderReadIndex(m.from, m.context);
  }

  private leaderReadIndex(from: NodeId, context: number): void {
    if (this.log.term(this.log.committed) !== this.term) {
      // Our commit index may lag the true one until an entry of our term commits.
      this.readsAwaitingCommit.push({ from, context });
      return;
    }
    const readIndex = this.log.committed;
    const leaseTicks = this.config.electionTicks - 2;
    const leaseOk = this.config.readMode === 'lease' && this.leadTransferee === 0 && this.readOnly.leaseValid(this.ticks, leaseTicks);
    if (this.membership.voters.length === 1 || leaseOk || this.config.unsafe?.readWithoutConfirmation === true) {
      this.releaseRead(from, context, readIndex);
      return;
    }
    this.readOnly.add(from, context, readIndex);
    this.readRoundOwed = true;
  }

  private serveReadsAwaitingCommit(): void {
    const reads = this.readsAwaitingCommit;
    this.readsAwaitingCommit = [];
    for (const read of reads) this.leaderReadIndex(read.from, read.context);
  }

  private releaseRead(from: NodeId, context: number, readIndex: Index): void {
    if (from === this.id) this.readStates.push({ context, index: readIndex });
    else this.send({ type: 'ReadIndexResp', to: from, term: this.term, context, index: readIndex });
  }

  // ---- Membership ----------------------------------------------------------------------------

  private applyConfEntry(entry: Entry): void {
    const next = decodeConfEntry(entry.data).membership;
    this.setMembership(next);
    this.membershipHistory.push({ index: entry.index, membership: next });
    if (this.role !== 'leader') return;
    if (!next.voters.includes(this.id)) {
      // A removed leader steps down once the change is applied (thesis §4.2.2).
      this.becomeFollower(this.term, nodeId(0));
      return;
    }
    for (const id of this.members()) {
      if (this.progress.has(id)) continue;
      this.progress.set(id, this.newProgress(id));
      this.oweAppend(id, false);
    }
    for (const id of [...this.progress.keys()]) if (!this.members().includes(id)) this.progress.delete(id);
    this.maybeCommit();
  }

  private membershipAt(at: Index): Membership {
    let found = this.membershipHistory[0]!.membership;
    for (const h of this.membershipHistory) if (h.index <= at) found = h.membership;
    return found;
  }

  private setMembership(membership: Membership): void {
    this.membership = membership;
    this.memberIds = sortIds([...membership.voters, ...membership.learners]);
  }

  /**
   * The index of the config entry that set the applied configuration (ZooKeeper's config
   * version), or the snapshot's index if that entry was compacted before this node started.
   */
  get configIndex(): Index {
    return this.membershipHistory[this.membershipHistory.length - 1]!.index;
  }

  /** Voters and learners, sorted. */
  private members(): readonly NodeId[] {
    return this.memberIds;
  }

  // ---- Role changes (one place each; STYLE.md 4) ------------------------------------------

  private reset(newTerm: Term): void {
    if (newTerm !== this.term) {
      this.term = newTerm;
      this.vote = nodeId(0);
    }
    this.leader = nodeId(0);
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetElectionTimer();
    this.votes.clear();
    this.progress.clear();
    this.appendOwed.clear();
    this.uncommittedBytes = 0;
    this.readOnly = new ReadOnly(this.id);
    this.readsAwaitingCommit = [];
    this.leadTransferee = nodeId(0);
    this.readRoundOwed = false;
  }

  private becomeFollower(newTerm: Term, leader: NodeId): void {
    this.reset(newTerm);
    this.role = 'follower';
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader does not campaign');
    // Pre-vote changes neither term nor vote (thesis §9.6).
    this.votes.clear();
    this.role = 'precandidate';
    this.leader = nodeId(0);
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader does not campaign');
    this.reset(term(this.term + 1));
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader');
    this.reset(this.term);
    this.role = 'leader';
    this.leader = this.id;
    for (const id of this.members()) this.progress.set(id, this.newProgress(id));
    // Uncommitted entries of earlier terms count against the limit too.
    for (let i = this.log.committed + 1; i <= this.log.lastIndex(); i++) this.uncommittedBytes += this.log.entry(i).data.length;
    // A config entry may hide among the unapplied ones: no new change until they apply.
    this.pendingConfIndex = this.log.lastIndex();
    if (this.config.noopOnElection) {
      this.appendEntry({ term: this.term, index: index(this.log.lastIndex() + 1), type: 'normal', data: new Uint8Array(0) });
    }
    // Assert leadership at once: the probes stop other elections.
    for (const id of this.members()) if (id !== this.id) this.oweAppend(id, false);
  }

  private newProgress(id: NodeId): Progress {
    const pr = new Progress(index(this.log.lastIndex() + 1), this.config.inflightMessagesMax);
    if (id === this.id) {
      pr.maybeUpdate(this.log.stableIndex);
      pr.becomeReplicate();
    }
    pr.recentActive = true;
    return pr;
  }

  private resetElectionTimer(): void {
    this.randomizedElectionTicks = this.config.electionTicks + this.prng.int(this.config.electionTicks);
  }

  // ---- Helpers --------------------------------------------------------------------------

  private isVoter(): boolean {
    return this.membership.voters.includes(this.id);
  }

  private progressOf(id: NodeId): Progress {
    const pr = this.progress.get(id);
    assert(pr !== undefined, `no progress for ${id}`);
    return pr;
  }

  private send(message: DistributiveOmit<Message, 'from'>): void {
    this.messages.push({ ...message, from: this.id } as Message);
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sortIds(ids: readonly NodeId[]): NodeId[] {
  return [...ids].sort((a, b) => a - b);
}

function concat(chunks: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
