// Primary/backup as real processes: three `flotilla server` members are the coordination
// service (their ZooKeeper ports), and `flotilla pb serve` replicas hold the roles.
//
//   1. Under a load of puts, gets and increments from several clients, the primary is
//      killed with SIGKILL: the backup goes live at epoch 2; a fresh replica then becomes
//      its backup from a snapshot (re-protection) and, after the second primary is killed
//      too, goes live at epoch 3. No acknowledged write is lost, every increment counted
//      once (clients deduplicate across failovers), the write acknowledged just before the
//      second kill is on the third primary, and the history is linearizable.
//   2. The primary is paused (SIGSTOP) past its session timeout: the backup goes live;
//      a request that reached the paused primary is never answered with a reply once it
//      resumes, and the old primary halts.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServerChild, type ServerChild } from '../../src/platform/server-children.js';
import { connectPb } from '../../src/platform/pb-net.js';
import { PbClient, PbClientError, type PbReply } from '../../src/pb/client.js';
import { readService, servicePaths } from '../../src/pb/coordination.js';
import { ZkClient } from '../../src/zkclient/index.js';
import { check, describeResult, kvModel, type KvInput, type KvOutput, type Operation } from '../../src/lincheck/index.js';
import { TestCluster, sleep, waitFor } from '../server/helpers.js';
import { killAllCommands, runFlotilla } from '../cli/helpers.js';

const SESSION_TIMEOUT_MS = 1_000;

class Replica {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly child: ServerChild;
  readonly listening: Promise<string>;

  constructor(args: readonly string[]) {
    let onListening: (address: string) => void = () => {};
    this.child = spawnServerChild({
      args,
      onStdoutLine: (line) => {
        this.stdout.push(line);
        const entry = this.parse(line);
        if (entry?.['msg'] === 'listening') onListening(String(entry['address']));
      },
      onStderrLine: (line) => this.stderr.push(line),
    });
    this.listening = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`replica did not listen within 20 s:\n${this.describeOutput()}`)), 20_000);
      onListening = (address) => {
        clearTimeout(timer);
        resolve(address);
      };
      void this.child.exited.then((exit) => {
        clearTimeout(timer);
        reject(new Error(`replica exited (${JSON.stringify(exit)}) before listening:\n${this.describeOutput()}`));
      });
    });
    this.listening.catch(() => {});
  }

  private parse(line: string): Record<string, unknown> | undefined {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  /** The first log line matching, if any. */
  logged(msg: string, match: (entry: Record<string, unknown>) => boolean = () => true): Record<string, unknown> | undefined {
    for (const line of this.stdout) {
      const entry = this.parse(line);
      if (entry?.['msg'] === msg && match(entry)) return entry;
    }
    return undefined;
  }

  describeOutput(): string {
    return [...this.stdout.slice(-25), ...this.stderr.slice(-10)].join('\n');
  }
}

async function setUp(t: TestContext): Promise<{ zk: string; root: string; start: () => Promise<{ replica: Replica; address: string }> }> {
  const cluster = await TestCluster.create(t, 3);
  cluster.extraArgs = ['--zk-tick-ms', '250'];
  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  const zk = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.zk}`).join(',');
  const root = await mkdtemp(join(tmpdir(), 'flotilla-pb-'));
  const replicas: Replica[] = [];
  t.after(async () => {
    await Promise.all(
      replicas.map(async (replica) => {
        try {
          process.kill(replica.child.pid, 'SIGCONT');
        } catch {
          // Already gone.
        }
        replica.child.kill('SIGKILL');
        await replica.child.exited;
      }),
    );
    await rm(root, { recursive: true, force: true });
  });
  const start = async (): Promise<{ replica: Replica; address: string }> => {
    const replica = new Replica(['pb', 'serve', '--zk', zk, '--data', join(root, `replica-${replicas.length}`), '--service', 's1', '--session-timeout-ms', String(SESSION_TIMEOUT_MS)]);
    replicas.push(replica);
    return { replica, address: await replica.listening };
  };
  return { zk, root, start };
}

function becamePrimary(replica: Replica, epoch: number): Promise<true> {
  return waitFor(`primary of epoch ${epoch}:\n${replica.describeOutput()}`, 15_000, () =>
    replica.logged('role', (e) => e['role'] === 'primary' && e['epoch'] === epoch) === undefined ? undefined : true,
  );
}

function backupInSync(primary: Replica, backupAddress: string): Promise<true> {
  return waitFor(`backup ${backupAddress} in sync:\n${primary.describeOutput()}`, 15_000, () =>
    primary.logged('backup in sync', (e) => e['address'] === backupAddress) === undefined ? undefined : true,
  );
}

type History = Operation<KvInput, KvOutput>[];

function startLoad(clients: PbClient[]): { history: History; counts: { puts: number; gets: number; incrs: number; incrAttempts: number; failed: number }; stop(): Promise<void> } {
  const history: History = [];
  const counts = { puts: 0, gets: 0, incrs: 0, incrAttempts: 0, failed: 0 };
  let running = true;
  let next = 1;
  const loops = clients.map(async (client, clientId) => {
    while (running) {
      const key = `k${next % 3}`;
      const callTime = performance.now();
      const kind = clientId % 3;
      try {
        if (kind === 0) {
          const value = `v${next++}`;
          const { output } = await client.call({ type: 'put', key, value });
          assert.equal(output.type, 'ok', `put ${key}=${value}: ${JSON.stringify(output)}`);
          history.push({ clientId, input: { kind: 'put', key, value }, output: '', callTime, returnTime: performance.now() });
          counts.puts++;
        } else if (kind === 1) {
          const { output } = await client.call({ type: 'get', key });
          assert.equal(output.type, 'ok', `get ${key}: ${JSON.stringify(output)}`);
          history.push({ clientId, input: { kind: 'get', key }, output: output.type === 'ok' ? (output.value ?? '') : '', callTime, returnTime: performance.now() });
          counts.gets++;
        } else {
          counts.incrAttempts++;
          const { output } = await client.call({ type: 'incr', key: 'counter', by: 1 });
          assert.equal(output.type, 'ok', `incr: ${JSON.stringify(output)}`);
          counts.incrs++;
        }
      } catch (error) {
        if (!(error instanceof PbClientError)) throw error;
        counts.failed++;
        if (kind === 0) history.push({ clientId, input: { kind: 'put', key, value: `v${next - 1}` }, output: undefined, callTime, returnTime: undefined });
      }
    }
  });
  return {
    history,
    counts,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

test('kill -9 the primary under load, re-protect, kill -9 again: no acknowledged write lost, increments counted once, history linearizable', { timeout: 60_000 }, async (t) => {
  const { zk, start } = await setUp(t);
  const a = await start();
  await becamePrimary(a.replica, 1);
  const b = await start();
  await backupInSync(a.replica, b.address);
  const clients = await Promise.all(Array.from({ length: 6 }, () => PbClient.connect({ zkServers: zk.split(','), service: 's1', retryDeadlineMs: 15_000, callTimeoutMs: 1_000 })));
  t.after(() => Promise.all(clients.map((client) => client.close())));
  const load = startLoad(clients);
  await sleep(1_000);

  a.replica.child.kill('SIGKILL');
  const killedAt = performance.now();
  await becamePrimary(b.replica, 2);
  const failoverMs = performance.now() - killedAt;
  const putsBefore = load.counts.puts;
  await waitFor('writes resume on the new primary', 10_000, () => (load.counts.puts > putsBefore + 5 ? true : undefined));

  // Re-protection: a fresh replica becomes the new primary's backup from a snapshot.
  const c = await start();
  await backupInSync(b.replica, c.address);
  await sleep(500);
  // kill -9 right after a reply: the reply's effect must survive on the new primary.
  const markerClient = await PbClient.connect({ zkServers: zk.split(','), service: 's1', retryDeadlineMs: 15_000, callTimeoutMs: 1_000 });
  t.after(() => markerClient.close());
  const marker = await markerClient.call({ type: 'put', key: 'marker', value: 'acknowledged-just-before-the-kill' });
  b.replica.child.kill('SIGKILL');
  await becamePrimary(c.replica, 3);
  const survived = await markerClient.call({ type: 'get', key: 'marker' });
  assert.deepEqual(
    [survived.epoch, survived.output.type === 'ok' && survived.output.value, survived.output.type === 'ok' && survived.output.version],
    [3, 'acknowledged-just-before-the-kill', marker.output.type === 'ok' && marker.output.version],
  );
  const putsAfter = load.counts.puts;
  await waitFor('writes resume on the third primary', 10_000, () => (load.counts.puts > putsAfter + 5 ? true : undefined));
  await load.stop();

  const reader = clients[0]!;
  const finalHistory: History = [];
  for (const key of ['k0', 'k1', 'k2']) {
    const callTime = performance.now();
    const { output, epoch } = await reader.call({ type: 'get', key });
    assert.equal(epoch, 3);
    finalHistory.push({ clientId: 100, input: { kind: 'get', key }, output: output.type === 'ok' ? (output.value ?? '') : '', callTime, returnTime: performance.now() });
  }
  const counter = await reader.call({ type: 'get', key: 'counter' });
  const total = Number(counter.output.type === 'ok' ? counter.output.value : Number.NaN);
  t.diagnostic(`failover ${failoverMs.toFixed(0)} ms; ${JSON.stringify(load.counts)}; counter ${total}`);
  assert.ok(total >= load.counts.incrs, `every acknowledged increment is counted: ${total} < ${load.counts.incrs}`);
  assert.ok(total <= load.counts.incrAttempts, `no increment counted twice: ${total} > ${load.counts.incrAttempts} attempted`);
  const history = [...load.history, ...finalHistory];
  const result = check(kvModel(), history, { timeBudgetMs: 15_000, nowMs: () => performance.now() });
  assert.notEqual(result.verdict, 'illegal', describeResult(kvModel(), result));
  assert.equal(result.verdict, 'ok');
  assert.ok(load.counts.puts > 30 && load.counts.gets > 30 && load.counts.incrs > 10, `too little load: ${JSON.stringify(load.counts)}`);
  assert.ok(failoverMs < 10_000, `failover took ${failoverMs} ms`);
});

test('a primary paused past its session timeout never answers after it resumes, and halts; the backup serves', { timeout: 40_000 }, async (t) => {
  const { zk, start } = await setUp(t);
  const a = await start();
  await becamePrimary(a.replica, 1);
  const b = await start();
  await backupInSync(a.replica, b.address);
  const client = await PbClient.connect({ zkServers: zk.split(','), service: 's1', retryDeadlineMs: 15_000, callTimeoutMs: 1_000 });
  t.after(() => client.close());
  await client.call({ type: 'put', key: 'x', value: 'before' });

  const stale = await connectPb(a.address, 30_000);
  t.after(() => stale.close());
  process.kill(a.replica.child.pid, 'SIGSTOP');
  let resumed = false;
  try {
    // A request that reaches the paused primary waits in its socket.
    const answer = stale.call('client', { clientId: 999, requestSeq: 1, op: { type: 'put', key: 'x', value: 'from-the-zombie' } }).then(
      (reply) => reply as PbReply,
      (error: unknown) => ({ type: 'error', code: 'unknown', message: String(error) }) as PbReply,
    );
    await becamePrimary(b.replica, 2);
    const { epoch } = await client.call({ type: 'put', key: 'x', value: 'after' });
    assert.equal(epoch, 2);
    process.kill(a.replica.child.pid, 'SIGCONT');
    resumed = true;
    const reply = await answer;
    assert.equal(reply.type, 'error', `the resumed primary must not serve: ${JSON.stringify(reply)}`);
  } finally {
    if (!resumed) process.kill(a.replica.child.pid, 'SIGCONT');
  }
  const exit = await a.replica.child.exited;
  assert.equal(exit.code, 1, `the old primary halts:\n${a.replica.describeOutput()}`);
  assert.match(a.replica.stderr.join('\n'), /session ended|deposed|could not confirm its ZooKeeper session/);
  const { output } = await client.call({ type: 'get', key: 'x' });
  assert.equal(output.type === 'ok' && output.value, 'after', 'the zombie write never happened');
});

test('primary and backup cut apart (the backup paused, both still in ZooKeeper): the primary fences the backup off, serves alone, then re-protects', { timeout: 40_000 }, async (t) => {
  const { zk, start } = await setUp(t);
  const a = await start();
  await becamePrimary(a.replica, 1);
  const b = await start();
  await backupInSync(a.replica, b.address);
  const client = await PbClient.connect({ zkServers: zk.split(','), service: 's1', retryDeadlineMs: 10_000, callTimeoutMs: 2_000 });
  t.after(() => client.close());
  await client.call({ type: 'put', key: 'x', value: '1' });
  const observer = await ZkClient.connect({ servers: zk.split(','), sessionTimeoutMs: 5_000 });
  t.after(() => observer.close());
  assert.deepEqual((await readService(observer, servicePaths('s1'))).record, { epoch: 1, inSync: b.address });
  process.kill(b.replica.child.pid, 'SIGSTOP');
  try {
    // The write waits for the silent backup, then the primary drops it (clearing inSync first) and answers alone.
    const { epoch } = await client.call({ type: 'put', key: 'x', value: '2' });
    assert.equal(epoch, 1);
    await waitFor('the primary runs alone', 5_000, () => (a.replica.logged('running alone') === undefined ? undefined : true));
    const { record } = await readService(observer, servicePaths('s1'));
    assert.deepEqual(record, { epoch: 1, inSync: null }, 'the backup can no longer go live');
  } finally {
    process.kill(b.replica.child.pid, 'SIGCONT');
  }
  // The backup wakes (its session still alive): it never goes live, and the primary re-attaches it from a new snapshot.
  await waitFor('the backup is re-protecting the primary', 10_000, () => (a.replica.stdout.filter((line) => line.includes('"backup in sync"')).length >= 2 ? true : undefined));
  assert.equal(
    b.replica.logged('role', (e) => e['role'] === 'primary'),
    undefined,
    'the cut-off backup never went live',
  );
  const { output } = await client.call({ type: 'get', key: 'x' });
  assert.equal(output.type === 'ok' && output.value, '2');
});

test('the command line: serve, put, get, incr, token, status; bad input is refused with a reason', { timeout: 40_000 }, async (t) => {
  t.after(killAllCommands);
  const { zk, root, start } = await setUp(t);
  const a = await start();
  await becamePrimary(a.replica, 1);
  const flags = ['--zk', zk, '--service', 's1'];
  const put = await runFlotilla(['pb', 'put', 'greeting', 'hello', ...flags]);
  assert.equal(put.code, 0, put.stderr);
  assert.equal(put.stdout.toString(), 'hello\tversion 1\tepoch 1\n');
  const get = await runFlotilla(['pb', 'get', 'greeting', ...flags]);
  assert.equal(get.stdout.toString(), 'hello\tversion 1\tepoch 1\n');
  const incr = await runFlotilla(['pb', 'incr', 'n', '5', ...flags]);
  assert.equal(incr.stdout.toString(), '5\tversion 1\tepoch 1\n');
  const token = await runFlotilla(['pb', 'token', 'lock', ...flags]);
  assert.match(token.stdout.toString(), /^[0-9a-f]{8}\tversion 1\tepoch 1\n$/);
  const absent = await runFlotilla(['pb', 'get', 'nothing', ...flags]);
  assert.equal(absent.stdout.toString(), '(absent)\tversion 0\tepoch 1\n');
  const status = await runFlotilla(['pb', 'status', ...flags]);
  assert.match(status.stdout.toString(), new RegExp(`^s1\\tepoch 1\\tprimary \\{"epoch":1,"address":"${a.address}"\\}\\tin-sync backup \\(none\\)\\n$`));

  const refusals: [string[], RegExp, number][] = [
    [['pb', 'incr', 'greeting', ...flags], /greeting holds "hello", not an integer/, 2],
    [['pb', 'put', '', 'v', ...flags], /the key must not be empty/, 2],
    [['pb', 'put', 'k', 'v', '--zk', 'no-port'], /"no-port" is not host:port/, 2],
    [['pb', 'put', 'k', 'v', '--ttl-ms', '0', ...flags], /--ttl-ms must be an integer from 1/, 2],
    [['pb', 'get', 'k', '--zk', zk, '--service', 'bad/name'], /service name "bad\/name"/, 2],
    [['pb', 'serve', '--zk', zk, '--data', join(root, 'unused'), '--service', '..'], /service name "\.\."/, 2],
    [['pb', 'serve', '--zk', zk, '--data', join(root, 'replica-0'), '--service', 's1'], /in use by a running process/, 4],
  ];
  for (const [args, reason, code] of refusals) {
    const run = await runFlotilla(args);
    assert.equal(run.code, code, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, reason, args.join(' '));
  }
});
