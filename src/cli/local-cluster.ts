// The local cluster `flotilla start` (npm start) runs, and whose addresses the other
// commands use by default: three members on 127.0.0.1 with fixed ports.

export const localCluster = {
  memberCount: 3,
  host: '127.0.0.1',
  peerPortBase: 7100,
  clientPortBase: 7200,
  adminPortBase: 7300,
  /** ZooKeeper's usual port and the next two. */
  zkPortBase: 2180,
  /** etcd's usual port, and the ports etcd's own local clusters (Procfile) use for members 2 and 3. */
  etcdPorts: [2379, 22379, 32379],
  secretBytes: 32,
  /** `flotilla start --sharded`: every member hosts the shard controller and three key/value groups (server/shard-layout.ts). */
  shardLayout: 'ctrl=1,2,3;100=1,2,3;101=1,2,3;102=1,2,3',
  /** How long the members may take to open their ports. */
  startTimeoutMs: 30_000,
  /** After Ctrl-C, members still running after this are killed. */
  stopTimeoutMs: 15_000,
  clientAddresses(): string[] {
    return memberIds().map((id) => `${this.host}:${this.clientPortBase + id}`);
  },
  adminAddresses(): string[] {
    return memberIds().map((id) => `${this.host}:${this.adminPortBase + id}`);
  },
} as const;

export function memberIds(): number[] {
  return Array.from({ length: localCluster.memberCount }, (_, i) => i + 1);
}
