// The worker–coordinator protocol. Workers pull: they say hello once, then ask for tasks in
// a loop and report each task's outcome. Every message that arrives from the network is
// checked field by field by the decoders below before the coordinator or a worker sees it
// (STYLE.md 6); a decoder throws ProtocolError and the transport closes that connection.

import type { TaskKind } from './types.js';

/** Limits on what one message may carry. */
export const protocolLimits = {
  /** Task ids are array indexes; more tasks than this is refused by the coordinator too. */
  tasksMax: 1_000_000,
  /** Paths and app specs. */
  pathLengthMax: 4096,
  /** Error messages are cut to this length by the sender. */
  messageLengthMax: 4096,
  workerIdMax: 1_000_000_000,
  waitMsMax: 60_000,
} as const;

export type Request =
  | { type: 'hello' }
  | { type: 'getTask'; workerId: number }
  | { type: 'taskDone'; workerId: number; kind: TaskKind; taskId: number; records: number; bytesIn: number }
  | { type: 'taskFailed'; workerId: number; kind: TaskKind; taskId: number; message: string }
  | { type: 'workerFailed'; workerId: number; message: string };

export interface Welcome {
  type: 'welcome';
  workerId: number;
  /** The application spec (a built-in name or an absolute module path); workers load it. */
  app: string;
  reduceCount: number;
  /** Absolute path of the shared job directory (intermediate and output files). */
  workDir: string;
}

export type TaskReply =
  | { type: 'map'; taskId: number; file: string; reduceCount: number }
  | { type: 'reduce'; taskId: number; mapCount: number }
  | { type: 'wait'; delayMs: number }
  | { type: 'exit'; outcome: 'done' | 'failed' };

export type Response = Welcome | TaskReply | { type: 'ok' };

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export function decodeRequest(value: unknown): Request {
  const record = asRecord(value);
  const type = record['type'];
  switch (type) {
    case 'hello':
      return { type };
    case 'getTask':
      return { type, workerId: workerIdField(record) };
    case 'taskDone':
      return {
        type,
        workerId: workerIdField(record),
        kind: kindField(record),
        taskId: intField(record, 'taskId', protocolLimits.tasksMax - 1),
        records: intField(record, 'records', Number.MAX_SAFE_INTEGER),
        bytesIn: intField(record, 'bytesIn', Number.MAX_SAFE_INTEGER),
      };
    case 'taskFailed':
      return {
        type,
        workerId: workerIdField(record),
        kind: kindField(record),
        taskId: intField(record, 'taskId', protocolLimits.tasksMax - 1),
        message: stringField(record, 'message', protocolLimits.messageLengthMax),
      };
    case 'workerFailed':
      return { type, workerId: workerIdField(record), message: stringField(record, 'message', protocolLimits.messageLengthMax) };
    default:
      throw new ProtocolError(`unknown request type ${JSON.stringify(type)}`);
  }
}

export function decodeResponse(value: unknown): Response {
  const record = asRecord(value);
  const type = record['type'];
  switch (type) {
    case 'welcome':
      return {
        type,
        workerId: workerIdField(record),
        app: stringField(record, 'app', protocolLimits.pathLengthMax),
        reduceCount: intField(record, 'reduceCount', protocolLimits.tasksMax, 1),
        workDir: stringField(record, 'workDir', protocolLimits.pathLengthMax),
      };
    case 'map':
      return {
        type,
        taskId: intField(record, 'taskId', protocolLimits.tasksMax - 1),
        file: stringField(record, 'file', protocolLimits.pathLengthMax),
        reduceCount: intField(record, 'reduceCount', protocolLimits.tasksMax, 1),
      };
    case 'reduce':
      return {
        type,
        taskId: intField(record, 'taskId', protocolLimits.tasksMax - 1),
        mapCount: intField(record, 'mapCount', protocolLimits.tasksMax, 1),
      };
    case 'wait':
      return { type, delayMs: intField(record, 'delayMs', protocolLimits.waitMsMax) };
    case 'exit': {
      const outcome = record['outcome'];
      if (outcome !== 'done' && outcome !== 'failed') throw new ProtocolError('exit.outcome must be "done" or "failed"');
      return { type, outcome };
    }
    case 'ok':
      return { type };
    default:
      throw new ProtocolError(`unknown response type ${JSON.stringify(type)}`);
  }
}

/** Cuts an error message to what the protocol carries. */
export function clampMessage(message: string): string {
  const max = protocolLimits.messageLengthMax;
  return message.length <= max ? message : `${message.slice(0, max - 3)}...`;
}

function asRecord(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('message must be a map');
  }
  return value as Record<string, unknown>;
}

function intField(record: Record<string, unknown>, name: string, max: number, min = 0): number {
  const value = Object.hasOwn(record, name) ? record[name] : undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ProtocolError(`${name} must be an integer in [${min}, ${max}]`);
  }
  return value;
}

function stringField(record: Record<string, unknown>, name: string, lengthMax: number): string {
  const value = Object.hasOwn(record, name) ? record[name] : undefined;
  if (typeof value !== 'string' || value.length > lengthMax) {
    throw new ProtocolError(`${name} must be a string of at most ${lengthMax} characters`);
  }
  return value;
}

function workerIdField(record: Record<string, unknown>): number {
  return intField(record, 'workerId', protocolLimits.workerIdMax, 1);
}

function kindField(record: Record<string, unknown>): TaskKind {
  const value = record['kind'];
  if (value !== 'map' && value !== 'reduce') throw new ProtocolError('kind must be "map" or "reduce"');
  return value;
}

/**
 * The coordinator as a worker sees it: one request, one response. The transport may fail
 * (the coordinator exited or the network broke); it then rejects with any error, which
 * the worker takes to mean that the job is over (the lab's rule).
 */
export interface CoordinatorLink {
  call(request: Request): Promise<Response>;
}
