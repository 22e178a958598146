// A Flotilla cluster of real `flotilla server` processes for the ZooKeeper tests: every
// member serves ZooKeeper's protocol on a port the OS picks. Built on test/server/helpers.ts
// (which kills every member, also when a test fails).

import { connect } from 'node:net';
import { TestCluster, waitFor } from '../server/helpers.js';

export interface ZkStatus {
  role: string;
  leader: number;
  term: number;
  lastZxid: number;
  znodes: number;
  sessions: number;
  connections: number;
}

export class FlotillaZkCluster {
  private constructor(
    readonly cluster: TestCluster,
    readonly tickTimeMs: number,
  ) {}

  static async start(options: { size?: number; tickTimeMs?: number; extraArgs?: string[] } = {}): Promise<FlotillaZkCluster> {
    const tickTimeMs = options.tickTimeMs ?? 200;
    const cluster = await TestCluster.createDetached(options.size ?? 3);
    cluster.extraArgs = ['--zk-tick-ms', String(tickTimeMs), ...(options.extraArgs ?? [])];
    const zk = new FlotillaZkCluster(cluster, tickTimeMs);
    try {
      await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
      await zk.waitForLeader();
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
    return zk;
  }

  /** host:port of member `id`'s ZooKeeper port. */
  address(id: number): string {
    return `127.0.0.1:${this.cluster.ports.get(id)!.zk}`;
  }

  /** Every member's ZooKeeper address, in member order. */
  connectStrings(): string[] {
    return this.cluster.ids.map((id) => this.address(id));
  }

  async zkStatus(id: number): Promise<ZkStatus> {
    const status = (await this.cluster.status(id)) as unknown as { zk: ZkStatus };
    return status.zk;
  }

  /** Waits until the running members agree on a ZooKeeper-group leader. */
  async waitForLeader(timeoutMs = 15_000): Promise<number> {
    return waitFor('a ZooKeeper leader every running member knows', timeoutMs, async () => {
      const statuses = await Promise.all(this.cluster.running().map(async (id) => ({ id, zk: await this.zkStatus(id) })));
      const leader = statuses.find((s) => s.zk.role === 'leader');
      if (leader === undefined) return undefined;
      return statuses.every((s) => s.zk.leader === leader.id && s.zk.term === leader.zk.term) ? leader.id : undefined;
    });
  }

  fourLetter(id: number, word: string): Promise<string> {
    return fourLetterWord('127.0.0.1', this.cluster.ports.get(id)!.zk, word);
  }

  stop(): Promise<void> {
    return this.cluster.dispose();
  }
}

/** Sends a four-letter word and reads the text until the server closes. */
export function fourLetterWord(host: string, port: number, word: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`'${word}' to ${host}:${port}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(word));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}
