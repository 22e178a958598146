// The minimal test service: a deterministic map of string keys to byte values, with set
// and get. It exists to prove, through the real server, that acknowledged writes survive
// crashes and leader changes; the real key/value service (kv/) comes in its own issue.
//
// Commands and results are MessagePack maps (plain mode):
//   {op:'set', key, value}  →  {ok:true, value: previous value or null}
//   {op:'get', key}         →  {ok:true, value: current value or null}
//   anything refused        →  {ok:false, error}
// A command in the log that does not decode gets an error result, never an exception:
// apply() must behave the same on every member for every input.

import { Packr } from 'msgpackr';
import { assert } from '../stdx/assert.js';
import type { Index } from '../stdx/types.js';
import type { ReplicatedService } from '../runtime/replica.js';

export const registerLimits = {
  keyBytesMax: 1024,
  valueBytesMax: 64 * 1024,
  /** Keys held at most; a set of a new key beyond it is refused (deterministically). */
  keysMax: 1_000_000,
} as const;

export type RegisterCommand =
  | { readonly op: 'set'; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'get'; readonly key: string };

export type RegisterResult = { readonly ok: true; readonly value: Uint8Array | null } | { readonly ok: false; readonly error: string };

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encodeRegisterCommand(command: RegisterCommand): Uint8Array {
  return packr.pack(command);
}

/** Decodes and validates a command; returns a reason string if it is not one. */
export function decodeRegisterCommand(bytes: Uint8Array): RegisterCommand | string {
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch {
    return 'the command is not MessagePack';
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'the command is not a map';
  const m = raw as Record<string, unknown>;
  const key = m['key'];
  if (typeof key !== 'string' || key.length === 0) return 'key is not a non-empty string';
  if (Buffer.byteLength(key) > registerLimits.keyBytesMax) return `key is longer than ${registerLimits.keyBytesMax} bytes`;
  if (m['op'] === 'get') return { op: 'get', key };
  if (m['op'] !== 'set') return `unknown op ${JSON.stringify(m['op'])}`;
  const value = m['value'];
  if (!(value instanceof Uint8Array)) return 'value is not bytes';
  if (value.length > registerLimits.valueBytesMax) return `value is larger than ${registerLimits.valueBytesMax} bytes`;
  return { op: 'set', key, value };
}

export function encodeRegisterResult(result: RegisterResult): Uint8Array {
  return packr.pack(result);
}

export function decodeRegisterResult(bytes: Uint8Array): RegisterResult {
  const raw: unknown = packr.unpack(bytes);
  if (typeof raw !== 'object' || raw === null) throw new Error('register result is not a map');
  const m = raw as Record<string, unknown>;
  if (m['ok'] === true && (m['value'] === null || m['value'] instanceof Uint8Array)) return { ok: true, value: m['value'] as Uint8Array | null };
  if (m['ok'] === false && typeof m['error'] === 'string') return { ok: false, error: m['error'] };
  throw new Error('malformed register result');
}

/** What the server needs from a service beyond apply(): checks at the client edge. */
export interface ServerService extends ReplicatedService {
  /** Why a client's command is refused before it is proposed, or undefined. */
  checkCommand(command: Uint8Array): string | undefined;
  /** Why a client's read query is refused (it must not modify state), or undefined. */
  checkQuery(query: Uint8Array): string | undefined;
}

export class RegisterService implements ServerService {
  private readonly values = new Map<string, Uint8Array>();
  /** The index of the last command applied. Invariant: increases with every apply(). */
  private appliedIndex = 0;

  apply(command: Uint8Array, index: Index): Uint8Array {
    assert(index > this.appliedIndex, `entries apply in log order: ${index} after ${this.appliedIndex}`);
    this.appliedIndex = index;
    const decoded = decodeRegisterCommand(command);
    if (typeof decoded === 'string') return encodeRegisterResult({ ok: false, error: decoded });
    const previous = this.values.get(decoded.key) ?? null;
    if (decoded.op === 'get') return encodeRegisterResult({ ok: true, value: previous });
    if (previous === null && this.values.size >= registerLimits.keysMax) return encodeRegisterResult({ ok: false, error: `the register holds ${registerLimits.keysMax} keys (keysMax)` });
    // Copy: the entry's bytes may share a larger buffer (a whole WAL segment or frame).
    this.values.set(decoded.key, Uint8Array.from(decoded.value));
    return encodeRegisterResult({ ok: true, value: previous });
  }

  checkCommand(command: Uint8Array): string | undefined {
    const decoded = decodeRegisterCommand(command);
    return typeof decoded === 'string' ? decoded : undefined;
  }

  checkQuery(query: Uint8Array): string | undefined {
    const decoded = decodeRegisterCommand(query);
    if (typeof decoded === 'string') return decoded;
    return decoded.op === 'get' ? undefined : `a read may only get, not ${decoded.op}`;
  }

  size(): number {
    return this.values.size;
  }
}
