// The edge of the logging channel (STYLE.md 6): every message from the other replica is
// checked field by field before the replay layer sees it. A malformed or truncated message
// is a LogRefusal('malformed') naming what was wrong; the channel is then closed.

import { pbLimits } from './limits.js';
import { LogRefusal, type Ack, type LogEntry, type LogEvent, type PendingTimer, type ReplicaSnapshot, type ToBackup } from './types.js';

type Fields = Record<string, unknown>;

function malformed(message: string): never {
  throw new LogRefusal('malformed', message);
}

function record(value: unknown, what: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) malformed(`${what} is not an object`);
  return value as Fields;
}

function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) malformed(`${what} is not a non-negative integer: ${JSON.stringify(value)}`);
  return value;
}

function epochOf(fields: Fields, what: string): number {
  const epoch = count(fields['epoch'], `${what}'s epoch`);
  if (epoch < 1) malformed(`${what}'s epoch must be at least 1`);
  return epoch;
}

function decodeEvent<I>(value: unknown, decodeInput: (value: unknown) => I, what: string): LogEvent<I> {
  const fields = record(value, what);
  switch (fields['kind']) {
    case 'input':
      return { kind: 'input', input: decodeInput(fields['input']), reads: reads(fields['reads'], what) };
    case 'timer':
      return { kind: 'timer', timerId: count(fields['timerId'], `${what}'s timerId`), reads: reads(fields['reads'], what) };
    case 'clock':
      if (typeof fields['ms'] !== 'number' || !Number.isFinite(fields['ms'])) malformed(`${what}'s clock reading is not a finite number`);
      return { kind: 'clock', ms: fields['ms'] };
    case 'random': {
      const value = count(fields['value'], `${what}'s random value`);
      if (value > 0xffffffff) malformed(`${what}'s random value ${value} is not a 32-bit integer`);
      return { kind: 'random', value };
    }
    default:
      return malformed(`${what} has unknown kind ${JSON.stringify(fields['kind'])}`);
  }
}

function reads(value: unknown, what: string): number {
  const n = count(value, `${what}'s reads`);
  if (n > pbLimits.readsPerEventMax) malformed(`${what} claims ${n} reads; at most ${pbLimits.readsPerEventMax}`);
  return n;
}

function decodeTimer(value: unknown): PendingTimer {
  const fields = record(value, 'a snapshot timer');
  if (typeof fields['tag'] !== 'string') malformed("a snapshot timer's tag is not a string");
  if (typeof fields['dueMs'] !== 'number' || !Number.isFinite(fields['dueMs'])) malformed("a snapshot timer's dueMs is not a number");
  return { id: count(fields['id'], "a snapshot timer's id"), tag: fields['tag'], dueMs: fields['dueMs'] };
}

function decodeSnapshot(value: unknown): ReplicaSnapshot {
  const fields = record(value, 'the snapshot');
  const timers = fields['timers'];
  if (!Array.isArray(timers) || timers.length > pbLimits.timersMax) malformed(`the snapshot's timers are not a list of at most ${pbLimits.timersMax}`);
  if (typeof fields['hash'] !== 'string') malformed("the snapshot's hash is not a string");
  return {
    seq: count(fields['seq'], "the snapshot's seq"),
    state: fields['state'],
    timers: timers.map(decodeTimer),
    nextTimerId: count(fields['nextTimerId'], "the snapshot's nextTimerId"),
    hash: fields['hash'],
  };
}

/** A primary → backup message. */
export function decodeToBackup<I>(value: unknown, decodeInput: (value: unknown) => I): ToBackup<I> {
  const fields = record(value, 'a log message');
  const epoch = epochOf(fields, 'a log message');
  switch (fields['type']) {
    case 'snapshot':
      return { type: 'snapshot', epoch, snapshot: decodeSnapshot(fields['snapshot']) };
    case 'entries': {
      const entries = fields['entries'];
      if (!Array.isArray(entries) || entries.length > pbLimits.entriesPerMessageMax) malformed(`a log message's entries are not a list of at most ${pbLimits.entriesPerMessageMax}`);
      return {
        type: 'entries',
        epoch,
        entries: entries.map((item, k): LogEntry<I> => {
          const entry = record(item, `log entry ${k}`);
          const seq = count(entry['seq'], `log entry ${k}'s seq`);
          return { seq, epoch: epochOf(entry, `log entry ${seq}`), event: decodeEvent(entry['event'], decodeInput, `log entry ${seq}`) };
        }),
      };
    }
    default:
      return malformed(`a log message has unknown type ${JSON.stringify(fields['type'])}`);
  }
}

/** A backup → primary ack. */
export function decodeAck(value: unknown): Ack {
  const fields = record(value, 'an ack');
  if (fields['type'] !== 'ack') malformed(`an ack has type ${JSON.stringify(fields['type'])}`);
  return { type: 'ack', epoch: epochOf(fields, 'an ack'), seq: count(fields['seq'], "an ack's seq") };
}

/** A message as bytes (JSON), for channels that carry raw frames. */
export function encodeMessage(message: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(message));
}

/** Parses a frame body; a truncated or garbled body is refused with the reason. */
export function parseMessage(bytes: Uint8Array): unknown {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  try {
    return JSON.parse(text);
  } catch (error) {
    return malformed(`a frame of ${bytes.length} bytes is not a whole message (truncated or garbled): ${error instanceof Error ? error.message : String(error)}`);
  }
}
