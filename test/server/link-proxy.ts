// One TCP proxy per directed peer link of a TestCluster, for the Jepsen-style tests
// (test/server/jepsen.test.ts, test/etcd/jepsen.test.ts): member i dials member j at proxy
// i→j (TestCluster.dialPort), so a nemesis isolates a member by cutting its proxies while
// the members run unchanged. Start the proxies before the members: a member learns the
// addresses it dials from its --peers flag when it starts.

import { createServer, connect, type Server, type Socket } from 'node:net';
import type { TestCluster } from './helpers.js';

/** A TCP forwarder for one directed peer link that the nemesis can cut and heal. */
export class LinkProxy {
  private readonly sockets = new Set<Socket>();
  private cut = false;
  /** Connections this proxy destroyed or refused because it was cut: evidence of an isolation. */
  cutConnections = 0;
  /** Of those, the ones that were open when the link was cut (not refused later). */
  liveConnectionsCut = 0;
  private constructor(private readonly server: Server) {}

  static start(targetPort: number): Promise<LinkProxy> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      const proxy = new LinkProxy(server);
      server.on('connection', (inbound) => proxy.accept(inbound, targetPort));
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(proxy));
    });
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  setCut(cut: boolean): void {
    this.cut = cut;
    if (!cut) return;
    // Each connection is two sockets here (inbound and outbound); count connections.
    const live = Math.ceil(this.sockets.size / 2);
    this.cutConnections += live;
    this.liveConnectionsCut += live;
    for (const socket of this.sockets) socket.destroy();
  }

  close(): Promise<void> {
    this.setCut(true);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(inbound: Socket, targetPort: number): void {
    if (this.cut) {
      this.cutConnections++;
      return void inbound.destroy();
    }
    const outbound = connect({ host: '127.0.0.1', port: targetPort });
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      this.sockets.add(from);
      from.on('error', () => {});
      from.on('close', () => {
        this.sockets.delete(from);
        to.destroy();
      });
      from.pipe(to);
    }
  }
}

/** A LinkProxy for every directed link between the members of a cluster. */
export class Proxies {
  private readonly links = new Map<string, LinkProxy>();

  /** Starts the proxies and points `cluster.dialPort` at them (before any member starts). */
  static async start(cluster: TestCluster): Promise<Proxies> {
    const proxies = new Proxies();
    for (const from of cluster.ids) {
      for (const to of cluster.ids) if (from !== to) proxies.links.set(`${from}>${to}`, await LinkProxy.start(cluster.peerPort(to)));
    }
    cluster.dialPort = (from, to) => proxies.links.get(`${from}>${to}`)!.port;
    return proxies;
  }

  /** Cuts (or heals) every link to and from `id`. */
  isolate(id: number, cut: boolean): void {
    for (const [name, link] of this.links) if (name.split('>').includes(String(id))) link.setCut(cut);
  }

  /** Connections cut or refused so far, over all links. */
  cutConnections(): number {
    let count = 0;
    for (const link of this.links.values()) count += link.cutConnections;
    return count;
  }

  /** Connections that were open when their link was cut, so far, over all links. */
  liveConnectionsCut(): number {
    let count = 0;
    for (const link of this.links.values()) count += link.liveConnectionsCut;
    return count;
  }

  healAll(): void {
    for (const link of this.links.values()) link.setCut(false);
  }

  async close(): Promise<void> {
    await Promise.all([...this.links.values()].map((link) => link.close()));
  }
}
