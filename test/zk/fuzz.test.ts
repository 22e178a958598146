// Codec fuzzing of the ZooKeeper port of a real three-member Flotilla cluster: while a
// well-behaved client (node-zookeeper-client 1.1.3) keeps doing create/getData round trips,
// many other connections send garbage —
//   * random bytes; frames with random bodies before any handshake; truncated frames, then
//     a close; frame lengths at and over ZooKeeper's limit (0xfffff: 1,048,576 must close);
//   * after a valid handshake: random request frames, truncated valid requests, and every
//     opcode 0..120 with random bodies;
//   * half a four-letter word, and one split across two writes.
// Then: every member still runs, the good client never saw an error, a fresh connection
// works on every member, and a znode written before is intact, Stat and all.
//
// The garbage comes from fast-check with a fixed seed (env FUZZ_SEED overrides it), so a
// failure replays exactly: the seed is in the test's name.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import zookeeper from 'node-zookeeper-client';
import { Err, OpCode } from '../../src/zk/constants.js';
import { JuteWriter } from '../../src/zk/jute.js';
import { encodeRequest, type Request } from '../../src/zk/records.js';
import { FlotillaZkCluster } from './flotilla-cluster.js';
import { ConnectionClosedError, frame, openSocket, RawSession } from './raw-session.js';

const SEED = process.env['FUZZ_SEED'] === undefined ? 20_260_512 : Number(process.env['FUZZ_SEED']);
const TICK_TIME_MS = 200;
const CONNECT_TIMEOUT_MS = 10_000;
const REPLY_TIMEOUT_MS = 5_000;
/** How long a garbage connection is given for the server to close it before we do. */
const LINGER_MS = 300;
const CONCURRENCY = 12;
/** ZooKeeper's jute.maxbuffer: the largest frame a server accepts (§1.1). */
const FRAME_BYTES_MAX = 0xfffff;
/** Sentinel xids, far from the small xids random bytes tend to have. */
const SENTINEL_XID_BASE = 0x3f000000;
const OPCODE_MAX = 120;

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `work` over `items`, at most CONCURRENCY at a time. */
async function pool<T>(items: readonly T[], work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        await work(items[index]!, index);
      }
    }),
  );
}

/** Writes `chunks` to a fresh connection, then lets the server close it (or closes it after LINGER_MS). */
async function sendAndLinger(hostPort: string, chunks: readonly Uint8Array[], endAfter = false): Promise<boolean> {
  const socket = await openSocket(hostPort, CONNECT_TIMEOUT_MS);
  const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)));
  for (const chunk of chunks) socket.write(chunk);
  if (endAfter) socket.end();
  const serverClosed = await Promise.race([closed, sleep(LINGER_MS).then(() => false)]);
  socket.destroy();
  return serverClosed;
}

function int32(value: number): Uint8Array {
  const out = Buffer.alloc(4);
  out.writeInt32BE(value, 0);
  return out;
}

/** A request body with header (xid, opcode) and `rest` after it. */
function body(xid: number, opcode: number, rest: Uint8Array): Uint8Array {
  return new JuteWriter().int(xid).int(opcode).raw(rest).finish();
}

// ---- The well-behaved client ----------------------------------------------------------------

class GoodClient {
  readonly errors: string[] = [];
  roundTrips = 0;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  private constructor(readonly client: zookeeper.Client) {}

  /** Connects and starts the loop; `track` gets the client first, so a failed start is still closed. */
  static async start(hostPort: string, track: (good: GoodClient) => void): Promise<GoodClient> {
    const client = zookeeper.createClient(hostPort, { sessionTimeout: 4000, spinDelay: 100 });
    const good = new GoodClient(client);
    track(good);
    const connected = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the good client did not connect to ${hostPort} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      client.once('connected', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    client.connect();
    await connected;
    client.on('state', (state: zookeeper.State) => {
      if (!good.stopped && state !== zookeeper.State.SYNC_CONNECTED) good.errors.push(`state ${String(state)}`);
    });
    await good.call<string>((cb) => client.create('/good', null, zookeeper.ACL.OPEN_ACL_UNSAFE, zookeeper.CreateMode.PERSISTENT, cb));
    good.loop = good.run();
    return good;
  }

  private call<T>(fn: (callback: (error: unknown, value: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${REPLY_TIMEOUT_MS} ms`)), REPLY_TIMEOUT_MS);
      fn((error, value) => {
        clearTimeout(timer);
        if (error) reject(error instanceof Error ? error : new Error(String(error)));
        else resolve(value);
      });
    });
  }

  private async run(): Promise<void> {
    for (let i = 0; !this.stopped && this.errors.length === 0; i++) {
      const path = `/good/n-${i}`;
      const data = `value ${i}`;
      try {
        const created = await this.call<string>((cb) => this.client.create(path, Buffer.from(data), zookeeper.ACL.OPEN_ACL_UNSAFE, zookeeper.CreateMode.PERSISTENT, cb));
        assert.equal(created, path);
        const read = await this.call<Buffer | null | undefined>((cb) => this.client.getData(path, undefined, (error, value) => cb(error, value)));
        assert.equal(read?.toString(), data);
        this.roundTrips++;
      } catch (error) {
        this.errors.push(`${path}: ${(error as Error).message}`);
      }
    }
  }

  /** Ends the loop (each call in it has a deadline) and closes the client, or destroys its socket. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    const manager = this.client.connectionManager;
    const closed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 3_000);
      manager.on('state', (state: number) => {
        if (state === -2) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    this.client.close();
    if (!(await closed)) {
      // A client stuck reconnecting ignores close() (see nzc.test.ts): stop its loop by hand.
      manager.connect = () => {};
      manager.state = -1;
      manager.socket?.destroy();
    }
  }
}

// ---- Fuzzing after a handshake --------------------------------------------------------------

interface AfterHandshake {
  /** Requests that got no reply and did not close the connection (a hang). */
  readonly hangs: string[];
  /** Replies to the truncated valid requests, by xid. */
  readonly truncatedReplies: Map<number, number>;
  sessions: number;
}

/**
 * Sends each body on a session, followed by a sentinel exists('/'): the sentinel's reply
 * proves the connection is still served; a close is fine (a new session takes over); a
 * sentinel without reply and without close is a hang.
 */
async function fuzzSessions(hostPort: string, lanes: readonly (readonly { label: string; body: Uint8Array }[])[], result: AfterHandshake): Promise<void> {
  await pool(lanes, async (lane) => {
    let session: RawSession | undefined;
    let sentinel = SENTINEL_XID_BASE;
    try {
      for (const item of lane) {
        if (session === undefined || !session.isOpen()) {
          session?.close();
          session = await RawSession.connect(hostPort, { timeoutMs: CONNECT_TIMEOUT_MS, sessionTimeoutMs: 400 });
          result.sessions++;
        }
        const from = session.events.length;
        session.sendRaw(frame(item.body));
        const xid = sentinel++;
        try {
          await session.requestBody(xid, encodeRequest(xid, { type: 'exists', path: '/', watch: false }), REPLY_TIMEOUT_MS);
        } catch (error) {
          if (!(error instanceof ConnectionClosedError)) result.hangs.push(`${item.label}: ${(error as Error).message}`);
        }
        for (const event of session.events.slice(from)) {
          if (event.kind === 'reply' && event.xid < SENTINEL_XID_BASE) result.truncatedReplies.set(event.xid, event.err);
        }
      }
    } finally {
      session?.close();
    }
  });
}

/** Valid requests of every kind the server decodes, to be cut short. */
function validRequests(): Request[] {
  const data = new Uint8Array([1, 2, 3]);
  return [
    { type: 'create', opcode: OpCode.create, path: '/fz/a', data, acl: OPEN, flags: 0 },
    { type: 'create', opcode: OpCode.create2, path: '/fz/b-', data: null, acl: OPEN, flags: 3 },
    { type: 'delete', path: '/fz/a', version: 3 },
    { type: 'exists', path: '/fz', watch: true },
    { type: 'getData', path: '/fz', watch: true },
    { type: 'setData', path: '/fz', data, version: -1 },
    { type: 'getACL', path: '/fz' },
    { type: 'setACL', path: '/fz', acl: OPEN, version: -1 },
    { type: 'getChildren', path: '/fz', watch: true },
    { type: 'getChildren2', path: '/fz', watch: false },
    { type: 'sync', path: '/fz' },
    { type: 'check', path: '/fz', version: 0 },
    {
      type: 'multi',
      ops: [
        { type: 'create', opcode: OpCode.create, path: '/fz/m', data, acl: OPEN, flags: 0 },
        { type: 'check', path: '/fz', version: -1 },
        { type: 'delete', path: '/fz/m', version: -1 },
      ],
    },
    { type: 'auth', authType: 0, scheme: 'digest', auth: new TextEncoder().encode('fuzz:fuzz') },
    { type: 'setWatches', relativeZxid: 1n, dataWatches: ['/fz'], existWatches: ['/fz/x'], childWatches: ['/fz'] },
  ];
}

// ---- The test ---------------------------------------------------------------------------------

test(`fuzz: garbage on the ZooKeeper port does not disturb a good client or the tree (seed ${SEED})`, { timeout: 240_000 }, async (t) => {
  const cluster = await FlotillaZkCluster.start({ size: 3, tickTimeMs: TICK_TIME_MS });
  let good: GoodClient | undefined;
  try {
    const leader = await cluster.waitForLeader();
    // The target is a follower, so writes also take the forwarding path.
    const member = cluster.cluster.ids.find((id) => id !== leader)!;
    const target = cluster.address(member);

    const keeper = await RawSession.connect(target, { timeoutMs: CONNECT_TIMEOUT_MS });
    await keeper.request({ type: 'create', opcode: OpCode.create, path: '/kept', data: new TextEncoder().encode('precious'), acl: OPEN, flags: 0 });
    await keeper.request({ type: 'create', opcode: OpCode.create, path: '/fz', data: null, acl: OPEN, flags: 0 });
    const before = await keeper.request({ type: 'getData', path: '/kept', watch: false });
    const keptBefore = Buffer.from(before.bytes.subarray(16)).toString('hex');
    await keeper.closeSession();

    await GoodClient.start(target, (started) => {
      good = started;
    });

    // 1. Random bytes on fresh connections.
    const randomBytes = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 300 }), { seed: SEED, numRuns: 60 });
    await pool(randomBytes, async (bytes) => void (await sendAndLinger(target, [bytes])));

    // 2. Frames with random bodies before any handshake (the first is read as a ConnectRequest).
    const randomFrames = fc.sample(fc.array(fc.uint8Array({ maxLength: 120 }), { minLength: 1, maxLength: 4 }), { seed: SEED + 1, numRuns: 60 });
    await pool(randomFrames, async (bodies) => void (await sendAndLinger(target, bodies.map(frame))));

    // 3. Truncated frames, then a close from our side.
    const truncated = fc.sample(fc.tuple(fc.integer({ min: 1, max: 2000 }), fc.uint8Array({ maxLength: 200 })), { seed: SEED + 2, numRuns: 40 });
    await pool(truncated, async ([length, bytes]) => {
      const partial = bytes.subarray(0, Math.max(0, Math.min(bytes.length, length - 1)));
      await sendAndLinger(target, [int32(length), partial], true);
    });

    // 4. Frame lengths at and over the limit.
    for (const length of [FRAME_BYTES_MAX + 1, 0x7fffffff, -1, -0x80000000]) {
      assert.ok(await closedWithin(target, int32(length), 3_000), `a frame of length ${length} must close the connection`);
    }
    assert.ok(!(await closedWithin(target, int32(FRAME_BYTES_MAX), LINGER_MS)), `a frame of length ${FRAME_BYTES_MAX} (the limit) is accepted`);

    // 5. After a valid handshake: random frames, truncated valid requests, every opcode.
    const result: AfterHandshake = { hangs: [], truncatedReplies: new Map(), sessions: 0 };
    const randomRequests = fc.sample(fc.uint8Array({ maxLength: 160 }), { seed: SEED + 3, numRuns: 150 }).map((bytes, i) => ({ label: `random frame ${i}`, body: bytes }));
    const requests = validRequests();
    const truncatedRequests: { label: string; body: Uint8Array; xid: number }[] = [];
    const cuts = fc.sample(fc.double({ min: 0, max: 1, noNaN: true }), { seed: SEED + 4, numRuns: requests.length * 6 });
    requests.forEach((request, r) => {
      for (let k = 0; k < 6; k++) {
        const xid = 1_000_000 + r * 10 + k;
        const whole = encodeRequest(xid, request);
        // Keep the 8-byte header (so the reply can be told apart), cut somewhere in the record.
        const cut = 8 + Math.floor(cuts[r * 6 + k]! * (whole.length - 8));
        truncatedRequests.push({ label: `${request.type} cut at ${cut}/${whole.length}`, body: whole.subarray(0, cut), xid });
      }
    });
    const opcodeBodies = fc.sample(fc.uint8Array({ maxLength: 80 }), { seed: SEED + 5, numRuns: (OPCODE_MAX + 1) * 2 });
    const opcodeRequests = opcodeBodies.map((rest, i) => {
      const opcode = i % (OPCODE_MAX + 1);
      return { label: `opcode ${opcode} with ${rest.length} random bytes`, body: body(2_000_000 + i, opcode, rest) };
    });
    const all = [...randomRequests, ...truncatedRequests, ...opcodeRequests];
    const lanes = Array.from({ length: CONCURRENCY }, (_, lane) => all.filter((_, i) => i % CONCURRENCY === lane));
    await fuzzSessions(target, lanes, result);
    assert.deepEqual(result.hangs, [], 'no request left a connection open without an answer');
    for (const item of truncatedRequests) {
      const err = result.truncatedReplies.get(item.xid);
      // A connection closed by an earlier frame of its lane never saw this one: no reply is fine.
      if (err !== undefined) assert.equal(err, Err.marshallingError, `${item.label}: a truncated request is MARSHALLINGERROR`);
    }
    const answered = truncatedRequests.filter((item) => result.truncatedReplies.has(item.xid)).length;
    assert.ok(answered > truncatedRequests.length / 2, `most truncated requests were answered (${answered} of ${truncatedRequests.length})`);

    // 6. Half a four-letter word, and one split over two writes.
    await sendAndLinger(target, [new TextEncoder().encode('ru')], true);
    await sendAndLinger(target, [new TextEncoder().encode('mnt')]);
    assert.equal(await splitFourLetterWord(target, 'ru', 'ok'), 'imok');

    // The verdict.
    await sleep(500);
    const goodClient: GoodClient = good!;
    good = undefined;
    await goodClient.stop();
    t.diagnostic(
      `good client: ${goodClient.roundTrips} round trips; after-handshake fuzzing: ${all.length} frames over ${result.sessions} sessions, ${answered} of ${truncatedRequests.length} truncated requests answered MARSHALLINGERROR`,
    );
    assert.deepEqual(goodClient.errors, [], 'the good client never saw an error');
    assert.ok(goodClient.roundTrips >= 10, `the good client kept working (${goodClient.roundTrips} round trips)`);
    assert.deepEqual(cluster.cluster.running(), cluster.cluster.ids, 'every member process is still running');
    for (const id of cluster.cluster.ids) {
      assert.equal(await cluster.fourLetter(id, 'ruok'), 'imok', `member ${id} answers ruok`);
      const fresh = await RawSession.connect(cluster.address(id), { timeoutMs: CONNECT_TIMEOUT_MS });
      const after = await fresh.request({ type: 'getData', path: '/kept', watch: false });
      assert.equal(after.header.err, Err.ok, `member ${id}: /kept is there`);
      assert.equal(Buffer.from(after.bytes.subarray(16)).toString('hex'), keptBefore, `member ${id}: /kept's data and Stat are unchanged`);
      const created = await fresh.request({ type: 'create', opcode: OpCode.create, path: `/after-${id}`, data: null, acl: OPEN, flags: 1 });
      assert.equal(created.header.err, Err.ok, `member ${id}: a fresh session can write`);
      await fresh.closeSession();
    }
  } finally {
    await good?.stop();
    await cluster.stop();
  }
});

/** Sends `bytes` on a fresh connection; true if the server closes it within `ms`. */
async function closedWithin(hostPort: string, bytes: Uint8Array, ms: number): Promise<boolean> {
  const socket = await openSocket(hostPort, CONNECT_TIMEOUT_MS);
  const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)));
  socket.write(bytes);
  const result = await Promise.race([closed, sleep(ms).then(() => false)]);
  socket.destroy();
  return result;
}

/** A four-letter word written in two parts, 100 ms apart; the text until the server closes. */
async function splitFourLetterWord(hostPort: string, first: string, second: string): Promise<string> {
  const socket = await openSocket(hostPort, CONNECT_TIMEOUT_MS);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(first);
  await sleep(100);
  socket.write(second);
  const done = await Promise.race([closed.then(() => true), sleep(REPLY_TIMEOUT_MS).then(() => false)]);
  socket.destroy();
  assert.ok(done, 'the server closes after answering');
  return Buffer.concat(chunks).toString('utf8');
}
