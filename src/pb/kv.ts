// A small key/value and counter service on the replay layer: the machine `flotilla pb
// serve` replicates. Its non-determinism all comes through the ReplayEnv: a put stamps
// the clock (and may set an expiry), `token` draws a random fencing token, and a timer
// sweeps expired keys every sweepIntervalMs. Each client's last reply is kept, so a
// request repeated after a failover gets the same answer instead of running twice (the
// new primary may repeat the last output; Scales et al. §2.2).

import { assert } from '../stdx/assert.js';
import { LogRefusal, type Machine, type ReplayEnv } from './types.js';

export const kvLimits = {
  keyCharsMax: 1024,
  valueCharsMax: 64 * 1024,
  keysMax: 100_000,
  /** Clients whose last reply is remembered; the least recently seen is forgotten past it. */
  clientsMax: 10_000,
  ttlMsMax: 24 * 3600 * 1000,
} as const;

export const sweepIntervalMs = 200;

export type KvOp =
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly ttlMs?: number }
  | { readonly type: 'incr'; readonly key: string; readonly by: number }
  | { readonly type: 'token'; readonly key: string };

export interface KvInput {
  readonly clientId: number;
  /** Per client, increasing; a repeated one is answered from the remembered reply. */
  readonly requestSeq: number;
  readonly op: KvOp;
}

export type KvOutput =
  | { readonly type: 'ok'; readonly value: string | null; readonly version: number; readonly atMs?: number }
  | { readonly type: 'error'; readonly code: 'bad-request' | 'stale-request' | 'full'; readonly message: string };

interface Entry {
  value: string;
  version: number;
  writtenAtMs: number;
  expiresAtMs: number | null;
}

interface State {
  data: [string, Entry][];
  clients: [number, { seq: number; output: KvOutput }][];
  sweepArmed: boolean;
  applied: number;
}

export class KvMachine implements Machine<KvInput, KvOutput> {
  private readonly data = new Map<string, Entry>();
  /** In least-recently-seen order (Map order: deleted and re-set on every request). */
  private readonly clients = new Map<number, { seq: number; output: KvOutput }>();
  private sweepArmed = false;
  private applied = 0;

  constructor(state?: unknown) {
    if (state === undefined) return;
    const s = state as State;
    if (!Array.isArray(s.data) || !Array.isArray(s.clients)) throw new LogRefusal('malformed', 'a key/value snapshot needs data and clients lists');
    for (const [key, entry] of s.data) this.data.set(key, { ...entry });
    for (const [id, client] of s.clients) this.clients.set(id, client);
    this.sweepArmed = s.sweepArmed === true;
    this.applied = Number(s.applied) || 0;
  }

  apply(input: KvInput, env: ReplayEnv): KvOutput {
    if (!this.sweepArmed) {
      env.setTimer(sweepIntervalMs, 'sweep');
      this.sweepArmed = true;
    }
    const known = this.clients.get(input.clientId);
    if (known !== undefined && input.requestSeq === known.seq) return known.output;
    if (known !== undefined && input.requestSeq < known.seq)
      return { type: 'error', code: 'stale-request', message: `request ${input.requestSeq} of client ${input.clientId} is older than its last (${known.seq})` };
    const output = this.run(input.op, env);
    this.clients.delete(input.clientId);
    this.clients.set(input.clientId, { seq: input.requestSeq, output });
    if (this.clients.size > kvLimits.clientsMax) this.clients.delete(this.clients.keys().next().value!);
    this.applied++;
    return output;
  }

  fire(tag: string, env: ReplayEnv): void {
    assert(tag === 'sweep', `unknown timer ${tag}`);
    const nowMs = env.nowMs();
    for (const [key, entry] of this.data) if (entry.expiresAtMs !== null && entry.expiresAtMs <= nowMs) this.data.delete(key);
    env.setTimer(sweepIntervalMs, 'sweep');
  }

  hash(): string {
    return fnv1a64(JSON.stringify(this.snapshot()));
  }

  snapshot(): State {
    const data = [...this.data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { data: data.map(([key, entry]) => [key, { ...entry }]), clients: [...this.clients], sweepArmed: this.sweepArmed, applied: this.applied };
  }

  /** The value of a key as the state holds it now (tests). */
  peek(key: string): string | null {
    return this.data.get(key)?.value ?? null;
  }

  private run(op: KvOp, env: ReplayEnv): KvOutput {
    const nowMs = env.nowMs();
    const current = this.data.get(op.key);
    const live = current !== undefined && (current.expiresAtMs === null || current.expiresAtMs > nowMs) ? current : undefined;
    switch (op.type) {
      case 'get':
        return { type: 'ok', value: live?.value ?? null, version: live?.version ?? 0 };
      case 'put':
        return this.write(op.key, op.value, live, nowMs, op.ttlMs === undefined ? null : nowMs + op.ttlMs);
      case 'incr': {
        const before = live === undefined ? 0 : Number(live.value);
        if (!Number.isSafeInteger(before)) return { type: 'error', code: 'bad-request', message: `${op.key} holds ${JSON.stringify(live?.value)}, not an integer` };
        return this.write(op.key, String(before + op.by), live, nowMs, null);
      }
      case 'token':
        return this.write(op.key, env.random().toString(16).padStart(8, '0'), live, nowMs, null);
      default: {
        const never: never = op;
        throw new Error(`unknown op ${JSON.stringify(never)}`);
      }
    }
  }

  private write(key: string, value: string, live: Entry | undefined, nowMs: number, expiresAtMs: number | null): KvOutput {
    if (!this.data.has(key) && this.data.size >= kvLimits.keysMax) return { type: 'error', code: 'full', message: `the service holds ${kvLimits.keysMax} keys` };
    const version = (live?.version ?? this.data.get(key)?.version ?? 0) + 1;
    this.data.set(key, { value, version, writtenAtMs: nowMs, expiresAtMs });
    return { type: 'ok', value, version, atMs: nowMs };
  }
}

export function kvFactory(state: unknown): KvMachine {
  return new KvMachine(state);
}

function text(value: unknown, what: string, max: number, allowEmpty: boolean): string {
  if (typeof value !== 'string') throw new LogRefusal('malformed', `${what} is not a string`);
  if (!allowEmpty && value.length === 0) throw new LogRefusal('malformed', `${what} must not be empty`);
  if (value.length > max) throw new LogRefusal('malformed', `${what} is ${value.length} characters; at most ${max}`);
  return value;
}

/** Validates a client's request (at the client port and on the logging channel). */
export function decodeKvInput(value: unknown): KvInput {
  if (typeof value !== 'object' || value === null) throw new LogRefusal('malformed', 'a request is not an object');
  const fields = value as Record<string, unknown>;
  const clientId = fields['clientId'];
  const requestSeq = fields['requestSeq'];
  if (typeof clientId !== 'number' || !Number.isSafeInteger(clientId) || clientId < 0) throw new LogRefusal('malformed', 'clientId is not a non-negative integer');
  if (typeof requestSeq !== 'number' || !Number.isSafeInteger(requestSeq) || requestSeq < 1) throw new LogRefusal('malformed', 'requestSeq is not a positive integer');
  const op = fields['op'];
  if (typeof op !== 'object' || op === null) throw new LogRefusal('malformed', 'op is not an object');
  const o = op as Record<string, unknown>;
  const key = text(o['key'], 'the key', kvLimits.keyCharsMax, false);
  switch (o['type']) {
    case 'get':
      return { clientId, requestSeq, op: { type: 'get', key } };
    case 'token':
      return { clientId, requestSeq, op: { type: 'token', key } };
    case 'put': {
      const value = text(o['value'], 'the value', kvLimits.valueCharsMax, true);
      const ttl = o['ttlMs'];
      if (ttl === undefined || ttl === null) return { clientId, requestSeq, op: { type: 'put', key, value } };
      if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 1 || ttl > kvLimits.ttlMsMax) throw new LogRefusal('malformed', `ttlMs must be an integer from 1 to ${kvLimits.ttlMsMax}`);
      return { clientId, requestSeq, op: { type: 'put', key, value, ttlMs: ttl } };
    }
    case 'incr': {
      const by = o['by'];
      if (typeof by !== 'number' || !Number.isSafeInteger(by) || Math.abs(by) > 2 ** 40) throw new LogRefusal('malformed', 'by must be an integer of magnitude at most 2^40');
      return { clientId, requestSeq, op: { type: 'incr', key, by } };
    }
    default:
      throw new LogRefusal('malformed', `unknown op type ${JSON.stringify(o['type'])}`);
  }
}

/** Two FNV-1a 32-bit hashes with different offsets, over UTF-16 code units: a state digest, not a cryptographic hash. */
export function fnv1a64(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (a >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}
