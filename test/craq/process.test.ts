// CRAQ as real processes: three `flotilla server` members are the coordination service
// (their ZooKeeper ports), and `flotilla craq node` processes form a chain through
// ephemeral sequential znodes. Under a load of writes and strong reads from several
// clients, the head, a middle node and the tail are each killed with SIGKILL (and
// restarted on its data directory, which rejoins the chain at the tail from its WAL), and
// a middle node is paused past its session timeout (a zombie, which must exit when it
// resumes); afterwards no acknowledged write is lost and
// the whole history is linearizable.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServerChild, type ServerChild } from '../../src/platform/server-children.js';
import { CraqClient, CraqClientError } from '../../src/craq/client.js';
import { check, describeResult, kvModel, type KvInput, type KvOutput, type Operation } from '../../src/lincheck/index.js';
import { nodeId } from '../../src/stdx/types.js';
import { TestCluster, sleep, waitFor } from '../server/helpers.js';
import { killAllCommands, runFlotilla } from '../cli/helpers.js';

const SESSION_TIMEOUT_MS = 1_500;

class CraqProcess {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly child: ServerChild;
  readonly listening: Promise<{ id: number; port: number }>;

  constructor(args: readonly string[]) {
    let onListening: (value: { id: number; port: number }) => void = () => {};
    this.child = spawnServerChild({
      args,
      onStdoutLine: (line) => {
        this.stdout.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; id?: number; port?: number };
          if (entry.msg === 'listening') onListening({ id: entry.id!, port: entry.port! });
        } catch {
          // Not a log line.
        }
      },
      onStderrLine: (line) => this.stderr.push(line),
    });
    this.listening = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`craq node did not listen within 20 s:\n${this.describeOutput()}`)), 20_000);
      onListening = (value) => {
        clearTimeout(timer);
        resolve(value);
      };
      void this.child.exited.then((exit) => {
        clearTimeout(timer);
        reject(new Error(`craq node exited (${JSON.stringify(exit)}) before listening:\n${this.describeOutput()}`));
      });
    });
    this.listening.catch(() => {});
  }

  describeOutput(): string {
    return [...this.stdout.slice(-20), ...this.stderr.slice(-20)].join('\n');
  }
}

class CraqNodes {
  readonly processes: CraqProcess[] = [];
  /** Node id → its process and the slot (data directory) it runs on. */
  readonly byId = new Map<number, { process: CraqProcess; slot: number }>();
  private count = 0;

  constructor(
    private readonly root: string,
    private readonly zk: string,
    private readonly chain: string,
  ) {}

  async start(slot = this.count++, chain = this.chain): Promise<{ process: CraqProcess; id: number; slot: number }> {
    const process = new CraqProcess([
      'craq',
      'node',
      '--zk',
      this.zk,
      '--data',
      join(this.root, `node-${slot}`),
      '--chain',
      chain,
      '--session-timeout-ms',
      String(SESSION_TIMEOUT_MS),
      '--tick-ms',
      '20',
    ]);
    this.processes.push(process);
    const { id } = await process.listening;
    this.byId.set(id, { process, slot });
    return { process, id, slot };
  }

  async killAll(): Promise<void> {
    await Promise.all(
      this.processes.map(async (process) => {
        process.child.kill('SIGKILL');
        await process.child.exited;
      }),
    );
  }
}

async function setUp(t: TestContext): Promise<{ cluster: TestCluster; nodes: CraqNodes; zk: string }> {
  const cluster = await TestCluster.create(t, 3);
  cluster.extraArgs = ['--zk-tick-ms', '250'];
  await Promise.all(cluster.ids.map((id) => cluster.startMember(id)));
  const zk = cluster.ids.map((id) => `127.0.0.1:${cluster.ports.get(id)!.zk}`).join(',');
  const root = await mkdtemp(join(tmpdir(), 'flotilla-craq-'));
  const nodes = new CraqNodes(root, zk, 'c1');
  t.after(async () => {
    await nodes.killAll();
    await rm(root, { recursive: true, force: true });
  });
  return { cluster, nodes, zk };
}

type History = Operation<KvInput, KvOutput>[];

interface Load {
  readonly history: History;
  readonly acked: Map<string, number>;
  stop(): Promise<void>;
  counts: { writes: number; reads: number; dirtyReads: number; unknown: number; refused: number };
}

/** Clients writing unique values and reading strongly, on a few keys, until stopped. */
function startLoad(clients: CraqClient[], keys: number): Load {
  const history: History = [];
  const acked = new Map<string, number>();
  const counts = { writes: 0, reads: 0, dirtyReads: 0, unknown: 0, refused: 0 };
  let running = true;
  let nextValue = 1;
  const loops = clients.map(async (client, clientId) => {
    while (running) {
      const key = `k${(nextValue + clientId) % keys}`;
      const callTime = performance.now();
      if (clientId % 2 === 0) {
        const value = `v${nextValue++}`;
        try {
          const { version } = await client.write(key, value);
          history.push({ clientId, input: { kind: 'put', key, value }, output: '', callTime, returnTime: performance.now() });
          acked.set(key, Math.max(acked.get(key) ?? 0, version));
          counts.writes++;
        } catch (error) {
          if (!(error instanceof CraqClientError)) throw error;
          if (error.code === 'unknown') {
            history.push({ clientId, input: { kind: 'put', key, value }, output: undefined, callTime, returnTime: undefined });
            counts.unknown++;
          } else counts.refused++;
        }
      } else {
        try {
          const result = await client.read(key);
          history.push({ clientId, input: { kind: 'get', key }, output: result.value ?? '', callTime, returnTime: performance.now() });
          counts.reads++;
          if (!result.clean) counts.dirtyReads++;
        } catch (error) {
          if (!(error instanceof CraqClientError)) throw error;
          counts.refused++;
        }
      }
    }
  });
  return {
    history,
    acked,
    counts,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function chainMembers(client: CraqClient, chain: string): Promise<number[]> {
  return waitFor('a view of the chain', 10_000, () => client.view(chain)?.config.members.slice());
}

test('kill -9 the head, a middle node and the tail under load: no acknowledged write lost, history linearizable', { timeout: 90_000 }, async (t) => {
  const { nodes, zk } = await setUp(t);
  for (let k = 0; k < 3; k++) await nodes.start();
  const clients = await Promise.all(Array.from({ length: 6 }, (_, k) => CraqClient.connect({ zkServers: zk.split(','), chains: ['c1'], retryDeadlineMs: 10_000, callTimeoutMs: 3_000, seed: k + 1 })));
  t.after(() => Promise.all(clients.map((client) => client.close())));
  const observer = clients[0]!;
  await waitFor('a chain of 3', 10_000, () => (observer.view('c1')?.config.members.length === 3 ? true : undefined));
  const load = startLoad(clients, 4);
  await sleep(1_000);

  // Head, then middle, then tail: each killed under load, then a fresh node joins at the tail.
  for (const position of ['head', 'middle', 'tail'] as const) {
    const members = await chainMembers(observer, 'c1');
    assert.equal(members.length, 3, `a chain of 3 before killing the ${position}: ${members}`);
    const victim = position === 'head' ? members[0]! : position === 'middle' ? members[1]! : members[2]!;
    const running = nodes.byId.get(victim);
    assert.ok(running !== undefined, `the process of node ${victim}`);
    const process = running.process;
    process.child.kill('SIGKILL');
    await process.child.exited;
    await waitFor(`node ${victim} (${position}) leaves the chain`, 15_000, () =>
      (observer.view('c1')?.config.members as readonly number[] | undefined)?.includes(victim) === false ? true : undefined,
    );
    const writesBefore = load.counts.writes;
    await waitFor(`writes resume after the ${position} died`, 15_000, () => (load.counts.writes > writesBefore + 5 ? true : undefined));
    // The killed node comes back on its own data directory: a new member (a new session)
    // that rejoins at the tail from its write-ahead log plus what it missed.
    const restarted = await nodes.start(running.slot);
    const recovered = restarted.process.stdout.map((line) => JSON.parse(line) as { msg: string; committedSeq?: number }).find((entry) => entry.msg === 'recovered');
    assert.ok((recovered?.committedSeq ?? 0) > 0, `the restarted node recovered committed writes from its WAL: ${JSON.stringify(recovered)}`);
    await waitFor('the restarted node joins at the tail', 15_000, () => (observer.view('c1')?.config.members.length === 3 ? true : undefined));
    await sleep(500);
  }

  // A zombie: the middle node is paused past its session timeout. The others drop it and
  // go on; when it resumes, it learns its session expired and exits instead of serving.
  const zombie = (await chainMembers(observer, 'c1'))[1]!;
  const paused = nodes.byId.get(zombie)!.process;
  process.kill(paused.child.pid, 'SIGSTOP');
  try {
    await waitFor(`the paused node ${zombie} leaves the chain`, 15_000, () => ((observer.view('c1')?.config.members as readonly number[] | undefined)?.includes(zombie) === false ? true : undefined));
    const writesBefore = load.counts.writes;
    await waitFor('writes go on without the paused node', 15_000, () => (load.counts.writes > writesBefore + 5 ? true : undefined));
  } finally {
    process.kill(paused.child.pid, 'SIGCONT');
  }
  const exit = await paused.child.exited;
  assert.equal(exit.code, 1, `the resumed zombie exits (code 1): ${paused.describeOutput()}`);
  assert.match(paused.stderr.join('\n'), /session ended \(expired\)/);
  await load.stop();

  // Every node answers, and none has lost an acknowledged write.
  const members = await chainMembers(observer, 'c1');
  const finalHistory: History = [];
  for (const id of members) {
    for (const [key, version] of load.acked) {
      const callTime = performance.now();
      const reply = await waitFor(`node ${id} answers a strong read of ${key}`, 10_000, async () => {
        const answer = await observer.readAt('c1', nodeId(id), key);
        return answer.type === 'read' ? answer : undefined;
      });
      assert.ok(reply.version >= version, `node ${id} answers version ${reply.version} of ${key}, but version ${version} was acknowledged`);
      finalHistory.push({ clientId: 100, input: { kind: 'get', key }, output: reply.value ?? '', callTime, returnTime: performance.now() });
    }
  }
  const history = [...load.history, ...finalHistory];
  const result = check(kvModel(), history, { timeBudgetMs: 20_000, nowMs: () => performance.now() });
  t.diagnostic(`${JSON.stringify(load.counts)}; ${history.length} operations checked: ${result.verdict}`);
  assert.notEqual(result.verdict, 'illegal', describeResult(kvModel(), result));
  assert.equal(result.verdict, 'ok');
  assert.ok(load.counts.writes > 50 && load.counts.reads > 50, `too little load: ${JSON.stringify(load.counts)}`);
  assert.ok(load.counts.dirtyReads > 0, 'some strong reads found their key dirty and asked the tail');
});

test('the command line: put at the head, get from each node in every mode, status; bad input is refused with a reason; keys spread over several chains', { timeout: 60_000 }, async (t) => {
  t.after(killAllCommands);
  const { nodes, zk } = await setUp(t);
  const chain = ['--zk', zk, '--chains', 'c1'];
  const ids: number[] = [];
  for (let k = 0; k < 3; k++) ids.push((await nodes.start()).id);

  const status = await runFlotilla(['craq', 'status', ...chain]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout.toString(), new RegExp(`^c1\\tepoch \\d+\\t${ids[0]}@127\\.0\\.0\\.1:\\d+ -> ${ids[1]}@127\\.0\\.0\\.1:\\d+ -> ${ids[2]}@`));

  const put = await runFlotilla(['craq', 'put', 'greeting', 'hello', ...chain]);
  assert.equal(put.code, 0, put.stderr);
  assert.equal(put.stdout.toString(), 'version 1\n');
  for (const id of ids) {
    for (const mode of ['strong', 'eventual', 'bounded:0']) {
      const get = await runFlotilla(['craq', 'get', 'greeting', '--node', String(id), '--mode', mode, ...chain]);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(get.stdout.toString(), `hello\tversion 1\tnode ${id}\n`, `node ${id}, ${mode}`);
    }
  }
  const absent = await runFlotilla(['craq', 'get', 'nothing', ...chain]);
  assert.match(absent.stdout.toString(), /^\(absent\)\tversion 0\tnode \d+\n$/);

  const refusals: [string[], RegExp, number][] = [
    [['craq', 'get', 'k', '--mode', 'sometimes', ...chain], /--mode must be strong, eventual or bounded:N/, 2],
    [['craq', 'put', 'k', 'v', '--zk', 'no-port'], /"no-port" is not host:port/, 2],
    [['craq', 'put', 'k', 'v', '--zk', zk, '--chains', 'bad/name'], /chain name "bad\/name"/, 2],
    [['craq', 'node', '--zk', zk, '--data', join(tmpdir(), 'unused'), '--chain', '../x'], /chain name "\.\.\/x"/, 2],
    [['craq', 'put', '', 'v', ...chain], /key must not be empty/, 2],
  ];
  for (const [args, reason, code] of refusals) {
    const run = await runFlotilla(args);
    assert.equal(run.code, code, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, reason, args.join(' '));
  }

  // Several chains: keys spread over them by hash, each key on its own chain only.
  await nodes.start(undefined, 'c2');
  const client = await CraqClient.connect({ zkServers: zk.split(','), chains: ['c1', 'c2'] });
  t.after(() => client.close());
  await waitFor('views of both chains', 10_000, () => (client.view('c1')?.config.members.length === 3 && client.view('c2')?.config.members.length === 1 ? true : undefined));
  const keys = Array.from({ length: 20 }, (_, k) => `key-${k}`);
  for (const key of keys) await client.write(key, `value of ${key}`);
  const byChain = new Map<string, number>();
  for (const key of keys) {
    const chain = client.chainOf(key);
    byChain.set(chain, (byChain.get(chain) ?? 0) + 1);
    const otherChain = chain === 'c1' ? 'c2' : 'c1';
    const here = await client.readAt(chain, client.view(chain)!.config.members[0]!, key);
    const there = await client.readAt(otherChain, client.view(otherChain)!.config.members[0]!, key);
    assert.deepEqual(here.type === 'read' && [here.value, here.version], [`value of ${key}`, 1], `${key} on its chain ${chain}`);
    assert.deepEqual(there.type === 'read' && [there.value, there.version], [null, 0], `${key} is not on ${otherChain}`);
  }
  assert.equal(byChain.size, 2, `both chains hold keys: ${JSON.stringify([...byChain])}`);
});
