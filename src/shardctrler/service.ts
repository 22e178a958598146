// The shard controller on one member: a ShardCtrlerStateMachine hosted by a Replica, and the
// request handler a front-end (the simulator's clerks) calls.
//
// Join, Leave and Move go through the log, stamped with this member's clock. Query does
// not: it waits for ReadIndex (thesis §6.4) and reads the local configurations, so it sees
// every command that completed before it was received, as the lab requires. Every outcome
// is a value (STYLE.md 9):
//
//   code             | meaning                                        | did a command apply?
//   -----------------+------------------------------------------------+---------------------
//   not-leader       | ask another member (`leader` is a hint)        | no
//   overloaded       | a limit was reached; retry later               | no
//   invalid          | a Query num below -1, or a command too large   | no
//   dropped          | another entry took its place in the log        | no
//   outcome-unknown  | leadership was lost first                      | maybe
//   stopped          | the member is shutting down                    | maybe
//   timeout          | no answer within requestTimeoutMs              | maybe
//
// "Maybe" is safe to retry within the same session: the state machine runs a request once.

import type { Clock } from '../io/clock.js';
import type { NodeId } from '../stdx/types.js';
import { nodeId } from '../stdx/types.js';
import { ReadError } from '../runtime/node.js';
import { Replica, ReplicaError, type ReplicaErrorCode, type ReplicaOptions } from '../runtime/replica.js';
import { decodeResult, encodeCommand, type ShardOp, type ShardResult, type ShardSessionStamp } from './codec.js';
import type { ShardConfig } from './config.js';
import type { ShardCtrlerLimits } from './limits.js';
import { ShardCtrlerStateMachine, type ShardCtrlerUnsafe } from './state-machine.js';

export type ShardCtrlerRequest = { readonly kind: 'command'; readonly op: ShardOp; readonly session?: ShardSessionStamp } | { readonly kind: 'query'; readonly num: number };

export type ShardCtrlerErrorCode = ReplicaErrorCode | 'timeout';

export type ShardCtrlerResponse =
  | { readonly ok: true; readonly kind: 'command'; readonly result: ShardResult; readonly index: number }
  | { readonly ok: true; readonly kind: 'query'; readonly config: ShardConfig }
  | { readonly ok: false; readonly code: ShardCtrlerErrorCode; readonly leader: NodeId; readonly message: string };

export interface ShardCtrlerServiceOptions extends Omit<ReplicaOptions, 'service'> {
  readonly ctrlerLimits?: Partial<ShardCtrlerLimits>;
  /** How long a request may wait for its command to apply or its read to be confirmed. */
  readonly requestTimeoutMs?: number;
  /** Deliberately broken state machines, for tests only (see ShardCtrlerUnsafe). */
  readonly unsafe?: ShardCtrlerUnsafe;
}

export const shardCtrlerRequestTimeoutMsDefault = 1000;

export class ShardCtrlerService {
  private constructor(
    readonly replica: Replica,
    readonly machine: ShardCtrlerStateMachine,
    private readonly clock: Clock,
    private readonly requestTimeoutMs: number,
  ) {}

  static async open(options: ShardCtrlerServiceOptions): Promise<ShardCtrlerService> {
    const machine = new ShardCtrlerStateMachine(options.ctrlerLimits, options.unsafe);
    const replica = await Replica.open({ ...options, service: machine });
    return new ShardCtrlerService(replica, machine, options.clock, options.requestTimeoutMs ?? shardCtrlerRequestTimeoutMsDefault);
  }

  /** Never rejects: every outcome is a ShardCtrlerResponse. */
  handle(request: ShardCtrlerRequest): Promise<ShardCtrlerResponse> {
    if (request.kind === 'query') return this.query(request.num);
    return this.command(request.op, request.session);
  }

  stop(): void {
    this.replica.stop();
  }

  private async command(op: ShardOp, session: ShardSessionStamp | undefined): Promise<ShardCtrlerResponse> {
    const command = encodeCommand({ op, session, timeMs: Math.floor(this.clock.nowMs()) });
    try {
      const submitted = await this.withTimeout(this.replica.submit(command));
      if (submitted === undefined) return this.failure('timeout', `the command did not apply within ${this.requestTimeoutMs} ms; it may or may not be applied`);
      return { ok: true, kind: 'command', result: decodeResult(submitted.result), index: submitted.index };
    } catch (error) {
      if (!(error instanceof ReplicaError)) throw error;
      return { ok: false, code: error.code, leader: error.leader, message: error.message };
    }
  }

  private async query(num: number): Promise<ShardCtrlerResponse> {
    if (!Number.isSafeInteger(num) || num < -1) return this.failure('invalid', `Query(${num}): num is -1 (the latest) or a configuration number`);
    const status = this.replica.raft.status();
    // A follower that knows no leader cannot forward the read: fail fast, not at the timeout.
    if (status.role !== 'leader' && status.leader === 0) return this.failure('not-leader', 'this member knows no leader');
    try {
      await this.replica.read('linearizable', this.requestTimeoutMs);
      return { ok: true, kind: 'query', config: this.machine.query(num) };
    } catch (error) {
      if (!(error instanceof ReadError)) throw error;
      return this.failure('timeout', `the read was not confirmed: ${error.message}`);
    }
  }

  private failure(code: ShardCtrlerErrorCode, message: string): ShardCtrlerResponse {
    const leader = this.replica.raft.isStopped() ? nodeId(0) : this.replica.raft.status().leader;
    return { ok: false, code, leader, message };
  }

  /** The promise's value, or undefined if it did not settle within requestTimeoutMs. */
  private withTimeout<T>(promise: Promise<T>): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      const timer = this.clock.setTimer(this.requestTimeoutMs, () => resolve(undefined));
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
}
