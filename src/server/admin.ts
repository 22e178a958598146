// The admin HTTP API of a member, as a hono app (testable with app.request(), no socket):
//   GET /status   JSON: id, pid, role, term, leader, commit, applied, lastIndex, log and
//                 snapshot bytes, peers with their addresses, connection and progress,
//                 and the ZooKeeper group's role, leader and term under `zk`
//   GET /metrics  Prometheus text (metrics.ts)
// platform/http-admin.ts serves it on the admin port.

import { Hono } from 'hono';

export interface AdminSources {
  status(): Promise<object>;
  metrics(): Promise<{ contentType: string; body: string }>;
}

export function adminApp(sources: AdminSources): Hono {
  const app = new Hono();
  app.get('/', (c) => c.json({ endpoints: ['/status', '/metrics'] }));
  app.get('/status', async (c) => c.json(await sources.status()));
  app.get('/metrics', async (c) => {
    const { contentType, body } = await sources.metrics();
    return c.body(body, 200, { 'content-type': contentType });
  });
  app.notFound((c) => c.json({ error: 'not found', endpoints: ['/status', '/metrics'] }, 404));
  app.onError((error, c) => c.json({ error: error.message }, 500));
  return app;
}
