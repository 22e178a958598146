// The admin HTTP API of a member, as a hono app (testable with app.request(), no socket):
//   GET /status   JSON: id, pid, role, term, leader, commit, applied, lastIndex, log and
//                 snapshot bytes, peers with their addresses, connection and progress,
//                 and the ZooKeeper group's role, leader and term under `zk`
//   GET /metrics  Prometheus text (metrics.ts)
//   GET /backup   a backup of every group (backup.ts), confirmed through ReadIndex, so it
//                 holds every write acknowledged before the request
//   GET /members  each group's voters and learners, and their progress where this member leads
//   POST /members {action: add|promote|remove|transfer-leader, id, peer?, group?}: a
//                 membership change, run on (or forwarded to) each group's leader
// platform/http-admin.ts serves it on the admin port.

import { Hono } from 'hono';

export interface AdminSources {
  status(): Promise<object>;
  metrics(): Promise<{ contentType: string; body: string }>;
  backup(): Promise<Uint8Array>;
  members(): object;
  changeMembers(body: unknown): Promise<{ status: number; body: object }>;
}

export function adminApp(sources: AdminSources): Hono {
  const app = new Hono();
  const endpoints = ['/status', '/metrics', '/backup', '/members'];
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
  app.get('/members', (c) => c.json(sources.members()));
  app.post('/members', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ error: 'the body is not JSON' }, 400);
    }
    const answer = await sources.changeMembers(body);
    return c.json(answer.body, answer.status as 200);
  });
  app.notFound((c) => c.json({ error: 'not found', endpoints }, 404));
  app.onError((error, c) => c.json({ error: error.message }, 500));
  return app;
}
