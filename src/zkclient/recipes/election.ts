// Leader election (docs/zookeeper.md §4.1): each candidate creates an
// EPHEMERAL_SEQUENTIAL `<guid>-candidate-N` under the election path; the lowest is the
// leader. Every other candidate exists-watches only the next lower candidate, so a leader
// (or any candidate) leaving wakes exactly one other. A leader stays leader until it
// resigns or its session ends (then the server deletes its node and its successor wakes).
//
//   const election = new LeaderElection(client, '/app/election', { data: 'host-a:8080' });
//   election.onElected(() => startServing());
//   await election.join();
//   ...
//   await election.resign();

import { assert } from '../../stdx/assert.js';
import { Err, isZkError, ZkError, type Data, type DataInput, type ZkClient } from '../client.js';
import { Cancellation, createProtected, deleteIfPresent, ensurePath, listSequence, newGuid, nextLower, retrying, sessionEnded, waitForTurn } from './common.js';

const kinds = ['candidate'] as const;

export interface ElectionOptions {
  /** Stored in the candidate node: who this candidate is (readable by everyone via leader()). */
  readonly data?: DataInput;
  readonly guid?: string;
}

export class LeaderElection {
  readonly guid: string;
  /** Watch events received while waiting; with no herd, at most one per predecessor that left. */
  wakeups = 0;
  private node: string | undefined = undefined;
  private elected = false;
  private resigned = false;
  private failure: Error | undefined = undefined;
  private readonly cancellation = new Cancellation();
  private readonly listeners = new Set<() => void>();
  private readonly waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(
    readonly client: ZkClient,
    readonly path: string,
    private readonly options: ElectionOptions = {},
  ) {
    this.guid = options.guid ?? newGuid();
  }

  /** The leader, while its session lives. */
  get isLeader(): boolean {
    return this.elected && !this.resigned && !sessionEnded(this.client);
  }

  get candidatePath(): string | undefined {
    return this.node;
  }

  /** Calls `listener` when this candidate becomes leader; returns a remover. */
  onElected(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once leader; rejects if this candidate resigns or its session ends first. */
  whenElected(): Promise<void> {
    if (this.isLeader) return Promise.resolve();
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Enters the election: resolves once the candidate node exists; the waiting goes on in the background. */
  async join(): Promise<void> {
    assert(this.node === undefined && !this.resigned, 'join once');
    await ensurePath(this.client, this.path);
    this.node = await createProtected(this.client, this.path, `${this.guid}-candidate-`, 'ephemeral-sequential', this.options.data ?? null);
    void this.follow(this.node.slice(this.path.length + 1));
  }

  /** Leaves the election (a leader gives up leadership); its successor is woken. */
  async resign(): Promise<void> {
    if (this.resigned) return;
    this.resigned = true;
    this.cancellation.cancel();
    this.fail(new Error(`the candidate resigned from the election at ${this.path}`));
    const node = this.node;
    if (node === undefined) return;
    try {
      await deleteIfPresent(this.client, node);
    } catch (error) {
      if (!isZkError(error, Err.sessionExpired)) throw error;
    }
  }

  /** The current leader's node name and data, or null when there is no candidate. */
  async leader(): Promise<{ name: string; data: Data } | null> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const [lowest] = await listSequence(this.client, this.path, kinds);
      if (lowest === undefined) return null;
      try {
        const { data } = await retrying(this.client, () => this.client.getData(`${this.path}/${lowest.name}`));
        return { name: lowest.name, data };
      } catch (error) {
        if (!isZkError(error, Err.noNode)) throw error; // that leader just left: look again
      }
    }
    throw new ZkError(Err.systemError, `the leader of ${this.path} kept changing`);
  }

  private async follow(myName: string): Promise<void> {
    try {
      const outcome = await waitForTurn(this.client, this.path, myName, kinds, nextLower, { cancel: this.cancellation, onWake: () => this.wakeups++ });
      if (outcome !== 'ready' || this.resigned) return;
      this.elected = true;
      for (const waiter of this.waiters.splice(0)) waiter.resolve();
      for (const listener of [...this.listeners]) listener();
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}
