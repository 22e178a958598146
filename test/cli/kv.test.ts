// `flotilla kv` as a user runs it, against a real one-member cluster (test/server/helpers.ts):
// output larger than a pipe's buffer arrives in full, values too large for the command line
// come from standard input or a file, and the failures users hit are quick and say what
// happened (issue 13, items 2-4).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientError, FlotillaClient, KvError } from '../../src/server/client.js';
import { kvDefaults } from '../../src/kv/index.js';
import { freePorts, TestCluster } from '../server/helpers.js';
import { killAllCommands, printableValue, runFlotilla } from './helpers.js';

after(killAllCommands);

/** Linux's pipe buffer is 64 KiB; these values are well over it, and over the 128 KiB argument limit. */
const BIG_BYTES = 300_000;
const OVER_ARGUMENT_LIMIT_BYTES = 200_000;
/** The old client took its whole 10-15 s deadline; a loaded machine still starts node well within this. */
const FAIL_FAST_MS = 5_000;

async function oneMember(t: import('node:test').TestContext): Promise<{ cluster: TestCluster; endpoints: string }> {
  const cluster = await TestCluster.start(t, 1);
  await cluster.waitForLeader();
  return { cluster, endpoints: `127.0.0.1:${cluster.ports.get(1)!.client}` };
}

test('kv get and kv scan --json print values larger than the pipe buffer in full through a pipe', { timeout: 90_000 }, async (t) => {
  const { cluster, endpoints } = await oneMember(t);
  const client = cluster.client();
  const values = [printableValue(BIG_BYTES, 1), printableValue(BIG_BYTES, 2)];
  await client.put('big-1', values[0]!);
  await client.put('big-2', values[1]!);

  // The reader waits before reading, as a slow consumer (| less, | ssh) would.
  const get = await runFlotilla(['kv', 'get', 'big-1', '--endpoints', endpoints], { readDelayMs: 300 });
  assert.equal(get.code, 0, get.stderr);
  assert.equal(get.stdout.length, BIG_BYTES + 1, 'every byte of the value and the newline');
  assert.equal(get.stdout.toString('utf8'), `${values[0]}\n`);

  const scan = await runFlotilla(['kv', 'scan', 'big-', '--json', '--endpoints', endpoints], { readDelayMs: 300 });
  assert.equal(scan.code, 0, scan.stderr);
  const page = await client.scan('big-');
  const expected = `${JSON.stringify({ entries: page.entries.map((entry) => ({ key: entry.key, value: Buffer.from(entry.value).toString('utf8'), version: entry.version })), next: null })}\n`;
  assert.equal(scan.stdout.length, Buffer.byteLength(expected), 'the whole JSON document');
  const parsed = JSON.parse(scan.stdout.toString('utf8')) as { entries: { key: string; value: string }[] };
  assert.deepEqual(
    parsed.entries.map((entry) => entry.value),
    values,
  );
});

test('kv put reads a value over 128 KiB from standard input (--file -) and from --file PATH', { timeout: 90_000 }, async (t) => {
  const { cluster, endpoints } = await oneMember(t);
  const client = cluster.client();
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  const fromStdin = printableValue(OVER_ARGUMENT_LIMIT_BYTES, 3);
  const piped = await runFlotilla(['kv', 'put', 'from-stdin', '--file', '-', '--endpoints', endpoints], { stdin: fromStdin });
  assert.equal(piped.code, 0, piped.stderr);
  assert.match(piped.stdout.toString('utf8'), /^OK \(version \d+\)\n$/);
  assert.equal(Buffer.from((await client.get('from-stdin')).value!).toString('utf8'), fromStdin);

  // Any bytes, not only text: a file is stored byte for byte.
  const binary = Buffer.alloc(OVER_ARGUMENT_LIMIT_BYTES);
  for (let i = 0; i < binary.length; i++) binary[i] = (i * 131 + 7) & 0xff;
  const file = join(dir, 'value.bin');
  await writeFile(file, binary);
  const fromFile = await runFlotilla(['kv', 'put', 'from-file', '--file', file, '--endpoints', endpoints]);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.ok(Buffer.from((await client.get('from-file')).value!).equals(binary));

  const both = await runFlotilla(['kv', 'put', 'k', 'v', '--file', file, '--endpoints', endpoints]);
  assert.equal(both.code, 2, 'a value and --file: bad usage');
  const missing = await runFlotilla(['kv', 'put', 'k', '--file', join(dir, 'absent'), '--endpoints', endpoints]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /ENOENT/);

  // Over the service's limit: refused before anything is sent, and not applied.
  const tooLarge = join(dir, 'too-large.bin');
  await writeFile(tooLarge, Buffer.alloc(kvDefaults.valueBytesMax + 1));
  const refused = await runFlotilla(['kv', 'put', 'too-large', '--file', tooLarge, '--endpoints', endpoints]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /value-too-large: .*valueBytesMax.*not applied/);
  assert.equal((await client.get('too-large')).value, null);
});

test('nothing listening: kv get fails at once with "unavailable", from the CLI and from FlotillaClient', { timeout: 60_000 }, async () => {
  const [port1, port2] = await freePorts(2);
  const endpoints = [port1!, port2!].map((port) => `127.0.0.1:${port}`).join(',');
  const run = await runFlotilla(['kv', 'get', 'x', '--endpoints', endpoints]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^flotilla kv: unavailable: every member refused the connection .*not applied/);
  assert.ok(run.elapsedMs < FAIL_FAST_MS, `took ${run.elapsedMs} ms`);

  const json = await runFlotilla(['kv', 'put', 'x', 'y', '--json', '--endpoints', endpoints]);
  assert.equal(json.code, 1);
  assert.equal((JSON.parse(json.stdout.toString('utf8')) as { error: string }).error, 'unavailable');

  const client = new FlotillaClient({ endpoints: [port1!, port2!].map((port) => ({ host: '127.0.0.1', port })) });
  try {
    const startMs = Date.now();
    await assert.rejects(client.put('x', 'y'), (error: unknown) => error instanceof ClientError && error.code === 'unavailable' && /refused/.test(error.message));
    assert.ok(Date.now() - startMs < FAIL_FAST_MS, `took ${Date.now() - startMs} ms`);
  } finally {
    client.close();
  }
});

test('a 2 MB put through FlotillaClient is refused at once as value-too-large, not applied', { timeout: 60_000 }, async (t) => {
  const { cluster } = await oneMember(t);
  const client = cluster.client();
  const startMs = Date.now();
  await assert.rejects(client.put('huge', Buffer.alloc(2 * 1024 * 1024)), (error: unknown) => error instanceof KvError && error.code === 'value-too-large' && /not applied/.test(error.message));
  assert.ok(Date.now() - startMs < FAIL_FAST_MS, `took ${Date.now() - startMs} ms`);
  // The client is still usable, and nothing was written.
  assert.equal((await client.get('huge')).value, null);
  await client.put('after', 'ok');
  assert.equal(Buffer.from((await client.get('after')).value!).toString(), 'ok');
});

test('a client whose first write found every member down works once the cluster is back (no session gap)', { timeout: 60_000 }, async (t) => {
  const { cluster } = await oneMember(t);
  const client = cluster.client();
  await cluster.kill(1);
  await assert.rejects(client.put('first', 'x'), (error: unknown) => error instanceof ClientError && error.code === 'unavailable');
  await cluster.startMember(1);
  await cluster.waitForLeader();
  // Without giving back the unsent request's sequence number, this new session's first
  // command would acknowledge a request the service never saw, and be refused as expired.
  await client.put('first', 'y');
  assert.equal(Buffer.from((await client.get('first')).value!).toString(), 'y');
});
