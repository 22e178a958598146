// `flotilla cert init|issue`: a certificate authority for a cluster, and member and client
// certificates signed by it (platform/x509.ts: ECDSA P-256, made with Node's crypto only).
//
//   flotilla cert init --dir certs                                   certs/ca.crt, certs/ca.key
//   flotilla cert issue --dir certs --name member-1 --ip 10.0.0.1    certs/member-1.crt, .key
//   flotilla cert issue --dir certs --name alice --client            a client certificate
//
// A member certificate serves the member's ports and is its client certificate towards
// its peers, so it has both serverAuth and clientAuth, and names every address clients and
// peers dial (--ip, --dns; default 127.0.0.1 and localhost). Issuing a name again replaces
// its files (a renewal; send the member SIGHUP to load it). Keys are written with mode 0600.
//
// Exit codes: 0 done; 1 a file could not be read or written; 2 bad usage (or a CA exists).

import { type Command, InvalidArgumentError } from 'commander';
import { readTextFile, writeFileDurably } from '../platform/files.js';
import { exit, writeErr, writeOut } from '../platform/process.js';
import { absolutePath, ensureDirectory, fileExists } from '../platform/server-files.js';
import { CertificateError, certificateLimits, makeCertificate, type PemPair } from '../platform/x509.js';

const CA_CERT = 'ca.crt';
const CA_KEY = 'ca.key';

interface InitFlags {
  dir: string;
  name: string;
  days: number;
  force?: boolean;
}

interface IssueFlags {
  dir: string;
  name: string;
  ip: string[];
  dns: string[];
  client?: boolean;
  days?: number;
}

export function registerCert(program: Command): void {
  const cert = program
    .command('cert')
    .description("make a cluster's certificate authority and its members' and clients' certificates (PEM)")
    .exitOverride((error) => exit(error.exitCode === 0 ? 0 : 2));
  cert
    .command('init')
    .description(`make a CA: DIR/${CA_CERT} (give it to every member and client) and DIR/${CA_KEY} (keep it secret)`)
    .requiredOption('--dir <dir>', 'where the CA is written (created if missing)')
    .option('--name <name>', "the CA's common name", 'Flotilla CA')
    .option('--days <n>', `how long the CA is valid (default ${certificateLimits.caDaysDefault})`, days, certificateLimits.caDaysDefault)
    .option('--force', 'replace an existing CA (every certificate it signed stops being trusted)')
    .action((flags: InitFlags) => init(flags));
  cert
    .command('issue')
    .description('make a certificate signed by the CA in --dir: DIR/NAME.crt and DIR/NAME.key (replaced if they exist)')
    .requiredOption('--dir <dir>', `the directory of the CA (${CA_CERT}, ${CA_KEY}); the new files go there too`)
    .requiredOption('--name <name>', 'the common name and file name (letters, digits, . _ -)', fileName)
    .option('--ip <address>', 'an IP address clients and peers dial (repeatable; default 127.0.0.1 with localhost)', collect, [])
    .option('--dns <name>', 'a DNS name clients and peers dial (repeatable)', collect, [])
    .option('--client', 'a client certificate (clientAuth only; no addresses needed), for --cert of kv, zk, member, snapshot')
    .option('--days <n>', `how long it is valid (default ${certificateLimits.leafDaysDefault})`, days)
    .action((flags: IssueFlags) => issue(flags));
}

async function init(flags: InitFlags): Promise<void> {
  const certFile = `${flags.dir}/${CA_CERT}`;
  const keyFile = `${flags.dir}/${CA_KEY}`;
  if (flags.force !== true && (await fileExists(keyFile))) fail(2, `${absolutePath(keyFile)} exists: a new CA would invalidate every certificate the old one signed (--force to replace it)`);
  const ca = certificate(() => makeCertificate({ commonName: flags.name, use: 'ca', days: flags.days }, undefined));
  await writePair(flags.dir, certFile, keyFile, ca);
  writeOut(`wrote ${absolutePath(certFile)} (the CA certificate: --tls-ca for members, --cacert for clients)\nwrote ${absolutePath(keyFile)} (the CA key: keep it secret)\n`);
}

async function issue(flags: IssueFlags): Promise<void> {
  if (flags.name === 'ca') fail(2, '--name ca would overwrite the CA');
  const caCertFile = `${flags.dir}/${CA_CERT}`;
  const caKeyFile = `${flags.dir}/${CA_KEY}`;
  let ca: PemPair;
  try {
    ca = { certPem: readTextFile(caCertFile), keyPem: readTextFile(caKeyFile) };
  } catch (error) {
    fail(1, `cannot read the CA in ${absolutePath(flags.dir)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); make one with: flotilla cert init --dir ${flags.dir}`);
  }
  const client = flags.client === true;
  const defaults = !client && flags.ip.length === 0 && flags.dns.length === 0;
  const ips = defaults ? ['127.0.0.1'] : flags.ip;
  const dnsNames = defaults ? ['localhost'] : flags.dns;
  const pair = certificate(() => makeCertificate({ commonName: flags.name, use: client ? 'client' : 'member', ips, dnsNames, days: flags.days ?? certificateLimits.leafDaysDefault }, ca));
  const certFile = `${flags.dir}/${flags.name}.crt`;
  const keyFile = `${flags.dir}/${flags.name}.key`;
  await writePair(flags.dir, certFile, keyFile, pair);
  const names = [...dnsNames.map((dns) => `DNS:${dns}`), ...ips.map((ip) => `IP:${ip}`)].join(', ');
  writeOut(`wrote ${absolutePath(certFile)} (${client ? 'client' : 'member'} certificate${names.length > 0 ? ` for ${names}` : ''})\nwrote ${absolutePath(keyFile)} (its key)\n`);
}

function certificate(make: () => PemPair): PemPair {
  try {
    return make();
  } catch (error) {
    if (error instanceof CertificateError) fail(2, error.message);
    throw error;
  }
}

async function writePair(dir: string, certFile: string, keyFile: string, pair: PemPair): Promise<void> {
  try {
    await ensureDirectory(dir);
    // Each file is replaced whole; a member reloading between the two writes finds a key
    // that is not the certificate's and keeps its old pair (platform/tls.ts checks).
    writeFileDurably(keyFile, new TextEncoder().encode(pair.keyPem));
    writeFileDurably(certFile, new TextEncoder().encode(pair.certPem));
  } catch (error) {
    fail(1, `cannot write into ${absolutePath(dir)}: ${(error as Error).message}`);
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function days(raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1 || value > certificateLimits.daysMax) throw new InvalidArgumentError(`an integer from 1 to ${certificateLimits.daysMax}`);
  return value;
}

function fileName(raw: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(raw)) throw new InvalidArgumentError('1 to 64 letters, digits, dots, underscores or dashes, starting with a letter or digit');
  return raw;
}

function fail(code: number, message: string): never {
  writeErr(`flotilla cert: ${message}\n`);
  exit(code);
}
