// etcd's v3 API (etcdserverpb, proto/etcd) on a member's etcd port, served by the etcd
// service (etcd/service.ts) through platform/grpc-host.ts: what etcdctl, the etcd3 npm client
// and Go's clientv3 speak.
//
// Implemented: KV (Range, Put, DeleteRange, Txn, Compact), Watch, Lease (Grant, Revoke,
// KeepAlive, TimeToLive, Leases), Maintenance (Status, HashKV, MoveLeader), Cluster (MemberList), Auth
// (etcd-auth.ts: users, roles, permissions, tokens; every handler here checks the caller's
// permissions as etcd does). Not yet: the rest of Maintenance and Cluster (they answer
// UNIMPLEMENTED; src/etcd/README.md lists the gaps).
//
// Requests are checked as etcd's v3rpc checks them (etcdserver/api/v3rpc/key.go), with its
// exact error messages and status codes (clients match on them: rpctypes), before anything
// is proposed. Every response carries etcd's header: cluster_id, member_id, revision (the
// store's revision the answer reflects) and raft_term.

import type { NodeId } from '../stdx/types.js';
import type { Clock, Timer } from '../io/clock.js';
import { type GrpcCall, GrpcCode, type GrpcMessage, type GrpcServiceHandlers, GrpcStatusError, type GrpcStream } from '../platform/grpc-host.js';
import { type AuthCaller, AuthError, type AuthErrorCode, type AuthRequest } from '../etcd/auth.js';
import { type EtcdApiCore, EtcdAuthGate, type EtcdAuthHost, etcdAuthService } from './etcd-auth.js';
import { EtcdLeaseError, EtcdRequestError, type EtcdService } from '../etcd/service.js';
import type { EtcdOutcome } from '../etcd/state-machine.js';
import {
  type Compare,
  type DeleteRangeRequest,
  type DeleteRangeResult,
  type KeyValue,
  MvccError,
  type PutRequest,
  type PutResult,
  type RangeRequest,
  type RangeResult,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResult,
  type WatchEvent,
} from '../etcd/mvcc.js';

/** etcd's default --max-txn-ops. */
export const etcdTxnOpsMax = 128;
/** The version Maintenance.Status reports: the etcd API version this implements. */
export const etcdApiVersion = '3.4.0';

export interface EtcdMember {
  readonly id: NodeId;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

export interface EtcdApiOptions {
  readonly service: EtcdService;
  /** A stable id for the cluster (the header's cluster_id), as a decimal string. */
  readonly clusterId: string;
  readonly members: () => readonly EtcdMember[];
  /** Bytes the member's etcd log holds (Status.dbSize). */
  readonly dbSize: () => number;
  /** Password hashing, token signing and the wall clock, for Auth (etcd-auth.ts). */
  readonly authHost: EtcdAuthHost;
  readonly clock: Clock;
  /** How often an idle watch created with progress_notify hears the current revision (etcd: 10 minutes). */
  readonly progressNotifyMs: number;
  /** How long MoveLeader waits for the new leader. */
  readonly requestTimeoutMs: number;
  /**
   * Changes the cluster's members in every group, as `flotilla member` does (the admin API's
   * POST /members body: {action, id, peer?}); answers the HTTP status and body that API gives.
   */
  readonly changeMembers: (body: { action: 'add' | 'promote' | 'remove'; id: number; peer?: string }) => Promise<{ status: number; body: object }>;
}

/** How often MoveLeader looks whether leadership has moved. */
const moveLeaderPollMs = 20;

// etcd's rpctypes errors (message, code), as clients match on them.
const errors = {
  emptyKey: () => new GrpcStatusError(GrpcCode.invalidArgument, 'etcdserver: key is not provided'),
  valueProvided: () => new GrpcStatusError(GrpcCode.invalidArgument, 'etcdserver: value is provided'),
  leaseProvided: () => new GrpcStatusError(GrpcCode.invalidArgument, 'etcdserver: lease is provided'),
  tooManyOps: () => new GrpcStatusError(GrpcCode.invalidArgument, 'etcdserver: too many operations in txn request'),
  leaseNotFound: () => new GrpcStatusError(GrpcCode.notFound, 'etcdserver: requested lease not found'),
  invalid: (what: string) => new GrpcStatusError(GrpcCode.invalidArgument, `etcdserver: ${what}`),
};

const mvccStatus: Record<string, GrpcCode> = {
  compacted: GrpcCode.outOfRange,
  'future-revision': GrpcCode.outOfRange,
  'duplicate-key': GrpcCode.invalidArgument,
  'key-not-found': GrpcCode.invalidArgument,
  'too-many-ops': GrpcCode.invalidArgument,
  // etcd's rpctypes: ErrGRPCLeaseNotFound, ErrGRPCLeaseExist.
  'lease-not-found': GrpcCode.notFound,
  'lease-exists': GrpcCode.failedPrecondition,
};

/** etcd's rpctypes codes for the auth store's errors. */
const authStatus: Record<AuthErrorCode, GrpcCode> = {
  'root-user-not-exist': GrpcCode.failedPrecondition,
  'root-role-not-exist': GrpcCode.failedPrecondition,
  'user-already-exist': GrpcCode.failedPrecondition,
  'user-empty': GrpcCode.invalidArgument,
  'user-not-found': GrpcCode.failedPrecondition,
  'role-already-exist': GrpcCode.failedPrecondition,
  'role-not-found': GrpcCode.failedPrecondition,
  'role-empty': GrpcCode.invalidArgument,
  'auth-failed': GrpcCode.invalidArgument,
  'permission-denied': GrpcCode.permissionDenied,
  'role-not-granted': GrpcCode.failedPrecondition,
  'permission-not-granted': GrpcCode.failedPrecondition,
  'auth-not-enabled': GrpcCode.failedPrecondition,
  'invalid-auth-token': GrpcCode.unauthenticated,
  'invalid-auth-mgmt': GrpcCode.invalidArgument,
  'auth-old-revision': GrpcCode.invalidArgument,
  'no-password-user': GrpcCode.invalidArgument,
};

function statusOf(code: string): GrpcCode {
  return mvccStatus[code] ?? (authStatus as Record<string, GrpcCode>)[code] ?? GrpcCode.unknown;
}

export function etcdServices(options: EtcdApiOptions): Record<string, GrpcServiceHandlers> {
  const api = new EtcdApi(options);
  return {
    'etcdserverpb.KV': {
      unary: {
        Range: (r, call) => api.range(r, call),
        Put: (r, call) => api.put(r, call),
        DeleteRange: (r, call) => api.deleteRange(r, call),
        Txn: (r, call) => api.txn(r, call),
        Compact: (r, call) => api.compact(r, call),
      },
    },
    'etcdserverpb.Watch': { streams: { Watch: (stream) => api.watchStream(stream) } },
    'etcdserverpb.Lease': {
      unary: {
        LeaseGrant: (r) => api.leaseGrant(r),
        LeaseRevoke: (r, call) => api.leaseRevoke(r, call),
        LeaseTimeToLive: (r, call) => api.leaseTimeToLive(r, call),
        LeaseLeases: () => api.leaseLeases(),
      },
      streams: { LeaseKeepAlive: (stream) => api.leaseKeepAliveStream(stream) },
    },
    'etcdserverpb.Maintenance': {
      unary: { Status: () => api.status(), HashKV: (r, call) => api.hashKv(r, call), MoveLeader: (r, call) => api.moveLeader(r, call), Defragment: (_r, call) => api.defragment(call) },
    },
    'etcdserverpb.Cluster': {
      unary: {
        MemberList: () => api.memberList(),
        MemberAdd: (r, call) => api.memberAdd(r, call),
        MemberRemove: (r, call) => api.memberChange('remove', r, call),
        MemberPromote: (r, call) => api.memberChange('promote', r, call),
      },
    },
    'etcdserverpb.Auth': etcdAuthService(api.gate, api),
  };
}

class EtcdApi implements EtcdApiCore {
  readonly gate: EtcdAuthGate;

  constructor(private readonly options: EtcdApiOptions) {
    this.gate = new EtcdAuthGate(options.service, options.authHost);
  }

  private get service(): EtcdService {
    return this.options.service;
  }

  async range(r: GrpcMessage, call: GrpcCall): Promise<GrpcMessage> {
    const request = rangeRequest(r);
    try {
      // The barrier first, so the permission check sees every auth change committed before the call.
      if (r['serializable'] !== true) await this.service.readBarrier();
      this.gate.checkRead(call, request.key, request.rangeEnd);
      const { result, revision } = await this.service.range(request, true);
      return { header: this.header(revision), ...rangeResponse(result) };
    } catch (error) {
      throw this.failure(error);
    }
  }

  async put(r: GrpcMessage, call: GrpcCall): Promise<GrpcMessage> {
    const request = putRequest(r);
    const outcome = await this.write({ kind: 'put', request }, call);
    return { header: this.header(outcome.revision), ...putResponse((outcome.result as { result: PutResult }).result) };
  }

  async deleteRange(r: GrpcMessage, call: GrpcCall): Promise<GrpcMessage> {
    const request = deleteRequest(r);
    const outcome = await this.write({ kind: 'delete', request }, call);
    return { header: this.header(outcome.revision), ...deleteResponse((outcome.result as { result: DeleteRangeResult }).result) };
  }

  async txn(r: GrpcMessage, call: GrpcCall): Promise<GrpcMessage> {
    const request = txnRequest(r, 0);
    const outcome = await this.write({ kind: 'txn', request }, call);
    const result = (outcome.result as { result: TxnResult }).result;
    // etcd gives the responses inside a transaction a header with the revision only.
    return { header: this.header(outcome.revision), ...txnResponse(result, { revision: outcome.revision }) };
  }

  async compact(r: GrpcMessage, call: GrpcCall): Promise<GrpcMessage> {
    const revision = int64(r['revision'], 'revision');
    const outcome = await this.write({ kind: 'compact', revision }, call);
    return { header: this.header(outcome.revision) };
  }

  /**
   * One Watch stream: creates, cancels and progress requests in, responses out. A created
   * watch first gets its catch-up (events since start_revision), then every change as this
   * member applies it; each response holds the events of one revision (one transaction). A
   * start revision already compacted cancels the watch with compact_revision, as etcd does.
   */
  watchStream(stream: GrpcStream): (message: GrpcMessage) => void {
    const watches = new Map<number, () => void>();
    let nextId = 0;
    // Watches created with progress_notify → whether events reached them since the last notification.
    const progress = new Map<number, boolean>();
    let progressTimer: Timer | undefined;
    const scheduleProgress = () => {
      progressTimer = this.options.clock.setTimer(this.options.progressNotifyMs, () => {
        // etcd's progress notification: no events, the header at the current revision, to each idle watch.
        for (const [id, busy] of progress) {
          if (!busy) stream.write({ header: this.header(this.service.machine.store.revision), watch_id: id });
          progress.set(id, false);
        }
        scheduleProgress();
      });
    };
    stream.onClose(() => {
      for (const cancel of watches.values()) cancel();
      watches.clear();
      progress.clear();
      progressTimer?.cancel();
    });
    return (message) => {
      if (message['request_union'] === 'create_request') {
        const create = message['create_request'] as GrpcMessage;
        const asked = int64(create['watch_id'] ?? '0', 'watch_id');
        try {
          this.gate.checkRead(stream, bytes(create['key']), bytes(create['range_end']));
        } catch (error) {
          if (!(error instanceof AuthError)) throw error;
          // etcd 3.4 (v3rpc/watch.go): created and canceled at once, whatever the auth error was.
          const reason = 'rpc error: code = PermissionDenied desc = etcdserver: permission denied';
          stream.write({ header: this.header(this.service.machine.store.revision), watch_id: asked, created: true, canceled: true, cancel_reason: reason });
          return;
        }
        const id = asked > 0 ? asked : nextId;
        if (watches.has(id)) {
          stream.write({ header: this.header(this.service.machine.store.revision), watch_id: id, created: true, canceled: true, cancel_reason: 'etcdserver: duplicate watch ID' });
          return;
        }
        nextId = Math.max(nextId, id + 1);
        const filters = new Set(((create['filters'] as unknown[] | undefined) ?? []).map(String));
        const prevKv = create['prev_kv'] === true;
        const startRevision = nonNegative(create['start_revision'], 'start_revision');
        const send = (events: readonly WatchEvent[], revision: number) => {
          // A member behind the start revision (a lagging follower) applies older revisions first.
          if (revision < startRevision) return;
          const kept = events.filter((event) => !(event.type === 'put' ? filters.has('NOPUT') : filters.has('NODELETE')));
          if (kept.length === 0) return;
          if (progress.has(id)) progress.set(id, true);
          stream.write({ header: this.header(revision), watch_id: id, events: kept.map((event) => watchEvent(event, prevKv)) });
        };
        const key = bytes(create['key']);
        // The created response goes first, then the catch-up: hold events until it is written.
        const held: Array<[readonly WatchEvent[], number]> = [];
        let ready = false;
        const started = this.service.watch({ key, rangeEnd: bytes(create['range_end']) }, startRevision, (events, revision) => (ready ? send(events, revision) : held.push([events, revision])));
        if ('compacted' in started) {
          const revision = this.service.machine.store.revision;
          stream.write({ header: this.header(revision), watch_id: id, created: true });
          stream.write({ header: this.header(revision), watch_id: id, canceled: true, compact_revision: started.compacted, cancel_reason: 'etcdserver: mvcc: required revision has been compacted' });
          return;
        }
        watches.set(id, started.cancel);
        if (create['progress_notify'] === true) {
          progress.set(id, false);
          if (progressTimer === undefined) scheduleProgress();
        }
        stream.write({ header: this.header(started.revision), watch_id: id, created: true });
        ready = true;
        for (const [events, revision] of held) send(events, revision);
        return;
      }
      if (message['request_union'] === 'cancel_request') {
        const id = int64((message['cancel_request'] as GrpcMessage)['watch_id'], 'watch_id');
        const cancel = watches.get(id);
        if (cancel === undefined) return;
        cancel();
        watches.delete(id);
        progress.delete(id);
        stream.write({ header: this.header(this.service.machine.store.revision), watch_id: id, canceled: true });
        return;
      }
      if (message['request_union'] === 'progress_request') {
        // A progress notification: a response without events at the current revision (watch_id -1, as etcd sends).
        stream.write({ header: this.header(this.service.machine.store.revision), watch_id: -1 });
      }
    };
  }

  async leaseGrant(r: GrpcMessage): Promise<GrpcMessage> {
    // A TTL beyond what a number holds exactly is still etcd's "too large", not a parse error.
    const ttlText = String(r['TTL']);
    const ttl = /^\d{16,}$/.test(ttlText) ? Number.MAX_SAFE_INTEGER : int64(r['TTL'], 'TTL');
    const id = int64(r['ID'], 'ID');
    let outcome: EtcdOutcome;
    try {
      outcome = await this.service.grantLease(id, ttl);
    } catch (error) {
      throw this.failure(error);
    }
    const granted = this.succeeded(outcome).result as { id: number; ttl: number };
    return { header: this.header(outcome.revision), ID: granted.id, TTL: granted.ttl, error: '' };
  }

  async leaseRevoke(r: GrpcMessage, call: GrpcCall): Promise<GrpcMessage> {
    const id = int64(r['ID'], 'ID');
    const outcome = await this.write({ kind: 'leaseRevoke', id }, call);
    return { header: this.header(outcome.revision) };
  }

  /**
   * etcd's LeaseTimeToLive: the time left by the leader's deadline, the granted TTL and (if
   * asked) the keys attached, read after a barrier so this member has applied every grant,
   * put and revoke committed before the call. An unknown lease answers TTL -1, as etcd does.
   */
  async leaseTimeToLive(r: GrpcMessage, call: GrpcCall): Promise<GrpcMessage> {
    const id = int64(r['ID'], 'ID');
    await this.barrier();
    let remaining: number;
    try {
      this.gate.checkLease(call, id, 'read');
      remaining = await this.service.leaseRemaining(id);
    } catch (error) {
      throw this.failure(error);
    }
    const machine = this.service.machine;
    const granted = machine.leases.ttl(id);
    const header = this.header(machine.store.revision);
    if (remaining < 0 || granted === undefined) return { header, ID: id, TTL: -1, grantedTTL: 0, keys: [] };
    const keys = r['keys'] === true ? machine.store.keysWithLease(id).map((key) => Buffer.from(key)) : [];
    return { header, ID: id, TTL: remaining, grantedTTL: granted, keys };
  }

  async leaseLeases(): Promise<GrpcMessage> {
    await this.barrier();
    const machine = this.service.machine;
    return { header: this.header(machine.store.revision), leases: machine.leases.list().map((lease) => ({ ID: lease.id })) };
  }

  /**
   * One LeaseKeepAlive stream (etcd's v3rpc keepAliveStream): each request {ID} renews the
   * lease at the leader and is answered {header, ID, TTL} in order; TTL 0 for a lease that
   * does not exist. A renew that fails (no leader, timeout) ends the stream with its status,
   * as etcd's does; clients open a new one.
   */
  leaseKeepAliveStream(stream: GrpcStream): (message: GrpcMessage) => void {
    let queue: Promise<void> = Promise.resolve();
    let ended = false;
    stream.onClose(() => {
      ended = true;
    });
    return (message) => {
      let id: number;
      try {
        id = int64(message['ID'], 'ID');
      } catch (error) {
        ended = true;
        stream.end(error as GrpcStatusError);
        return;
      }
      queue = queue.then(async () => {
        if (ended) return;
        try {
          this.gate.checkLease(stream, id, 'write');
          const ttl = await this.service.renewLease(id);
          if (!ended) stream.write({ header: this.header(this.service.machine.store.revision), ID: id, TTL: ttl });
        } catch (error) {
          if (ended) return;
          ended = true;
          const failure = this.failure(error);
          stream.end(failure instanceof GrpcStatusError ? failure : new GrpcStatusError(GrpcCode.internal, failure.message));
        }
      });
    };
  }

  async status(): Promise<GrpcMessage> {
    const raft = this.service.replica.raft;
    const status = raft.status();
    const size = this.options.dbSize();
    return {
      header: this.header(this.service.machine.store.revision),
      version: etcdApiVersion,
      dbSize: size,
      leader: status.leader,
      raftIndex: status.commit,
      raftTerm: status.term,
      raftAppliedIndex: status.applied,
      errors: [],
      dbSizeInUse: size,
      isLearner: false,
    };
  }

  async hashKv(r: GrpcMessage, call: GrpcCall): Promise<GrpcMessage> {
    const revision = int64(r['revision'], 'revision');
    const store = this.service.machine.store;
    try {
      this.gate.checkAdmin(call);
      return { header: this.header(store.revision), hash: store.hash(revision), compact_revision: store.compactRevision };
    } catch (error) {
      throw this.failure(error);
    }
  }

  /**
   * etcd's Defragment, for this member (a root only, once auth is on): etcd rewrites its
   * bbolt file to give back the space of compacted revisions; Flotilla's equivalent is a
   * snapshot of the etcd group now, after which the log below it is dropped. Answers once
   * the snapshot is taken (the log's segments go as the next write persists it).
   */
  async defragment(call: GrpcCall): Promise<GrpcMessage> {
    try {
      this.gate.checkAdmin(call);
    } catch (error) {
      throw this.failure(error);
    }
    this.service.replica.compactNow();
    return { header: this.header(this.service.machine.store.revision) };
  }

  /**
   * etcd's MoveLeader: asked of the etcd group's leader (else "not leader"), by a root once
   * auth is on; hands leadership to a voter and answers once it has moved, or DEADLINE_EXCEEDED
   * after requestTimeoutMs as etcd's ErrTimeoutLeaderTransfer.
   */
  async moveLeader(r: GrpcMessage, call: GrpcCall): Promise<GrpcMessage> {
    const target = int64(r['targetID'], 'targetID');
    try {
      this.gate.checkAdmin(call);
    } catch (error) {
      throw this.failure(error);
    }
    const raft = this.service.replica.raft;
    if (raft.isStopped() || raft.status().leader !== this.service.memberId) throw new GrpcStatusError(GrpcCode.failedPrecondition, 'etcdserver: not leader');
    if (target === this.service.memberId) return { header: this.header(this.service.machine.store.revision) };
    if (!raft.core.membership.voters.includes(target as NodeId) || !raft.transferLeadership(target as NodeId)) {
      throw new GrpcStatusError(GrpcCode.failedPrecondition, 'etcdserver: bad leader transferee');
    }
    const clock = this.options.clock;
    const deadline = clock.nowMs() + this.options.requestTimeoutMs;
    while (raft.isStopped() || raft.status().leader !== target) {
      if (clock.nowMs() >= deadline) throw new GrpcStatusError(GrpcCode.deadlineExceeded, 'etcdserver: request timed out, leader transfer took too long');
      await new Promise<void>((resolve) => clock.setTimer(moveLeaderPollMs, resolve));
    }
    return { header: this.header(this.service.machine.store.revision) };
  }

  /**
   * etcd's MemberAdd, as `flotilla member add`: the new member gets the next free id and joins
   * every group as a learner (Flotilla never adds a voter directly: a learner catches up
   * first, then MemberPromote makes it a voter). It is then started with
   * `flotilla server --id <id> --join <admin address>`. A root only, once auth is on.
   */
  async memberAdd(r: GrpcMessage, call: GrpcCall): Promise<GrpcMessage> {
    const urls = (r['peerURLs'] as unknown[] | undefined) ?? [];
    const url = typeof urls[0] === 'string' ? urls[0] : '';
    const match = /^(?:https?:\/\/)?([^/\s]+):(\d{1,5})\/?$/.exec(url);
    if (urls.length !== 1 || match === null) throw errors.invalid(`give exactly one peer URL, http://host:port (got ${JSON.stringify(urls)})`);
    const peer = `${match[1]}:${match[2]}`;
    const known = this.options.members();
    if (known.some((m) => m.peerUrls.some((u) => u.replace(/^https?:\/\//, '') === peer))) throw new GrpcStatusError(GrpcCode.failedPrecondition, 'etcdserver: Peer URLs already exists');
    const id = Math.max(0, ...known.map((m) => m.id)) + 1;
    await this.changeMembers(call, { action: 'add', id, peer });
    const members = await this.memberList();
    const added = (members['members'] as GrpcMessage[]).find((m) => Number(m['ID']) === id) ?? { ID: id, name: '', peerURLs: [url], clientURLs: [], isLearner: true };
    return { header: members['header'], member: added, members: members['members'] };
  }

  /** etcd's MemberRemove and MemberPromote, as `flotilla member remove|promote` in every group. */
  async memberChange(action: 'remove' | 'promote', r: GrpcMessage, call: GrpcCall): Promise<GrpcMessage> {
    const id = int64(r['ID'], 'ID');
    if (!this.options.members().some((m) => m.id === id)) throw new GrpcStatusError(GrpcCode.notFound, 'etcdserver: member not found');
    await this.changeMembers(call, { action, id });
    const members = await this.memberList();
    return { header: members['header'], members: members['members'] };
  }

  private async changeMembers(call: GrpcCall, body: { action: 'add' | 'promote' | 'remove'; id: number; peer?: string }): Promise<void> {
    try {
      this.gate.checkAdmin(call);
    } catch (error) {
      throw this.failure(error);
    }
    const answer = await this.options.changeMembers(body);
    if (answer.status < 400) return;
    const detail = String((answer.body as { error?: unknown }).error ?? JSON.stringify(answer.body));
    // etcd's ErrGRPCLearnerNotReady for a learner that has not caught up; otherwise Flotilla's own words.
    if (/not caught up/.test(detail)) throw new GrpcStatusError(GrpcCode.failedPrecondition, 'etcdserver: can only promote a learner member which is in sync with leader');
    if (answer.status === 404) throw new GrpcStatusError(GrpcCode.notFound, 'etcdserver: member not found');
    throw new GrpcStatusError(answer.status === 503 || answer.status === 504 ? GrpcCode.unavailable : GrpcCode.failedPrecondition, `etcdserver: ${detail}`);
  }

  async memberList(): Promise<GrpcMessage> {
    await this.barrier();
    return {
      header: this.header(this.service.machine.store.revision),
      members: this.options.members().map((m) => ({ ID: m.id, name: m.name, peerURLs: [...m.peerUrls], clientURLs: [...m.clientUrls], isLearner: m.isLearner })),
    };
  }

  async barrier(): Promise<void> {
    try {
      await this.service.readBarrier();
    } catch (error) {
      throw this.failure(error);
    }
  }

  /**
   * Proposes a client's write, with the caller its token names, and waits for its outcome; an
   * etcd error in the outcome becomes its gRPC status.
   */
  private async write(command: Parameters<EtcdService['submit']>[0], call: GrpcCall): Promise<Extract<EtcdOutcome, { ok: true }>> {
    let outcome: EtcdOutcome;
    try {
      outcome = await this.service.submit({ ...command, as: this.gate.caller(call) });
    } catch (error) {
      throw this.failure(error);
    }
    return this.succeeded(outcome);
  }

  async writeAuth(request: AuthRequest, caller: AuthCaller): Promise<{ revision: number }> {
    let outcome: EtcdOutcome;
    try {
      outcome = await this.service.submit({ kind: 'auth', request, as: caller });
    } catch (error) {
      throw this.failure(error);
    }
    return this.succeeded(outcome);
  }

  /** An outcome's etcd error as its gRPC status. */
  private succeeded(outcome: EtcdOutcome): Extract<EtcdOutcome, { ok: true }> {
    if (!outcome.ok) throw new GrpcStatusError(outcome.code === 'malformed' ? GrpcCode.internal : statusOf(outcome.code), outcome.message);
    return outcome;
  }

  failure(error: unknown): Error {
    if (error instanceof GrpcStatusError) return error;
    if (error instanceof AuthError) return new GrpcStatusError(authStatus[error.code], error.message);
    if (error instanceof MvccError) return new GrpcStatusError(mvccStatus[error.code] ?? GrpcCode.unknown, error.message);
    if (error instanceof EtcdRequestError) {
      if (error.code === 'too-many-requests') return new GrpcStatusError(GrpcCode.resourceExhausted, error.message);
      const message = error.code === 'stopped' ? 'etcdserver: server stopped' : error.message;
      return new GrpcStatusError(GrpcCode.unavailable, message);
    }
    // ErrGRPCLeaseTTLTooLarge is OutOfRange; a lease id Flotilla cannot keep is an invalid argument.
    if (error instanceof EtcdLeaseError) return new GrpcStatusError(error.code === 'ttl-too-large' ? GrpcCode.outOfRange : GrpcCode.invalidArgument, error.message);
    return error instanceof Error ? error : new Error(String(error));
  }

  header(revision: number): GrpcMessage {
    const raft = this.service.replica.raft;
    return { cluster_id: this.options.clusterId, member_id: this.service.memberId, revision, raft_term: raft.isStopped() ? 0 : raft.status().term };
  }
}

// ---- Requests: proto objects (proto-loader: keepCase, longs as strings) → etcd/mvcc types ----

function int64(value: unknown, what: string): number {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !/^-?\d+$/.test(text)) throw errors.invalid(`${what} is not an integer`);
  const parsed = Number(text);
  if (!Number.isSafeInteger(parsed)) throw errors.invalid(`${what} ${text} is out of range`);
  return parsed;
}

/** A revision, limit or count: negative values mean "none" where etcd ignores them (0). */
function nonNegative(value: unknown, what: string): number {
  return Math.max(0, int64(value, what));
}

function bytes(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? value : new Uint8Array(0);
}

const sortOrders: Record<string, RangeRequest['sortOrder']> = { NONE: 'none', ASCEND: 'ascend', DESCEND: 'descend' };
const sortTargets: Record<string, RangeRequest['sortTarget']> = { KEY: 'key', VERSION: 'version', CREATE: 'create', MOD: 'mod', VALUE: 'value' };
const compareResults: Record<string, Compare['result']> = { EQUAL: 'equal', GREATER: 'greater', LESS: 'less', NOT_EQUAL: 'not_equal' };
const compareTargets: Record<string, Compare['target']> = { VERSION: 'version', CREATE: 'create', MOD: 'mod', VALUE: 'value', LEASE: 'lease' };

function rangeRequest(r: GrpcMessage): RangeRequest {
  const key = bytes(r['key']);
  if (key.length === 0) throw errors.emptyKey();
  const sortOrder = sortOrders[String(r['sort_order'])];
  const sortTarget = sortTargets[String(r['sort_target'])];
  if (sortOrder === undefined) throw errors.invalid(`invalid sort order ${String(r['sort_order'])}`);
  if (sortTarget === undefined) throw errors.invalid(`invalid sort target ${String(r['sort_target'])}`);
  return {
    key,
    rangeEnd: bytes(r['range_end']),
    limit: nonNegative(r['limit'], 'limit'),
    revision: nonNegative(r['revision'], 'revision'),
    sortOrder,
    sortTarget,
    keysOnly: r['keys_only'] === true,
    countOnly: r['count_only'] === true,
    minModRevision: nonNegative(r['min_mod_revision'], 'min_mod_revision'),
    maxModRevision: nonNegative(r['max_mod_revision'], 'max_mod_revision'),
    minCreateRevision: nonNegative(r['min_create_revision'], 'min_create_revision'),
    maxCreateRevision: nonNegative(r['max_create_revision'], 'max_create_revision'),
  };
}

function putRequest(r: GrpcMessage): PutRequest {
  const key = bytes(r['key']);
  if (key.length === 0) throw errors.emptyKey();
  const value = bytes(r['value']);
  const lease = leaseOf(r['lease']);
  const ignoreValue = r['ignore_value'] === true;
  const ignoreLease = r['ignore_lease'] === true;
  if (ignoreValue && value.length > 0) throw errors.valueProvided();
  if (ignoreLease && lease !== 0) throw errors.leaseProvided();
  return { key, value, lease, prevKv: r['prev_kv'] === true, ignoreValue, ignoreLease };
}

/** A put's lease: no lease has a negative id or one of 2^53 and above (Flotilla's grants stay below), so those are not found, as etcd says. */
function leaseOf(value: unknown): number {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !/^-?\d+$/.test(text)) throw errors.invalid('lease is not an integer');
  const lease = Number(text);
  if (!Number.isSafeInteger(lease) || lease < 0) throw errors.leaseNotFound();
  return lease;
}

function deleteRequest(r: GrpcMessage): DeleteRangeRequest {
  const key = bytes(r['key']);
  if (key.length === 0) throw errors.emptyKey();
  return { key, rangeEnd: bytes(r['range_end']), prevKv: r['prev_kv'] === true };
}

function txnRequest(r: GrpcMessage, depth: number): TxnRequest {
  if (depth > 16) throw errors.invalid('transactions nested too deeply');
  const compare = (r['compare'] as GrpcMessage[] | undefined) ?? [];
  const success = (r['success'] as GrpcMessage[] | undefined) ?? [];
  const failure = (r['failure'] as GrpcMessage[] | undefined) ?? [];
  if (compare.length > etcdTxnOpsMax || success.length > etcdTxnOpsMax || failure.length > etcdTxnOpsMax) throw errors.tooManyOps();
  return { compare: compare.map(compareOf), success: success.map((op) => requestOp(op, depth)), failure: failure.map((op) => requestOp(op, depth)) };
}

function compareOf(c: GrpcMessage): Compare {
  const result = compareResults[String(c['result'])];
  const target = compareTargets[String(c['target'])];
  if (result === undefined) throw errors.invalid(`invalid compare result ${String(c['result'])}`);
  if (target === undefined) throw errors.invalid(`invalid compare target ${String(c['target'])}`);
  const operand =
    target === 'value'
      ? bytes(c['value'])
      : target === 'version'
        ? int64(c['version'], 'version')
        : target === 'create'
          ? int64(c['create_revision'], 'create_revision')
          : target === 'mod'
            ? int64(c['mod_revision'], 'mod_revision')
            : int64(c['lease'], 'lease');
  return { result, target, key: bytes(c['key']), rangeEnd: bytes(c['range_end']), operand };
}

function requestOp(op: GrpcMessage, depth: number): RequestOp {
  switch (op['request']) {
    case 'request_range':
      return { range: rangeRequest(op['request_range'] as GrpcMessage) };
    case 'request_put':
      return { put: putRequest(op['request_put'] as GrpcMessage) };
    case 'request_delete_range':
      return { deleteRange: deleteRequest(op['request_delete_range'] as GrpcMessage) };
    case 'request_txn':
      return { txn: txnRequest(op['request_txn'] as GrpcMessage, depth + 1) };
    default:
      throw errors.invalid('a txn operation names no request');
  }
}

// ---- Responses ----

function keyValue(kv: KeyValue): GrpcMessage {
  return { key: Buffer.from(kv.key), create_revision: kv.createRevision, mod_revision: kv.modRevision, version: kv.version, value: Buffer.from(kv.value), lease: kv.lease };
}

function watchEvent(event: WatchEvent, prevKv: boolean): GrpcMessage {
  return { type: event.type === 'put' ? 'PUT' : 'DELETE', kv: keyValue(event.kv), ...(prevKv && event.prevKv !== undefined ? { prev_kv: keyValue(event.prevKv) } : {}) };
}

function rangeResponse(result: RangeResult): GrpcMessage {
  return { kvs: result.kvs.map(keyValue), more: result.more, count: result.count };
}

function putResponse(result: PutResult): GrpcMessage {
  return result.prevKv === undefined ? {} : { prev_kv: keyValue(result.prevKv) };
}

function deleteResponse(result: DeleteRangeResult): GrpcMessage {
  return { deleted: result.deleted, prev_kvs: result.prevKvs.map(keyValue) };
}

function txnResponse(result: TxnResult, header: GrpcMessage): GrpcMessage {
  return { succeeded: result.succeeded, responses: result.responses.map((op) => responseOp(op, header)) };
}

function responseOp(op: ResponseOp, header: GrpcMessage): GrpcMessage {
  if ('range' in op) return { response_range: { header, ...rangeResponse(op.range) } };
  if ('put' in op) return { response_put: { header, ...putResponse(op.put) } };
  if ('deleteRange' in op) return { response_delete_range: { header, ...deleteResponse(op.deleteRange) } };
  return { response_txn: { header, ...txnResponse(op.txn, header) } };
}
