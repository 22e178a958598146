// What the recipes share (docs/zookeeper.md §4.1): retrying after
// connection loss, waiting for a one-shot watch, protected (GUID-named) sequential nodes,
// and the "wait for my turn" loop of the locks and the election.

import { randomSeed } from '../../platform/server-random.js';
import { assert } from '../../stdx/assert.js';
import { Prng } from '../../stdx/prng.js';
import { Err, isZkError, ZkError, type CreateModeName, type DataInput, type WatchEvent, type Watcher, type ZkClient } from '../client.js';

/** A recipe step is retried at most this many times after CONNECTIONLOSS. */
export const connectionLossRetriesMax = 20;

const guidPrng = new Prng(randomSeed());

/** 16 hex digits naming one recipe participant's nodes, so it can find them after a connection loss. */
export function newGuid(): string {
  const hex = (value: number) => value.toString(16).padStart(8, '0');
  return hex(guidPrng.nextUint32()) + hex(guidPrng.nextUint32());
}

/** Cancels a wait. */
export class Cancellation {
  private readonly callbacks = new Set<() => void>();
  private cancelledValue = false;

  get cancelled(): boolean {
    return this.cancelledValue;
  }

  cancel(): void {
    if (this.cancelledValue) return;
    this.cancelledValue = true;
    for (const callback of [...this.callbacks]) callback();
    this.callbacks.clear();
  }

  /** Calls `callback` on cancel (at once if already cancelled); returns a remover. */
  onCancel(callback: () => void): () => void {
    if (this.cancelledValue) {
      callback();
      return () => {};
    }
    this.callbacks.add(callback);
    return () => this.callbacks.delete(callback);
  }
}

export interface WaitOptions {
  /** On the client's clock; undefined waits without a deadline. */
  readonly deadlineMs?: number | undefined;
  readonly cancel?: Cancellation | undefined;
}

function isTerminal(client: ZkClient): boolean {
  return client.state === 'expired' || client.state === 'closed' || client.state === 'auth-failed';
}

/** Resolves when the client is connected again, the session has ended, or after `timeoutMs`. */
function waitForConnection(client: ZkClient, timeoutMs: number): Promise<void> {
  if (client.state === 'connected' || isTerminal(client)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      timer.cancel();
      off();
      resolve();
    };
    const timer = client.clock.setTimer(timeoutMs, done);
    const off = client.on('state', (state) => {
      if (state !== 'disconnected') done();
    });
  });
}

/** Runs `step`, retrying after CONNECTIONLOSS once the client has reconnected. `step` must be safe to repeat. */
export async function retrying<T>(client: ZkClient, step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (!isZkError(error, Err.connectionLoss) || attempt >= connectionLossRetriesMax) throw error;
      await waitForConnection(client, Math.max(client.negotiatedTimeoutMs, 1));
    }
  }
}

/** Creates `path` and its missing ancestors as empty persistent nodes. */
export async function ensurePath(client: ZkClient, path: string): Promise<void> {
  const parts = path.split('/').filter((part) => part.length > 0);
  for (let i = 1; i <= parts.length; i++) {
    const prefix = `/${parts.slice(0, i).join('/')}`;
    if ((await retrying(client, () => client.exists(prefix))) !== null) continue;
    try {
      await retrying(client, () => client.create(prefix));
    } catch (error) {
      if (!isZkError(error, Err.nodeExists)) throw error;
    }
  }
}

/** Deletes `path`; already gone (NONODE) counts as done. */
export async function deleteIfPresent(client: ZkClient, path: string, version = -1): Promise<void> {
  try {
    await retrying(client, () => client.delete(path, version));
  } catch (error) {
    if (!isZkError(error, Err.noNode)) throw error;
  }
}

/**
 * Creates a sequential node named `${parent}/${prefix}NNNNNNNNNN`. The create may succeed
 * on the server while its reply is lost (§4.1): after CONNECTIONLOSS the children are
 * searched for the prefix, which holds the caller's GUID, before trying again.
 */
export async function createProtected(client: ZkClient, parent: string, prefix: string, mode: CreateModeName, data: DataInput = null): Promise<string> {
  assert(mode === 'ephemeral-sequential' || mode === 'persistent-sequential', 'protected nodes are sequential');
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.create(`${parent}/${prefix}`, data, { mode });
    } catch (error) {
      if (!isZkError(error, Err.connectionLoss) || attempt >= connectionLossRetriesMax) throw error;
    }
    const children = await retrying(client, () => client.getChildren(parent));
    const mine = children.find((child) => child.startsWith(prefix));
    if (mine !== undefined) return `${parent}/${mine}`;
  }
}

export type WaitOutcome = 'event' | 'absent' | 'timeout' | 'cancelled';

/**
 * Arms a one-shot watch with `arm` — which returns false when there is nothing to wait
 * for (the watched node is already gone) — then waits for its event, the deadline or a
 * cancellation. The session ending rejects with the client's terminal error.
 */
export async function waitForWatch(client: ZkClient, arm: (watcher: Watcher) => Promise<boolean>, options: WaitOptions = {}): Promise<WaitOutcome> {
  let fired: WatchEvent | undefined;
  let wake: (() => void) | undefined;
  const watcher: Watcher = (event) => {
    fired ??= event;
    wake?.();
  };
  if (!(await arm(watcher))) return 'absent';
  return new Promise<WaitOutcome>((resolve, reject) => {
    let timer: { cancel(): void } | undefined;
    let offCancel = () => {};
    const finish = (outcome: WaitOutcome) => {
      timer?.cancel();
      offCancel();
      wake = undefined;
      if (fired?.type === 'sessionEnded' && outcome === 'event') void client.whenEnded().then(reject);
      else resolve(outcome);
    };
    wake = () => finish('event');
    if (fired !== undefined) {
      finish('event');
      return;
    }
    if (options.deadlineMs !== undefined) timer = client.clock.setTimer(Math.max(0, options.deadlineMs - client.clock.nowMs()), () => finish('timeout'));
    if (options.cancel !== undefined) offCancel = options.cancel.onCancel(() => finish('cancelled'));
  });
}

/** One node of a sequence of sequential nodes named `${guid}-${kind}-NNNNNNNNNN`. */
export interface SequenceNode {
  readonly name: string;
  readonly kind: string;
  readonly sequence: number;
}

const sequenceDigits = 10;

/** Parses a child name of one of `kinds`; undefined for anything else. */
export function parseSequenceNode(name: string, kinds: readonly string[]): SequenceNode | undefined {
  const digits = name.slice(-sequenceDigits);
  if (name.length <= sequenceDigits || !/^-?\d+$/.test(digits)) return undefined;
  const stem = name.slice(0, -sequenceDigits);
  const kind = kinds.find((candidate) => stem.endsWith(`-${candidate}-`));
  return kind === undefined ? undefined : { name, kind, sequence: Number(digits) };
}

/** The children of `parent` of the given kinds, lowest sequence number first. */
export async function listSequence(client: ZkClient, parent: string, kinds: readonly string[]): Promise<SequenceNode[]> {
  const children = await retrying(client, () => client.getChildren(parent));
  const nodes: SequenceNode[] = [];
  for (const child of children) {
    const node = parseSequenceNode(child, kinds);
    if (node !== undefined) nodes.push(node);
  }
  return nodes.sort((a, b) => a.sequence - b.sequence || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Which node `nodes[mine]` must wait for; undefined when it may go ahead. */
export type PredecessorRule = (nodes: readonly SequenceNode[], mine: number) => SequenceNode | undefined;

/** The next lower node of any kind: an exclusive lock, a write lock, an election. */
export const nextLower: PredecessorRule = (nodes, mine) => nodes[mine - 1];

export interface TurnOptions extends WaitOptions {
  /** Called for each watch event the wait received (tests count these to show there is no herd). */
  readonly onWake?: (() => void) | undefined;
}

/**
 * The herd-free wait of §4.1: list the children without a watch; if a predecessor exists,
 * exists-watch only it, and on its event list again. Each deletion wakes one waiter.
 */
export async function waitForTurn(
  client: ZkClient,
  parent: string,
  myName: string,
  kinds: readonly string[],
  predecessor: PredecessorRule,
  options: TurnOptions = {},
): Promise<'ready' | 'timeout' | 'cancelled'> {
  const mine = parseSequenceNode(myName, kinds);
  assert(mine !== undefined, `${myName} is a sequence node of ${kinds.join('|')}`);
  // Each round ends with a lower node gone (or a spurious data event on one), and lower
  // sequence numbers are never reused, so the rounds are bounded.
  const roundsMax = Math.max(0, mine.sequence) + 1_000;
  for (let round = 0; round < roundsMax; round++) {
    const nodes = await listSequence(client, parent, kinds);
    const index = nodes.findIndex((node) => node.name === myName);
    if (index < 0) throw new ZkError(Err.noNode, `${parent}/${myName} is gone: its session ended or someone deleted it`);
    const target = predecessor(nodes, index);
    if (target === undefined) return 'ready';
    const outcome = await waitForWatch(client, async (watcher) => (await retrying(client, () => client.exists(`${parent}/${target.name}`, watcher))) !== null, options);
    if (outcome === 'event') options.onWake?.();
    if (outcome === 'timeout' || outcome === 'cancelled') return outcome;
  }
  throw new ZkError(Err.systemError, `waited ${roundsMax} rounds for a turn under ${parent}`);
}

export function deadlineFrom(client: ZkClient, timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : client.clock.nowMs() + timeoutMs;
}

export function sessionEnded(client: ZkClient): boolean {
  return isTerminal(client);
}
