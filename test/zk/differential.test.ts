// Differential tests: the same raw request sequences sent to a real ZooKeeper 3.8.0
// (standalone, tickTime 200) and to a three-member Flotilla cluster (everything to one
// follower), and the replies compared field by field (zetcd's "xchk" idea,
// docs/zookeeper.md §8).
//
// Before comparing, each run's replies are normalised so that only what a client may rely
// on remains:
//   * zxids in Stats (czxid, mzxid, pzxid) become their ordinal of first appearance in that
//     run ('z0' stays for zxid 0), so "equal" and "different" survive but the numbering
//     (ZooKeeper's epoch<<32|counter, failed writes consuming zxids; Flotilla's Raft index)
//     does not; ctime/mtime likewise become ordinals ('t0' for 0);
//   * ephemeralOwner becomes the letter of the session that owns the node;
//   * the ReplyHeader zxid is dropped; children lists are sorted (ZooKeeper's order is a
//     HashSet's).
// Writes are spaced a few milliseconds apart so that two writes never share a millisecond
// on one server and not on the other (their times would then compare differently).
//
// One scenario runs against each server; each `it` compares one group of steps, so a
// failure names the group and the step, with both normalised values.
//
// Skipped, as intentional differences (see the skip messages): a standalone `check` request
// (ZooKeeper 3.8.0 never answers it; Flotilla answers UNIMPLEMENTED, as ZooKeeper master
// does) and create flags 4–6 (containers and TTL nodes are not implemented yet).
// Differences that come from code outside the front-end are listed in `knownDifferences` and
// compared in `todo` tests, which report them without failing the suite.
//
// ZooKeeper's run is the reference, so it must itself succeed: a group that threw, a request
// without a reply, or a reply the test could not decode in ZooKeeper's run fails that group's
// test (issue 12, item 7), even when Flotilla's run failed the same way — two failures are
// not a match. So does a ZooKeeper server that died during its run.
//
// DIFF_DUMP=<file> writes ZooKeeper's normalised transcript there, one step per line.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import { Err, errName, EventType, OpCode, Xid } from '../../src/zk/constants.js';
import { type JuteReader, JuteWriter } from '../../src/zk/jute.js';
import { encodeConnectRequest, encodeRequest, type Request } from '../../src/zk/records.js';
import type { Acl } from '../../src/zk/types.js';
import { FlotillaZkCluster } from './flotilla-cluster.js';
import { realZooKeeperSkipReason, startRealZooKeeper, type RealZooKeeper } from './real-zookeeper.js';
import { bigintJson, frame, nullPathGetData, openSocket, RawSession, type Reply, type SessionEvent } from './raw-session.js';

const TICK_TIME_MS = 200;
const REQUEST_TIMEOUT_MS = 8_000;
/** Long enough for a server to close a connection it means to close. */
const CLOSE_WAIT_MS = 3_000;
/** Between writes, so no two writes share a millisecond (see the header). */
const WRITE_SPACING_MS = 3;
const SCENARIO_TIMEOUT_MS = 150_000;

const OPEN: readonly Acl[] = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const CREATOR_ALL: readonly Acl[] = [{ perms: 31, id: { scheme: 'auth', id: '' } }];
const utf8 = new TextEncoder();

function text(value: string): Uint8Array {
  return utf8.encode(value);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function digestId(user: string, password: string): string {
  return `${user}:${createHash('sha1').update(`${user}:${password}`).digest('base64')}`;
}

function errText(code: number): string {
  return errName.get(code) ?? String(code);
}

const eventNames = new Map<number, string>(Object.entries(EventType).map(([name, code]) => [code, name]));

// ---- Normalisation --------------------------------------------------------------------------

interface ExactStat {
  czxid: bigint;
  mzxid: bigint;
  ctime: bigint;
  mtime: bigint;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  dataLength: number;
  numChildren: number;
  pzxid: bigint;
}

/** A Stat with its longs exact (ZooKeeper's session ids pass 2^53). */
function readStat(r: JuteReader): ExactStat {
  return {
    czxid: r.long('czxid'),
    mzxid: r.long('mzxid'),
    ctime: r.long('ctime'),
    mtime: r.long('mtime'),
    version: r.int('version'),
    cversion: r.int('cversion'),
    aversion: r.int('aversion'),
    ephemeralOwner: r.long('ephemeralOwner'),
    dataLength: r.int('dataLength'),
    numChildren: r.int('numChildren'),
    pzxid: r.long('pzxid'),
  };
}

class Normaliser {
  private readonly zxids = new Map<bigint, string>();
  private readonly times = new Map<bigint, string>();
  readonly sessions = new Map<bigint, string>();
  /** While set, times read as '-' and take no ordinal (pipelined writes may share a millisecond). */
  ignoreTimes = false;

  zxid(value: bigint): string {
    return ordinal(this.zxids, value, 'z');
  }

  time(value: bigint): string {
    if (this.ignoreTimes) return '-';
    return ordinal(this.times, value, 't');
  }

  owner(value: bigint): string | number {
    if (value === 0n) return 0;
    return this.sessions.get(value) ?? 'a session this run did not open';
  }

  stat(s: ExactStat): Record<string, unknown> {
    return {
      czxid: this.zxid(s.czxid),
      mzxid: this.zxid(s.mzxid),
      ctime: this.time(s.ctime),
      mtime: this.time(s.mtime),
      version: s.version,
      cversion: s.cversion,
      aversion: s.aversion,
      ephemeralOwner: this.owner(s.ephemeralOwner),
      dataLength: s.dataLength,
      numChildren: s.numChildren,
      pzxid: this.zxid(s.pzxid),
    };
  }
}

/** 0 keeps its own name (the initial nodes' zxid and time); others count up from 1. */
function ordinal(table: Map<bigint, string>, value: bigint, prefix: string): string {
  if (value === 0n) return `${prefix}0`;
  let name = table.get(value);
  if (name === undefined) {
    name = `${prefix}${table.size + 1}`;
    table.set(value, name);
  }
  return name;
}

function readAcls(r: JuteReader): string[] {
  return r.acls().map((acl) => `${acl.perms} ${acl.id.scheme}:${acl.id.id}`);
}

function readData(r: JuteReader): string | null {
  const data = r.buffer();
  return data === null ? null : `"${Buffer.from(data).toString('latin1')}"`;
}

// ---- One run of the scenario against one server ---------------------------------------------

interface Entry {
  readonly group: string;
  readonly label: string;
  readonly value: unknown;
}

class Run {
  readonly entries: Entry[] = [];
  readonly norm = new Normaliser();
  private readonly open: RawSession[] = [];
  group = '';

  constructor(
    readonly name: string,
    readonly hostPort: string,
  ) {}

  record(label: string, value: unknown): void {
    this.entries.push({ group: this.group, label, value });
  }

  /** A new session named `letter` (its id becomes that letter in ephemeralOwner). */
  async connect(letter: string, options: { readOnlyByte?: boolean } = {}): Promise<RawSession> {
    const session = await RawSession.connect(this.hostPort, { timeoutMs: REQUEST_TIMEOUT_MS, ...options });
    this.norm.sessions.set(session.sessionId, letter);
    this.open.push(session);
    return session;
  }

  /** A handshake that may be refused (kept open for the caller to inspect). */
  async handshake(options: Parameters<typeof RawSession.handshake>[1]): Promise<RawSession> {
    const session = await RawSession.handshake(this.hostPort, options);
    this.open.push(session);
    return session;
  }

  /** Sends `request`, records the normalised reply under `label`, and returns it (undefined: no reply). */
  async call(label: string, session: RawSession, request: Request, options: { sortAcl?: boolean } = {}): Promise<Reply | undefined> {
    let reply: Reply | undefined;
    try {
      reply = await session.request(request);
    } catch (error) {
      this.record(label, { failed: (error as Error).name });
      return undefined;
    }
    const described = this.describe(request, reply);
    if (options.sortAcl === true && Array.isArray(described['acl'])) (described['acl'] as string[]).sort();
    this.record(label, described);
    if (isWrite(request)) await sleep(WRITE_SPACING_MS);
    return reply;
  }

  /** A reply as compared: err by name, the body decoded per request type, any trailing bytes. */
  describe(request: Request, reply: Reply): Record<string, unknown> {
    const out: Record<string, unknown> = { xid: reply.header.xid, err: errText(reply.header.err) };
    const r = reply.body;
    if (reply.header.err === Err.ok) {
      try {
        Object.assign(out, this.body(request, r));
      } catch (error) {
        out['undecodable'] = (error as Error).message;
      }
    }
    if (r.remaining !== 0) out['trailingBytes'] = r.remaining;
    return out;
  }

  private body(request: Request, r: JuteReader): Record<string, unknown> {
    switch (request.type) {
      case 'create':
        return request.opcode === OpCode.create2 ? { path: r.string(), stat: this.norm.stat(readStat(r)) } : { path: r.string() };
      case 'exists':
      case 'setData':
      case 'setACL':
        return { stat: this.norm.stat(readStat(r)) };
      case 'getData':
        return { data: readData(r), stat: this.norm.stat(readStat(r)) };
      case 'getChildren':
        return { children: r.strings().sort() };
      case 'getChildren2':
        return { children: r.strings().sort(), stat: this.norm.stat(readStat(r)) };
      case 'getACL':
        return { acl: readAcls(r), stat: this.norm.stat(readStat(r)) };
      case 'sync':
        return { path: r.string() };
      case 'multi':
        return { results: this.multiResults(r) };
      default:
        return {};
    }
  }

  private multiResults(r: JuteReader): unknown[] {
    const results: unknown[] = [];
    for (let i = 0; i < 1000; i++) {
      const type = r.int();
      const done = r.bool();
      const err = r.int();
      if (done) {
        results.push(`end(${type},${err})`);
        return results;
      }
      switch (type) {
        case OpCode.create:
          results.push({ type, err, path: r.string() });
          break;
        case OpCode.create2:
          results.push({ type, err, path: r.string(), stat: this.norm.stat(readStat(r)) });
          break;
        case OpCode.setData:
          results.push({ type, err, stat: this.norm.stat(readStat(r)) });
          break;
        case OpCode.error:
          results.push({ type, err: errText(err), errorResponse: errText(r.int()) });
          break;
        default:
          results.push({ type, err });
      }
    }
    throw new Error('a multi reply without its terminator');
  }

  /** The session's events from `from` on, pings left out, as comparable strings. */
  eventsSince(session: RawSession, from: number): string[] {
    return session.events
      .slice(from)
      .filter((event) => !(event.kind === 'reply' && event.xid === -2))
      .map(describeEvent);
  }

  /** Whether the server closes `session` within CLOSE_WAIT_MS. */
  async recordClose(label: string, session: RawSession): Promise<void> {
    this.record(label, { closed: await session.closesWithin(CLOSE_WAIT_MS) });
  }

  /** Per named session: whether its replies' zxids never decreased (pings included). */
  monotonicZxids(): [string, boolean][] {
    const out: [string, boolean][] = [];
    for (const session of this.open) {
      const letter = this.norm.sessions.get(session.sessionId);
      if (letter === undefined) continue;
      let last = -1n;
      let monotonic = true;
      for (const event of session.events) {
        if (event.kind !== 'reply' || event.xid === Xid.auth) continue;
        if (event.zxid < last) monotonic = false;
        if (event.zxid > last) last = event.zxid;
      }
      out.push([letter, monotonic]);
    }
    return out;
  }

  closeAll(): void {
    for (const session of this.open) session.close();
  }
}

function describeEvent(event: SessionEvent): string {
  switch (event.kind) {
    case 'reply':
      return `reply xid=${event.xid} ${errText(event.err)}`;
    case 'notification':
      return `event ${eventNames.get(event.type) ?? event.type} state=${event.state} ${event.path}`;
    case 'malformed':
      return `malformed frame`;
    case 'closed':
      return 'closed';
  }
}

function isWrite(request: Request): boolean {
  return ['create', 'delete', 'setData', 'setACL', 'multi', 'closeSession'].includes(request.type);
}

function create(path: string, data: string | null, flags = 0, acl: readonly Acl[] = OPEN, opcode: number = OpCode.create): Extract<Request, { type: 'create' }> {
  return { type: 'create', opcode, path, data: data === null ? null : text(data), acl, flags };
}

function getData(path: string, watch = false): Request {
  return { type: 'getData', path, watch };
}

function exists(path: string, watch = false): Request {
  return { type: 'exists', path, watch };
}

function setData(path: string, data: string | null, version: number): Extract<Request, { type: 'setData' }> {
  return { type: 'setData', path, data: data === null ? null : text(data), version };
}

function del(path: string, version = -1): Extract<Request, { type: 'delete' }> {
  return { type: 'delete', path, version };
}

// ---- The scenario, in groups ------------------------------------------------------------------

interface Sessions {
  a: RawSession;
  b: RawSession;
}

type Group = (run: Run, s: Sessions) => Promise<void>;

const groups: [string, Group][] = [
  [
    'the initial tree: / and /zookeeper',
    async (run, { a }) => {
      // Not /zookeeper/config: a standalone ZooKeeper has no ensemble and leaves it empty,
      // while a Flotilla cluster always is one; test/zk/config-differential.test.ts compares
      // it with a ZooKeeper running as an ensemble.
      for (const path of ['/', '', '/zookeeper', '/zookeeper/quota']) {
        await run.call(`exists ${JSON.stringify(path)}`, a, exists(path));
        await run.call(`getData ${JSON.stringify(path)}`, a, getData(path));
        await run.call(`getChildren ${JSON.stringify(path)}`, a, { type: 'getChildren', path, watch: false });
        await run.call(`getChildren2 ${JSON.stringify(path)}`, a, { type: 'getChildren2', path, watch: false });
        await run.call(`getACL ${JSON.stringify(path)}`, a, { type: 'getACL', path });
      }
      // Reads do not validate paths: these are just missing nodes (§2.2).
      for (const path of ['zookeeper', '/zookeeper/', '/a//b']) await run.call(`exists ${JSON.stringify(path)}`, a, exists(path));
    },
  ],

  [
    'create: flags 0-3, sequential suffixes, create2',
    async (run, { a }) => {
      await run.call('persistent', a, create('/c', 'x', 0));
      await run.call('ephemeral', a, create('/c/e', 'e', 1));
      await run.call('persistent sequential', a, create('/c/s-', 's', 2));
      await run.call('ephemeral sequential', a, create('/c/es-', null, 3));
      await run.call('sequential with a trailing slash', a, create('/c/', '', 2));
      for (const path of ['/c', '/c/e', '/c/s-0000000001', '/c/es-0000000002', '/c/0000000003']) await run.call(`exists ${path}`, a, exists(path));
      await run.call('create2 persistent', a, create('/c/c2', 'y', 0, OPEN, OpCode.create2));
      await run.call('create2 ephemeral sequential', a, create('/c/c2e-', 'z', 3, OPEN, OpCode.create2));
      await run.call('getChildren2 /c', a, { type: 'getChildren2', path: '/c', watch: false });
      await run.call('getData /c/e', a, getData('/c/e'));
    },
  ],

  [
    'create errors: flags, paths, NODEEXISTS, NONODE, NOCHILDRENFOREPHEMERALS, precedence',
    async (run, { a }) => {
      for (const flags of [9, 7, -1]) await run.call(`flags ${flags}`, a, create('/cf', 'x', flags));
      for (const path of ['a', '/a/', '/a//b', '/a/.', '/a/..', '/', '', '/a\u0001b', '/\ud83d\ude00']) await run.call(`path ${JSON.stringify(path)}`, a, create(path, 'x'));
      await run.call('sequential "/" (→ "/0000…")', a, create('/', 'x', 2));
      await run.call('NODEEXISTS', a, create('/c', 'again'));
      await run.call('parent missing', a, create('/nope/x', 'x'));
      await run.call('child of an ephemeral', a, create('/c/e/x', 'x'));
      await run.call('sequential child of an ephemeral', a, create('/c/e/s-', 'x', 2));
      await run.call('bad path before an empty ACL', a, create('bad', 'x', 0, []));
      await run.call('empty ACL before a missing parent', a, create('/nope/x', 'x', 0, []));
      await run.call('missing parent before NODEEXISTS check of an ephemeral parent', a, create('/c/e/x/y', 'x'));
      await run.call('bad flags before a bad path', a, create('bad', 'x', 9));
      // Where the parent exists, a malformed path is BADARGUMENTS; ZooKeeper checks the full
      // path only after the parent's existence and permission (validatePathForCreate checks
      // just the last '/' and NUL first).
      await run.call('create /ro (READ only)', a, create('/ro', 'x', 0, [{ perms: 1, id: { scheme: 'world', id: 'anyone' } }]));
      for (const path of ['/c/', '/c/.', '/c/..', '//b', '/c/e/.', '/c/a\u0000b']) await run.call(`path ${JSON.stringify(path)} (parent exists)`, a, create(path, 'x'));
      await run.call('create under a parent without CREATE', a, create('/ro/x', 'x'));
      await run.call('path "/c//b" (parent "/c/" missing)', a, create('/c//b', 'x'));
      await run.call('path "/a/." with an empty ACL', a, create('/a/.', 'x', 0, []));
      await run.call('path "/ro/." under a parent without CREATE', a, create('/ro/.', 'x'));
      await run.call('exists /nope', a, exists('/nope'));
    },
  ],

  [
    'getData / setData: null vs empty, versions, the Stat after',
    async (run, { a }) => {
      await run.call('create null data', a, create('/n', null));
      await run.call('create empty data', a, create('/m', ''));
      await run.call('create /d', a, create('/d', 'hello'));
      await run.call('getData null', a, getData('/n'));
      await run.call('getData empty', a, getData('/m'));
      await run.call('setData right version', a, setData('/d', 'v1', 0));
      await run.call('setData wrong version', a, setData('/d', 'v2', 0));
      await run.call('setData any version', a, setData('/d', 'v2', -1));
      await run.call('getData after', a, getData('/d'));
      await run.call('setData to null', a, setData('/d', null, 2));
      await run.call('getData null again', a, getData('/d'));
      await run.call('setData missing', a, setData('/nope', 'x', -1));
      await run.call('setData bad path', a, setData('bad', 'x', -1));
      await run.call('setData /zookeeper/config (read-only ACL)', a, setData('/zookeeper/config', 'x', -1));
      await run.call('exists present', a, exists('/d'));
      await run.call('exists missing', a, exists('/d/nope'));
      await run.call('getData missing', a, getData('/d/nope'));
    },
  ],

  [
    'delete: NOTEMPTY, BADVERSION, system paths, NONODE',
    async (run, { a }) => {
      await run.call('create /del', a, create('/del', 'x'));
      await run.call('create /del/x', a, create('/del/x', 'x'));
      await run.call('NOTEMPTY', a, del('/del'));
      await run.call('BADVERSION before NOTEMPTY', a, del('/del', 5));
      await run.call('BADVERSION', a, del('/del/x', 3));
      for (const path of ['/', '/zookeeper', '/zookeeper/quota', '/zookeeper/config', 'bad', '/del/', '']) await run.call(`delete ${JSON.stringify(path)}`, a, del(path));
      for (const path of ['/del/.', '/del//x', '/del/x/']) await run.call(`delete ${JSON.stringify(path)} (parent exists)`, a, del(path));
      await run.call('delete under a parent without DELETE', a, del('/ro/nope'));
      await run.call('missing', a, del('/nope'));
      await run.call('missing under a missing parent', a, del('/nope/x'));
      await run.call('right version', a, del('/del/x', 0));
      await run.call('parent after its child went', a, { type: 'getChildren2', path: '/del', watch: false });
      await run.call('now empty', a, del('/del'));
      await run.call('gone', a, exists('/del'));
    },
  ],

  [
    'cversion and sequence numbers',
    async (run, { a }) => {
      await run.call('create /cv', a, create('/cv', null));
      for (let i = 0; i < 3; i++) await run.call(`sequential ${i}`, a, create('/cv/s-', null, 2));
      await run.call('delete s-0000000001', a, del('/cv/s-0000000001'));
      await run.call('cversion after 3 creates + 1 delete', a, { type: 'getChildren2', path: '/cv', watch: false });
      await run.call('next suffix', a, create('/cv/s-', null, 2));
      await run.call('a rolled-back multi', a, { type: 'multi', ops: [create('/cv/s-', null, 2), del('/cv/nope')] });
      await run.call('suffix after the rolled-back multi', a, create('/cv/s-', null, 2));
      await run.call('cversion now', a, { type: 'getChildren2', path: '/cv', watch: false });
    },
  ],

  [
    'multi: success, failure, empty',
    async (run, { a }) => {
      await run.call('success', a, {
        type: 'multi',
        ops: [create('/mu', 'a'), create('/mu/c', 'c'), setData('/mu', 'b', 0), { type: 'check', path: '/mu', version: 1 }, del('/mu/c', 0)],
      });
      await run.call('after success /mu', a, getData('/mu'));
      await run.call('after success /mu/c', a, exists('/mu/c'));
      await run.call('failure', a, { type: 'multi', ops: [create('/mf', 'x'), setData('/d', 'x', 99), del('/n')] });
      await run.call('nothing applied: /mf', a, exists('/mf'));
      await run.call('nothing applied: /n', a, exists('/n'));
      await run.call('nothing applied: /d', a, getData('/d'));
      await run.call('empty', a, { type: 'multi', ops: [] });
      await run.call('create2 inside multi', a, { type: 'multi', ops: [create('/mu2', 'x', 0, OPEN, OpCode.create2), setData('/mu2', 'y', -1)] });
      await run.call('check fails', a, { type: 'multi', ops: [{ type: 'check', path: '/mu', version: 7 }, del('/mu')] });
      await run.call('check of a missing node', a, { type: 'multi', ops: [{ type: 'check', path: '/nope', version: -1 }] });
      await run.call('later op fails with NODEEXISTS', a, { type: 'multi', ops: [create('/mu3', 'x'), create('/mu3', 'x')] });
      await run.call('bad path inside multi', a, { type: 'multi', ops: [create('bad', 'x')] });
      await run.call('check with a bad path inside multi', a, { type: 'multi', ops: [{ type: 'check', path: '/mu/', version: -1 }] });
    },
  ],

  [
    'ACLs: getACL, setACL, INVALIDACL, ip',
    async (run, { a, b }) => {
      await run.call('create /acl', a, create('/acl', 'x'));
      await run.call('getACL', a, { type: 'getACL', path: '/acl' });
      await run.call('setACL wrong version', a, { type: 'setACL', path: '/acl', acl: OPEN, version: 3 });
      await run.call('setACL read+write', a, { type: 'setACL', path: '/acl', acl: [{ perms: 3, id: { scheme: 'world', id: 'anyone' } }], version: 0 });
      await run.call('getACL after', a, { type: 'getACL', path: '/acl' });
      await run.call('setACL without ADMIN', a, { type: 'setACL', path: '/acl', acl: OPEN, version: 1 });
      await run.call('setACL missing', a, { type: 'setACL', path: '/nope', acl: OPEN, version: -1 });
      await run.call('setACL empty list', a, { type: 'setACL', path: '/d', acl: [], version: -1 });
      await run.call('setACL bad path', a, { type: 'setACL', path: '/d/', acl: OPEN, version: -1 });
      await run.call('getACL missing', a, { type: 'getACL', path: '/nope' });
      await run.call('INVALIDACL: empty list', a, create('/bad1', 'x', 0, []));
      await run.call('INVALIDACL: unknown scheme', a, create('/bad2', 'x', 0, [{ perms: 31, id: { scheme: 'foo', id: 'bar' } }]));
      await run.call('INVALIDACL: auth without credentials', b, create('/bad3', 'x', 0, CREATOR_ALL));
      await run.call('INVALIDACL: digest without a colon', a, create('/bad4', 'x', 0, [{ perms: 31, id: { scheme: 'digest', id: 'nocolon' } }]));
      await run.call('INVALIDACL: ip not an address', a, create('/bad5', 'x', 0, [{ perms: 31, id: { scheme: 'ip', id: '300.1.1.1' } }]));
      await run.call('INVALIDACL: world with another id', a, create('/bad6', 'x', 0, [{ perms: 31, id: { scheme: 'world', id: 'nobody' } }]));
      await run.call('ip 127.0.0.1', a, create('/ip-ok', 'x', 0, [{ perms: 31, id: { scheme: 'ip', id: '127.0.0.1' } }]));
      await run.call('ip 127.0.0.0/8', a, create('/ip-net', 'x', 0, [{ perms: 31, id: { scheme: 'ip', id: '127.0.0.0/8' } }]));
      await run.call('ip 10.0.0.0/8', a, create('/ip-no', 'x', 0, [{ perms: 31, id: { scheme: 'ip', id: '10.0.0.0/8' } }]));
      await run.call('getData ip 127.0.0.1', a, getData('/ip-ok'));
      await run.call('getData ip 127.0.0.0/8', a, getData('/ip-net'));
      await run.call('getData ip 10.0.0.0/8', a, getData('/ip-no'));
      await run.call('getChildren ip 10.0.0.0/8', a, { type: 'getChildren', path: '/ip-no', watch: false });
      await run.call('exists ip 10.0.0.0/8 (3.8.0 checks no READ)', a, exists('/ip-no'));
      await run.call('setData ip 10.0.0.0/8', a, setData('/ip-no', 'y', -1));
      await run.call('getACL ip 10.0.0.0/8', a, { type: 'getACL', path: '/ip-no' });
      await run.call('create under ip 10.0.0.0/8', a, create('/ip-no/c', 'x'));
      await run.call('delete ip 10.0.0.0/8 (DELETE is on the parent)', a, del('/ip-no'));
    },
  ],

  [
    'digest auth and CREATOR_ALL_ACL',
    async (run, { a, b }) => {
      await run.call('auth bob:secret', a, { type: 'auth', authType: 0, scheme: 'digest', auth: text('bob:secret') });
      await run.call('create with CREATOR_ALL_ACL', a, create('/auth', 'x', 0, CREATOR_ALL));
      await run.call('getACL by the creator', a, { type: 'getACL', path: '/auth' });
      await run.call('getData by the creator', a, getData('/auth'));
      await run.call('getData by another session', b, getData('/auth'));
      await run.call('getACL by another session', b, { type: 'getACL', path: '/auth' });
      await run.call('setData by another session', b, setData('/auth', 'y', -1));
      await run.call('exists by another session', b, exists('/auth'));
      await run.call(
        'create masked',
        a,
        create('/mask', 'x', 0, [
          { perms: 1, id: { scheme: 'world', id: 'anyone' } },
          { perms: 31, id: { scheme: 'digest', id: digestId('bob', 'secret') } },
        ]),
      );
      await run.call('getACL without ADMIN masks digest ids', b, { type: 'getACL', path: '/mask' });
      await run.call('auth alice:pw on B', b, { type: 'auth', authType: 0, scheme: 'digest', auth: text('alice:pw') });
      await run.call('getData /auth as alice', b, getData('/auth'));
      await run.call('auth with credentials: auth ACL of two users', b, { type: 'auth', authType: 0, scheme: 'digest', auth: text('carol:pw') });
      await run.call('create with CREATOR_ALL_ACL as alice+carol', b, create('/auth2', 'x', 0, CREATOR_ALL));
      // An 'auth' entry expands to the connection's ids in the order ZooKeeper keeps them: a
      // ConcurrentHashMap-backed set (ServerCnxn.authInfo), so the order is unspecified.
      await run.call('getACL of alice+carol', b, { type: 'getACL', path: '/auth2' }, { sortAcl: true });
      const c = await run.connect('C');
      await run.call('auth with an unknown scheme', c, { type: 'auth', authType: 0, scheme: 'foo', auth: text('x') });
      await run.recordClose('closed after AUTHFAILED', c);
    },
  ],

  [
    'malformed requests: null path, short body, unknown opcode',
    async (run) => {
      const c = await run.connect('C');
      let reply: Reply | undefined;
      try {
        reply = await c.requestBody(1, nullPathGetData(1));
        run.record('getData with a null path', { err: errText(reply.header.err), trailingBytes: reply.body.remaining });
      } catch (error) {
        run.record('getData with a null path', { failed: (error as Error).name });
      }
      await run.call('the connection still works after MARSHALLINGERROR', c, exists('/'));
      try {
        reply = await c.requestBody(5, new JuteWriter().int(5).int(OpCode.getData).finish());
        run.record('getData with no body', { err: errText(reply.header.err) });
      } catch (error) {
        run.record('getData with no body', { failed: (error as Error).name });
      }
      // The server does not validate xids: 0, negative and repeated ones are echoed (§1.4).
      for (const xid of [0, -5, 7, 7]) {
        try {
          reply = await c.requestBody(xid, encodeRequest(xid, exists('/c')));
          run.record(`exists with xid ${xid}`, run.describe(exists('/c'), reply));
        } catch (error) {
          run.record(`exists with xid ${xid}`, { failed: (error as Error).name });
        }
      }
      try {
        reply = await c.requestBody(6, new JuteWriter().int(6).int(999).finish());
        run.record('opcode 999', { err: errText(reply.header.err), trailingBytes: reply.body.remaining });
      } catch (error) {
        run.record('opcode 999', { failed: (error as Error).name });
      }
      await run.recordClose('closed after UNIMPLEMENTED', c);
      const short = await run.connect('C');
      short.sendRaw(frame(new Uint8Array([0, 0, 0, 9])));
      await run.recordClose('a request frame shorter than its header', short);
    },
  ],

  [
    'watches: ordering, NodeCreated, NodeChildrenChanged, one NodeDeleted, one-shot',
    async (run, { a, b }) => {
      await run.call('create /x', a, create('/x', 'one'));
      let mark = a.events.length;
      await run.call('A getData(/x, watch)', a, getData('/x', true));
      await run.call('B setData /x', b, setData('/x', 'two', -1));
      await run.call("A's next getData", a, getData('/x'));
      run.record('A: the notification precedes the next reply', run.eventsSince(a, mark));

      mark = a.events.length;
      await run.call('A exists(/wx, watch) on a missing node', a, exists('/wx', true));
      await run.call('B create /wx', b, create('/wx', 'w'));
      await run.call('A exists /wx', a, exists('/wx'));
      run.record('A: NodeCreated', run.eventsSince(a, mark));

      mark = a.events.length;
      await run.call('A getChildren(/wx, watch)', a, { type: 'getChildren', path: '/wx', watch: true });
      await run.call('B create /wx/c', b, create('/wx/c', 'c'));
      await run.call('A sync', a, { type: 'sync', path: '/wx' });
      run.record('A: NodeChildrenChanged', run.eventsSince(a, mark));

      mark = a.events.length;
      await run.call('A getData(/wx/c, watch)', a, getData('/wx/c', true));
      await run.call('A exists(/wx/c, watch)', a, exists('/wx/c', true));
      await run.call('B delete /wx/c', b, del('/wx/c'));
      await run.call('A exists /wx/c', a, exists('/wx/c'));
      run.record('A: one NodeDeleted for two watches', run.eventsSince(a, mark));

      mark = a.events.length;
      await run.call('A getChildren2(/wx, watch)', a, { type: 'getChildren2', path: '/wx', watch: true });
      await run.call('A exists(/wx, watch)', a, exists('/wx', true));
      await run.call('B delete /wx', b, del('/wx'));
      await run.call('A exists /wx after delete', a, exists('/wx'));
      run.record('A: a child watch and a data watch on a deleted node', run.eventsSince(a, mark));

      mark = a.events.length;
      await run.call('B setData /x again (A watches nothing now)', b, setData('/x', 'three', -1));
      await run.call('A exists /x', a, exists('/x'));
      run.record('A: one-shot, nothing more', run.eventsSince(a, mark));

      mark = a.events.length;
      await run.call('A exists(/x, watch) on a present node', a, exists('/x', true));
      await run.call('B setData /x', b, setData('/x', 'four', -1));
      await run.call('B setACL /x (fires nothing)', b, { type: 'setACL', path: '/x', acl: OPEN, version: -1 });
      await run.call('A getData /x', a, getData('/x'));
      run.record('A: exists watch fires NodeDataChanged', run.eventsSince(a, mark));

      mark = a.events.length;
      await run.call('A getChildren(/x, watch), getData(/x, watch)', a, { type: 'getChildren', path: '/x', watch: true });
      await run.call('A getData(/x, watch)', a, getData('/x', true));
      await run.call('B multi: create /x/k, setData /x', b, { type: 'multi', ops: [create('/x/k', null), setData('/x', 'five', -1)] });
      await run.call('A exists /x/k', a, exists('/x/k'));
      run.record('A: a multi fires each watch once', run.eventsSince(a, mark));
    },
  ],

  [
    'setWatches on reconnect',
    async (run, { b }) => {
      const d = await run.connect('D');
      await run.call('D create /sw', d, create('/sw', 'a'));
      await run.call('D create /sw2', d, create('/sw2', 'a'));
      await run.call('D getData /sw2', d, getData('/sw2'));
      const lastZxidSeen = d.lastZxid;
      d.close();
      await d.closed;
      await run.call('B setData /sw', b, setData('/sw', 'b', -1));
      await run.call('B create /sw-new', b, create('/sw-new', null));
      await run.call('B create /sw/c', b, create('/sw/c', null));
      const resumed = await run.handshake({ timeoutMs: REQUEST_TIMEOUT_MS, sessionId: d.sessionId, passwd: d.passwd, lastZxidSeen });
      run.record('resumed: the same session', { sameSession: resumed.sessionId === d.sessionId, timeOut: resumed.connectResponse?.timeOut, bytes: resumed.connectResponseBytes });
      const mark = resumed.events.length;
      await run.call('setWatches', resumed, {
        type: 'setWatches',
        relativeZxid: lastZxidSeen,
        dataWatches: ['/sw', '/sw2', '/sw-gone'],
        existWatches: ['/sw-new', '/sw-never'],
        childWatches: ['/sw', '/sw2'],
      });
      run.record('D: changed watches fire before the setWatches reply', run.eventsSince(resumed, mark));
      const mark2 = resumed.events.length;
      await run.call('B setData /sw2', b, setData('/sw2', 'b', -1));
      await run.call('B create /sw-never', b, create('/sw-never', null));
      await run.call('B create /sw2/c', b, create('/sw2/c', null));
      await run.call('D exists /', resumed, exists('/'));
      run.record('D: the re-armed watches fire later', run.eventsSince(resumed, mark2));
      await run.call('D closeSession', resumed, { type: 'closeSession' });
      await run.recordClose('D closed', resumed);
    },
  ],

  [
    'pipelining: requests before the ConnectResponse, an async burst with a failure',
    async (run, { a }) => {
      const early = [
        encodeRequest(Xid.auth, { type: 'auth', authType: 0, scheme: 'digest', auth: text('bob:secret') }),
        encodeRequest(1, exists('/c')),
        encodeRequest(2, create('/p', 'early')),
        encodeRequest(3, getData('/p')),
      ];
      const p = await run.handshake({ timeoutMs: REQUEST_TIMEOUT_MS, pipelined: early });
      run.norm.sessions.set(p.sessionId, 'P');
      await p.waitEvent((event) => event.kind === 'reply' && event.xid === 3, 0, REQUEST_TIMEOUT_MS).catch(() => undefined);
      run.record('connect + auth + exists + create + getData in one write', { response: p.connectResponseBytes, events: run.eventsSince(p, 0) });
      const mark = a.events.length;
      const burst = [create('/burst', null), create('/burst/a', null), create('/burst/a', null), setData('/burst', 'x', 0), del('/burst/a', 0), getData('/burst')];
      const settled = await Promise.all(
        burst.map((request) =>
          a.request(request).then(
            (reply) => ({ request, reply }),
            (error: Error) => ({ request, failed: error.name }),
          ),
        ),
      );
      run.norm.ignoreTimes = true;
      const replies = settled.map((s) => ('reply' in s ? run.describe(s.request, s.reply) : { failed: s.failed }));
      run.norm.ignoreTimes = false;
      await sleep(WRITE_SPACING_MS);
      run.record('a burst of six requests, the third failing', { replies, events: run.eventsSince(a, mark) });
      p.close();
    },
  ],

  [
    'sizes: data near and over jute.maxbuffer',
    async (run, { a }) => {
      // A create frame of 51 bytes + data: 1,048,000 bytes of data stay under 0xfffff, and so
      // does the getData reply (16 + 4 + data + 68).
      const big = 'x'.repeat(1_048_000);
      await run.call('create with 1,048,000 bytes of data', a, create('/big', big));
      const reply = await a.request(getData('/big')).catch(() => undefined);
      run.record('getData of it', reply === undefined ? { failed: true } : { err: errText(reply.header.err), dataLength: reply.body.buffer()?.length });
      await run.call('delete it', a, del('/big'));
      const f = await run.connect('F');
      const over = f.request(create('/over', 'y'.repeat(1 << 20))).then(
        () => 'a reply',
        (error: Error) => error.name,
      );
      await run.recordClose('a create frame over 0xfffff: closed', f);
      run.record('… without a reply', { outcome: await over });
    },
  ],

  [
    'sync and ping',
    async (run, { a }) => {
      await run.call('sync /c', a, { type: 'sync', path: '/c' });
      await run.call('sync of a missing node', a, { type: 'sync', path: '/nope' });
      await run.call('ping', a, { type: 'ping' });
    },
  ],

  [
    'sessions: closeSession, handshake shapes, resume refused, lastZxidSeen ahead',
    async (run, { a }) => {
      const without = await run.handshake({ timeoutMs: REQUEST_TIMEOUT_MS, readOnlyByte: false });
      run.record('no readOnly byte', {
        bytes: without.connectResponseBytes,
        timeOut: without.connectResponse?.timeOut,
        readOnly: without.connectResponse?.readOnly,
        passwdBytes: without.passwd.length,
      });
      const withByte = await run.handshake({ timeoutMs: REQUEST_TIMEOUT_MS, readOnlyByte: true });
      run.record('readOnly byte', {
        bytes: withByte.connectResponseBytes,
        timeOut: withByte.connectResponse?.timeOut,
        readOnly: withByte.connectResponse?.readOnly,
        passwdBytes: withByte.passwd.length,
      });
      for (const [label, asked] of [
        ['timeout below 2 ticks', 100],
        ['timeout above 20 ticks', 100_000],
        ['timeout in range', 1_000],
      ] as const) {
        const clamped = await run.handshake({ timeoutMs: REQUEST_TIMEOUT_MS, sessionTimeoutMs: asked });
        run.record(label, { timeOut: clamped.connectResponse?.timeOut });
        clamped.close();
      }
      withByte.close();

      const e = await run.connect('E');
      await run.call('E creates an ephemeral', e, create('/close-e', null, 1));
      const mark = e.events.length;
      await run.call('E closeSession', e, { type: 'closeSession' });
      await run.recordClose('E closed by the server', e);
      run.record('E: the reply, then the close', run.eventsSince(e, mark));
      await run.call("E's ephemeral is gone", a, exists('/close-e'));

      without.close();
      await without.closed;
      const wrong = await run.handshake({ timeoutMs: REQUEST_TIMEOUT_MS, sessionId: without.sessionId, passwd: new Uint8Array(16).fill(7) });
      const refused = wrong.connectResponse;
      run.record('resume with a wrong password', {
        timeOut: refused?.timeOut,
        sessionId: refused?.sessionId === 0n ? 0 : 'non-zero',
        passwd: refused === undefined ? undefined : Buffer.from(refused.passwd).toString('hex'),
        bytes: wrong.connectResponseBytes,
        closed: await wrong.closesWithin(CLOSE_WAIT_MS),
      });
      const right = await run.handshake({ timeoutMs: REQUEST_TIMEOUT_MS, sessionId: without.sessionId, passwd: without.passwd, readOnlyByte: false });
      run.record('resume with the right password', { sameSession: right.sessionId === without.sessionId, timeOut: right.connectResponse?.timeOut, bytes: right.connectResponseBytes });
      await run.call('the resumed session closes', right, { type: 'closeSession' });
      const expired = await run.handshake({ timeoutMs: REQUEST_TIMEOUT_MS, sessionId: without.sessionId, passwd: without.passwd });
      run.record('resume a closed session', { timeOut: expired.connectResponse?.timeOut, closed: await expired.closesWithin(CLOSE_WAIT_MS) });
      const trailing = await openSocket(run.hostPort, REQUEST_TIMEOUT_MS);
      const trailingReply = await rawExchange(
        trailing,
        frame(new Uint8Array([...encodeConnectRequest({ protocolVersion: 0, lastZxidSeen: 0n, timeOut: 4000, sessionId: 0n, passwd: new Uint8Array(16), readOnly: false }), 7])),
      );
      run.record('a ConnectRequest with a byte after readOnly', trailingReply);
      const ahead = await run.handshake({ timeoutMs: REQUEST_TIMEOUT_MS, lastZxidSeen: 1n << 60n });
      run.record('lastZxidSeen ahead of the server', { response: ahead.connectResponse === undefined ? 'none' : 'sent', closed: await ahead.closesWithin(CLOSE_WAIT_MS) });
    },
  ],
];

/** Writes `bytes`, then reports how many bytes came back and whether the server closed within CLOSE_WAIT_MS. */
async function rawExchange(socket: Socket, bytes: Uint8Array): Promise<{ replyBytes: number; closed: boolean }> {
  let replyBytes = 0;
  socket.on('data', (chunk: Buffer) => (replyBytes += chunk.length));
  const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)));
  socket.write(bytes);
  const result = await Promise.race([closed, sleep(CLOSE_WAIT_MS).then(() => false)]);
  socket.destroy();
  return { replyBytes, closed: result };
}

/** The label under which a group that threw records its error. */
const GROUP_THREW = 'the group threw';

async function runScenario(name: string, hostPort: string): Promise<Entry[]> {
  const run = new Run(name, hostPort);
  try {
    run.group = 'connect';
    const a = await run.connect('A');
    const b = await run.connect('B');
    run.record('A', { bytes: a.connectResponseBytes, protocolVersion: a.connectResponse?.protocolVersion, timeOut: a.connectResponse?.timeOut, readOnly: a.connectResponse?.readOnly });
    for (const [groupName, group] of groups) {
      run.group = groupName;
      try {
        await group(run, { a, b });
      } catch (error) {
        run.record(GROUP_THREW, { error: (error as Error).message });
      }
    }
    // The ReplyHeader zxid is not compared, but on Flotilla it must never decrease on a
    // connection (§2.5). (ZooKeeper 3.8.0 itself answers UNIMPLEMENTED with zxid -1.)
    run.group = 'reply zxids never decrease on a connection';
    for (const [letter, monotonic] of run.monotonicZxids()) run.record(letter, { monotonic });
    return run.entries;
  } finally {
    run.closeAll();
  }
}

// ---- Known differences ------------------------------------------------------------------------

/**
 * Steps where Flotilla differs from ZooKeeper on purpose or not yet: compared in `todo` tests,
 * reported without failing the suite; they pass (telling us to remove them here) once fixed.
 * Empty now: the create/delete path-check order and trailing handshake bytes were fixed
 * after this test found them.
 */
const knownDifferences: ReadonlyMap<string, ReadonlyMap<string, string>> = new Map();

// ---- The comparison ---------------------------------------------------------------------------

/** Where a recorded value shows that a step failed rather than behaved: at most this deep. */
const FAILURE_DEPTH_MAX = 8;

/**
 * The first sign of a failed step in a recorded value, at any depth: a request that got no
 * reply ({failed}) or a reply the test could not decode ({undecodable}). Undefined if none.
 */
function failureIn(value: unknown, depth = 0): string | undefined {
  if (depth > FAILURE_DEPTH_MAX || typeof value !== 'object' || value === null) return undefined;
  if (!Array.isArray(value)) {
    for (const key of ['failed', 'undecodable']) if (key in value) return `${key}: ${show((value as Record<string, unknown>)[key])}`;
  }
  for (const child of Object.values(value)) {
    const found = failureIn(child, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The steps of ZooKeeper's run that failed, one line each: a group that threw, a request
 * without a reply, a reply the test could not decode. Such a run is no reference; were
 * Flotilla's run to fail the same way, comparing the two would call them equal.
 */
function referenceFailures(entries: readonly Entry[]): string[] {
  const failures: string[] = [];
  for (const entry of entries) {
    const failure = entry.label === GROUP_THREW ? show(entry.value) : failureIn(entry.value);
    if (failure !== undefined) failures.push(`${entry.label}: ${failure}`);
  }
  return failures;
}

/**
 * Why Flotilla's steps of `group` do not match ZooKeeper's, one line per difference (empty:
 * they match). All steps but the known differences, or (known: 'only') just those. A group
 * that ZooKeeper's own run did not complete is reported as such, never compared.
 */
function groupDifferences(expected: readonly Entry[], actual: readonly Entry[], group: string, known: 'skip' | 'only' = 'skip'): string[] {
  const want = expected.filter((e) => e.group === group);
  const got = actual.filter((e) => e.group === group);
  if (want.length === 0) return [`ZooKeeper's run recorded nothing for ${group}`];
  const broken = referenceFailures(want);
  if (broken.length > 0) return broken.map((line) => `ZooKeeper's own run failed here, so there is nothing to compare with: ${line}`);
  const knownHere = knownDifferences.get(group) ?? new Map<string, string>();
  const problems: string[] = [];
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    const w = want[i];
    const g = got[i];
    if (w?.label !== g?.label) {
      problems.push(`step ${i}: ZooKeeper did "${w?.label}", Flotilla "${g?.label}"`);
      break;
    }
    if (knownHere.has(w?.label ?? '') !== (known === 'only')) continue;
    if (!isDeepStrictEqual(g?.value, w?.value)) problems.push(`${w?.label}:\n    zookeeper ${show(w?.value)}\n    flotilla  ${show(g?.value)}`);
  }
  return problems;
}

// ---- The tests ------------------------------------------------------------------------------

const skip = realZooKeeperSkipReason();

function show(value: unknown): string {
  return JSON.stringify(value, bigintJson);
}

/** The value recorded under `group`/`label`; fails if there is none. */
function valueIn(entries: readonly Entry[], group: string, label: string): Record<string, unknown> {
  const entry = entries.find((e) => e.group === group && e.label === label);
  assert.ok(entry !== undefined, `no entry ${group} / ${label}`);
  return entry.value as Record<string, unknown>;
}

describe('the differential comparison itself (no server needed)', () => {
  const step = (label: string, value: unknown): Entry => ({ group: 'g', label, value });

  it("a step that failed in ZooKeeper's own run is a difference, even when Flotilla's failed the same way", () => {
    const threw = [step('create /a', { xid: 1, err: 'ok', path: '/a' }), step(GROUP_THREW, { error: 'the connection closed' })];
    assert.match(groupDifferences(threw, threw, 'g').join('\n'), /ZooKeeper's own run failed here.*the group threw: \{"error":"the connection closed"\}/);
    const noReply = [step('exists /a', { failed: 'TimeoutError' })];
    assert.match(groupDifferences(noReply, noReply, 'g').join('\n'), /exists \/a: failed: "TimeoutError"/);
    const inBurst = [step('a burst', { replies: [{ xid: 1, err: 'ok' }, { failed: 'Error' }], events: [] })];
    assert.equal(groupDifferences(inBurst, inBurst, 'g').length, 1);
    const undecodable = [step('getData /a', { xid: 1, err: 'ok', undecodable: 'short buffer' })];
    assert.equal(groupDifferences(undecodable, undecodable, 'g').length, 1);
  });

  it('equal runs match; a different value, a missing step or a group ZooKeeper never ran do not', () => {
    const run = [step('create /a', { xid: 1, err: 'ok', path: '/a' }), step('closed', { closed: true }), step('the outcome', { outcome: 'ConnectionClosed' })];
    assert.deepEqual(groupDifferences(run, run, 'g'), []);
    assert.equal(groupDifferences(run, [run[0]!, step('closed', { closed: false }), run[2]!], 'g').length, 1);
    assert.match(groupDifferences(run, run.slice(0, 1), 'g')[0]!, /ZooKeeper did "closed", Flotilla "undefined"/);
    // Flotilla failing where ZooKeeper answered is an ordinary difference.
    assert.match(groupDifferences(run, [step('create /a', { failed: 'TimeoutError' }), ...run.slice(1)], 'g')[0]!, /^create \/a:/);
    assert.match(groupDifferences(run, run, 'another group')[0]!, /ZooKeeper's run recorded nothing/);
  });
});

if (skip !== undefined) {
  it('differential tests against a real ZooKeeper 3.8', { skip: `${skip} — the differential tests need it` }, () => {});
} else {
  describe('differential: real ZooKeeper 3.8.0 (standalone) vs a 3-member Flotilla cluster', () => {
    let zookeeper: RealZooKeeper | undefined;
    let cluster: FlotillaZkCluster | undefined;
    let expected: Entry[] = [];
    let actual: Entry[] = [];
    /** How ZooKeeper's server had exited by the end of its run (undefined: it was still up). */
    let zookeeperExit: string | undefined;

    before(
      async () => {
        [zookeeper, cluster] = await Promise.all([startRealZooKeeper({ tickTimeMs: TICK_TIME_MS }), FlotillaZkCluster.start({ size: 3, tickTimeMs: TICK_TIME_MS })]);
        // A follower: its writes take the forwarding path, and reads are served from its own state.
        const leader = await cluster.waitForLeader();
        const member = cluster.cluster.ids.find((id) => id !== leader)!;
        [expected, actual] = await Promise.all([runScenario('zookeeper', zookeeper.connectString), runScenario('flotilla', cluster.address(member))]);
        zookeeperExit = zookeeper.exitDescription();
        if (process.env['DIFF_DUMP'] !== undefined) writeFileSync(process.env['DIFF_DUMP'], expected.map((e) => `${e.group} | ${e.label} | ${show(e.value)}`).join('\n'));
      },
      { timeout: SCENARIO_TIMEOUT_MS },
    );

    after(async () => {
      await Promise.all([zookeeper?.stop(), cluster?.stop()]);
    });

    function compareGroup(group: string, known: 'skip' | 'only' = 'skip'): void {
      const problems = groupDifferences(expected, actual, group, known);
      assert.equal(problems.length, 0, `${group}: ${problems.length} difference(s)\n  ${problems.join('\n  ')}`);
    }

    it("ZooKeeper's own run, the reference, completed: its server stayed up and no step failed", () => {
      assert.equal(zookeeperExit, undefined, `the ZooKeeper server died during its run:\n${zookeeper?.describeOutput()}`);
      const failures = referenceFailures(expected);
      assert.equal(failures.length, 0, `ZooKeeper's own run failed, so it is no reference:\n  ${failures.join('\n  ')}`);
    });
    it('connect', () => compareGroup('connect'));
    it('reply zxids never decrease on a Flotilla connection', () => {
      const sessions = actual.filter((e) => e.group === 'reply zxids never decrease on a connection');
      assert.ok(sessions.length >= 5, 'the sessions were checked');
      for (const entry of sessions) assert.deepEqual(entry.value, { monotonic: true }, `session ${entry.label}`);
    });
    for (const [group] of groups) it(group, () => compareGroup(group));
    for (const [group, steps] of knownDifferences) {
      const reasons = [...new Set(steps.values())].join('; ');
      it(`${group}: known differences`, { todo: reasons }, () => compareGroup(group, 'only'));
    }

    it('the reference facts hold (so the comparison compares something)', () => {
      const g = 'cversion and sequence numbers';
      for (const entries of [expected, actual]) {
        const stat = valueIn(entries, g, 'cversion after 3 creates + 1 delete')['stat'] as Record<string, unknown>;
        assert.equal(stat['cversion'], 4);
        assert.equal(valueIn(entries, g, 'next suffix')['path'], '/cv/s-0000000003');
        const s = 'sessions: closeSession, handshake shapes, resume refused, lastZxidSeen ahead';
        assert.equal(valueIn(entries, s, 'no readOnly byte')['bytes'], 36);
        assert.equal(valueIn(entries, s, 'readOnly byte')['bytes'], 37);
        assert.equal(valueIn(entries, s, 'resume with a wrong password')['timeOut'], 0);
        assert.deepEqual(valueIn(entries, s, 'lastZxidSeen ahead of the server'), { response: 'none', closed: true });
        const m = valueIn(entries, 'multi: success, failure, empty', 'failure');
        assert.equal(m['err'], 'ok');
        assert.deepEqual(
          (m['results'] as { err: string }[]).slice(0, 3).map((r) => r.err),
          ['ok', 'badVersion', 'runtimeInconsistency'],
        );
        const w = valueIn(entries, 'watches: ordering, NodeCreated, NodeChildrenChanged, one NodeDeleted, one-shot', 'A: the notification precedes the next reply') as unknown as string[];
        assert.match(w[1] ?? '', /^event nodeDataChanged state=3 \/x$/);
      }
    });

    it('standalone check (opcode 13)', {
      skip: 'intentional difference: ZooKeeper 3.8.0 never answers a standalone check; Flotilla answers UNIMPLEMENTED and closes, as ZooKeeper master does',
    }, () => {});
    it('create flags 4-6 (container, TTL)', { skip: 'intentional difference: containers and TTL nodes are not implemented; Flotilla answers UNIMPLEMENTED' }, () => {});
  });
}
