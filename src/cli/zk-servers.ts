// The --zk / --server option of the commands that talk to a ZooKeeper service (zk, craq, pb):
// a comma-separated host:port list, `npm start`'s three ZooKeeper ports by default.

import { InvalidArgumentError } from 'commander';

/** `npm start`'s ZooKeeper ports. */
export const localZkServers: readonly string[] = ['127.0.0.1:2181', '127.0.0.1:2182', '127.0.0.1:2183'];

/** Parses "host:port,host:port" (IPv6 hosts in brackets); a bad entry names itself. */
export function zkServerList(raw: string): string[] {
  const servers = raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  if (servers.length === 0) throw new InvalidArgumentError('no servers given');
  for (const server of servers) {
    const match = /^\[?[^\]\s]+?\]?:(\d+)$/.exec(server);
    if (match === null || Number(match[1]) < 1 || Number(match[1]) > 65_535) throw new InvalidArgumentError(`${JSON.stringify(server)} is not host:port`);
  }
  return servers;
}
