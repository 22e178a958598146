// etcdctl (Debian's etcd-client, v3.4) and a real etcd (etcd-server) for the etcd tests: run
// etcdctl against any endpoints, start a throwaway etcd on free ports, normalize JSON output
// so that Flotilla's and etcd's answers can be compared field by field.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../server/helpers.js';

export const ETCDCTL_PATH = '/usr/bin/etcdctl';
export const ETCD_PATH = '/usr/bin/etcd';

/** undefined if etcd and etcdctl are installed; on CI their absence is a failure, not a skip. */
export function etcdSkipReason(): string | undefined {
  if (existsSync(ETCDCTL_PATH) && existsSync(ETCD_PATH)) return undefined;
  const reason = `etcd not installed: need ${ETCD_PATH} and ${ETCDCTL_PATH} (apt-get install etcd-server etcd-client)`;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '') throw new Error(`${reason}; CI must install them, so this is a failure, not a skip`);
  return reason;
}

export interface EtcdctlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `etcdctl --endpoints=… args` (API v3) with `input` on stdin; never rejects for a failed command. */
export function etcdctl(endpoints: string, args: readonly string[], input = '', timeoutMs = 20_000): Promise<EtcdctlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(ETCDCTL_PATH, [`--endpoints=${endpoints}`, '--command-timeout=10s', '--dial-timeout=5s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** A single-member etcd 3.4 on free ports with a temporary data directory. */
export class RealEtcd {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dataDir: string,
    readonly endpoint: string,
  ) {}

  static async start(): Promise<RealEtcd> {
    const [client, peer] = await freePorts(2);
    const dataDir = await mkdtemp(join(tmpdir(), 'flotilla-real-etcd-'));
    const clientUrl = `http://127.0.0.1:${client}`;
    const child = spawn(
      ETCD_PATH,
      [
        '--data-dir',
        dataDir,
        '--name',
        'real',
        '--listen-client-urls',
        clientUrl,
        '--advertise-client-urls',
        clientUrl,
        '--listen-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-cluster',
        `real=http://127.0.0.1:${peer}`,
        '--log-level',
        'error',
        '--logger',
        'zap',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const etcd = new RealEtcd(child, dataDir, `127.0.0.1:${client}`);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const health = await etcdctl(etcd.endpoint, ['endpoint', 'health'], '', 5_000);
      if (health.code === 0) return etcd;
      if (Date.now() > deadline || child.exitCode !== null) {
        await etcd.stop();
        throw new Error(`the real etcd did not become healthy: ${health.stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGKILL');
      await exited;
    }
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * etcdctl -w json output with what legitimately differs between two clusters replaced:
 * cluster and member ids, raft terms, lease ids; revisions are kept (both stores start at 1
 * and count the same writes).
 */
export function normalized(json: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return json; // some commands print text even with -w json ("compacted revision 4")
  }
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== 'object') return node;
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(node as Record<string, unknown>)) {
      if (key === 'cluster_id' || key === 'member_id' || key === 'raft_term' || key === 'ID' || key === 'leader') out[key] = '<id>';
      else out[key] = walk(field);
    }
    return out;
  };
  return walk(value);
}

/** One etcdctl command of a differential script, with what it reads on standard input. */
export interface DifferentialStep {
  readonly args: readonly string[];
  readonly input?: string;
}

/** The etcdctl error line ("Error: etcdserver: ..."), without the client's retry chatter. */
export function errorLine(stderr: string): string {
  return (
    stderr
      .split('\n')
      .filter((line) => line.startsWith('Error:'))
      .join('\n') || stderr.trim()
  );
}

/**
 * Runs each step with -w json against both systems, in order, and fails listing every
 * difference: the exit code, then etcd's error line for a failure, else the normalized JSON.
 */
export async function assertSameAnswers(script: readonly DifferentialStep[], realEndpoint: string, flotillaEndpoints: string): Promise<void> {
  const differences: string[] = [];
  for (const step of script) {
    const args = [...step.args, '-w', 'json'];
    const [expected, actual] = [await etcdctl(realEndpoint, args, step.input), await etcdctl(flotillaEndpoints, args, step.input)];
    const what = `etcdctl ${step.args.join(' ')}`;
    if (expected.code !== actual.code) {
      differences.push(`${what}: exit ${actual.code}, etcd ${expected.code}\n  flotilla: ${actual.stdout}${errorLine(actual.stderr)}\n  etcd:     ${expected.stdout}${errorLine(expected.stderr)}`);
      continue;
    }
    if (expected.code !== 0) {
      if (errorLine(expected.stderr) !== errorLine(actual.stderr)) differences.push(`${what}: error\n  flotilla: ${errorLine(actual.stderr)}\n  etcd:     ${errorLine(expected.stderr)}`);
      continue;
    }
    const [want, got] = [normalized(expected.stdout), normalized(actual.stdout)];
    try {
      assert.deepStrictEqual(got, want);
    } catch {
      differences.push(`${what}:\n  flotilla: ${JSON.stringify(got)}\n  etcd:     ${JSON.stringify(want)}`);
    }
  }
  assert.deepEqual(differences, [], `${differences.length} of ${script.length} commands differ:\n${differences.join('\n')}`);
}
