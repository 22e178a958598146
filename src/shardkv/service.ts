// One member of a replica group of the sharded key/value service: a ShardKvStateMachine
// hosted by a Replica, the request handler for clerks, the handler for other groups (pull
// a shard, delete a shard), and the leader's background loops, every pollMs (100 ms, as the
// lab asks) of the injected clock:
//
//   loop        | when (leader only)                       | does
//   ------------+------------------------------------------+------------------------------------------
//   config      | the current configuration is installed   | Query(num + 1) the controller; if it exists,
//               |                                          | propose it (a log entry)
//   pull        | shards are pulling                       | ask their previous owner group for the data
//               |                                          | and sessions; propose an insert
//   gc          | shards are in gc (installed here)        | ask the previous owner to delete them (it
//               |                                          | proposes a delete); then propose gcdone
//
// Every effect goes through this group's log, so each member makes the same moves in the
// same order. One call per loop and peer group is in flight at a time. Network access is
// injected (queryConfig, callPeer): the simulator's tester wires it, so nothing here does I/O.

import type { Clock, Timer } from '../io/clock.js';
import { Replica, ReplicaError, type ReplicaOptions } from '../runtime/replica.js';
import { type Gid, type ShardConfig, shardCount } from '../shardctrler/index.js';
import { decodeResult, encodeCommand, type ShardKvCommand, type ShardKvOpKind, sessionsFromArray, sessionsToArray, shardsFromArray, shardsToArray } from './codec.js';
import { type PullCursor, ShardKvStateMachine, type ShardKvUnsafe } from './state-machine.js';

/** A clerk's request. `client` 0: no session (gets). */
export interface ShardKvRequest {
  readonly op: ShardKvOpKind;
  readonly key: string;
  readonly value: string;
  readonly client: number;
  readonly seq: number;
}

export interface ShardKvReply {
  readonly err: 'OK' | 'ErrWrongGroup' | 'ErrWrongLeader' | 'ErrRetry' | 'ErrFatal';
  readonly value: string;
}

/** A call from another group's leader: pull shards handed off in configuration num, or delete them (the caller installed them). */
export interface PeerArgs {
  readonly kind: 'pull' | 'delete';
  readonly num: number;
  readonly shards: number[];
  /** pull: the page after this cursor (the previous reply's `more`); absent: the first page. */
  readonly after?: PullCursor;
}

export interface PeerReply {
  readonly err: 'OK' | 'ErrWrongLeader' | 'ErrNotReady' | 'ErrGone' | 'ErrRetry' | 'ErrFatal';
  /** pull: [shard, [key, value, ...], ...]. */
  readonly shards: unknown[];
  /** pull: [client, seq, ...], with the last page only. */
  readonly sessions: unknown[];
  /** pull: where the next page starts; absent: this was the last page. */
  readonly more?: PullCursor;
}

export interface ShardKvServiceOptions extends Omit<ReplicaOptions, 'service'> {
  readonly gid: Gid;
  /** Query(num) of the controller: the configuration, or undefined if no answer this time. */
  readonly queryConfig: (num: number) => Promise<ShardConfig | undefined>;
  /** One call to the named server of another group: its reply, or undefined if the call failed. */
  readonly callPeer: (server: string, args: PeerArgs) => Promise<PeerReply | undefined>;
  /** How often the leader polls the controller and retries pulls and deletions; default 100. */
  readonly pollMs?: number;
  /**
   * A pull reply carries at most this many characters of keys and values (one key more if
   * a single key is larger): a shard moves in pages, each installed by its own log entry,
   * so no shard is too large to move. Default shardKvPullBytesMaxDefault.
   */
  readonly pullBytesMax?: number;
  /** How long a request may wait for its entry to apply; default 1000. */
  readonly requestTimeoutMs?: number;
  readonly unsafe?: ShardKvUnsafe;
}

export const shardKvPollMsDefault = 100;
/** A quarter of the client port's 1 MiB frame and of a Raft command's limit, even for 3-byte characters. */
export const shardKvPullBytesMaxDefault = 256 * 1024;
/** Pages one pull may take (a bound on the loop; a shard's keys / 1 at the very most). */
const pullPagesMax = 1_000_000;
export const shardKvRequestTimeoutMsDefault = 1000;

type Submitted = { ok: true; err: string; value: string } | { ok: false; leader: boolean };

export class ShardKvService {
  private stopped = false;
  private timer: Timer | undefined;
  /** Loops with a call in flight: 'config', 'pull:<gid>', 'gc:<gid>'. */
  private readonly inFlight = new Set<string>();

  private constructor(
    readonly replica: Replica,
    readonly machine: ShardKvStateMachine,
    private readonly clock: Clock,
    private readonly options: ShardKvServiceOptions,
  ) {}

  static async open(options: ShardKvServiceOptions): Promise<ShardKvService> {
    const machine = new ShardKvStateMachine(options.gid, options.unsafe);
    const replica = await Replica.open({ ...options, service: machine });
    const service = new ShardKvService(replica, machine, options.clock, options);
    service.schedule();
    return service;
  }

  get isLeader(): boolean {
    return !this.stopped && this.replica.raft.status().role === 'leader';
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.replica.stop();
  }

  /** A clerk's Get, Put or Append. Never rejects. */
  async handle(request: ShardKvRequest): Promise<ShardKvReply> {
    const submitted = await this.submit({ kind: 'op', op: { kind: request.op, key: request.key, value: request.value, client: request.client, seq: request.seq } });
    if (!submitted.ok) return { err: submitted.leader ? 'ErrRetry' : 'ErrWrongLeader', value: '' };
    if (submitted.err === 'ErrMalformed') return { err: 'ErrFatal', value: submitted.value };
    return { err: submitted.err === 'OK' ? 'OK' : 'ErrWrongGroup', value: submitted.value };
  }

  /** Another group's pull or delete. Never rejects. */
  async handlePeer(args: PeerArgs): Promise<PeerReply> {
    const none = { shards: [], sessions: [] };
    const valid =
      (args.kind === 'pull' || args.kind === 'delete') &&
      Number.isSafeInteger(args.num) &&
      args.num >= 1 &&
      Array.isArray(args.shards) &&
      args.shards.every((shard) => Number.isSafeInteger(shard) && shard >= 0 && shard < shardCount);
    if (!valid) return { err: 'ErrFatal', ...none };
    if (!this.isLeader) return { err: 'ErrWrongLeader', ...none };
    if (args.kind === 'pull') {
      // Handed-off data is frozen (no request for it applies any more), so the leader's copy is final.
      const exported = this.machine.exportShards(args.num, args.shards, {
        ...(args.after === undefined ? {} : { after: args.after }),
        bytesMax: this.options.pullBytesMax ?? shardKvPullBytesMaxDefault,
      });
      if (exported === 'not-ready') return { err: 'ErrNotReady', ...none };
      if (exported === 'gone') return { err: 'ErrGone', ...none };
      return { err: 'OK', shards: shardsToArray(exported.shards), sessions: sessionsToArray(exported.sessions), ...(exported.more === undefined ? {} : { more: exported.more }) };
    }
    if (this.machine.config.num > args.num) return { err: 'OK', ...none };
    if (this.machine.config.num < args.num) return { err: 'ErrNotReady', ...none };
    const submitted = await this.submit({ kind: 'delete', num: args.num, shards: args.shards });
    return { err: submitted.ok ? 'OK' : 'ErrRetry', ...none };
  }

  /**
   * A peer call not answered within this is abandoned and the next server tried: a
   * deletion waits for the old owner's log, up to its request timeout, and a lost message
   * must not hold the loop that long.
   */
  private get peerCallDeadlineMs(): number {
    return 5 * (this.options.pollMs ?? shardKvPollMsDefault);
  }

  /** The promise's value, or undefined if it has not settled within `ms`. */
  private withDeadline<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      const timer = this.clock.setTimer(ms, () => resolve(undefined));
      promise.then(
        (value) => {
          timer.cancel();
          resolve(value);
        },
        (error: unknown) => {
          timer.cancel();
          reject(error);
        },
      );
    });
  }

  private async submit(command: ShardKvCommand): Promise<Submitted> {
    if (this.stopped) return { ok: false, leader: false };
    const timeoutMs = this.options.requestTimeoutMs ?? shardKvRequestTimeoutMsDefault;
    let timer: Timer | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = this.clock.setTimer(timeoutMs, () => resolve('timeout'));
    });
    try {
      const result = await Promise.race([this.replica.submit(encodeCommand(command)), timeout]);
      if (result === 'timeout') return { ok: false, leader: true };
      const decoded = decodeResult(result.result);
      return { ok: true, err: decoded.err, value: decoded.value };
    } catch (error) {
      if (!(error instanceof ReplicaError)) throw error;
      return { ok: false, leader: error.code !== 'not-leader' };
    } finally {
      timer?.cancel();
    }
  }

  // ---- The leader's loops -------------------------------------------------------------------

  private schedule(): void {
    this.timer = this.clock.setTimer(this.options.pollMs ?? shardKvPollMsDefault, () => {
      if (this.stopped) return;
      this.tick();
      this.schedule();
    });
  }

  private tick(): void {
    if (!this.isLeader) return;
    if (this.machine.settled) this.once('config', () => this.pollConfig());
    const work = this.machine.pendingWork();
    const previous = this.machine.previousConfig;
    for (const [gid, shards] of work.pull) this.once(`pull:${gid}`, () => this.pull(previous, gid, shards));
    for (const [gid, shards] of work.gc) this.once(`gc:${gid}`, () => this.collect(previous, gid, shards));
  }

  /**
   * Runs `task` unless one of the same name is in flight. A task that made progress (its
   * entry applied) runs the loops again at once rather than at the next poll, so a new
   * configuration's pulls, and an installed shard's deletion, start without waiting. A
   * task never rejects; if it does, that is a bug: onFatal.
   */
  private once(name: string, task: () => Promise<boolean>): void {
    if (this.inFlight.has(name)) return;
    this.inFlight.add(name);
    task().then(
      (progress) => {
        this.inFlight.delete(name);
        if (progress && !this.stopped) this.tick();
      },
      (error: unknown) => {
        this.inFlight.delete(name);
        if (this.options.onFatal === undefined) throw error;
        this.options.onFatal(error);
      },
    );
  }

  private async pollConfig(): Promise<boolean> {
    const num = this.machine.config.num;
    const next = await this.options.queryConfig(num + 1);
    if (next === undefined || next.num !== num + 1 || this.stopped) return false;
    return (await this.submit({ kind: 'config', config: next })).ok && this.machine.config.num > num;
  }

  /**
   * Pulls the shards page by page, installing each page with its own entry; the last
   * page's entry completes them. A page that fails ends this attempt; the next starts over
   * from the first page (pages already installed are installed again, harmlessly: the
   * handed-off data is frozen).
   */
  private async pull(previous: ShardConfig, gid: Gid, shards: number[]): Promise<boolean> {
    const num = this.machine.config.num;
    let after: PullCursor | undefined;
    for (let page = 0; page < pullPagesMax; page++) {
      const reply = await this.callGroup(previous, gid, { kind: 'pull', num, shards, ...(after === undefined ? {} : { after }) });
      if (reply === undefined || reply.err !== 'OK' || this.stopped) return false;
      let data: ReturnType<typeof shardsFromArray>;
      let sessions: ReturnType<typeof sessionsFromArray>;
      try {
        data = shardsFromArray(reply.shards);
        sessions = sessionsFromArray(reply.sessions);
      } catch {
        return false; // a malformed reply: ask again next time
      }
      const final = reply.more === undefined;
      // The last page lists every pulled shard, so that the empty ones complete too.
      if (final) for (const shard of shards) if (!data.has(shard)) data.set(shard, new Map());
      // The state machine installs it only if the group is still at `num`, the shards still pulling.
      if (!(await this.submit({ kind: 'insert', num, shards: data, sessions, final })).ok || this.stopped) return false;
      if (final) return true;
      if (this.machine.config.num !== num) return false;
      after = reply.more;
    }
    return false;
  }

  private async collect(previous: ShardConfig, gid: Gid, shards: number[]): Promise<boolean> {
    const num = this.machine.config.num;
    const reply = await this.callGroup(previous, gid, { kind: 'delete', num, shards });
    if (reply === undefined || reply.err !== 'OK' || this.stopped) return false;
    return (await this.submit({ kind: 'gcdone', num, shards })).ok;
  }

  /** Tries the group's servers (as listed in `config`) in turn until one answers OK or a definite refusal. */
  private async callGroup(config: ShardConfig, gid: Gid, args: PeerArgs): Promise<PeerReply | undefined> {
    const servers = config.groups.get(gid) ?? [];
    for (const server of servers) {
      if (this.stopped) return undefined;
      const reply = await this.withDeadline(this.options.callPeer(server, args), this.peerCallDeadlineMs);
      if (reply !== undefined && reply.err !== 'ErrWrongLeader' && reply.err !== 'ErrRetry') return reply;
    }
    return undefined;
  }
}
