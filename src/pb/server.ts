// One primary/backup replica as an OS process's service: its TCP port (logging channel and
// clients, platform/pb-net.ts), its ZooKeeper session, and the role it holds. `flotilla pb
// serve` (cli/pb.ts) runs this; the replay protocol is replay.ts, the test-and-set is
// coordination.ts, and this file is the wiring between them and the real world.
//
//   starting ──(no primary node, epoch 0)──────────────────▶ primary (epoch 1, empty)
//      │                                                        ▲
//      └──(a primary node exists)──▶ backup ──(primary node gone, record names me inSync,
//                                              test-and-set won)─┘ (epoch + 1)
//
// A primary serves only inside its lease: every sessionTimeout/6 it syncs with the
// ensemble and re-reads its primary node; an answer to a sync sent at t proves the session
// alive after t, so the session cannot expire before t + timeout, and the lease runs to
// t + timeout/2. A primary that finds its node gone or of another epoch, or whose session
// expires, halts (the process exits 1). A backup replica keeps its state in memory only:
// a restarted process is a new, empty backup and receives a fresh snapshot.

import { realClock } from '../platform/clock.js';
import { acquireDataLock, type DataLock } from '../platform/data-lock.js';
import { connectPb, startPbServer, type PbConnection } from '../platform/pb-net.js';
import type { RpcServer } from '../platform/rpc.js';
import { randomSeed } from '../platform/server-random.js';
import { wallClockMs } from '../platform/zk-host.js';
import { Prng } from '../stdx/prng.js';
import type { Clock } from '../io/clock.js';
import { Err, isZkError, ZkClient, type WatchEvent } from '../zkclient/index.js';
import { decodeAck, decodeToBackup } from './codec.js';
import { PbConfigError, checkServiceName, decodePrimaryRecord, encodeRecord, ensureServicePaths, readService, servicePaths, setInSync, tryGoLive, type ServicePaths } from './coordination.js';
import { decodeKvInput, kvFactory, type KvInput, type KvOutput } from './kv.js';
import { pbLimits } from './limits.js';
import { PbBackup, PbPrimary, PrimaryOverloaded, emptyStart } from './replay.js';
import { LogRefusal, type Machine, type PendingTimer } from './types.js';
import type { PbReply } from './client.js';

export interface PbNodeOptions {
  readonly zkServers: readonly string[];
  readonly dataDir: string;
  readonly service: string;
  readonly host: string;
  readonly port: number;
  readonly advertiseHost?: string;
  readonly sessionTimeoutMs: number;
  readonly tickMs: number;
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** The replica must stop (halted, deposed, session ended): the process should exit. */
  readonly onFatal: (reason: string) => void;
}

const zkConnectDeadlineMs = 20_000;

export class PbDataInUseError extends Error {
  override name = 'PbDataInUseError';
}

export interface RunningPbNode {
  readonly port: number;
  readonly address: string;
  role(): string;
  stop(): Promise<void>;
}

export async function runPbNode(options: PbNodeOptions): Promise<RunningPbNode> {
  const badName = checkServiceName(options.service);
  if (badName !== undefined) throw new PbConfigError(badName);
  if (options.zkServers.length === 0) throw new PbConfigError('--zk names no server');
  const lock = await takeLock(options.dataDir);
  let replica: PbReplica | undefined;
  const server: RpcServer = await startPbServer({
    host: options.host,
    port: options.port,
    onLog: (message) => {
      if (replica === undefined) throw new Error('this replica is starting');
      return replica.stepLog(message);
    },
    onClient: (request) => (replica === undefined ? Promise.resolve<PbReply>({ type: 'error', code: 'not-primary', message: 'this replica is starting' }) : replica.request(request)),
    log: (message) => options.log('warn', message),
  });
  const address = `${options.advertiseHost ?? options.host}:${server.port}`;
  const zk = await connectZk(options);
  zk.on('state', (state, reason) => {
    options.log(state === 'connected' ? 'info' : 'warn', 'zookeeper', { state, reason });
    if (state === 'expired' || state === 'auth-failed') replica?.halt(`the ZooKeeper session ended (${state}): this replica may no longer act; restart it to rejoin as a backup`);
  });
  const paths = servicePaths(options.service);
  await ensureServicePaths(zk, paths);
  replica = new PbReplica(zk, paths, address, options);
  options.log('info', 'listening', { port: server.port, address, service: options.service });
  replica.decide();
  return {
    port: server.port,
    address,
    role: () => replica?.describeRole() ?? 'starting',
    stop: async () => {
      replica?.stop();
      await server.close();
      await zk.close().catch(() => undefined);
      await lock.release();
    },
  };
}

interface BackupLink {
  readonly address: string;
  readonly connection: PbConnection;
}

type Role =
  | { readonly kind: 'starting' }
  | { readonly kind: 'backup'; readonly backup: PbBackup<KvInput, KvOutput>; registered: boolean }
  | { readonly kind: 'primary'; readonly primary: PbPrimary<KvInput, KvOutput>; leaseUntilMs: number; recordVersion: number; link: BackupLink | undefined; dropping: boolean }
  | { readonly kind: 'halted' };

/** The machine's clock: the wall clock (shared by replicas on one host, roughly elsewhere), never behind a reading already logged. */
function machineClock(floorMs: number): Clock {
  let lastMs = floorMs;
  return {
    nowMs: () => {
      lastMs = Math.max(lastMs, wallClockMs());
      return lastMs;
    },
    setTimer: (delayMs, fn) => realClock.setTimer(delayMs, fn),
  };
}

class PbReplica {
  private role: Role = { kind: 'starting' };
  private readonly waiting = new Map<number, (reply: PbReply) => void>();
  private nextRequestId = 1;
  private deciding = false;
  private decideAgain = false;
  private flushQueued = false;
  private stopped = false;
  private timers: { cancel(): void }[] = [];
  /** Writes to the service record, one at a time, in order. */
  private recordWrites: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly zk: ZkClient,
    private readonly paths: ServicePaths,
    private readonly address: string,
    private readonly options: PbNodeOptions,
  ) {}

  describeRole(): string {
    return this.role.kind === 'primary' ? `primary of epoch ${this.role.primary.epoch}` : this.role.kind;
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) timer.cancel();
    if (this.role.kind === 'primary') this.role.link?.connection.close();
    for (const resolve of this.waiting.values()) resolve({ type: 'error', code: 'unknown', message: 'the replica stopped before answering' });
    this.waiting.clear();
  }

  halt(reason: string): void {
    if (this.role.kind === 'halted') return;
    this.options.log('error', 'halting', { reason, role: this.describeRole() });
    this.role = { kind: 'halted' };
    this.stop();
    this.options.onFatal(reason);
  }

  // ---- the logging channel (backup side) ----

  stepLog(value: unknown): unknown {
    const role = this.role;
    if (role.kind !== 'backup') throw new Error(`this replica is ${this.describeRole()}, not a backup: log refused`);
    try {
      const message = decodeToBackup(value, decodeKvInput);
      if (message.type === 'snapshot') {
        role.backup.stepSnapshot(message.epoch, message.snapshot);
        this.options.log('info', 'snapshot', { epoch: message.epoch, seq: message.snapshot.seq });
      } else role.backup.stepEntries(message.epoch, message.entries);
      // Ack on receipt (Scales et al. §2.2: the backup need only have the entry); replay
      // right after, in the same turn, so the backup lags by at most what one read held.
      queueMicrotask(() => this.replay(role.backup));
      return { type: 'ack', epoch: role.backup.currentEpoch(), seq: role.backup.received() };
    } catch (error) {
      if (error instanceof LogRefusal) this.options.log('warn', 'log refused', { code: error.code, reason: error.message });
      throw error;
    }
  }

  private replay(backup: PbBackup<KvInput, KvOutput>): void {
    if (this.role.kind !== 'backup' || this.role.backup !== backup) return;
    try {
      backup.replay();
    } catch (error) {
      // A log that does not replay: this replica's state is worthless; it stops, and the primary drops it.
      this.halt(`replaying the log failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  // ---- clients ----

  request(value: unknown): Promise<PbReply> {
    const role = this.role;
    if (role.kind !== 'primary') return Promise.resolve({ type: 'error', code: 'not-primary', message: `this replica is ${this.describeRole()}` });
    let input: KvInput;
    try {
      input = decodeKvInput(value);
    } catch (error) {
      return Promise.resolve({ type: 'error', code: 'bad-request', message: error instanceof Error ? error.message : String(error) });
    }
    if (realClock.nowMs() >= role.leaseUntilMs) return Promise.resolve({ type: 'error', code: 'not-serving', message: 'the primary cannot confirm its ZooKeeper session (lease lapsed)' });
    const requestId = this.nextRequestId++;
    try {
      role.primary.submit(requestId, input);
    } catch (error) {
      if (error instanceof PrimaryOverloaded) return Promise.resolve({ type: 'error', code: 'overloaded', message: error.message });
      throw error;
    }
    const answered = new Promise<PbReply>((resolve) => this.waiting.set(requestId, resolve));
    this.flush();
    return answered;
  }

  // ---- roles ----

  /** Finds this replica's role from ZooKeeper; runs again on every watched change. */
  decide(): void {
    if (this.deciding) {
      this.decideAgain = true;
      return;
    }
    this.deciding = true;
    void this.decideOnce()
      .catch((error: unknown) => {
        if (this.stopped) return;
        if (error instanceof PbConfigError) return this.halt(error.message);
        this.options.log('warn', 'deciding the role failed; retrying', { reason: error instanceof Error ? error.message : String(error) });
        this.later(200, () => this.decide());
      })
      .finally(() => {
        this.deciding = false;
        if (this.decideAgain && !this.stopped) {
          this.decideAgain = false;
          this.decide();
        }
      });
  }

  private async decideOnce(): Promise<void> {
    if (this.stopped || this.role.kind === 'primary' || this.role.kind === 'halted') return;
    const watcher = (event: WatchEvent): void => {
      if (event.type !== 'sessionEnded') this.decide();
    };
    const { record, stat } = await readService(this.zk, this.paths);
    const primaryStat = await this.zk.exists(this.paths.primary, watcher);
    if (primaryStat === null) {
      if (record.epoch === 0) return this.contend(stat.version, 1, emptyStart(kvFactory));
      const role = this.role;
      if (role.kind === 'backup' && record.inSync === this.address && role.backup.currentEpoch() === record.epoch) {
        return this.contend(stat.version, record.epoch + 1, role.backup.goLive(record.epoch + 1));
      }
      this.options.log('warn', 'waiting', { reason: `no primary, and epoch ${record.epoch}'s state is on ${record.inSync ?? 'no in-sync backup'}, not here` });
      return;
    }
    const primary = decodePrimaryRecord((await this.zk.getData(this.paths.primary)).data);
    if (this.role.kind === 'starting') {
      this.role = { kind: 'backup', backup: new PbBackup(kvFactory, primary.epoch), registered: false };
      this.options.log('info', 'role', { role: 'backup', primaryEpoch: primary.epoch, primary: primary.address });
    }
    const role = this.role;
    if (role.kind === 'backup' && !role.registered) {
      try {
        await this.zk.create(this.paths.backup, encodeRecord({ address: this.address }), { mode: 'ephemeral' });
        role.registered = true;
        this.options.log('info', 'registered as backup', { address: this.address });
      } catch (error) {
        if (!isZkError(error, Err.nodeExists)) throw error;
        // Another backup is registered: wait for its node to go.
        await this.zk.exists(this.paths.backup, watcher);
      }
    }
  }

  private async contend(version: number, epoch: number, start: { machine: Machine<KvInput, KvOutput>; seq: number; timers: PendingTimer[]; nextTimerId: number; clockMs: number }): Promise<void> {
    const sentMs = realClock.nowMs();
    const newVersion = await tryGoLive(this.zk, this.paths, version, epoch, this.address);
    if (newVersion === undefined) {
      this.options.log('warn', 'lost the test-and-set', { epoch });
      this.decideAgain = true;
      return;
    }
    const wasBackup = this.role.kind === 'backup';
    const primary = new PbPrimary<KvInput, KvOutput>(start.machine, start, { epoch, clock: machineClock(start.clockMs), prng: new Prng(randomSeed()) });
    this.role = { kind: 'primary', primary, leaseUntilMs: sentMs + this.zk.negotiatedTimeoutMs / 2, recordVersion: newVersion, link: undefined, dropping: false };
    this.options.log('info', 'role', { role: 'primary', epoch, seq: start.seq, tookOver: wasBackup });
    if (wasBackup) await this.zk.delete(this.paths.backup).catch(() => undefined);
    this.tick();
    this.renewLease();
    this.watchBackup();
  }

  // ---- the primary ----

  private tick(): void {
    const role = this.role;
    if (role.kind !== 'primary' || this.stopped) return;
    role.primary.tick();
    this.flush();
    this.later(this.options.tickMs, () => this.tick());
  }

  private renewLease(): void {
    const role = this.role;
    if (role.kind !== 'primary' || this.stopped) return;
    const sentMs = realClock.nowMs();
    // Past lease end + a whole session timeout without a confirmed session, the session has
    // had every chance to expire at the ensemble and the backup to go live: give up.
    if (sentMs > role.leaseUntilMs + this.zk.negotiatedTimeoutMs) {
      return this.halt(`the primary could not confirm its ZooKeeper session for ${Math.round(sentMs - role.leaseUntilMs)} ms past its lease; the backup may be live`);
    }
    void this.zk
      .sync(this.paths.service)
      .then(() => this.zk.getData(this.paths.primary))
      .then(
        ({ data }) => {
          const record = decodePrimaryRecord(data);
          if (record.epoch !== role.primary.epoch || record.address !== this.address)
            return this.halt(`the primary node now names epoch ${record.epoch} at ${record.address}: this primary was deposed`);
          role.leaseUntilMs = Math.max(role.leaseUntilMs, sentMs + this.zk.negotiatedTimeoutMs / 2);
          this.flush();
        },
        (error: unknown) => {
          if (isZkError(error, Err.noNode)) this.halt('the primary node is gone: this primary was deposed');
        },
      );
    this.later(Math.max(10, this.zk.negotiatedTimeoutMs / 6), () => this.renewLease());
  }

  private watchBackup(): void {
    const role = this.role;
    if (role.kind !== 'primary' || this.stopped) return;
    const watcher = (event: WatchEvent): void => {
      if (event.type !== 'sessionEnded') this.watchBackup();
    };
    void this.zk
      .exists(this.paths.backup, watcher)
      .then(async (stat) => {
        if (stat === null || role.link !== undefined || role.dropping) return;
        const { data } = await this.zk.getData(this.paths.backup);
        const address = (JSON.parse(new TextDecoder().decode(data ?? new Uint8Array())) as { address?: unknown }).address;
        if (typeof address !== 'string') throw new PbConfigError('the backup node holds no address');
        await this.attach(address);
      })
      .catch((error: unknown) => {
        this.options.log('warn', 'attaching the backup failed; retrying', { reason: error instanceof Error ? error.message : String(error) });
        this.later(500, () => this.watchBackup());
      });
  }

  private async attach(address: string): Promise<void> {
    const role = this.role;
    if (role.kind !== 'primary' || role.link !== undefined || role.dropping) return;
    // A backup silent for half a session timeout is dropped well before its own session could
    // expire, so the primary is alone (and the backup fenced off in the record) in time.
    const connection = await connectPb(address, Math.max(200, this.zk.negotiatedTimeoutMs / 2));
    if (this.role !== role || role.link !== undefined || role.dropping || this.stopped) {
      connection.close();
      return;
    }
    const link: BackupLink = { address, connection };
    role.link = link;
    const snapshot = role.primary.attachBackup();
    this.options.log('info', 'backup attached', { address, seq: snapshot.seq });
    void connection.closed.then(() => this.dropBackup(link, 'the logging channel closed'));
    this.send(link, { type: 'snapshot', epoch: role.primary.epoch, snapshot }, () => {
      this.recordWrite(async () => {
        const version = await setInSync(this.zk, this.paths, role.recordVersion, role.primary.epoch, address);
        if (version === undefined) return this.halt('the service record changed under the primary: it was deposed');
        role.recordVersion = version;
        this.options.log('info', 'backup in sync', { address, epoch: role.primary.epoch });
      });
    });
  }

  private send(link: BackupLink, message: unknown, then?: () => void): void {
    const role = this.role;
    if (role.kind !== 'primary') return;
    link.connection.call('log', message).then(
      (value) => {
        if (role.link !== link) return;
        try {
          const ack = decodeAck(value);
          role.primary.stepAck(ack.epoch, ack.seq);
        } catch (error) {
          return this.dropBackup(link, `the backup's ack was refused: ${error instanceof Error ? error.message : String(error)}`);
        }
        then?.();
        this.flush();
      },
      (error: unknown) => this.dropBackup(link, `the backup refused or did not answer: ${error instanceof Error ? error.message : String(error)}`),
    );
  }

  /** Drops the backup: first clears it from the service record (so it can never go live), then runs alone. */
  private dropBackup(link: BackupLink, reason: string): void {
    const role = this.role;
    if (role.kind !== 'primary' || role.link !== link) return;
    role.link = undefined;
    role.dropping = true;
    link.connection.close();
    this.options.log('warn', 'backup dropped', { address: link.address, reason });
    const clear = (): void =>
      this.recordWrite(async () => {
        if (this.role !== role || this.stopped) return;
        try {
          const version = await setInSync(this.zk, this.paths, role.recordVersion, role.primary.epoch, null);
          if (version === undefined) return this.halt('the service record changed under the primary: it was deposed');
          role.recordVersion = version;
        } catch (error) {
          // ZooKeeper unreachable: outputs stay held; try again (the lease ends this if it lasts).
          this.options.log('warn', 'clearing the backup from the service record failed; retrying', { reason: error instanceof Error ? error.message : String(error) });
          this.later(200, clear);
          return;
        }
        role.primary.detachBackup();
        role.dropping = false;
        this.options.log('info', 'running alone', { epoch: role.primary.epoch });
        this.flush();
        this.watchBackup();
      });
    clear();
  }

  private recordWrite(write: () => Promise<void>): void {
    this.recordWrites = this.recordWrites.then(write).catch((error: unknown) => {
      this.options.log('warn', 'a service record write failed', { reason: error instanceof Error ? error.message : String(error) });
    });
  }

  /**
   * Ships new entries and releases the outputs the Output Rule (and the lease) allow. Runs
   * once per turn, after every request that arrived in the same read: their entries travel
   * as one message and are acknowledged together.
   */
  private flush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flushNow();
    });
  }

  private flushNow(): void {
    const role = this.role;
    if (role.kind !== 'primary' || this.stopped) return;
    const entries = role.primary.takeEntries();
    if (role.link !== undefined) {
      for (let k = 0; k < entries.length; k += pbLimits.entriesPerMessageMax)
        this.send(role.link, { type: 'entries', epoch: role.primary.epoch, entries: entries.slice(k, k + pbLimits.entriesPerMessageMax) });
    }
    if (realClock.nowMs() >= role.leaseUntilMs) return; // Held until the lease is renewed (or the process halts).
    for (const item of role.primary.takeOutputs()) {
      const resolve = this.waiting.get(item.requestId);
      this.waiting.delete(item.requestId);
      resolve?.({ type: 'reply', epoch: role.primary.epoch, output: item.output });
    }
  }

  private later(delayMs: number, fn: () => void): void {
    if (this.stopped) return;
    const timer = realClock.setTimer(delayMs, fn);
    this.timers.push(timer);
    if (this.timers.length > 64) this.timers = this.timers.slice(-32);
  }
}

/** The ensemble may still be electing its leader when a replica starts: keep trying for a while. */
async function connectZk(options: PbNodeOptions): Promise<ZkClient> {
  const deadlineMs = realClock.nowMs() + zkConnectDeadlineMs;
  for (;;) {
    try {
      return await ZkClient.connect({ servers: options.zkServers, sessionTimeoutMs: options.sessionTimeoutMs });
    } catch (error) {
      if (realClock.nowMs() >= deadlineMs) throw error;
      options.log('warn', 'no ZooKeeper session yet; retrying', { reason: error instanceof Error ? error.message : String(error) });
      await new Promise<void>((resolve) => realClock.setTimer(250, resolve));
    }
  }
}

async function takeLock(dataDir: string): Promise<DataLock> {
  const result = await acquireDataLock(dataDir);
  if (result.acquired) return result.lock;
  throw new PbDataInUseError(`the data directory ${dataDir} is in use by a running process (pid ${result.pid}); stop it first, or delete ${result.file} if it is not a flotilla process`);
}
