// platform/rpc.ts over real loopback sockets: calls, concurrency, and that malformed or
// oversized frames close only the offending connection.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { Packr } from 'msgpackr';
import { encodeFrame } from '../../src/platform/framing.js';
import { RpcError, connectRpc, startRpcServer, type RpcServer } from '../../src/platform/rpc.js';

interface Add {
  a: number;
  b: number;
}

function decodeAdd(value: unknown): Add {
  const record = value as Partial<Add> | null;
  if (typeof record !== 'object' || record === null || typeof record.a !== 'number' || typeof record.b !== 'number') {
    throw new Error('expected {a: number, b: number}');
  }
  return { a: record.a, b: record.b };
}

function decodeSum(value: unknown): number {
  if (typeof value !== 'number') throw new Error('expected a number');
  return value;
}

async function adder(t: TestContext, options: { frameBytesMax?: number } = {}) {
  const log: string[] = [];
  const disconnects: number[] = [];
  const server: RpcServer = await startRpcServer<Add, number>({
    port: 0,
    decodeRequest: decodeAdd,
    handle: async (_connection, { a, b }) => {
      if (a < 0) throw new Error('negative');
      return a + b;
    },
    onDisconnect: (connection) => disconnects.push(connection),
    log: (message) => log.push(message),
    ...options,
  });
  t.after(() => server.close());
  const connect = async () => {
    const client = await connectRpc<Add, number>({ host: '127.0.0.1', port: server.port, decodeResponse: decodeSum });
    t.after(() => client.close());
    return client;
  };
  return { server, log, disconnects, connect };
}

/** A raw socket that sends `bytes` and resolves when the server closes it. */
function sendRaw(port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    socket.on('error', reject);
    socket.on('close', () => resolve());
    socket.connect(port, '127.0.0.1', () => socket.write(bytes));
  });
}

test('calls return their own answers, many in flight at once', async (t) => {
  const { connect } = await adder(t);
  const client = await connect();
  const sums = await Promise.all(Array.from({ length: 200 }, (_, i) => client.call({ a: i, b: 1000 })));
  assert.deepEqual(
    sums,
    Array.from({ length: 200 }, (_, i) => i + 1000),
  );
});

test('a handler error reaches the caller as RpcError remote; the connection stays up', async (t) => {
  const { connect } = await adder(t);
  const client = await connect();
  await assert.rejects(client.call({ a: -1, b: 0 }), (error: unknown) => error instanceof RpcError && error.code === 'remote' && error.message === 'negative');
  assert.equal(await client.call({ a: 1, b: 2 }), 3);
});

test('malformed and oversized frames close that connection only, with a logged reason', async (t) => {
  const { server, log, connect } = await adder(t, { frameBytesMax: 1024 });
  const bystander = await connect();
  const packr = new Packr({ useRecords: false });
  const cases = [
    encodeFrame(Buffer.from([0xc1, 0xff, 0x00])), // Not MessagePack.
    encodeFrame(packr.pack({ not: 'an envelope' })),
    encodeFrame(packr.pack([99, 1, { a: 1, b: 2 }])), // Unknown version.
    encodeFrame(packr.pack([1, -5, { a: 1, b: 2 }])), // Bad call id.
    encodeFrame(packr.pack([1, 1, { a: 'x' }])), // Body the decoder refuses.
    Buffer.from([0xff, 0xff, 0xff, 0xff]), // Announces a 4 GiB frame.
  ];
  for (const bytes of cases) await sendRaw(server.port, bytes);
  assert.equal(log.length, cases.length, log.join('\n'));
  assert.match(log.at(-1)!, /exceeds the limit of 1024 bytes/);
  assert.equal(await bystander.call({ a: 2, b: 2 }), 4, 'other connections are unaffected');
});

test('a closed server fails pending and later calls with RpcError, and reports disconnects', async (t) => {
  const { server, disconnects, connect } = await adder(t);
  const client = await connect();
  assert.equal(await client.call({ a: 1, b: 1 }), 2);
  await server.close();
  await client.closed;
  await assert.rejects(client.call({ a: 1, b: 1 }), (error: unknown) => error instanceof RpcError && error.code === 'closed');
  assert.deepEqual(disconnects, [1]);
  await assert.rejects(connectRpc({ host: '127.0.0.1', port: server.port, decodeResponse: decodeSum }), (error: unknown) => error instanceof RpcError && error.code === 'unavailable');
});
