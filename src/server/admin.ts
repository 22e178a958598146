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
//   GET /         the live dashboard (dashboard/index.html) for a browser (Accept: text/html);
//                 the list of endpoints as JSON for anything else
//   GET /dashboard/events    server-sent events: a JSON snapshot of every group, once a second
//   GET /dashboard/snapshot  one such snapshot; GET /dashboard/member: this member's own view
//                 (what the other members' dashboards ask for); /dashboard/app.js, app.css
//   POST /faults/stop|restart|pause|resume|campaign|link|link-end  the dashboard's fault
//                 buttons (faults.ts), a JSON body each; 403 unless --allow-faults
//   GET /browse/kv?prefix=&after=&limit=, GET /browse/zk?path=  the dashboard's key and
//                 znode browsers: this member's applied state (browse.ts)
// platform/http-admin.ts serves it on the admin port.

import { Hono } from 'hono';
import { faultsNotAllowed } from './faults.js';

export interface AdminSources {
  status(): Promise<object>;
  metrics(): Promise<{ contentType: string; body: string }>;
  backup(): Promise<Uint8Array>;
  members(): object;
  changeMembers(body: unknown): Promise<{ status: number; body: object }>;
  dashboard?: DashboardRoutes;
  /** The fault buttons (faults.ts); undefined: this member refuses them (403). */
  faults?: { handle(action: string, body: unknown): Promise<{ status: number; body: object }> };
  /** The key and znode browsers (browse.ts). */
  browse?: { kv(params: URLSearchParams): { status: number; body: object }; zk(params: URLSearchParams): { status: number; body: object } };
}

/** The dashboard's routes (dashboard.ts); assets by file name, undefined for a name not served. */
export interface DashboardRoutes {
  asset(name: string): { contentType: string; body: Uint8Array } | undefined;
  member(): object;
  snapshot(): Promise<object>;
  subscribe(subscriber: { send(json: string): number; close(): void }): (() => void) | undefined;
}

export function adminApp(sources: AdminSources): Hono {
  const app = new Hono();
  const dashboard = sources.dashboard;
  const endpoints = [
    '/status',
    '/metrics',
    '/backup',
    '/members',
    ...(dashboard === undefined ? [] : ['/dashboard/events', '/dashboard/snapshot', '/dashboard/member']),
    ...(sources.browse === undefined ? [] : ['/browse/kv', '/browse/zk']),
  ];
  app.get('/', (c) => {
    if (dashboard !== undefined && (c.req.header('accept') ?? '').includes('text/html')) return serveAsset(dashboard, 'index.html');
    return c.json({ endpoints });
  });
  if (dashboard !== undefined) routeDashboard(app, dashboard);
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
  if (sources.browse !== undefined) {
    const browse = sources.browse;
    app.get('/browse/kv', (c) => {
      const answer = browse.kv(new URL(c.req.url).searchParams);
      return c.json(answer.body, answer.status as 200);
    });
    app.get('/browse/zk', (c) => {
      const answer = browse.zk(new URL(c.req.url).searchParams);
      return c.json(answer.body, answer.status as 200);
    });
  }
  app.post('/faults/:action', async (c) => {
    if (sources.faults === undefined) return c.json(faultsNotAllowed.body, 403);
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ error: 'the body is not JSON' }, 400);
    }
    const answer = await sources.faults.handle(c.req.param('action'), body);
    return c.json(answer.body, answer.status as 200);
  });
  app.notFound((c) => c.json({ error: 'not found', endpoints }, 404));
  app.onError((error, c) => c.json({ error: error.message }, 500));
  return app;
}

function serveAsset(dashboard: DashboardRoutes, name: string): Response {
  const asset = dashboard.asset(name);
  if (asset === undefined) return Response.json({ error: `no dashboard file ${name}` }, { status: 404 });
  return new Response(asset.body.slice(), { headers: { 'content-type': asset.contentType, 'cache-control': 'no-cache' } });
}

function routeDashboard(app: Hono, dashboard: DashboardRoutes): void {
  app.get('/dashboard', () => serveAsset(dashboard, 'index.html'));
  app.get('/dashboard/app.js', () => serveAsset(dashboard, 'app.js'));
  app.get('/dashboard/app.css', () => serveAsset(dashboard, 'app.css'));
  app.get('/dashboard/member', (c) => c.json(dashboard.member()));
  app.get('/dashboard/snapshot', async (c) => c.json(await dashboard.snapshot()));
  app.get('/dashboard/events', (c) => {
    const stream = eventStream(dashboard);
    if (stream === undefined) return c.json({ error: 'too many dashboards are open on this member; close one and retry' }, 503);
    return new Response(stream, { headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' } });
  });
}

/** One page's server-sent events: each snapshot as a `data:` line; undefined if the feed refuses another page. */
function eventStream(dashboard: DashboardRoutes): ReadableStream<Uint8Array> | undefined {
  const encoder = new TextEncoder();
  let unsubscribe: (() => void) | undefined;
  let closed = false;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      // The browser reconnects after a second if the stream ends (the member restarted).
      controller.enqueue(encoder.encode('retry: 1000\n\n'));
      unsubscribe = dashboard.subscribe({
        send(json) {
          if (!closed) controller.enqueue(encoder.encode(`data: ${json}\n\n`));
          // desiredSize is 1 minus the chunks queued (the default high-water mark is one chunk).
          return 1 - (controller.desiredSize ?? 1);
        },
        close() {
          if (closed) return;
          closed = true;
          controller.close();
        },
      });
    },
    cancel() {
      closed = true;
      unsubscribe?.();
    },
  });
  return unsubscribe === undefined ? undefined : stream;
}
