// Bad input on the etcd port never takes a member down: random bytes and a broken HTTP/2
// stream on raw TCP, gRPC calls whose protobuf bodies are random bytes (seeded), calls to
// methods that do not exist, and an oversized request. Each gets an error (or a closed
// connection); afterwards the member still answers etcdctl, and its log says why.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Prng } from '../../src/stdx/prng.js';
import { TestCluster, waitFor } from '../server/helpers.js';
import { etcdctl, etcdSkipReason } from './etcdctl.js';

function rawSend(port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes));
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.setTimeout(500, () => socket.destroy());
  });
}

function unary(client: grpc.Client, path: string, body: Buffer): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (value: Buffer) => value,
      (value: Buffer) => value,
      body,
      (error) => resolve(error === null ? { code: 0, details: '' } : { code: error.code, details: error.details }),
    );
  });
}

test('garbage on the etcd port: errors and closed streams, never a crash', { timeout: 120_000 }, async (t) => {
  const skip = etcdSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const cluster = await TestCluster.start(t, 3);
  const port = cluster.ports.get(1)!.etcd;
  const endpoint = `127.0.0.1:${port}`;
  await waitFor('the etcd group answers', 20_000, async () => ((await etcdctl(endpoint, ['put', 'before', 'ok'])).code === 0 ? true : undefined));
  const prng = new Prng(20261207);

  // Raw TCP: random bytes, and the HTTP/2 preface followed by random frames.
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  for (let i = 0; i < 8; i++) {
    const noise = Buffer.from(Array.from({ length: prng.range(1, 2000) }, () => prng.int(256)));
    await rawSend(port, i % 2 === 0 ? noise : Buffer.concat([preface, noise]));
  }

  // gRPC calls with random protobuf bodies, to every KV method and to methods that do not exist.
  const client = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const outcomes = new Map<number, number>();
  for (let i = 0; i < 200; i++) {
    const method = ['Range', 'Put', 'DeleteRange', 'Txn', 'Compact'][i % 5]!;
    const body = Buffer.from(Array.from({ length: prng.range(0, 300) }, () => prng.int(256)));
    const { code } = await unary(client, `/etcdserverpb.KV/${method}`, body);
    outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
  }
  const missing = await unary(client, '/etcdserverpb.Nothing/Here', Buffer.alloc(0));
  assert.equal(missing.code, grpc.status.UNIMPLEMENTED);
  const huge = await unary(client, '/etcdserverpb.KV/Put', Buffer.alloc(3 * 1024 * 1024, 1));
  assert.equal(huge.code, grpc.status.RESOURCE_EXHAUSTED, huge.details);
  t.diagnostic(`random bodies: ${[...outcomes].map(([code, n]) => `${grpc.status[code]} ×${n}`).join(', ')}`);
  assert.ok((outcomes.get(grpc.status.INTERNAL) ?? 0) + (outcomes.get(grpc.status.INVALID_ARGUMENT) ?? 0) > 0, 'random bodies were refused');

  // Still serving, every member, and nothing was lost.
  for (const id of cluster.ids) {
    const get = await etcdctl(`127.0.0.1:${cluster.ports.get(id)!.etcd}`, ['get', 'before', '--print-value-only']);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout.trim(), 'ok');
  }
  assert.equal((await etcdctl(endpoint, ['put', 'after', 'ok'])).code, 0);
  assert.equal(cluster.running().length, 3, 'no member exited');
});
