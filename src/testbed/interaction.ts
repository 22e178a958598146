// Interaction scripts for the Raft core (STYLE.md 16, in the manner of etcd's datadriven
// tests): cores wired by hand, every Ready printed, messages delivered only when a script
// says so. A script is a list of commands; each is followed by "----" and the expected
// output. No runtime, no simulator: this exercises the core's contract directly.
//
// Commands:
//   add-nodes N [prevote=false] [checkquorum=false] [noop=true] [readmode=lease] [chunk=BYTES]
//             [unsafe=NAME]   (a planted bug of RaftConfig.unsafe, by name)
//   add-node ID              a new, empty node outside the configuration (to be added)
//   read-index ID CONTEXT | transfer-leadership FROM TO | compact ID INDEX TEXT
//   conf-change ID add-learner|promote|remove NODE
//   campaign ID | propose ID TEXT | tick ID [COUNT]
//   tick-election ID         tick until the node campaigns (two election timeouts at most)
//   process-ready ID...      handle one Ready of each node: persist, queue its messages
//   deliver-msgs ID... [drop]  step (or drop) every queued message to those nodes
//   stabilize                process and deliver until nothing changes
//   isolate ID | recover     drop every message to and from ID / stop dropping
//   status ID | log ID

import { assert } from '../stdx/assert.js';
import { Prng } from '../stdx/prng.js';
import { type NodeId, index, nodeId, term } from '../stdx/types.js';
import { RaftCore } from '../raft/core.js';
import { type RaftConfig, defaultTiming } from '../raft/config.js';
import { type ConfChangeType, describeMembership } from '../raft/membership.js';
import type { Message } from '../raft/messages.js';
import { describeEntries, describeMessage, describeReady } from '../raft/describe.js';

export interface Directive {
  readonly command: string;
  readonly expected: string;
}

/** Parses "command\n----\noutput\n\n" blocks; lines starting with # are comments. */
export function parseScript(text: string): Directive[] {
  const directives: Directive[] = [];
  const blocks = text.split(/\n\n+(?=[^\n])/);
  for (const block of blocks) {
    const lines = block.split('\n').filter((line) => !line.startsWith('#'));
    const separator = lines.indexOf('----');
    if (separator < 0) continue;
    directives.push({
      command: lines.slice(0, separator).join(' ').trim(),
      expected: lines
        .slice(separator + 1)
        .join('\n')
        .trimEnd(),
    });
  }
  return directives;
}

export function formatScript(directives: readonly { command: string; expected: string }[], header: string): string {
  return header + directives.map((d) => `${d.command}\n----\n${d.expected}\n`).join('\n');
}

export class Interaction {
  private readonly nodes = new Map<NodeId, RaftCore>();
  private readonly inbox = new Map<NodeId, Message[]>();
  private isolated = new Set<NodeId>();

  run(command: string): string {
    const [verb, ...args] = command.split(/\s+/);
    const ids = () => args.filter((a) => /^\d+$/.test(a)).map((a) => nodeId(Number(a)));
    switch (verb) {
      case 'add-nodes':
        return this.addNodes(Number(args[0]), options(args));
      case 'add-node':
        this.createNode(ids()[0]!, [], options(args));
        return 'ok';
      case 'read-index':
        this.node(ids()[0]!).readIndex(Number(args[1]));
        return 'ok';
      case 'transfer-leadership':
        return this.node(ids()[0]!).transferLeadership(nodeId(Number(args[1]))) ? 'ok' : 'refused';
      case 'compact': {
        const core = this.node(ids()[0]!);
        return core.compact(index(Number(args[1])), new TextEncoder().encode(args.slice(2).join(' '))) ? 'ok' : 'refused';
      }
      case 'conf-change': {
        const type = args[1] as ConfChangeType;
        const result = this.node(ids()[0]!).proposeConfChange({ type, node: nodeId(Number(args[2])) });
        return result.ok ? `ok index=${result.index} term=${result.term}` : `refused: ${result.reason}${result.detail ? ` (${result.detail})` : ''}`;
      }
      case 'campaign':
        this.node(ids()[0]!).campaign();
        return 'ok';
      case 'propose': {
        const result = this.node(ids()[0]!).propose(new TextEncoder().encode(args.slice(1).join(' ')));
        return result.ok ? `ok index=${result.index} term=${result.term}` : `refused: ${result.reason}`;
      }
      case 'tick': {
        const count = Number(args[1] ?? 1);
        for (let i = 0; i < count; i++) this.node(ids()[0]!).tick();
        return 'ok';
      }
      case 'tick-election': {
        // Ticks until the node has something to do (it campaigned), at most two timeouts.
        const core = this.node(ids()[0]!);
        for (let i = 0; i < 2 * defaultTiming.electionTicks && !core.hasReady(); i++) core.tick();
        return `role=${core.role} term=${core.term}`;
      }
      case 'process-ready':
        return ids()
          .map((id) => this.processReady(id))
          .join('\n');
      case 'deliver-msgs':
        return ids()
          .map((id) => this.deliver(id, args.includes('drop')))
          .join('\n');
      case 'stabilize':
        return this.stabilize();
      case 'isolate':
        this.isolated.add(ids()[0]!);
        return 'ok';
      case 'recover':
        this.isolated = new Set();
        return 'ok';
      case 'status':
        return this.status(ids()[0]!);
      case 'log': {
        const log = this.node(ids()[0]!).log;
        const entries = log.lastIndex() >= log.firstIndex() ? log.slice(log.firstIndex(), log.lastIndex(), Infinity) : [];
        return `snapshot=${log.snapshotTerm}/${log.snapshotIndex} last=${log.lastIndex()} commit=${log.committed} applied=${log.applied} ${describeEntries(entries)}`;
      }
      default:
        throw new Error(`unknown command "${verb}"`);
    }
  }

  private addNodes(count: number, flags: Record<string, string>): string {
    const voters = Array.from({ length: count }, (_, i) => nodeId(i + 1));
    for (const id of voters) this.createNode(id, voters, flags);
    return `ok voters=${voters.join(',')}`;
  }

  private createNode(id: NodeId, voters: NodeId[], flags: Record<string, string>): void {
    const config: RaftConfig = {
      ...defaultTiming,
      id,
      voters,
      preVote: flags['prevote'] !== 'false',
      checkQuorum: flags['checkquorum'] !== 'false',
      noopOnElection: flags['noop'] === 'true',
      readMode: flags['readmode'] === 'lease' ? 'lease' : 'safe',
      snapshotChunkBytes: Number(flags['chunk'] ?? defaultTiming.snapshotChunkBytes),
      // A planted bug by name, e.g. unsafe=commitPreviousTermByCounting (tests only).
      ...(flags['unsafe'] === undefined ? {} : { unsafe: { [flags['unsafe']]: true } }),
    };
    const initial = { hardState: { term: term(0), vote: nodeId(0), commit: index(0) }, entries: [], snapshot: undefined };
    this.nodes.set(id, new RaftCore(config, new Prng(id), initial));
    this.inbox.set(id, []);
  }

  /** The core of node `id`, for tests that check its state directly. */
  core(id: NodeId): RaftCore {
    return this.node(id);
  }

  private node(id: NodeId): RaftCore {
    const core = this.nodes.get(id);
    assert(core !== undefined, `no node ${id}`);
    return core;
  }

  private processReady(id: NodeId): string {
    const core = this.node(id);
    if (!core.hasReady()) return `> ${id}: no Ready`;
    const ready = core.ready();
    for (const m of ready.messages) {
      if (this.isolated.has(m.from) || this.isolated.has(m.to)) continue;
      this.inbox.get(m.to)?.push(m);
    }
    core.advance(ready);
    return [`> ${id} handling Ready`, ...describeReady(ready).map((line) => `  ${line}`)].join('\n');
  }

  private deliver(id: NodeId, drop: boolean): string {
    const messages = this.inbox.get(id) ?? [];
    this.inbox.set(id, []);
    if (messages.length === 0) return `> ${id}: no messages`;
    const lines = messages.map((m) => `  ${drop ? 'dropped' : 'stepped'} ${describeMessage(m)}`);
    if (!drop) for (const m of messages) this.node(id).step(m);
    return [`> ${id} receiving messages`, ...lines].join('\n');
  }

  private stabilize(): string {
    const out: string[] = [];
    const ids = [...this.nodes.keys()].sort((a, b) => a - b);
    for (let round = 0; round < 100; round++) {
      let progressed = false;
      for (const id of ids) {
        if (this.node(id).hasReady()) {
          out.push(this.processReady(id));
          progressed = true;
        }
      }
      for (const id of ids) {
        if ((this.inbox.get(id) ?? []).length > 0) {
          out.push(this.deliver(id, false));
          progressed = true;
        }
      }
      if (!progressed) return out.join('\n') || 'ok';
    }
    throw new Error('stabilize did not settle within 100 rounds');
  }

  private status(id: NodeId): string {
    const core = this.node(id);
    const log = core.log;
    const lines = [
      `${id}: ${core.role} term=${core.term} vote=${core.vote} leader=${core.leader} first=${log.firstIndex()} last=${log.lastIndex()} commit=${log.committed} applied=${log.applied} ${describeMembership(core.membership)}`,
    ];
    for (const [peer, text] of core.describeProgress()) lines.push(`  ${peer}: ${text}`);
    return lines.join('\n');
  }
}

function options(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of args) {
    const [key, value] = arg.split('=');
    if (value !== undefined) out[key!] = value;
  }
  return out;
}
