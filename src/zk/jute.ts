// ZooKeeper's "jute" binary archive (docs/zookeeper.md §1.2, §1.6): big-endian
// integers, length-prefixed buffers and strings where length -1 means null, vectors with a
// count, records as their fields in order with no tags. Both directions live here — the
// server decodes requests and encodes replies, Flotilla's own client does the reverse —
// so one codec is tested both ways.
//
// Every read is bounds-checked: a short or malformed record throws JuteError, which the
// server answers with MARSHALLINGERROR or by closing that connection, never by crashing.

import type { Acl, Data, Stat } from './types.js';

export class JuteError extends Error {
  override name = 'JuteError';
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();

/** The largest vector count accepted before reading its elements (each element is ≥ 1 byte). */
function checkCount(count: number, remaining: number, what: string): void {
  if (count > remaining) throw new JuteError(`${what} claims ${count} elements but only ${remaining} bytes remain`);
}

export class JuteReader {
  private offset = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  private need(n: number, what: string): void {
    if (this.remaining < n) throw new JuteError(`truncated record: ${what} needs ${n} bytes, ${this.remaining} remain`);
  }

  int(what = 'int'): number {
    this.need(4, what);
    const value = this.view.getInt32(this.offset);
    this.offset += 4;
    return value;
  }

  long(what = 'long'): bigint {
    this.need(8, what);
    const value = this.view.getBigInt64(this.offset);
    this.offset += 8;
    return value;
  }

  /** A long that Flotilla keeps as a number (zxids, times): exact below 2^53. */
  longNumber(what = 'long'): number {
    return Number(this.long(what));
  }

  bool(what = 'boolean'): boolean {
    this.need(1, what);
    return this.bytes[this.offset++] !== 0;
  }

  /** A buffer; null when the length is -1. */
  buffer(what = 'buffer'): Data {
    const length = this.int(what);
    if (length === -1) return null;
    if (length < -1) throw new JuteError(`${what} has negative length ${length}`);
    this.need(length, what);
    // A copy, and a plain Uint8Array even when the frame is a Node Buffer (whose slice()
    // is a view that would keep the whole frame alive in the tree).
    const out = Uint8Array.prototype.slice.call(this.bytes, this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** A string; null when the length is -1 (kazoo writes "" that way, §1.2). */
  stringOrNull(what = 'string'): string | null {
    const bytes = this.buffer(what);
    return bytes === null ? null : utf8.decode(bytes);
  }

  /** A string where null is read as "" (ids, watch paths). */
  string(what = 'string'): string {
    return this.stringOrNull(what) ?? '';
  }

  /** A vector of strings; a null vector (-1) is empty. */
  strings(what = 'vector<ustring>'): string[] {
    const count = this.int(what);
    if (count === -1) return [];
    if (count < -1) throw new JuteError(`${what} has negative count ${count}`);
    checkCount(count, this.remaining, what);
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push(this.string(what));
    return out;
  }

  acls(what = 'vector<ACL>'): Acl[] {
    const count = this.int(what);
    if (count === -1) return [];
    if (count < -1) throw new JuteError(`${what} has negative count ${count}`);
    checkCount(count, this.remaining, what);
    const out: Acl[] = [];
    for (let i = 0; i < count; i++) {
      const perms = this.int('ACL.perms');
      const scheme = this.string('ACL.scheme');
      const id = this.string('ACL.id');
      out.push({ perms, id: { scheme, id } });
    }
    return out;
  }

  stat(): Stat {
    return {
      czxid: this.longNumber('Stat.czxid'),
      mzxid: this.longNumber('Stat.mzxid'),
      ctime: this.longNumber('Stat.ctime'),
      mtime: this.longNumber('Stat.mtime'),
      version: this.int('Stat.version'),
      cversion: this.int('Stat.cversion'),
      aversion: this.int('Stat.aversion'),
      ephemeralOwner: this.longNumber('Stat.ephemeralOwner'),
      dataLength: this.int('Stat.dataLength'),
      numChildren: this.int('Stat.numChildren'),
      pzxid: this.longNumber('Stat.pzxid'),
    };
  }
}

/** Grows as needed; `finish()` returns the bytes written. */
export class JuteWriter {
  private bytes = new Uint8Array(256);
  private view = new DataView(this.bytes.buffer);
  private length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  int(value: number): this {
    this.ensure(4);
    this.view.setInt32(this.length, value);
    this.length += 4;
    return this;
  }

  long(value: number | bigint): this {
    this.ensure(8);
    this.view.setBigInt64(this.length, typeof value === 'bigint' ? value : BigInt(value));
    this.length += 8;
    return this;
  }

  bool(value: boolean): this {
    this.ensure(1);
    this.bytes[this.length++] = value ? 1 : 0;
    return this;
  }

  buffer(value: Data): this {
    if (value === null) return this.int(-1);
    this.int(value.length);
    this.ensure(value.length);
    this.bytes.set(value, this.length);
    this.length += value.length;
    return this;
  }

  string(value: string | null): this {
    return this.buffer(value === null ? null : utf8Encoder.encode(value));
  }

  strings(values: readonly string[]): this {
    this.int(values.length);
    for (const value of values) this.string(value);
    return this;
  }

  acls(acl: readonly Acl[]): this {
    this.int(acl.length);
    for (const entry of acl) this.int(entry.perms).string(entry.id.scheme).string(entry.id.id);
    return this;
  }

  stat(stat: Stat): this {
    return this.long(stat.czxid)
      .long(stat.mzxid)
      .long(stat.ctime)
      .long(stat.mtime)
      .int(stat.version)
      .int(stat.cversion)
      .int(stat.aversion)
      .long(stat.ephemeralOwner)
      .int(stat.dataLength)
      .int(stat.numChildren)
      .long(stat.pzxid);
  }

  raw(bytes: Uint8Array): this {
    this.ensure(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
    return this;
  }

  finish(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

export function utf8Bytes(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}
