// TLS on every port of a member, with real processes and certificates made by `flotilla
// cert`: a three-member cluster with mutual TLS between peers and --client-cert-auth on
// the client, admin and ZooKeeper secure ports. Good certificates work on each port (the
// native client, the CLI, https admin, Flotilla's ZooKeeper client and the real zkCli.sh);
// a certificate from another CA is refused at the handshake on each port, with a log line
// naming the remote address and the reason; a member with another CA's certificate cannot
// join while the other two serve, and joins once it has a good one; SIGHUP reloads the
// certificate (a new connection sees the new serial) and a bad reload changes nothing.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { connect as connectTcp } from 'node:net';
import { type ConnectionOptions, connect as connectTls } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ClientError, FlotillaClient, loadClientTls, type ClientTls } from '../../src/server/client.js';
import { ZkClient } from '../../src/zkclient/index.js';
import { getJson, HttpGetError } from '../../src/platform/http-get.js';
import { CertificateError, makeCertificate } from '../../src/platform/x509.js';
import { freePorts, type LogEntry, MemberProcess, type Ports, TICK_MS, waitFor } from '../server/helpers.js';
import { parseCreated, runZkCli, zkCliSkipReason } from '../zk/zkcli.js';
import { killAllCommands, runFlotilla } from './helpers.js';
import { etcdctl, etcdSkipReason } from '../etcd/etcdctl.js';

after(killAllCommands);

interface TlsPorts extends Ports {
  zkSecure: number;
}

async function flotilla(args: readonly string[]): Promise<string> {
  const run = await runFlotilla(args);
  assert.equal(run.code, 0, `flotilla ${args.join(' ')}: ${run.stderr}`);
  return run.stdout.toString();
}

/** The certificates of a test: a CA with three members and a client, and another CA with a member and a client. */
async function makeCertificates(root: string): Promise<{ good: string; other: string }> {
  const good = join(root, 'certs');
  const other = join(root, 'other');
  assert.match(await flotilla(['cert', 'init', '--dir', good]), /ca\.crt/);
  await flotilla(['cert', 'init', '--dir', other, '--name', 'Another CA']);
  const refused = await runFlotilla(['cert', 'init', '--dir', good]);
  assert.equal(refused.code, 2, 'an existing CA is not replaced without --force');
  assert.match(refused.stderr, /exists/);
  for (const id of [1, 2, 3]) await flotilla(['cert', 'issue', '--dir', good, '--name', `member-${id}`, '--ip', '127.0.0.1', '--dns', 'localhost']);
  await flotilla(['cert', 'issue', '--dir', good, '--name', 'alice', '--client']);
  await flotilla(['cert', 'issue', '--dir', other, '--name', 'member-3', '--ip', '127.0.0.1']);
  await flotilla(['cert', 'issue', '--dir', other, '--name', 'mallory', '--client']);
  const noCa = await runFlotilla(['cert', 'issue', '--dir', join(root, 'nowhere'), '--name', 'x']);
  assert.equal(noCa.code, 1);
  assert.match(noCa.stderr, /cannot read the CA/);
  const badIp = await runFlotilla(['cert', 'issue', '--dir', good, '--name', 'x', '--ip', '300.1.1.1']);
  assert.equal(badIp.code, 2);
  assert.match(badIp.stderr, /not an IP address/);
  return { good, other };
}

function certificate(file: string): Promise<X509Certificate> {
  return readFile(file).then((pem) => new X509Certificate(pem));
}

/** The serial of the certificate a TLS port serves to a new connection. */
function servedSerial(port: number, tls: ClientTls): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, ca: tls.ca, cert: tls.cert, key: tls.key }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.once('error', reject);
  });
}

/** Connects with `options` and reports how the connection ended: 'refused <code>' at our end, or 'closed' by the server. */
function tlsOutcome(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = connectTls({ host: '127.0.0.1', port, ...options });
    let outcome = 'closed';
    socket.once('error', (error: NodeJS.ErrnoException) => {
      outcome = socket.authorized || error.code === 'ECONNRESET' ? 'closed' : `refused ${error.code}`;
    });
    // TLS 1.3: a server refuses our certificate after our handshake is done; write, and
    // see the connection close without an answer.
    socket.once('secureConnect', () => socket.write(Buffer.from([0, 0, 0, 1, 0])));
    socket.on('data', () => {
      outcome = 'answered';
    });
    socket.once('close', () => resolve(outcome));
  });
}

function hasLog(member: MemberProcess, message: string, match: (entry: LogEntry) => boolean): LogEntry | undefined {
  return member.entries().find((entry) => entry.msg === message && match(entry));
}

class TlsCluster {
  readonly members = new Map<number, MemberProcess>();
  readonly ports = new Map<number, TlsPorts>();

  constructor(
    readonly root: string,
    readonly certs: { good: string; other: string },
    readonly peerPorts: readonly number[],
    readonly secretFile: string,
  ) {}

  async start(id: number, certDir = this.certs.good): Promise<MemberProcess> {
    const peers = this.peerPorts.map((port, i) => `${i + 1}=127.0.0.1:${port}`).join(',');
    const member = new MemberProcess(id, [
      'server',
      '--id',
      String(id),
      '--peers',
      peers,
      '--data',
      join(this.root, `member-${id}`),
      '--tick-ms',
      String(TICK_MS),
      '--client-port',
      '0',
      '--admin-port',
      '0',
      '--zk-port',
      '0',
      '--etcd-port',
      '0',
      '--zk-secure-port',
      '0',
      '--cluster-secret-file',
      this.secretFile,
      '--tls-cert',
      join(certDir, `member-${id}.crt`),
      '--tls-key',
      join(certDir, `member-${id}.key`),
      '--tls-ca',
      join(certDir, 'ca.crt'),
      '--client-cert-auth',
    ]);
    this.members.set(id, member);
    this.ports.set(id, (await member.listening) as TlsPorts);
    return member;
  }

  async stop(id: number): Promise<void> {
    const member = this.members.get(id)!;
    member.child.kill('SIGKILL');
    await member.child.exited;
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.members.keys()].map((id) => this.stop(id)));
    await rm(this.root, { recursive: true, force: true });
  }

  endpoints(ids: readonly number[]): { host: string; port: number }[] {
    return ids.map((id) => ({ host: '127.0.0.1', port: this.ports.get(id)!.client }));
  }

  admin(id: number): string {
    return `127.0.0.1:${this.ports.get(id)!.admin}`;
  }
}

async function startCluster(t: TestContext): Promise<TlsCluster> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-tls-'));
  const secretFile = join(root, 'cluster.env');
  await writeFile(secretFile, 'FLOTILLA_CLUSTER_SECRET=process-test-secret-0123456789\n', { mode: 0o600 });
  const certs = await makeCertificates(root);
  const cluster = new TlsCluster(root, certs, await freePorts(3), secretFile);
  t.after(() => cluster.dispose());
  return cluster;
}

test('TLS on every port: good certificates work, another CA is refused at the handshake, SIGHUP reloads', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t);
  const { good, other } = cluster.certs;
  const alice = loadClientTls({ cacert: join(good, 'ca.crt'), cert: join(good, 'alice.crt'), key: join(good, 'alice.key') })!;
  const mallory = loadClientTls({ cacert: join(good, 'ca.crt'), cert: join(other, 'mallory.crt'), key: join(other, 'mallory.key') })!;
  const caOnly = loadClientTls({ cacert: join(good, 'ca.crt') })!;
  const caKey = (await certificate(join(good, 'ca.crt'))).publicKey;
  assert.ok((await certificate(join(good, 'member-1.crt'))).verify(caKey), 'cert issue signs with the CA');
  assert.ok(!(await certificate(join(other, 'member-3.crt'))).verify(caKey), "another CA's certificate does not verify");

  // Members 1 and 2 with good certificates; member 3 with one from another CA.
  const [one, two] = await Promise.all([cluster.start(1), cluster.start(2)]);
  const bad = await cluster.start(3, other);
  const client = new FlotillaClient({ endpoints: cluster.endpoints([1, 2, 3]), tls: alice, callDeadlineMs: 15_000 });
  t.after(() => client.close());
  await client.put('k1', 'v1');
  assert.equal(Buffer.from((await client.get('k1')).value!).toString(), 'v1');

  // Members 1 and 2 dial 3 and refuse its certificate, naming it and why; 3 never gets a peer.
  for (const member of [one!, two!]) {
    const line = await waitFor(`member ${member.id} refuses member 3's certificate`, 10_000, () =>
      hasLog(member, 'TLS handshake with a peer failed', (entry) => entry['peer'] === 3 && /not signed by a trusted CA/.test(String(entry['reason']))),
    );
    assert.equal(line['remote'], `127.0.0.1:${cluster.peerPorts[2]}`);
  }
  // Member 3 sees its handshakes fail too, and names who dialled.
  await waitFor('member 3 logs the refused peer handshakes', 10_000, () =>
    hasLog(bad, 'refused a connection to the peer port at the TLS handshake', (entry) => /^127\.0\.0\.1:\d+$/.test(String(entry['remote']))),
  );
  assert.equal(
    hasLog(bad, 'peer connection authenticated', () => true),
    undefined,
    'a member with a foreign certificate joins no one',
  );
  assert.ok(hasLog(one!, 'peer connection authenticated', (entry) => entry['peer'] === 2 && entry['tls'] === true));

  // The peer port speaks only TLS: a well-formed plain HELLO from member 1 to member 2 (which
  // member 2 answers with a CHALLENGE over plain TCP) gets no answer, and member 2 says why.
  const hello = Buffer.from([0, 0, 0, 42, 1, 1, 0, 0, 0, 1, 0, 0, 0, 2, ...new Array<number>(32).fill(7)]);
  const plain = await new Promise<string>((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port: cluster.peerPorts[1]! }, () => socket.write(hello));
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(answer));
  });
  assert.equal(plain, '', 'no Raft handshake over plain TCP');
  await waitFor('the peer port names the plain-TCP caller', 5_000, () =>
    hasLog(two!, 'refused a connection to the peer port at the TLS handshake', (entry) => /does not speak TLS/.test(String(entry['reason'])) && /^127\.0\.0\.1:\d+$/.test(String(entry['remote']))),
  );
  // A certificate from another CA on the peer port: refused, with the reason.
  assert.equal(await tlsOutcome(cluster.peerPorts[0]!, { ca: mallory.ca, cert: mallory.cert, key: mallory.key }), 'closed');
  await waitFor('the peer port refuses the foreign certificate', 5_000, () =>
    hasLog(one!, 'refused a connection to the peer port at the TLS handshake', (entry) => /not signed by a trusted CA/.test(String(entry['reason']))),
  );

  // Replace member 3's certificate with a good one: it joins and catches up.
  await cluster.stop(3);
  const three = await cluster.start(3);
  await waitFor('member 3 connects to its peers over TLS', 10_000, () => hasLog(three, 'peer connection authenticated', (entry) => entry['tls'] === true));
  const onlyThree = new FlotillaClient({ endpoints: cluster.endpoints([3]), tls: alice, callDeadlineMs: 5_000 });
  t.after(() => onlyThree.close());
  await waitFor('member 3 has k1', 10_000, async () => ((await onlyThree.get('k1', { consistency: 'serializable' })).value === null ? undefined : true));

  // The client port: another CA's client certificate, or none, is refused (--client-cert-auth).
  for (const [name, tls, reason] of [
    ['mallory', mallory, /not signed by a trusted CA/],
    ['no certificate', caOnly, /no client certificate/],
  ] as const) {
    const refused = new FlotillaClient({ endpoints: cluster.endpoints([1]), tls, callDeadlineMs: 1_500 });
    // A read: Node's TLS server checks a client certificate only after the handshake, so the
    // client has already sent its request when the connection closes, and a write would end
    // as outcome-unknown (README.md "TLS"; nothing is applied: the socket is never read).
    await assert.rejects(refused.get('k1'), (error: Error) => error instanceof ClientError && error.code === 'unavailable', name);
    refused.close();
    await waitFor(`member 1 logs refusing ${name} on the client port`, 5_000, () =>
      hasLog(one!, 'refused a connection to the client port at the TLS handshake', (entry) => reason.test(String(entry['reason'])) && /^127\.0\.0\.1:\d+$/.test(String(entry['remote']))),
    );
  }
  // And a client checks the member: trusting only another CA, it refuses the member's certificate.
  const wrongCa = new FlotillaClient({ endpoints: cluster.endpoints([1]), tls: { ...alice, ca: await readFile(join(other, 'ca.crt')) }, callDeadlineMs: 1_000 });
  await assert.rejects(wrongCa.get('k1'), /not signed by a trusted CA/);
  wrongCa.close();

  // The CLI with etcdctl's flags; without them it cannot talk to a TLS cluster.
  const tlsFlags = ['--cacert', join(good, 'ca.crt'), '--cert', join(good, 'alice.crt'), '--key', join(good, 'alice.key')];
  const endpoints = cluster
    .endpoints([1, 2, 3])
    .map((e) => `127.0.0.1:${e.port}`)
    .join(',');
  assert.match(await flotilla(['kv', 'put', 'k3', 'v3', '--endpoints', endpoints, ...tlsFlags]), /OK/);
  assert.equal(await flotilla(['kv', 'get', 'k3', '--endpoints', endpoints, ...tlsFlags]), 'v3\n');
  const halfFlags = await runFlotilla(['kv', 'get', 'k3', '--endpoints', endpoints, '--cacert', join(good, 'ca.crt'), '--cert', join(good, 'alice.crt')]);
  assert.equal(halfFlags.code, 2);
  assert.match(halfFlags.stderr, /--cert and --key go together/);
  const admins = [1, 2, 3].map((id) => cluster.admin(id)).join(',');
  const listed = JSON.parse(await flotilla(['member', 'list', '--json', '--admin', admins, ...tlsFlags])) as Record<string, { members: { id: number }[] }>;
  assert.deepEqual(
    listed['kv']!.members.map((m) => m.id),
    [1, 2, 3],
  );
  const plainList = await runFlotilla(['member', 'list', '--admin', admins]);
  assert.equal(plainList.code, 1, 'plain HTTP gets no answer from an https admin port');
  const backup = join(cluster.root, 'backup.flot');
  assert.match(await flotilla(['snapshot', 'save', backup, '--admin', cluster.admin(2), ...tlsFlags]), /saved/);

  // A change asked of a follower is forwarded to the leader's admin port over https, with the
  // member certificate as the client certificate (--client-cert-auth is on).
  const kvLeader = (listed['kv'] as unknown as { leader: number }).leader;
  const follower = [1, 2, 3].find((id) => id !== kvLeader)!;
  assert.match(await flotilla(['member', 'transfer-leader', String(follower), '--group', 'kv', '--admin', cluster.admin(follower), ...tlsFlags]), new RegExp(`kv: member ${follower} leads`));

  // etcd's port speaks TLS with the same certificates: etcdctl with a good client certificate
  // writes and reads; with one from another CA, or none, the handshake is refused.
  if (etcdSkipReason() === undefined) {
    const etcdEndpoints = [1, 2, 3].map((id) => `https://127.0.0.1:${cluster.ports.get(id)!.etcd}`).join(',');
    const etcdFlags = ['--cacert', join(good, 'ca.crt'), '--cert', join(good, 'alice.crt'), '--key', join(good, 'alice.key')];
    const put = await etcdctl(etcdEndpoints, ['put', 'tls-key', 'over-tls', ...etcdFlags]);
    assert.equal(put.code, 0, put.stderr);
    const got = await etcdctl(etcdEndpoints, ['get', 'tls-key', '--print-value-only', ...etcdFlags]);
    assert.equal(got.stdout.trim(), 'over-tls', got.stderr);
    for (const [name, flags] of [
      ['mallory', ['--cacert', join(good, 'ca.crt'), '--cert', join(other, 'mallory.crt'), '--key', join(other, 'mallory.key')]],
      ['no certificate', ['--cacert', join(good, 'ca.crt')]],
    ] as const) {
      const refused = await etcdctl(`https://127.0.0.1:${cluster.ports.get(1)!.etcd}`, ['get', 'tls-key', '--dial-timeout=2s', ...flags]);
      assert.notEqual(refused.code, 0, `etcdctl with ${name} is refused`);
    }
    const plainEtcd = await etcdctl(`127.0.0.1:${cluster.ports.get(1)!.etcd}`, ['get', 'tls-key', '--dial-timeout=2s']);
    assert.notEqual(plainEtcd.code, 0, 'plain gRPC gets nothing from a TLS etcd port');
  }

  // --join over https: a fourth member learns the cluster from an admin port and is added.
  await flotilla(['cert', 'issue', '--dir', good, '--name', 'member-4', '--ip', '127.0.0.1']);
  const [joinerPeerPort] = await freePorts(1);
  const joiner = new MemberProcess(4, [
    'server',
    '--id',
    '4',
    '--peers',
    `4=127.0.0.1:${joinerPeerPort}`,
    '--join',
    cluster.admin(1),
    '--data',
    join(cluster.root, 'member-4'),
    '--tick-ms',
    String(TICK_MS),
    '--client-port',
    '0',
    '--admin-port',
    '0',
    '--zk-port',
    '0',
    '--etcd-port',
    '0',
    '--cluster-secret-file',
    cluster.secretFile,
    '--tls-cert',
    join(good, 'member-4.crt'),
    '--tls-key',
    join(good, 'member-4.key'),
    '--tls-ca',
    join(good, 'ca.crt'),
  ]);
  cluster.members.set(4, joiner);
  await joiner.listening;
  assert.match(await flotilla(['member', 'add', '4', `127.0.0.1:${joinerPeerPort}`, '--admin', admins, ...tlsFlags]), /kv: add 4 done/);
  await waitFor('member 4 connects to its peers over TLS', 10_000, () => hasLog(joiner, 'peer connection authenticated', (entry) => entry['tls'] === true));

  // Admin https: /status with the CA and a client certificate; refused without one.
  const status = (await getJson(`https://${cluster.admin(2)}/status`, 5_000, alice)) as { id: number; tls: { clientCertAuth: boolean } };
  assert.equal(status.id, 2);
  assert.equal(status.tls.clientCertAuth, true);
  await assert.rejects(getJson(`https://${cluster.admin(2)}/status`, 5_000, mallory), HttpGetError);
  await waitFor('member 2 logs refusing mallory on the admin port', 5_000, () =>
    hasLog(two!, 'refused a connection to the admin port at the TLS handshake', (entry) => /not signed by a trusted CA/.test(String(entry['reason']))),
  );

  // ZooKeeper: Flotilla's client on the secure port, the real zkCli.sh over TLS, and the plain port.
  const zk = await ZkClient.connect({ servers: [`127.0.0.1:${cluster.ports.get(1)!.zkSecure}`], sessionTimeoutMs: 4_000, tls: alice });
  await zk.create('/tls', 'over-tls');
  await zk.close();
  assert.equal(await flotilla(['zk', 'get', '/tls', '--server', `127.0.0.1:${cluster.ports.get(2)!.zk}`]), 'over-tls\n');
  assert.equal(await flotilla(['zk', 'get', '/tls', '--server', `127.0.0.1:${cluster.ports.get(3)!.zkSecure}`, ...tlsFlags]), 'over-tls\n');
  assert.equal(await tlsOutcome(cluster.ports.get(1)!.zkSecure, { ca: mallory.ca, cert: mallory.cert, key: mallory.key }), 'closed');
  await waitFor('member 1 logs refusing mallory on the ZooKeeper secure port', 5_000, () =>
    hasLog(one!, 'refused a connection to the zookeeper port at the TLS handshake', (entry) => /not signed by a trusted CA/.test(String(entry['reason']))),
  );
  const skip = zkCliSkipReason();
  if (skip === undefined) {
    const keyStore = join(cluster.root, 'alice.pem');
    await writeFile(keyStore, Buffer.concat([alice.cert!, alice.key!]), { mode: 0o600 });
    const result = await runZkCli(`127.0.0.1:${cluster.ports.get(2)!.zkSecure}`, ['create /from-zkcli hello', 'get /from-zkcli', 'get /tls'], {
      jvmFlags: [
        // Debian's zookeeper.jar leaves two jars the Netty client needs off its class path.
        '-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/netty-codec.jar',
        '-Dzookeeper.client.secure=true',
        '-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty',
        `-Dzookeeper.ssl.keyStore.location=${keyStore}`,
        '-Dzookeeper.ssl.keyStore.type=PEM',
        `-Dzookeeper.ssl.trustStore.location=${join(good, 'ca.crt')}`,
        '-Dzookeeper.ssl.trustStore.type=PEM',
      ],
    });
    const outputs = result.commands;
    assert.equal(outputs.length, 3, `zkCli over TLS:\n${result.stdout}\n${result.stderr}`);
    assert.equal(parseCreated(outputs[0]!.stderr), '/from-zkcli', outputs[0]!.stderr);
    assert.equal(outputs[1]!.stdout, 'hello');
    assert.equal(outputs[2]!.stdout, 'over-tls');
  } else {
    t.diagnostic(`zkCli part skipped: ${skip}`);
  }

  // SIGHUP: a new certificate for member 1 is served to new connections.
  const clientPort = cluster.ports.get(1)!.client;
  const before = await servedSerial(clientPort, alice);
  assert.equal(before, (await certificate(join(good, 'member-1.crt'))).serialNumber);
  await flotilla(['cert', 'issue', '--dir', good, '--name', 'member-1', '--ip', '127.0.0.1']);
  const renewed = (await certificate(join(good, 'member-1.crt'))).serialNumber;
  assert.notEqual(renewed, before);
  process.kill(one!.child.pid, 'SIGHUP');
  await waitFor('member 1 logs the reload', 5_000, () =>
    hasLog(one!, 'reloaded the TLS certificates: new connections use them', (entry) => (entry['certificate'] as { serial: string }).serial === renewed),
  );
  assert.equal(await servedSerial(clientPort, alice), renewed);
  assert.equal(await servedSerial(cluster.ports.get(1)!.admin, alice), renewed);
  assert.equal(await servedSerial(cluster.peerPorts[0]!, alice), renewed);
  // A reload that finds a key that is not the certificate's keeps the old pair, and says so.
  await writeFile(join(good, 'member-1.key'), await readFile(join(good, 'member-2.key')));
  process.kill(one!.child.pid, 'SIGHUP');
  await waitFor('member 1 logs the failed reload', 5_000, () =>
    hasLog(one!, 'TLS reload failed: still using the previous certificates', (entry) => /is not the key of the certificate/.test(String(entry['error']))),
  );
  assert.equal(await servedSerial(clientPort, alice), renewed);
  await client.put('k4', 'after-reload');
  assert.equal(Buffer.from((await onlyThree.get('k4')).value!).toString(), 'after-reload');
});

test('cert makes IPv4, IPv6 and DNS names, and refuses bad ones', () => {
  const ca = makeCertificate({ commonName: 'Test CA', use: 'ca', days: 1 }, undefined);
  const leaf = makeCertificate({ commonName: 'm', use: 'member', ips: ['10.1.2.3', '::1', 'fe80::1:2'], dnsNames: ['db.example'], days: 1 }, ca);
  const parsed = new X509Certificate(leaf.certPem);
  assert.ok(parsed.verify(new X509Certificate(ca.certPem).publicKey));
  assert.ok(parsed.checkIP('10.1.2.3') !== undefined && parsed.checkIP('::1') !== undefined && parsed.checkIP('fe80::1:2') !== undefined);
  assert.equal(parsed.checkIP('10.1.2.4'), undefined);
  assert.equal(parsed.checkHost('db.example'), 'db.example');
  assert.equal(parsed.ca, false);
  assert.equal(new X509Certificate(ca.certPem).ca, true);
  assert.throws(() => makeCertificate({ commonName: 'm', use: 'member', dnsNames: ['bad name'], days: 1 }, ca), CertificateError);
  assert.throws(() => makeCertificate({ commonName: 'm', use: 'member', days: 0 }, ca), /days/);
  assert.throws(() => makeCertificate({ commonName: 'm', use: 'member', days: 1 }, leaf), /not a CA/);
});

test('flotilla server refuses to start with TLS files that do not fit together', async (t) => {
  const cluster = await startCluster(t);
  const { good, other } = cluster.certs;
  const base = ['server', '--id', '1', '--peers', `1=127.0.0.1:${cluster.peerPorts[0]}`, '--data', join(cluster.root, 'refused'), '--cluster-secret-file', cluster.secretFile];
  const cases: [string[], RegExp][] = [
    [['--tls-cert', join(good, 'member-1.crt')], /all three of --tls-cert, --tls-key and --tls-ca/],
    [['--client-cert-auth'], /clientCertAuth needs TLS/],
    [['--zk-secure-port', '0'], /zkSecurePort needs TLS/],
    [['--tls-cert', join(good, 'member-1.crt'), '--tls-key', join(good, 'member-2.key'), '--tls-ca', join(good, 'ca.crt')], /is not the key of the certificate/],
    [['--tls-cert', join(other, 'member-3.crt'), '--tls-key', join(other, 'member-3.key'), '--tls-ca', join(good, 'ca.crt')], /is not signed by the CA/],
    [['--tls-cert', join(good, 'missing.crt'), '--tls-key', join(good, 'member-1.key'), '--tls-ca', join(good, 'ca.crt')], /cannot read the certificate .*ENOENT/],
  ];
  const configFile = join(cluster.root, 'config.json');
  await writeFile(configFile, JSON.stringify({ tlsCert: join(good, 'member-1.crt'), tlsKey: join(good, 'member-1.key'), tlsCa: join(good, 'ca.crt'), clientCertAuth: 'yes' }));
  cases.push([['--config', configFile], /clientCertAuth: "yes" is not true or false/]);
  for (const [flags, message] of cases) {
    const run = await runFlotilla([...base, ...flags]);
    assert.equal(run.code, 2, `${flags.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
});
