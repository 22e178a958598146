// The deployment examples in deploy/ cannot rot silently: the one configuration file (and the
// Kubernetes ConfigMap's copy) goes through the server's own parser for every member id; every
// `flotilla` command line in deploy/ names commands and flags that `flotilla ... --help` lists;
// and the systemd unit, the Dockerfile and the StatefulSet agree with the code and with each
// other (entry point, data directory, ports, exit codes, user).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnFlotilla } from '../../src/platform/spawn.js';
import { ConfigError, configFileInput, resolveConfig, type ServerConfig } from '../../src/server/config.js';
import { exitCodes } from '../../src/cli/server.js';
import { repositoryRoot } from '../repo.js';

const root = repositoryRoot();
const deploy = join(root, 'deploy');
const read = (...path: string[]) => readFileSync(join(...path), 'utf8');
const SECRET = 'a-test-secret-of-at-least-16-bytes';

/** Every member id in a config file's peers, resolved as `flotilla server --config FILE --id N` would. */
function resolveEach(text: string, name: string): Map<number, ServerConfig> {
  const file = configFileInput(JSON.parse(text), name);
  assert.equal(file.id, undefined, `${name} is shared by every member: it must not name one`);
  assert.equal(file.clusterSecret, undefined, `${name} must not hold the secret (clusterSecretFile instead)`);
  assert.equal(typeof file.clusterSecretFile, 'string', `${name} names the secret's env-file`);
  const ids = Object.keys(file.peers as Record<string, string>).map(Number);
  assert.deepEqual(ids, [1, 2, 3], `${name} describes a three-member cluster`);
  const resolved = new Map(ids.map((id) => [id, resolveConfig(file, { id: String(id) }, SECRET)]));
  assert.throws(() => resolveConfig(file, { id: '4' }, SECRET), ConfigError, 'an id outside peers is refused');
  return resolved;
}

/** The block of a `key: |` literal in YAML text, unindented. */
function yamlLiteral(yaml: string, key: string): string {
  const lines = yaml.split('\n');
  const start = lines.findIndex((line) => line.trim() === `${key}: |`);
  assert.ok(start >= 0, `no "${key}: |" block`);
  const indent = /^\s*/.exec(lines[start + 1]!)![0].length;
  const block: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() !== '' && /^\s*/.exec(line)![0].length < indent) break;
    block.push(line.slice(indent));
  }
  return block.join('\n');
}

test('deploy/cluster.json is accepted by the real parser for each member id', () => {
  const configs = resolveEach(read(deploy, 'cluster.json'), 'deploy/cluster.json');
  for (const [id, config] of configs) {
    assert.equal(config.id, id);
    assert.equal(config.members.size, 3);
    // Each host listens on, and advertises, its own address from peers.
    assert.equal(config.host, config.members.get(config.id)!.host);
    assert.equal(config.advertiseHost, config.host);
    assert.equal(config.dataDir, '/var/lib/flotilla');
    assert.deepEqual([config.peerPort, config.clientPort, config.adminPort, config.zkPort, config.etcdPort], [7000, 7001, 7002, 2181, 2379]);
  }
  assert.equal(new Set([...configs.values()].map((config) => config.host)).size, 3, 'three hosts');
});

test("the StatefulSet's cluster.json is accepted for each pod, and names the pods' DNS names", () => {
  const yaml = read(deploy, 'kubernetes', 'statefulset.yaml');
  const configs = resolveEach(yamlLiteral(yaml, 'cluster.json'), 'the ConfigMap cluster.json');
  for (const [id, config] of configs) {
    assert.equal(config.host, '0.0.0.0', 'a pod listens on every interface');
    assert.equal(config.advertiseHost, `flotilla-${id - 1}.flotilla.default.svc.cluster.local`, 'pod ordinal + 1 is the member id');
    assert.equal(config.dataDir, '/var/lib/flotilla');
  }
  // The start script, run by sh as the pod's would be, with `echo` for the program.
  const startScript = yamlLiteral(yaml, 'start.sh');
  const program = '/opt/flotilla/bin/flotilla';
  assert.ok(startScript.includes(`exec ${program} server`));
  for (const ordinal of [0, 1, 2]) {
    const run = spawnSync('sh', ['-c', startScript.replace(`exec ${program}`, 'echo')], { env: { ...process.env, HOSTNAME: `flotilla-${ordinal}` }, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), `server --config /etc/flotilla/cluster.json --id ${ordinal + 1}`, `pod flotilla-${ordinal}`);
  }
  for (const expected of [
    /clusterIP: None/,
    /publishNotReadyAddresses: true/,
    /kind: StatefulSet/,
    /replicas: 3/,
    /serviceName: flotilla/,
    /volumeClaimTemplates:/,
    /mountPath: \/var\/lib\/flotilla/,
    /readinessProbe:/,
    /127\.0\.0\.1:7002\/status/,
  ]) {
    assert.match(yaml, expected);
  }
  assert.match(yaml, /runAsUser: 999/);
  assert.match(read(deploy, 'Dockerfile'), /--uid 999/, "the image's flotilla user is the uid the pod runs as");
});

test('the systemd unit runs flotilla server as the flotilla user, with the data directory and the exit codes the code has', () => {
  const unit = read(deploy, 'flotilla.service');
  const setting = (key: string) => {
    const line = unit.split('\n').find((l) => l.startsWith(`${key}=`));
    assert.ok(line !== undefined, `flotilla.service has ${key}=`);
    return line.slice(key.length + 1);
  };
  assert.equal(setting('Type'), 'simple');
  assert.equal(setting('Restart'), 'on-failure');
  assert.equal(setting('User'), 'flotilla');
  assert.ok(Number(setting('LimitNOFILE')) >= 65536);
  assert.equal(`/var/lib/${setting('StateDirectory')}`, '/var/lib/flotilla', 'StateDirectory is the dataDir of cluster.json');
  // biome-ignore lint/suspicious/noTemplateCurlyInString: systemd's ${VAR}, not a template literal
  assert.equal(setting('ExecStart'), '/opt/flotilla/bin/flotilla server --config /etc/flotilla/cluster.json --id ${FLOTILLA_ID}');
  assert.ok(existsSync(join(root, 'bin', 'flotilla')), 'bin/flotilla, which the unit runs, exists');
  assert.deepEqual(setting('RestartPreventExitStatus').split(' ').map(Number), [exitCodes.config, exitCodes.damagedData, exitCodes.dataInUse]);
});

test('the Dockerfile builds with the scripts package.json has and exposes the ports and data directory of cluster.json', () => {
  const dockerfile = read(deploy, 'Dockerfile');
  const scripts = (JSON.parse(read(root, 'package.json')) as { scripts: Record<string, string> }).scripts;
  assert.ok(scripts['build'] !== undefined, 'npm run build exists');
  assert.match(dockerfile, /^FROM node:20-slim/m);
  assert.match(dockerfile, /npm ci --ignore-scripts/);
  assert.match(dockerfile, /npm run build && npm prune --omit=dev/);
  assert.match(dockerfile, /^EXPOSE 7000 7001 7002 2181 2379$/m);
  // The etcd port loads etcd's .proto files at run time.
  assert.match(dockerfile, /^COPY --from=build \/opt\/flotilla\/proto \.\/proto$/m);
  assert.match(dockerfile, /^VOLUME \/var\/lib\/flotilla$/m);
  assert.match(dockerfile, /^USER flotilla$/m);
  assert.match(dockerfile, /^ENTRYPOINT \["\/opt\/flotilla\/bin\/flotilla", "server"\]$/m);
  assert.match(dockerfile, /^WORKDIR \/opt\/flotilla$/m);
  const ignore = read(root, '.dockerignore').split('\n');
  for (const excluded of ['node_modules', 'dist', '.git']) assert.ok(ignore.includes(excluded), `.dockerignore leaves out ${excluded}`);
});

// ---- every `flotilla` command line in deploy/ --------------------------------------------

/** `flotilla ...args --help`, cached. */
const helps = new Map<string, Promise<{ code: number | null; text: string }>>();
function help(path: readonly string[]): Promise<{ code: number | null; text: string }> {
  const key = path.join(' ');
  let run = helps.get(key);
  if (run === undefined) {
    run = new Promise((resolve) => {
      const child = spawnFlotilla([...path, '--help'], { cwd: root, output: 'pipe' });
      let text = '';
      child.process.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      child.process.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      child.process.once('close', (code) => resolve({ code, text }));
    });
    helps.set(key, run);
  }
  return run;
}

/** The names under "Commands:" in a help text. */
function subcommands(text: string): string[] {
  const at = text.indexOf('\nCommands:\n');
  if (at < 0) return [];
  const names: string[] = [];
  for (const line of text.slice(at + '\nCommands:\n'.length).split('\n')) {
    if (line.trim() === '') break;
    // A wrapped description is indented further.
    const match = /^ {2}([a-z][a-z-]*)/.exec(line);
    if (match !== null) names.push(match[1]!);
  }
  return names;
}

interface Usage {
  readonly file: string;
  readonly line: string;
  /** Words after `flotilla` (docker run: after the image name, with the entry point's `server`). */
  readonly words: readonly string[];
}

/** Shell lines (continuations joined) that run flotilla, with the words after it. */
function usages(file: string, text: string): Usage[] {
  const found: Usage[] = [];
  // A continued line (in a comment too) is one command.
  for (const line of text.replace(/\\\n\s*(#\s*)?/g, ' ').split('\n')) {
    const command = line.replace(/^\s*(#\s*)?(ExecStart=)?/, '').split(/\s+(?:#|&&|\|\||\||;)\s/)[0]!;
    const tokens = command.split(/\s+/).filter((token) => token.length > 0);
    const docker = tokens[0] === 'docker' && tokens[1] === 'run';
    // The image name (docker) or the program, the last `flotilla` on the line.
    let at = -1;
    for (const [i, token] of tokens.entries()) if (token === 'flotilla' || token.endsWith('/bin/flotilla')) at = i;
    if (at < 0) continue;
    const words = tokens.slice(at + 1);
    if (docker) found.push({ file, line, words: ['server', ...words] });
    else if (tokens[at]!.endsWith('/bin/flotilla') || (at === 0 && words.length > 0)) found.push({ file, line, words });
  }
  return found;
}

test('every flotilla command in deploy/ uses commands and flags that exist', async () => {
  const files = ['README.md', 'flotilla.service', 'Dockerfile', join('kubernetes', 'statefulset.yaml')];
  const all = files.flatMap((file) => usages(file, read(deploy, file)));
  // The unit, the image, the start script and the README's walk-through are all found.
  for (const file of files)
    assert.ok(
      all.some((usage) => usage.file === file),
      `a flotilla command in deploy/${file}`,
    );
  const checked = new Set<string>();
  for (const usage of all) {
    const path: string[] = [];
    for (const word of usage.words) {
      if (word.startsWith('-')) break;
      const top = await help(path);
      if (!subcommands(top.text).includes(word)) break;
      path.push(word);
    }
    assert.ok(path.length > 0, `deploy/${usage.file}: "${usage.line}" runs no flotilla command`);
    const { code, text } = await help(path);
    assert.equal(code, 0, `flotilla ${path.join(' ')} --help: ${text}`);
    for (const flag of usage.words.filter((word) => word.startsWith('--'))) {
      const name = flag.split('=')[0]!;
      assert.ok(new RegExp(`(^|[\\s,])${name}[\\s<[]`, 'm').test(text), `deploy/${usage.file}: flotilla ${path.join(' ')} has no ${name} ("${usage.line.trim()}")`);
      checked.add(`${path.join(' ')} ${name}`);
    }
  }
  for (const expected of ['server --config', 'server --id', 'server --join', 'member list --admin', 'member add --admin', 'kv put --endpoints']) {
    assert.ok(checked.has(expected), `checked ${expected} (found: ${[...checked].join(', ')})`);
  }
});
