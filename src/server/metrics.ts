// Prometheus metrics of one member (prom-client, one registry per member so that tests
// can run several members in one process). Durations are measured with the injected
// clock, never with prom-client's own timers, and reported in seconds by convention.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeId } from '../stdx/types.js';
import type { Ready } from '../raft/core.js';
import type { NodeStatus } from '../runtime/node.js';

export type ProposalOutcome = 'ok' | 'not-leader' | 'overloaded' | 'dropped' | 'outcome-unknown' | 'stopped' | 'timeout' | 'invalid';

export interface MetricSources {
  status(): NodeStatus;
  logBytes(): number;
  peerStats(): { readonly bytesSent: number; readonly messagesSent: number; readonly framesSent: number; readonly messagesDropped: number };
  /** fsyncs of every write-ahead log of this member (group commits: one per flush). */
  walSyncs(): number;
  clientConnections(): number;
}

/** Fsync (storage.save) latency buckets, in seconds: 50 µs to 2.5 s. */
const FSYNC_BUCKETS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly proposals: Counter<'outcome'>;
  private readonly commits: Counter;
  private readonly fsync: Histogram;
  private readonly elections: Counter;
  private readonly termChanges: Counter;
  private readonly leaderChanges: Counter;
  private lastTerm = 0;
  private lastLeader = 0;
  /** The last value read of each total a counter follows (totalCounter). */
  private readonly lastTotals = new Map<string, number>();

  constructor(
    private readonly id: NodeId,
    sources: MetricSources,
  ) {
    const registers = [this.registry];
    this.proposals = new Counter({ name: 'flotilla_proposals_total', help: 'Client proposals and reads handled, by outcome', labelNames: ['outcome'], registers });
    this.commits = new Counter({ name: 'flotilla_commits_total', help: 'Log entries committed and applied on this member', registers });
    this.fsync = new Histogram({ name: 'flotilla_fsync_seconds', help: 'Durable writes of the Raft log (one WAL append + fdatasync, group-committed)', buckets: FSYNC_BUCKETS_SECONDS, registers });
    this.elections = new Counter({ name: 'flotilla_elections_total', help: 'Elections this member started as a candidate', registers });
    this.termChanges = new Counter({ name: 'flotilla_term_changes_total', help: 'Changes of the current term seen by this member', registers });
    this.leaderChanges = new Counter({ name: 'flotilla_leader_changes_total', help: 'Changes of the known leader seen by this member', registers });
    this.registerGauges(sources, registers);
    this.registerTotals(sources, registers);
  }

  recordProposal(outcome: ProposalOutcome): void {
    this.proposals.inc({ outcome });
  }

  recordFsync(durationMs: number): void {
    this.fsync.observe(durationMs / 1000);
  }

  /** Called after each Ready; the hard state shows campaigns (a new term voted for self). */
  observeReady(ready: Ready, status: NodeStatus): void {
    if (ready.committedEntries.length > 0) this.commits.inc(ready.committedEntries.length);
    const hardState = ready.hardState;
    if (hardState !== undefined && hardState.term > this.lastTerm) {
      if (this.lastTerm !== 0) this.termChanges.inc();
      if (hardState.vote === this.id) this.elections.inc();
      this.lastTerm = hardState.term;
    }
    if (status.leader !== this.lastLeader) {
      if (status.leader !== 0) this.leaderChanges.inc();
      this.lastLeader = status.leader;
    }
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private registerGauges(sources: MetricSources, registers: Registry[]): void {
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('flotilla_term', 'The current term', () => sources.status().term);
    gauge('flotilla_commit_index', 'The highest index known committed', () => sources.status().commit);
    gauge('flotilla_applied_index', 'The highest index applied to the service', () => sources.status().applied);
    gauge('flotilla_last_index', 'The last index in the log', () => sources.status().lastIndex);
    gauge('flotilla_is_leader', '1 if this member is the leader', () => (sources.status().role === 'leader' ? 1 : 0));
    gauge('flotilla_log_bytes', 'Bytes of the write-ahead log on disk', () => sources.logBytes());
    gauge('flotilla_client_connections', 'Open client connections', () => sources.clientConnections());
  }

  /** Counters that follow totals kept elsewhere (the transport's, the logs'), read at scrape time. */
  private registerTotals(sources: MetricSources, registers: Registry[]): void {
    const totals = this.lastTotals;
    const totalCounter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          const now = read();
          this.inc(Math.max(0, now - (totals.get(name) ?? 0)));
          totals.set(name, now);
        },
      });
    totalCounter('flotilla_peer_bytes_sent_total', 'Bytes written to peer connections', () => sources.peerStats().bytesSent);
    totalCounter('flotilla_peer_messages_sent_total', 'Raft messages sent to peers (every group)', () => sources.peerStats().messagesSent);
    totalCounter('flotilla_peer_frames_sent_total', 'Frames written to peer connections: all messages to one peer in one turn of the event loop share a frame', () => sources.peerStats().framesSent);
    totalCounter('flotilla_peer_messages_dropped_total', 'Messages to peers dropped (queue full, no connection, too large); Raft retries', () => sources.peerStats().messagesDropped);
    totalCounter('flotilla_wal_syncs_total', 'fsyncs of the write-ahead logs (group commit: one per flush, however many writes and groups it holds)', () => sources.walSyncs());
  }
}
