// A primary and a backup of the replay layer on the simulator: the real PbPrimary and
// PbBackup, the real codec, length-prefixed frames (platform/framing.ts) on a simulated
// in-order link with 1–5 ms of latency each way, and seeded clients submitting key/value
// operations (puts with and without expiry, increments, random tokens, reads). The
// primary's clock is the scheduler's virtual clock and its randomness a seeded Prng, so
// one seed replays one run exactly.
//
// Recorded for the checkers: the primary's state hash after every event and the backup's
// at every event it replays (replay fidelity), the primary's trace (the Output Rule), and
// every released reply. With `crashAfterReplyMs`, the primary crashes that long after
// some reply left; the backup then goes live, and every released write must be in its state.

import { Scheduler, type YieldToHost } from '../../src/sim/scheduler.js';
import { Prng } from '../../src/stdx/prng.js';
import { FrameDecoder, encodeFrame } from '../../src/platform/framing.js';
import { PbBackup, PbPrimary, PrimaryOverloaded, emptyStart, type Released } from '../../src/pb/replay.js';
import { decodeAck, decodeToBackup, encodeMessage, parseMessage } from '../../src/pb/codec.js';
import { decodeKvInput, kvFactory, type KvMachine, type KvInput, type KvOutput } from '../../src/pb/kv.js';
import { checkOutputRule, describeViolations } from '../../src/pb/trace.js';
import type { TraceEvent } from '../../src/pb/types.js';

export interface PbSimOptions {
  readonly seed: number;
  readonly yieldToHost: YieldToHost;
  readonly durationMs?: number;
  readonly clients?: number;
  /** Crash the primary this long after the first reply past half the run, then fail over. */
  readonly crashAfterReplyMs?: number;
  readonly plantedBugReplyBeforeAck?: boolean;
}

export interface PbSimResult {
  readonly seed: number;
  readonly checkpointsCompared: number;
  readonly mismatches: string[];
  readonly replies: number;
  readonly events: number;
  readonly outputRule: string;
  readonly violations: number;
  readonly trace: readonly TraceEvent[];
  /** After a crash: released writes the new primary's state lacks. */
  readonly lostWrites: string[];
  readonly wentLive: boolean;
  readonly fingerprint: string;
}

/** An in-order link: each frame arrives after 1–5 ms, never before the one sent ahead of it. */
class Link {
  private lastArrivalMs = 0;
  cut = false;
  constructor(
    private readonly scheduler: Scheduler,
    private readonly prng: Prng,
    private readonly deliver: (bytes: Buffer) => void,
  ) {}
  send(message: unknown): void {
    if (this.cut) return;
    const frame = encodeFrame(encodeMessage(message));
    const arrival = Math.max(this.lastArrivalMs, this.scheduler.nowMs + this.prng.range(1, 5));
    this.lastArrivalMs = arrival;
    this.scheduler.at(arrival, () => {
      if (!this.cut) this.deliver(frame);
    });
  }
}

export async function runPbSimulation(options: PbSimOptions): Promise<PbSimResult> {
  const scheduler = new Scheduler(options.yieldToHost);
  const prng = new Prng(options.seed);
  const netPrng = prng.fork();
  const clientPrng = prng.fork();
  const clock = scheduler.clock();
  const start = emptyStart<KvInput, KvOutput>(kvFactory);
  const primary = new PbPrimary<KvInput, KvOutput>(start.machine, start, { epoch: 1, clock, prng: prng.fork(), ...(options.plantedBugReplyBeforeAck ? { plantedBugReplyBeforeAck: true } : {}) });
  const primaryHashes = new Map<number, string>();
  const backupHashes = new Map<number, string>();
  const backup = new PbBackup<KvInput, KvOutput>(kvFactory, 1, (checkpoint) => backupHashes.set(checkpoint.seq, checkpoint.hash));
  const released: (Released<KvOutput> & { input: KvInput })[] = [];
  const inputs = new Map<number, KvInput>();
  let crashed = false;
  let crashScheduled = false;

  const toPrimary = new Link(scheduler, netPrng, (bytes) => {
    for (const body of fromBackupFrames.push(bytes)) {
      const ack = decodeAck(parseMessage(body));
      primary.stepAck(ack.epoch, ack.seq);
    }
    flush();
  });
  const fromBackupFrames = new FrameDecoder(1 << 20);
  const toBackupFrames = new FrameDecoder(16 << 20);
  const toBackup = new Link(scheduler, netPrng, (bytes) => {
    for (const body of toBackupFrames.push(bytes)) {
      const message = decodeToBackup(parseMessage(body), decodeKvInput);
      if (message.type === 'snapshot') backup.stepSnapshot(message.epoch, message.snapshot);
      else backup.stepEntries(message.epoch, message.entries);
      toPrimary.send({ type: 'ack', epoch: backup.currentEpoch(), seq: backup.received() });
      backup.replay();
    }
  });

  const flush = (): void => {
    if (crashed) return;
    const entries = primary.takeEntries();
    if (entries.length > 0) toBackup.send({ type: 'entries', epoch: primary.epoch, entries });
    for (const item of primary.takeOutputs()) {
      released.push({ ...item, input: inputs.get(item.requestId)! });
      if (options.crashAfterReplyMs !== undefined && !crashScheduled && scheduler.nowMs > (options.durationMs ?? 2_000) / 2) {
        crashScheduled = true;
        scheduler.after(options.crashAfterReplyMs, () => {
          crashed = true;
          toBackup.cut = true;
          toPrimary.cut = true;
        });
      }
    }
  };
  const recordPrimaryHash = (): void => {
    primaryHashes.set(primary.seq(), primary.hash());
  };

  // The backup attaches a little after the start, so the first snapshot is not empty.
  scheduler.after(30, () => {
    toBackup.send({ type: 'snapshot', epoch: primary.epoch, snapshot: primary.attachBackup() });
  });
  const tick = (): void => {
    if (crashed) return;
    primary.tick();
    recordPrimaryHash();
    flush();
    scheduler.after(10, tick);
  };
  scheduler.after(10, tick);

  const durationMs = options.durationMs ?? 2_000;
  const clientCount = options.clients ?? 4;
  let nextRequestId = 1;
  for (let c = 0; c < clientCount; c++) {
    let requestSeq = 0;
    const step = (): void => {
      if (crashed || scheduler.nowMs > durationMs) return;
      const key = `k${clientPrng.int(5)}`;
      const pick = clientPrng.int(10);
      const op: KvInput['op'] =
        pick < 3
          ? { type: 'get', key }
          : pick < 5
            ? { type: 'put', key, value: `c${c}-${requestSeq}`, ...(clientPrng.chance(0.3) ? { ttlMs: clientPrng.range(50, 400) } : {}) }
            : pick < 8
              ? { type: 'incr', key: `n${clientPrng.int(3)}`, by: clientPrng.range(1, 9) }
              : { type: 'token', key };
      const input: KvInput = { clientId: c + 1, requestSeq: ++requestSeq, op };
      const requestId = nextRequestId++;
      inputs.set(requestId, input);
      try {
        primary.submit(requestId, input);
        recordPrimaryHash();
      } catch (error) {
        if (!(error instanceof PrimaryOverloaded)) throw error;
      }
      flush();
      scheduler.after(clientPrng.range(1, 15), step);
    };
    scheduler.after(clientPrng.range(1, 20), step);
  }

  await scheduler.sleep(durationMs + 200);

  let wentLive = false;
  const lostWrites: string[] = [];
  if (crashed) {
    const live = backup.goLive(2);
    wentLive = true;
    const machine = live.machine as KvMachine;
    // Every write whose reply left the old primary is in the new primary's state (its
    // version at least that of the reply; a later write may have replaced the value).
    const state = new Map(machine.snapshot().data);
    const expiringKeys = new Set(released.flatMap((item) => (item.input.op.type === 'put' && item.input.op.ttlMs !== undefined ? [item.input.op.key] : [])));
    for (const item of released) {
      if (item.output.type !== 'ok' || item.input.op.type === 'get') continue;
      const entry = state.get(item.input.op.key);
      if (expiringKeys.has(item.input.op.key)) continue;
      if (entry === undefined || entry.version < item.output.version) lostWrites.push(`${item.input.op.key} v${item.output.version} (request ${item.requestId})`);
    }
  }

  const mismatches: string[] = [];
  let compared = 0;
  for (const [seq, hash] of backupHashes) {
    const expected = primaryHashes.get(seq);
    if (expected === undefined) continue;
    compared++;
    if (expected !== hash) mismatches.push(`at seq ${seq}: primary ${expected}, backup ${hash}`);
  }
  const violations = checkOutputRule(primary.traceEvents());
  return {
    seed: options.seed,
    checkpointsCompared: compared,
    mismatches,
    replies: released.length,
    events: primary.events(),
    outputRule: describeViolations(violations),
    violations: violations.length,
    trace: primary.traceEvents(),
    lostWrites,
    wentLive,
    fingerprint: `${primary.seq()}:${primary.hash()}:${released.length}:${backup.applied()}`,
  };
}
