// ZooKeeper's four-letter-word commands (docs/zookeeper.md §2.11), in the
// text formats health checks and monitoring parse: `zkServer.sh status` greps `Mode:`,
// Prometheus exporters read `mntr`'s tab-separated lines, kazoo reads the digits of
// `zookeeper.version=` from `envi`. Sent as 4 ASCII bytes on a fresh connection; the reply
// is plain text and the server closes the connection.

import { claimedVersion } from './constants.js';

export const fourLetterWords: ReadonlySet<string> = new Set(['ruok', 'srvr', 'stat', 'mntr', 'conf', 'envi', 'isro', 'cons', 'wchs', 'wchp', 'wchc']);

export interface ConnectionSummary {
  readonly remote: string;
  /** 0 before the session is established. */
  readonly sessionId: number;
  readonly queued: number;
  readonly received: number;
  readonly sent: number;
}

/** What the commands report, read when one is asked. */
export interface ServerFacts {
  readonly mode: 'leader' | 'follower' | 'standalone';
  readonly lastZxid: number;
  readonly nodeCount: number;
  readonly ephemeralsCount: number;
  readonly approximateDataSize: number;
  readonly watchCount: number;
  readonly watchedPaths: number;
  /** path → sessions watching it. */
  readonly watches: ReadonlyMap<string, ReadonlySet<number>>;
  readonly latency: { readonly min: number; readonly avg: number; readonly max: number };
  readonly received: number;
  readonly sent: number;
  readonly outstanding: number;
  readonly connections: readonly ConnectionSummary[];
  /** `conf` lines (clientPort, dataDir, tickTime, ...), in order. */
  readonly conf: readonly (readonly [string, string | number])[];
  /** `envi` lines after zookeeper.version, in order. */
  readonly environment: readonly (readonly [string, string])[];
  /** Open and maximum file descriptors, where the host can tell. */
  readonly fileDescriptors: { readonly open: number; readonly max: number } | undefined;
  /** Followers, when leading. */
  readonly followers: number | undefined;
  readonly syncedFollowers: number | undefined;
}

const versionLine = `Zookeeper version: ${claimedVersion}, built on flotilla`;

export function answerFourLetterWord(word: string, facts: () => ServerFacts): string {
  switch (word) {
    case 'ruok':
      return 'imok';
    case 'isro':
      return 'rw';
    case 'srvr':
      return srvr(facts());
    case 'stat':
      return stat(facts());
    case 'mntr':
      return mntr(facts());
    case 'conf':
      return facts()
        .conf.map(([key, value]) => `${key}=${value}\n`)
        .join('');
    case 'cons':
      return `${facts()
        .connections.map((c) => ` /${c.remote}[1](queued=${c.queued},recved=${c.received},sent=${c.sent}${c.sessionId === 0 ? '' : `,sid=${sessionHex(c.sessionId)}`})\n`)
        .join('')}\n`;
    case 'wchs': {
      const f = facts();
      const watching = new Set<number>();
      for (const sessions of f.watches.values()) for (const id of sessions) watching.add(id);
      return `${watching.size} connections watching ${f.watchedPaths} paths\nTotal watches:${f.watchCount}\n`;
    }
    case 'wchp':
      return [...facts().watches].map(([path, sessions]) => `${path}\n${[...sessions].map((id) => `\t${sessionHex(id)}\n`).join('')}`).join('');
    case 'wchc': {
      const bySession = new Map<number, string[]>();
      for (const [path, sessions] of facts().watches) {
        for (const id of sessions) {
          let paths = bySession.get(id);
          if (paths === undefined) {
            paths = [];
            bySession.set(id, paths);
          }
          paths.push(path);
        }
      }
      return [...bySession].map(([id, paths]) => `${sessionHex(id)}\n${paths.map((path) => `\t${path}\n`).join('')}`).join('');
    }
    case 'envi':
      return `${['Environment:', `zookeeper.version=${claimedVersion}, built on flotilla`, ...facts().environment.map(([key, value]) => `${key}=${value}`)].join('\n')}\n`;
    default:
      return `${word} is not executed because it is not in the whitelist.\n`;
  }
}

function summary(f: ServerFacts): string[] {
  return [
    `Latency min/avg/max: ${f.latency.min}/${javaDouble(round4(f.latency.avg))}/${f.latency.max}`,
    `Received: ${f.received}`,
    `Sent: ${f.sent}`,
    `Connections: ${f.connections.length}`,
    `Outstanding: ${f.outstanding}`,
    `Zxid: 0x${f.lastZxid.toString(16)}`,
    `Mode: ${f.mode}`,
    `Node count: ${f.nodeCount}`,
  ];
}

function srvr(f: ServerFacts): string {
  return `${[versionLine, ...summary(f)].join('\n')}\n`;
}

function stat(f: ServerFacts): string {
  const clients = f.connections.map((c) => ` /${c.remote}[1](queued=${c.queued},recved=${c.received},sent=${c.sent})`);
  return `${[versionLine, 'Clients:', ...clients, '', ...summary(f)].join('\n')}\n`;
}

function mntr(f: ServerFacts): string {
  const lines: [string, string | number][] = [
    ['zk_version', `${claimedVersion}, built on flotilla`],
    ['zk_server_state', f.mode],
    ['zk_avg_latency', javaDouble(round4(f.latency.avg))],
    ['zk_max_latency', f.latency.max],
    ['zk_min_latency', f.latency.min],
    ['zk_packets_received', f.received],
    ['zk_packets_sent', f.sent],
    ['zk_num_alive_connections', f.connections.length],
    ['zk_outstanding_requests', f.outstanding],
    ['zk_znode_count', f.nodeCount],
    ['zk_watch_count', f.watchCount],
    ['zk_ephemerals_count', f.ephemeralsCount],
    ['zk_approximate_data_size', f.approximateDataSize],
  ];
  if (f.fileDescriptors !== undefined) lines.push(['zk_open_file_descriptor_count', f.fileDescriptors.open], ['zk_max_file_descriptor_count', f.fileDescriptors.max]);
  if (f.followers !== undefined) lines.push(['zk_followers', f.followers]);
  if (f.syncedFollowers !== undefined) lines.push(['zk_synced_followers', f.syncedFollowers], ['zk_pending_syncs', 0]);
  return lines.map(([key, value]) => `${key}\t${value}\n`).join('');
}

function sessionHex(id: number): string {
  return `0x${id.toString(16)}`;
}

function round4(value: number): number {
  return Math.round(value * 10000) / 10000;
}

/**
 * A double as Java's Double.toString prints it in ZooKeeper's srvr/mntr: always with a
 * fraction ("0.0", "12.0", "3.6667"), so parsers that expect a decimal number read ours too
 * (JavaScript prints 0 as "0"; found by test/zk/four-letter.test.ts).
 */
function javaDouble(value: number): string {
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}
