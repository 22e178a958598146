// The Raft consensus core: synchronous, sans-IO and deterministic (DESIGN.md §2, modelled
// on etcd-io/raft's RawNode). Inputs: tick(), step(message), propose(data). Output: a
// Ready with what to persist, what to send and what to apply; the shell handles one Ready
// at a time and then calls advance(ready).
//
// The I/O ordering contract: every message in a Ready may depend on the hard state and
// entries in the same Ready (a granted vote, an acknowledged append), so the shell must
// make those durable before it sends a single message. The leader counts its own log
// toward commitment only once it is durable (advance() reports that).

import { assert, unreachable } from '../stdx/assert.js';
import type { Prng } from '../stdx/prng.js';
import { type Index, type NodeId, type Term, index, nodeId, term } from '../stdx/types.js';
import { type RaftConfig, validateConfig } from './config.js';
import { RaftLog } from './log.js';
import type { Append, AppendResponse, Heartbeat, HeartbeatResponse, Message, VoteRequest, VoteResponse } from './messages.js';
import { Progress } from './progress.js';
import { committedIndex, quorumActive, voteResult } from './quorum.js';
import type { Entry, HardState } from './types.js';

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

export interface Ready {
  /** Set when the hard state changed since the last Ready. Persist before sending. */
  readonly hardState: HardState | undefined;
  /** Entries to make durable; they replace any persisted entries from entries[0].index. */
  readonly entries: readonly Entry[];
  /** Messages to send, after the hard state and entries are durable. */
  readonly messages: readonly Message[];
  /** Committed entries to apply to the service, in order. */
  readonly committedEntries: readonly Entry[];
}

export type ProposeResult =
  | { readonly ok: true; readonly index: Index; readonly term: Term }
  | { readonly ok: false; readonly reason: 'not-leader'; readonly leader: NodeId }
  | { readonly ok: false; readonly reason: 'too-many-uncommitted-bytes'; readonly leader: NodeId };

export interface InitialState {
  readonly hardState: HardState;
  readonly entries: readonly Entry[];
  readonly snapshotIndex: Index;
  readonly snapshotTerm: Term;
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

  private readonly config: RaftConfig;
  private readonly prng: Prng;
  private readonly voters: readonly NodeId[];
  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
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
  private lastHardState: HardState;
  private readyOutstanding = false;

  constructor(config: RaftConfig, prng: Prng, initial: InitialState) {
    const problem = validateConfig(config);
    assert(problem === undefined, `bad Raft configuration: ${problem}`);
    this.config = config;
    this.id = config.id;
    this.prng = prng;
    this.voters = [...config.voters].sort((a, b) => a - b);
    this.term = initial.hardState.term;
    this.vote = initial.hardState.vote;
    this.log = new RaftLog(initial.snapshotIndex, initial.snapshotTerm, initial.entries, initial.hardState.commit);
    this.lastHardState = this.hardState();
    this.resetElectionTimer();
  }

  // ---- Inputs -------------------------------------------------------------------------

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  /** Starts an election now, as if the election timeout had passed (etcd's MsgHup). */
  campaign(): void {
    if (this.role === 'leader' || !this.isVoter()) return;
    this.electionElapsed = 0;
    this.startElection(this.config.preVote ? 'precandidate' : 'candidate', false);
  }

  /** Proposes `data` for the log. Only a leader accepts; the shell reports the result. */
  propose(data: Uint8Array): ProposeResult {
    if (this.role !== 'leader') return { ok: false, reason: 'not-leader', leader: this.leader };
    if (this.uncommittedBytes + data.length > this.config.uncommittedBytesMax && this.uncommittedBytes > 0) {
      return { ok: false, reason: 'too-many-uncommitted-bytes', leader: this.leader };
    }
    const entry: Entry = { term: this.term, index: index(this.log.lastIndex() + 1), type: 'normal', data };
    this.appendEntry(entry);
    return { ok: true, index: entry.index, term: this.term };
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
      this.appendOwed.size > 0 ||
      this.log.stableIndex < this.log.lastIndex() ||
      this.log.committed > this.log.applied ||
      !sameHardState(this.hardState(), this.lastHardState)
    );
  }

  ready(): Ready {
    assert(!this.readyOutstanding, 'only one Ready may be outstanding (STYLE.md 3)');
    this.flushAppends();
    const hardState = this.hardState();
    const ready: Ready = {
      hardState: sameHardState(hardState, this.lastHardState) ? undefined : hardState,
      entries: this.log.unstableEntries(),
      messages: this.messages,
      committedEntries: this.log.nextCommittedEntries(this.config.applyBytesMax),
    };
    this.messages = [];
    this.readyOutstanding = true;
    return ready;
  }

  /** The shell has persisted, sent and applied everything in `ready`. */
  advance(ready: Ready): void {
    assert(this.readyOutstanding, 'advance() without an outstanding Ready');
    this.readyOutstanding = false;
    if (ready.hardState !== undefined) this.lastHardState = ready.hardState;
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) this.log.appliedTo(lastApplied.index);
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
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (pr !== undefined) out.set(id, pr.describe());
    }
    return out;
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
    const leader = m.type === 'App' || m.type === 'Heartbeat' ? m.from : nodeId(0);
    this.becomeFollower(m.term, leader);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if (m.type === 'App' || m.type === 'Heartbeat') {
      // A stale leader (say, one that was partitioned) learns the newer term from this
      // answer and steps down; without it, check-quorum and pre-vote could leave it stuck.
      this.send({ type: 'AppResp', to: m.from, term: this.term, index: index(0), reject: true, hintIndex: index(0), hintTerm: term(0) });
    } else if (m.type === 'PreVote') {
      this.send({ type: 'PreVoteResp', to: m.from, term: this.term, reject: true });
    }
  }

  // ---- Elections -------------------------------------------------------------------------

  private stepVoteRequest(m: VoteRequest): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === 0 && this.leader === 0) ||
      (m.type === 'PreVote' && m.term > this.term);
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
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send({ type, to: id, term: campaignTerm, lastIndex: this.log.lastIndex(), lastTerm: this.log.lastTerm(), transfer });
    }
  }

  private recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Acts on the votes so far. Returns true if the election is decided. */
  private checkElection(): boolean {
    const result = voteResult(this.voters, this.votes);
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
        this.electionElapsed = 0;
        this.leader = m.from;
        this.stepAppend(m);
        return;
      case 'Heartbeat':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.stepHeartbeat(m);
        return;
      default:
        return;
    }
  }

  private stepAppend(m: Append): void {
    if (m.prevIndex < this.log.committed) {
      // Everything up to our commit index matches any leader's log (Leader Completeness).
      this.send({ type: 'AppResp', to: m.from, term: this.term, index: this.log.committed, reject: false, hintIndex: index(0), hintTerm: term(0) });
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.entries);
    if (lastNew !== undefined) {
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.send({ type: 'AppResp', to: m.from, term: this.term, index: lastNew, reject: false, hintIndex: index(0), hintTerm: term(0) });
      return;
    }
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(m.prevIndex, m.prevTerm);
    this.send({ type: 'AppResp', to: m.from, term: this.term, index: m.prevIndex, reject: true, hintIndex, hintTerm });
  }

  private stepHeartbeat(m: Heartbeat): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'HeartbeatResp', to: m.from, term: this.term, context: m.context });
  }

  // ---- Leader ------------------------------------------------------------------------------

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
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
    const active = quorumActive(this.voters, (id) => id === this.id || this.progressOf(id).recentActive);
    for (const [id, pr] of this.progress) if (id !== this.id) pr.recentActive = false;
    return active;
  }

  private broadcastHeartbeat(): void {
    for (const id of this.voters) {
      if (id !== this.id) this.sendHeartbeat(id, this.progressOf(id), 0);
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
    if (pr.state === 'probe') pr.becomeReplicate();
    if (!this.maybeCommit() && pr.match < this.log.lastIndex()) this.oweAppend(m.from, false);
  }

  private stepHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.onHeartbeatResponse();
    if (pr.match < this.log.lastIndex()) this.oweAppend(m.from, true);
  }

  /** Raft §5.3–5.4: commit the quorum's match index if it is of the current term. */
  private maybeCommit(): boolean {
    const candidate = committedIndex(this.voters, (id) => this.progressOf(id).match);
    if (candidate <= this.log.committed) return false;
    const currentTermOnly = this.config.unsafe?.commitPreviousTermByCounting !== true;
    if (currentTermOnly && this.log.term(candidate) !== this.term) return false;
    for (let i = this.log.committed + 1; i <= candidate; i++) this.uncommittedBytes -= this.log.entry(i).data.length;
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes);
    this.log.commitTo(candidate);
    // Tell followers promptly, so they apply without waiting for the next heartbeat.
    for (const id of this.voters) if (id !== this.id) this.oweAppend(id, false);
    return true;
  }

  private appendEntry(entry: Entry): void {
    this.log.append([entry]);
    this.uncommittedBytes += entry.data.length;
    for (const id of this.voters) if (id !== this.id) this.oweAppend(id, false);
  }

  /** Sends the Appends owed since the last Ready: one per follower, however many proposals. */
  private flushAppends(): void {
    if (this.role !== 'leader') {
      this.appendOwed.clear();
      return;
    }
    for (const [id, sendIfEmpty] of [...this.appendOwed].sort(([a], [b]) => a - b)) {
      this.maybeSendAppend(id, sendIfEmpty);
    }
    this.appendOwed.clear();
  }

  private oweAppend(to: NodeId, sendIfEmpty: boolean): void {
    this.appendOwed.set(to, sendIfEmpty || this.appendOwed.get(to) === true);
  }

  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progressOf(to);
    if (pr.isPaused()) return false;
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
    assert(prevTerm !== undefined, 'snapshots are not implemented yet, so the log is never compacted');
    const commit = this.log.committed;
    this.send({ type: 'App', to, term: this.term, prevIndex, prevTerm, entries, commit });
    pr.commitSent = index(Math.max(pr.commitSent, Math.min(commit, prevIndex + entries.length)));
    pr.sentAppend(prevIndex + entries.length, entries.length);
    return true;
  }

  private sendHeartbeat(to: NodeId, pr: Progress, context: number): void {
    const commit = index(Math.min(pr.match, this.log.committed));
    pr.commitSent = index(Math.max(pr.commitSent, commit));
    this.send({ type: 'Heartbeat', to, term: this.term, commit, context });
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
    for (const id of this.voters) {
      const pr = new Progress(index(this.log.lastIndex() + 1), this.config.inflightMessagesMax);
      if (id === this.id) {
        pr.maybeUpdate(this.log.stableIndex);
        pr.becomeReplicate();
      }
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
    // Uncommitted entries of earlier terms count against the limit too.
    for (let i = this.log.committed + 1; i <= this.log.lastIndex(); i++) this.uncommittedBytes += this.log.entry(i).data.length;
    if (this.config.noopOnElection) {
      this.appendEntry({ term: this.term, index: index(this.log.lastIndex() + 1), type: 'normal', data: new Uint8Array(0) });
    }
    // Assert leadership at once: the probes stop other elections.
    for (const id of this.voters) if (id !== this.id) this.oweAppend(id, false);
  }

  private resetElectionTimer(): void {
    this.randomizedElectionTicks = this.config.electionTicks + this.prng.int(this.config.electionTicks);
  }

  // ---- Helpers --------------------------------------------------------------------------

  private isVoter(): boolean {
    return this.voters.includes(this.id);
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

export type { VoteResponse };
