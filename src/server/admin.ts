// The admin HTTP API of a member, as a hono app (testable with app.request(), no socket):
//   GET /status   JSON: id, pid, role, term, leader, commit, applied, lastIndex, log and
//                 snapshot bytes, peers with their addresses, connection and progress,
//                 and the ZooKeeper group's role, leader and term under `zk`
//   GET /metrics  Prometheus text (metrics.ts)
//   GET /backup   a backup of every group (backup.ts), confirmed through ReadIndex, so it
//                 holds every write acknowledged before the request
// platform/http-admin.ts serves it on the admin port.

import { Hono } from 'hono';

export interface AdminSources {
  status(): Promise<object>;
  metrics(): Promise<{ contentType: string; body: string }>;
  backup(): Promise<Uint8Array>;
}

export function adminApp(sources: AdminSources): Hono {
  const app = new Hono();
  const endpoints = ['/status', '/metrics', '/backup'];
  app.get('/', (c) => c.json({ endpoints }));
  app.get('/status', async (c) => c.json(await sources.status()));
  app.get('/metrics', async (c) => {
    const { contentType, body } = await sources.metrics();
    return c.body(body, 200, { 'content-type': contentType });
  });
  app.get('/backup', async (c) => {
    const bytes = await sources.backup();
    return c.body(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, 200, { 'content-type': 'application/octet-stream' });
  });
  app.notFound((c) => c.json({ error: 'not found', endpoints }, 404));
  app.onError((error, c) => c.json({ error: error.message }, 500));
  return app;
}
