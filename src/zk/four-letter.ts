// ZooKeeper's four-letter-word commands (../shared/reference/zookeeper.md §2.11), in the
// text formats health checks and monitoring parse: `zkServer.sh status` greps `Mode:`,
// Prometheus exporters read `mntr`'s tab-separated lines, kazoo reads the digits of
// `zookeeper.version=` from `envi`. Sent as 4 ASCII bytes on a fresh connection; the reply
// is plain text and the server closes the connection.

import { claimedVersion } from './constants.js';

export const fourLetterWords: ReadonlySet<string> = new Set(['ruok', 'srvr', 'stat', 'mntr', 'conf', 'envi', 'isro']);

export interface ConnectionSummary {
  readonly remote: string;
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
  readonly latency: { readonly min: number; readonly avg: number; readonly max: number };
  readonly received: number;
  readonly sent: number;
  readonly outstanding: number;
  readonly connections: readonly ConnectionSummary[];
  /** `conf` lines (clientPort, dataDir, tickTime, ...), in order. */
  readonly conf: readonly (readonly [string, string | number])[];
  /** `envi` lines after zookeeper.version, in order. */
  readonly environment: readonly (readonly [string, string])[];
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
    case 'envi':
      return ['Environment:', `zookeeper.version=${claimedVersion}, built on flotilla`, ...facts().environment.map(([key, value]) => `${key}=${value}`)].join('\n') + '\n';
    default:
      return `${word} is not executed because it is not in the whitelist.\n`;
  }
}

function summary(f: ServerFacts): string[] {
  return [
    `Latency min/avg/max: ${f.latency.min}/${round4(f.latency.avg)}/${f.latency.max}`,
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
  return [versionLine, ...summary(f)].join('\n') + '\n';
}

function stat(f: ServerFacts): string {
  const clients = f.connections.map((c) => ` /${c.remote}[1](queued=${c.queued},recved=${c.received},sent=${c.sent})`);
  return [versionLine, 'Clients:', ...clients, '', ...summary(f)].join('\n') + '\n';
}

function mntr(f: ServerFacts): string {
  const lines: [string, string | number][] = [
    ['zk_version', `${claimedVersion}, built on flotilla`],
    ['zk_server_state', f.mode],
    ['zk_avg_latency', round4(f.latency.avg)],
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
  if (f.followers !== undefined) lines.push(['zk_followers', f.followers]);
  if (f.syncedFollowers !== undefined) lines.push(['zk_synced_followers', f.syncedFollowers], ['zk_pending_syncs', 0]);
  return lines.map(([key, value]) => `${key}\t${value}\n`).join('');
}

function round4(value: number): number {
  return Math.round(value * 10000) / 10000;
}
