// A scripted ZooKeeper server for the client tests that need control a real server does
// not give: exact bytes of the handshake, replies out of order, a chosen zxid. It accepts
// any ConnectRequest (granting the requested timeout and a fixed session), records every
// frame, and hands each request to the test's `onRequest`, which answers (or not).

import { FramedServer, type FramedConnection } from '../../src/platform/server-client-port.js';
import type { JuteWriter } from '../../src/zk/jute.js';
import { decodeConnectRequest, decodeRequest, encodeConnectResponse, encodeNotification, encodeReply, type ConnectRequest, type RequestFrame, type WatcherEvent } from '../../src/zk/records.js';

export const FAKE_SESSION_ID = 0x1234_5678_9abcn;
export const FAKE_PASSWD = new Uint8Array(16).fill(7);

export interface FakeConnection {
  readonly index: number;
  readonly connect: ConnectRequest;
  readonly connectBytes: number;
  readonly requests: RequestFrame[];
  readonly raw: FramedConnection;
  /** Sends ReplyHeader(xid, zxid, err) + the body `body` writes (when err is 0). */
  reply(xid: number, zxid: bigint, err?: number, body?: (w: JuteWriter) => void): void;
  /** Sends a watch notification (xid -1). */
  notify(event: WatcherEvent): void;
}

export interface FakeServer {
  readonly connectString: string;
  readonly connections: FakeConnection[];
  stop(): Promise<void>;
}

const silentLogger = { info: () => {}, warn: () => {} };

export async function startFakeServer(onRequest: (connection: FakeConnection, frame: RequestFrame) => void): Promise<FakeServer> {
  const connections: FakeConnection[] = [];
  const byRaw = new Map<number, FakeConnection>();
  const server = await FramedServer.start({
    host: '127.0.0.1',
    port: 0,
    name: 'fake-zk',
    logger: silentLogger,
    onFrame: (raw, body) => {
      const known = byRaw.get(raw.id);
      if (known === undefined) {
        const connect = decodeConnectRequest(body);
        const connection: FakeConnection = {
          index: connections.length,
          connect,
          connectBytes: body.length,
          requests: [],
          raw,
          reply: (xid, zxid, err = 0, replyBody) => raw.send(encodeReply(xid, zxid, err, replyBody)),
          notify: (event) => raw.send(encodeNotification(-1n, event)),
        };
        connections.push(connection);
        byRaw.set(raw.id, connection);
        raw.send(encodeConnectResponse({ protocolVersion: 0, timeOut: connect.timeOut, sessionId: FAKE_SESSION_ID, passwd: FAKE_PASSWD, readOnly: false }));
        return;
      }
      const frame = decodeRequest(body);
      known.requests.push(frame);
      onRequest(known, frame);
    },
  });
  const address = server.address();
  return {
    connectString: `127.0.0.1:${address.port}`,
    connections,
    stop: () => server.close(),
  };
}
