// Golden-output interaction scripts for the CRAQ chain node (STYLE.md 16), in the style of
// test/raft/testdata: each file in test/craq/testdata is a script of commands, each with
// the output it must produce. UPDATE=1 rewrites the expected output; review the diff like
// code.
//
//   chain 1 2 3            nodes 1..3 (leased), configured as one chain, head first
//   add 4                  a node outside any chain yet
//   config 1 2 4           a new epoch with these members, given to every node
//   crash 3                node 3 is gone, with the messages to it
//   write 1 x a            a client's write at node 1
//   read 2 x [eventual|bounded=N]   a client's read at node 2 (strong by default)
//   deliver [to=N] [type=T] [drop]  delivers (or drops) the messages in flight that match, once
//   stabilize              delivers until nothing is in flight
//   tick [N]               N ticks on every node
//   status                 every node's view and its objects' newest/clean versions

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatScript, parseScript } from '../../src/testbed/interaction.js';
import { CraqNode } from '../../src/craq/node.js';
import { describeMessage, describeReply } from '../../src/craq/describe.js';
import type { PeerMessage, ReadMode } from '../../src/craq/types.js';
import { nodeId, type NodeId } from '../../src/stdx/types.js';
import { repositoryRoot } from '../repo.js';

const dataDir = join(repositoryRoot(), 'test', 'craq', 'testdata');
const update = process.env['UPDATE'] === '1';
/** Rounds `stabilize` delivers at most before it reports that messages keep flowing. */
const stabilizeRoundsMax = 100;

class CraqInteraction {
  private readonly nodes = new Map<NodeId, CraqNode>();
  private inFlight: { from: NodeId; to: NodeId; message: PeerMessage }[] = [];
  private epoch = 0;
  private nextRequest = 1;
  private tickCount = 0;
  private readonly keys = new Set<string>();

  run(command: string): string {
    const [verb, ...args] = command.split(/\s+/);
    const numbers = args.filter((arg) => /^\d+$/.test(arg)).map(Number);
    switch (verb) {
      case 'chain':
        for (const id of numbers) this.add(id);
        return this.configure(numbers);
      case 'add':
        this.add(numbers[0]!);
        return 'ok';
      case 'config':
        return this.configure(numbers);
      case 'crash':
        this.nodes.delete(nodeId(numbers[0]!));
        this.inFlight = this.inFlight.filter(({ to }) => to !== numbers[0]);
        return 'ok';
      case 'write':
        return this.request(numbers[0]!, (node, requestId) => node.write(requestId, args[1]!, args[2]!), args[1]!);
      case 'read':
        return this.request(numbers[0]!, (node, requestId) => node.read(requestId, args[1]!, parseMode(args[2])), args[1]!);
      case 'deliver':
        return this.deliver(args);
      case 'stabilize':
        return this.stabilize();
      case 'tick':
        return this.tick(numbers[0] ?? 1);
      case 'status':
        return this.status();
      default:
        throw new Error(`unknown command ${verb}`);
    }
  }

  private add(id: number): void {
    const node = new CraqNode(nodeId(id));
    node.setLease(Number.MAX_SAFE_INTEGER);
    this.nodes.set(nodeId(id), node);
  }

  private configure(members: number[]): string {
    this.epoch++;
    for (const id of this.sortedIds()) this.nodes.get(id)!.setConfig({ epoch: this.epoch, members: members.map(nodeId) });
    return [`epoch ${this.epoch}: ${members.join(' -> ')}`, ...this.collect()].join('\n');
  }

  private request(id: number, call: (node: CraqNode, requestId: number) => void, key: string): string {
    const node = this.nodes.get(nodeId(id));
    if (node === undefined) return `no node ${id}`;
    this.keys.add(key);
    const requestId = this.nextRequest++;
    call(node, requestId);
    return [`request r${requestId} at ${id}`, ...this.collect()].join('\n');
  }

  /** Takes every node's Ready: messages go in flight, replies are printed. */
  private collect(): string[] {
    const lines: string[] = [];
    for (const id of this.sortedIds()) {
      const node = this.nodes.get(id)!;
      while (node.hasReady()) {
        const ready = node.ready();
        for (const { to, message } of ready.messages) {
          this.inFlight.push({ from: id, to, message });
          lines.push(`  ${id}->${to} ${describeMessage(message)}`);
        }
        for (const { requestId, reply } of ready.replies) lines.push(`  ${id} answers r${requestId}: ${describeReply(reply)}`);
      }
    }
    return lines;
  }

  private deliver(args: string[]): string {
    const to = args.find((arg) => arg.startsWith('to='))?.slice(3);
    const type = args.find((arg) => arg.startsWith('type='))?.slice(5);
    const drop = args.includes('drop');
    const matches = (entry: { to: NodeId; message: PeerMessage }): boolean => (to === undefined || entry.to === Number(to)) && (type === undefined || entry.message.type === type);
    const chosen = this.inFlight.filter(matches);
    this.inFlight = this.inFlight.filter((entry) => !matches(entry));
    const lines: string[] = [];
    for (const { from, to: target, message } of chosen) {
      lines.push(`${drop ? 'dropped' : 'delivered'} ${from}->${target} ${describeMessage(message)}`);
      if (drop) continue;
      this.nodes.get(target)?.step(message);
      lines.push(...this.collect());
    }
    return lines.length === 0 ? 'nothing in flight' : lines.join('\n');
  }

  private stabilize(): string {
    const lines: string[] = [];
    for (let round = 0; round < stabilizeRoundsMax; round++) {
      if (this.inFlight.length === 0) return lines.length === 0 ? 'nothing in flight' : lines.join('\n');
      lines.push(this.deliver([]));
    }
    throw new Error('messages kept flowing');
  }

  private tick(times: number): string {
    const lines: string[] = [];
    for (let k = 0; k < times; k++) {
      this.tickCount++;
      for (const id of this.sortedIds()) this.nodes.get(id)!.tick(this.tickCount);
      lines.push(...this.collect());
    }
    return lines.length === 0 ? 'ok' : lines.join('\n');
  }

  private status(): string {
    const keys = [...this.keys].sort();
    return this.sortedIds()
      .map((id) => {
        const node = this.nodes.get(id)!;
        const status = node.status();
        const objects = keys.map((key) => {
          const { newest, clean } = node.describeKey(key);
          return `${key}:${clean}${newest > clean ? `+${newest - clean} dirty` : ''}`;
        });
        return `${id}: e=${status.epoch} members=${status.members.join(',')} serving=${status.serving} high=${status.highestSeq} committed=${status.committedSeq} ${objects.join(' ')}`.trimEnd();
      })
      .join('\n');
  }

  private sortedIds(): NodeId[] {
    return [...this.nodes.keys()].sort((a, b) => a - b);
  }
}

function parseMode(text: string | undefined): ReadMode {
  if (text === undefined || text === 'strong') return { kind: 'strong' };
  if (text === 'eventual') return { kind: 'eventual' };
  const match = /^bounded=(\d+)$/.exec(text);
  if (match !== null) return { kind: 'bounded', versionsMax: Number(match[1]) };
  throw new Error(`unknown read mode ${text}`);
}

for (const file of readdirSync(dataDir)
  .filter((name) => name.endsWith('.txt'))
  .sort()) {
  test(`interaction ${file}`, () => {
    const path = join(dataDir, file);
    const text = readFileSync(path, 'utf8');
    const header = text
      .split('\n')
      .filter((line, i, lines) => line.startsWith('#') && lines.slice(0, i).every((l) => l.startsWith('#')))
      .join('\n');
    const interaction = new CraqInteraction();
    const results = parseScript(text).map((d) => ({ command: d.command, expected: d.expected, actual: interaction.run(d.command) }));
    if (update) {
      writeFileSync(
        path,
        formatScript(
          results.map((r) => ({ command: r.command, expected: r.actual })),
          header ? `${header}\n\n` : '',
        ),
      );
      return;
    }
    for (const r of results) assert.equal(r.actual, r.expected, `${file}: ${r.command}`);
  });
}
