// A TCP proxy between a ZkClient and a real ZooKeeper that can misbehave on command, to
// test the client's connection-loss paths against the real server:
//
//   cut()        destroy every proxied connection and refuse new ones until heal()
//   blackhole()  keep connections open but forward nothing either way (a silent server),
//                and accept-but-ignore new ones, until heal() (which drops them)
//   loseReplyAfter(opcode)  forward the next request with that opcode, then forward
//                nothing back and drop the connection 200 ms later: the server applies the
//                request but the client never sees the reply
//
// It also records the opcode of every frame clients send (the first frame of a connection
// is its ConnectRequest, recorded as 'connect'), so tests can count pings and setWatches.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { FrameDecoder } from '../../src/platform/framing.js';

const LOSE_REPLY_DROP_MS = 200;

export interface ProxyFrame {
  readonly connection: number;
  /** 'connect' for a ConnectRequest, else the RequestHeader's opcode. */
  readonly opcode: number | 'connect';
  readonly xid: number | undefined;
  readonly body: Buffer;
}

export interface ZkProxy {
  readonly connectString: string;
  readonly frames: ProxyFrame[];
  cut(): void;
  blackhole(): void;
  heal(): void;
  loseReplyAfter(opcode: number): void;
  acceptedCount(): number;
  stop(): Promise<void>;
}

interface Pair {
  readonly id: number;
  readonly downstream: Socket;
  readonly upstream: Socket;
  muted: boolean;
}

export function startProxy(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<ZkProxy> {
  const pairs = new Set<Pair>();
  const frames: ProxyFrame[] = [];
  let mode: 'forward' | 'cut' | 'blackhole' = 'forward';
  let loseAfter: number | undefined;
  let accepted = 0;

  const destroy = (pair: Pair) => {
    pair.downstream.destroy();
    pair.upstream.destroy();
    pairs.delete(pair);
  };

  const record = (pair: Pair, decoder: FrameDecoder, chunk: Buffer) => {
    for (const body of decoder.push(chunk)) {
      const first = !frames.some((frame) => frame.connection === pair.id);
      const xid = first || body.length < 8 ? undefined : body.readInt32BE(0);
      const opcode = first ? 'connect' : body.readInt32BE(4);
      frames.push({ connection: pair.id, opcode, xid, body });
      if (opcode === loseAfter) {
        loseAfter = undefined;
        pair.muted = true;
        pair.upstream.write(chunk);
        setTimeout(() => destroy(pair), LOSE_REPLY_DROP_MS);
        return true;
      }
    }
    return false;
  };

  const server: Server = createServer((downstream) => {
    accepted++;
    if (mode === 'cut') {
      downstream.destroy();
      return;
    }
    const upstream = connect({ host: upstreamHost, port: upstreamPort });
    const pair: Pair = { id: accepted, downstream, upstream, muted: mode === 'blackhole' };
    pairs.add(pair);
    const decoder = new FrameDecoder(8 << 20);
    for (const socket of [downstream, upstream]) {
      socket.setNoDelay(true);
      socket.on('error', () => {});
      socket.once('close', () => destroy(pair));
    }
    downstream.on('data', (chunk: Buffer) => {
      if (pair.muted) return;
      if (record(pair, decoder, chunk)) return;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.muted) downstream.write(chunk);
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (typeof address !== 'object' || address === null) {
        reject(new Error('proxy: no address'));
        return;
      }
      resolve({
        connectString: `127.0.0.1:${address.port}`,
        frames,
        cut: () => {
          mode = 'cut';
          for (const pair of [...pairs]) destroy(pair);
        },
        blackhole: () => {
          mode = 'blackhole';
          for (const pair of pairs) pair.muted = true;
        },
        heal: () => {
          if (mode === 'blackhole') for (const pair of [...pairs]) destroy(pair);
          mode = 'forward';
        },
        loseReplyAfter: (opcode) => {
          loseAfter = opcode;
        },
        acceptedCount: () => accepted,
        stop: () => {
          for (const pair of [...pairs]) destroy(pair);
          return new Promise<void>((done) => server.close(() => done()));
        },
      });
    });
  });
}
