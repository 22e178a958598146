// The key/value service on one member: a KvStateMachine hosted by a Replica, and the
// request handler a front-end (the simulator's clerks, the client port) calls.
//
// Writes (put, append, delete, cas) go through the log, stamped with this member's clock
// (the log time that expires sessions). Reads (get, scan) do not: a linearizable read
// waits for ReadIndex (thesis §6.4) and then reads the local state; a serializable one
// reads it at once. Every outcome is a value (STYLE.md 9):
//
//   code             | meaning                                        | did a write happen?
//   -----------------+------------------------------------------------+--------------------
//   not-leader       | ask another member (`leader` is a hint)        | no
//   overloaded       | a limit was reached; retry later               | no
//   invalid          | the command is too large to propose            | no
//   dropped          | another entry took its place in the log        | no
//   outcome-unknown  | leadership was lost first                      | maybe
//   stopped          | the member is shutting down                    | maybe
//   timeout          | no answer within requestTimeoutMs              | maybe
//
// "Maybe" is safe to retry within the same session: the state machine runs a request once.

import type { Clock } from '../io/clock.js';
import type { Index, NodeId } from '../stdx/types.js';
import { nodeId } from '../stdx/types.js';
import { ReadError } from '../runtime/node.js';
import { Replica, ReplicaError, type ReadConsistency, type ReplicaErrorCode, type ReplicaOptions } from '../runtime/replica.js';
import { decodeResult, encodeCommand, type KvOp, type KvResult, type SessionStamp } from './codec.js';
import type { KvLimits } from './limits.js';
import { KvStateMachine, type KvUnsafe } from './state-machine.js';

export interface KvRequest {
  readonly op: KvOp;
  /** Needed for exactly-once writes; reads ignore it. */
  readonly session?: SessionStamp;
  /** For get and scan; default 'linearizable'. */
  readonly consistency?: ReadConsistency;
}

export type KvServiceErrorCode = ReplicaErrorCode | 'timeout';

export type KvResponse =
  | { readonly ok: true; readonly result: KvResult; readonly index: number }
  | { readonly ok: false; readonly code: KvServiceErrorCode; readonly leader: NodeId; readonly message: string };

/**
 * How linearizable reads are served. 'read-index' is the only correct one; the other exists
 * to prove that the linearizability checker catches a broken service (STYLE.md 18): a member
 * that believes it leads answers from its local state without confirming it still leads
 * ('unsafe-leader-local'), or any member answers from its local state ('unsafe-local').
 */
export type KvReadMode = 'read-index' | 'unsafe-leader-local' | 'unsafe-local';

export interface KvServiceOptions extends Omit<ReplicaOptions, 'service'> {
  readonly kvLimits?: Partial<KvLimits>;
  /** How long a request may wait for its command to apply or its read to be confirmed. */
  readonly requestTimeoutMs?: number;
  readonly readMode?: KvReadMode;
  /** Deliberately broken state machines, for tests only (see KvUnsafe). */
  readonly unsafe?: KvUnsafe;
}

export const requestTimeoutMsDefault = 1000;

export class KvService {
  private constructor(
    readonly replica: Replica,
    readonly machine: KvStateMachine,
    private readonly clock: Clock,
    private readonly requestTimeoutMs: number,
    private readonly readMode: KvReadMode,
  ) {}

  static async open(options: KvServiceOptions): Promise<KvService> {
    const machine = new KvStateMachine(options.kvLimits, options.unsafe);
    const replica = await Replica.open({ ...options, service: machine });
    return new KvService(replica, machine, options.clock, options.requestTimeoutMs ?? requestTimeoutMsDefault, options.readMode ?? 'read-index');
  }

  /** Never rejects: every outcome is a KvResponse. */
  handle(request: KvRequest): Promise<KvResponse> {
    const { op } = request;
    if (op.kind === 'get' || op.kind === 'scan') return this.read(op, request.consistency ?? 'linearizable');
    return this.write(request);
  }

  stop(): void {
    this.replica.stop();
  }

  private async write(request: KvRequest): Promise<KvResponse> {
    // Whole milliseconds: a real clock (performance.now()) has a fraction; the codec takes integers.
    const command = encodeCommand({ op: request.op, session: request.session, timeMs: Math.floor(this.clock.nowMs()) });
    try {
      const submitted = await this.withTimeout(this.replica.submit(command));
      if (submitted === undefined) return this.failure('timeout', `the command did not apply within ${this.requestTimeoutMs} ms; it may or may not be applied`);
      return { ok: true, result: decodeResult(submitted.result), index: submitted.index };
    } catch (error) {
      if (!(error instanceof ReplicaError)) throw error;
      return { ok: false, code: error.code, leader: error.leader, message: error.message };
    }
  }

  private async read(op: KvOp, consistency: ReadConsistency): Promise<KvResponse> {
    const status = this.replica.raft.status();
    if (consistency === 'linearizable' && this.readMode === 'unsafe-leader-local') {
      if (status.role !== 'leader') return this.failure('not-leader', 'this member is not the leader');
      return this.answer(op, status.applied);
    }
    if (consistency === 'linearizable' && this.readMode === 'unsafe-local') return this.answer(op, status.applied);
    // A follower that knows no leader cannot forward the read: fail fast, not at the timeout.
    if (consistency === 'linearizable' && status.role !== 'leader' && status.leader === 0) {
      return this.failure('not-leader', 'this member knows no leader');
    }
    try {
      const at = await this.replica.read(consistency, this.requestTimeoutMs);
      return this.answer(op, at);
    } catch (error) {
      if (!(error instanceof ReadError)) throw error;
      return this.failure('timeout', `the read was not confirmed: ${error.message}`);
    }
  }

  private answer(op: KvOp, readIndex: Index): KvResponse {
    return { ok: true, result: this.machine.query(op), index: Math.max(readIndex, this.machine.appliedIndex) };
  }

  private failure(code: KvServiceErrorCode, message: string): KvResponse {
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
