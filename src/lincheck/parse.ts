// Readers for histories: the project's JSONL format (see README.md) and the two Jepsen log
// formats of the Porcupine test corpus. Input is validated here, at the edge; a bad line is
// an operating error, returned as a value naming the line, never thrown.

import type { EtcdInput, EtcdOutput, KvInput, KvOutput, RegisterInput, RegisterOutput } from './models.js';
import type { Operation } from './types.js';

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly line: number; readonly message: string };

/** Longest history accepted, in operations. */
export const historyOperationsMax = 1 << 22;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function failure(line: number, message: string): { ok: false; line: number; message: string } {
  return { ok: false, line, message };
}

// --- JSONL ---------------------------------------------------------------------------

export type ModelName = 'register' | 'kv' | 'etcd';
export const modelNames: readonly ModelName[] = ['register', 'kv', 'etcd'];

interface InputOutput<I, O> {
  readonly input: I;
  readonly output: O | undefined;
}

/** Converts one JSON object's model fields; a string is an error message. */
type FieldReader<I, O> = (record: Record<string, unknown>) => InputOutput<I, O> | string;

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

const readRegister: FieldReader<RegisterInput, RegisterOutput> = (record) => {
  switch (record.op) {
    case 'read':
      if (record.output !== undefined && !isNumber(record.output)) return 'a read\'s "output" must be a number';
      return { input: { kind: 'read' }, output: record.output as number | undefined };
    case 'write':
      if (!isNumber(record.value)) return 'a write needs a numeric "value"';
      return { input: { kind: 'write', value: record.value }, output: 0 };
    default:
      return '"op" must be "read" or "write"';
  }
};

const readKv: FieldReader<KvInput, KvOutput> = (record) => {
  const { op, key, value, output } = record;
  if (typeof key !== 'string') return '"key" must be a string';
  switch (op) {
    case 'get':
      if (output !== undefined && typeof output !== 'string') return 'a get\'s "output" must be a string';
      return { input: { kind: 'get', key }, output };
    case 'put':
    case 'append':
      if (typeof value !== 'string') return `a ${op} needs a string "value"`;
      return { input: { kind: op, key, value }, output: '' };
    default:
      return '"op" must be "get", "put" or "append"';
  }
};

const readEtcd: FieldReader<EtcdInput, EtcdOutput> = (record) => {
  const { op, value, from, to, output } = record;
  switch (op) {
    case 'read':
      if (output !== undefined && output !== null && !isNumber(output)) return 'a read\'s "output" must be a number or null';
      return { input: { kind: 'read' }, output };
    case 'write':
      if (!isNumber(value)) return 'a write needs a numeric "value"';
      return { input: { kind: 'write', value }, output: true };
    case 'cas':
      if (!isNumber(from) || !isNumber(to)) return 'a cas needs numeric "from" and "to"';
      if (output !== undefined && typeof output !== 'boolean') return 'a cas\'s "output" must be true or false';
      return { input: { kind: 'cas', from, to }, output };
    default:
      return '"op" must be "read", "write" or "cas"';
  }
};

function parseJsonlWith<I, O>(text: string, readFields: FieldReader<I, O>): ParseResult<Operation<I, O>[]> {
  const operations: Operation<I, O>[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.trim();
    if (line === '') continue;
    if (operations.length >= historyOperationsMax) return failure(index + 1, `more than ${historyOperationsMax} operations`);
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      return failure(index + 1, `not JSON: ${(error as Error).message}`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) return failure(index + 1, 'not a JSON object');
    const fields = record as Record<string, unknown>;
    const { client, call } = fields;
    const returned = fields.return;
    if (!Number.isSafeInteger(client) || (client as number) < 0) return failure(index + 1, '"client" must be an integer >= 0');
    if (!isNumber(call)) return failure(index + 1, '"call" must be a number');
    if (returned !== undefined && returned !== null && (!isNumber(returned) || returned < call)) {
      return failure(index + 1, '"return" must be a number >= "call", or null if the call never returned');
    }
    const read = readFields(fields);
    if (typeof read === 'string') return failure(index + 1, read);
    const returnTime = isNumber(returned) ? returned : undefined;
    // A call that never returned has no observed result, whatever the line says.
    const output = returnTime === undefined ? undefined : read.output;
    operations.push({ clientId: client as number, input: read.input, output, callTime: call, returnTime });
  }
  return { ok: true, value: operations };
}

export function parseRegisterJsonl(text: string): ParseResult<Operation<RegisterInput, RegisterOutput>[]> {
  return parseJsonlWith(text, readRegister);
}

export function parseKvJsonl(text: string): ParseResult<Operation<KvInput, KvOutput>[]> {
  return parseJsonlWith(text, readKv);
}

export function parseEtcdJsonl(text: string): ParseResult<Operation<EtcdInput, EtcdOutput>[]> {
  return parseJsonlWith(text, readEtcd);
}

// --- Jepsen logs (Porcupine's test corpus) ----------------------------------------------

/**
 * Pairs Jepsen's invoke/complete lines per process. Line numbers are the times.
 * `:ok` completes an operation; `:fail` means it certainly did not happen (it is dropped),
 * except where `failOutput` says it still has an unknown result (a timed-out read);
 * `:info` means the result is unknown and the operation may still take effect later, so it
 * stays pending, as does anything still open at the end of the log.
 */
class JepsenPairing<I, O> {
  private readonly open = new Map<number, Mutable<Operation<I, O>>>();
  private readonly operations: Mutable<Operation<I, O>>[] = [];

  invoke(processId: number, time: number, input: I): string | undefined {
    if (this.open.has(processId)) return `process ${processId} invoked twice without completing`;
    if (this.operations.length >= historyOperationsMax) return `more than ${historyOperationsMax} operations`;
    const operation: Mutable<Operation<I, O>> = { clientId: processId, input, output: undefined, callTime: time, returnTime: undefined };
    this.open.set(processId, operation);
    this.operations.push(operation);
    return undefined;
  }

  complete(processId: number, time: number, type: 'ok' | 'fail' | 'info', output: O | undefined, keep: boolean): string | undefined {
    const operation = this.open.get(processId);
    if (operation === undefined) return `process ${processId} completed an operation it never invoked`;
    this.open.delete(processId);
    if (type === 'info') return undefined;
    if (type === 'fail' && !keep) {
      this.operations.splice(this.operations.lastIndexOf(operation), 1);
      return undefined;
    }
    operation.output = output;
    operation.returnTime = time;
    return undefined;
  }

  result(): Operation<I, O>[] {
    return this.operations;
  }
}

const etcdLine = /^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.*?)\s*$/;

function parseEtcdValue(text: string): number | null | undefined {
  if (text === 'nil') return null;
  return /^-?\d+$/.test(text) ? Number(text) : undefined;
}

/** The etcd register logs of Porcupine's `test_data/jepsen/` (format in the corpus README). */
export function parseJepsenEtcd(text: string): ParseResult<Operation<EtcdInput, EtcdOutput>[]> {
  const pairing = new JepsenPairing<EtcdInput, EtcdOutput>();
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    if (lines[index]!.trim() === '') continue;
    const match = etcdLine.exec(lines[index]!);
    if (match === null) return failure(index + 1, 'not a Jepsen etcd line');
    const [, processText, type, f, valueText] = match as unknown as [string, string, string, 'read' | 'write' | 'cas', string];
    const processId = Number(processText);
    let error: string | undefined;
    if (type === 'invoke') {
      const input = etcdInput(f, valueText);
      error = input === undefined ? `bad ${f} value ${valueText}` : pairing.invoke(processId, index, input);
    } else {
      const output = type === 'ok' ? etcdOutput(f, valueText) : f === 'cas' ? false : undefined;
      if (type === 'ok' && output === undefined) error = `bad ${f} result ${valueText}`;
      // A failed read only timed out: it still returned, with an unknown result.
      else error = pairing.complete(processId, index, type as 'ok' | 'fail' | 'info', output, f !== 'write');
    }
    if (error !== undefined) return failure(index + 1, error);
  }
  return { ok: true, value: pairing.result() };
}

function etcdInput(f: 'read' | 'write' | 'cas', valueText: string): EtcdInput | undefined {
  switch (f) {
    case 'read':
      return { kind: 'read' };
    case 'write': {
      const value = parseEtcdValue(valueText);
      return typeof value === 'number' ? { kind: 'write', value } : undefined;
    }
    case 'cas': {
      const pair = /^\[(-?\d+)\s+(-?\d+)\]$/.exec(valueText);
      return pair === null ? undefined : { kind: 'cas', from: Number(pair[1]), to: Number(pair[2]) };
    }
    default:
      return undefined;
  }
}

function etcdOutput(f: 'read' | 'write' | 'cas', valueText: string): EtcdOutput | undefined {
  switch (f) {
    case 'read':
      return parseEtcdValue(valueText);
    case 'write':
    case 'cas':
      return true;
    default:
      return undefined;
  }
}

const kvLine = /^\{:process (\d+), :type :(invoke|ok|fail|info), :f :(get|put|append), :key "([^"\\]*)", :value (nil|"([^"\\]*)")\}\s*$/;

/** The key/value logs of Porcupine's `test_data/kv/` (Jepsen EDN, one map per line). */
export function parseJepsenKv(text: string): ParseResult<Operation<KvInput, KvOutput>[]> {
  const pairing = new JepsenPairing<KvInput, KvOutput>();
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    if (lines[index]!.trim() === '') continue;
    const match = kvLine.exec(lines[index]!);
    if (match === null) return failure(index + 1, 'not a Jepsen key/value line');
    const processId = Number(match[1]);
    const type = match[2] as 'invoke' | 'ok' | 'fail' | 'info';
    const f = match[3] as 'get' | 'put' | 'append';
    const key = match[4]!;
    const value = match[6] ?? '';
    let error: string | undefined;
    if (type === 'invoke') {
      error = pairing.invoke(processId, index, f === 'get' ? { kind: 'get', key } : { kind: f, key, value });
    } else {
      error = pairing.complete(processId, index, type, f === 'get' ? value : '', false);
    }
    if (error !== undefined) return failure(index + 1, error);
  }
  return { ok: true, value: pairing.result() };
}
