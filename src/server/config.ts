// The configuration of one member, from a JSON file and command-line flags (flags win),
// validated in one place: everything after resolveConfig() may trust it (STYLE.md 6).
//
// The cluster secret comes from a flag, the JSON file, or an env-file
// (FLOTILLA_CLUSTER_SECRET=...). It is never logged: describeConfig() leaves it out.
//
// TLS (README.md "TLS"): tlsCert, tlsKey and tlsCa come together or not at all; with them
// every port but the plain ZooKeeper port speaks TLS, and zkSecurePort opens ZooKeeper's
// secure client port. clientCertAuth requires client certificates on the client, admin
// and ZooKeeper secure ports (the peer port always requires them).

import { nodeId, type NodeId } from '../stdx/types.js';
import type { KvReadMode } from '../kv/index.js';
import { describeShardLayout, parseShardLayout, ShardLayoutError, type ShardLayout } from './shard-layout.js';

export interface Address {
  readonly host: string;
  readonly port: number;
}

export interface ServerConfig {
  readonly id: NodeId;
  /** Every member of the group, this one included, with its peer address. */
  readonly members: ReadonlyMap<NodeId, Address>;
  /** Joining a running cluster (--join): start with no bootstrap voters and wait to be added. */
  readonly join?: boolean;
  readonly dataDir: string;
  /** The interface every port listens on. */
  readonly host: string;
  /** The host other members and clients should use to reach this member. */
  readonly advertiseHost: string;
  readonly peerPort: number;
  /** 0: the OS picks; the bound port is in the "listening" log line. */
  readonly clientPort: number;
  readonly adminPort: number;
  readonly tickMs: number;
  readonly clusterSecret: string;
  readonly logLevel: LogLevel;
  /** The Raft state (log + hard state) size at which the KV service snapshots (the lab's maxraftstate). */
  readonly raftStateBytesMax: number;
  /** How long a KV request may wait for its command to apply or its read to be confirmed. */
  readonly requestTimeoutMs: number;
  /** 'read-index' (correct). The unsafe modes exist only for the tests that prove the checker catches them. */
  readonly readMode: KvReadMode;
  /** The ZooKeeper client port (default 2181; 0: the OS picks). */
  readonly zkPort: number;
  /** The etcd v3 gRPC port (default 2379; 0: the OS picks). */
  readonly etcdPort: number;
  /** How often an idle etcd watch created with progress_notify gets a progress notification (etcd: 10 minutes). */
  readonly etcdProgressNotifyMs: number;
  /** ZooKeeper's tickTime: session timeouts are clamped to 2..20 ticks. */
  readonly zkTickMs: number;
  /** A digest id ("user:base64(sha1(user:password))") that is a ZooKeeper superuser, if any. */
  readonly zkSuperDigest: string | undefined;
  /** TLS on the peer, client and admin ports (and the ZooKeeper secure port); undefined: plain TCP. */
  readonly tls: TlsSettings | undefined;
  /** ZooKeeper's secureClientPort (0: the OS picks); undefined: none. Only with tls. */
  readonly zkSecurePort: number | undefined;
  /** The sharded service's groups (shard-layout.ts); undefined: not sharded. */
  readonly shards?: ShardLayout | undefined;
  /** TESTS ONLY: a deliberately broken sharded key/value group (shardkv's ShardKvUnsafe), to prove the process test catches it. */
  readonly shardUnsafe?: 'serve-before-arrival' | undefined;
  /** The dashboard's fault buttons (POST /faults/...): kill, pause, cut links. Only for a local test cluster (`npm start` sets it). */
  readonly allowFaults?: boolean;
}

export interface TlsSettings {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
  /** Require a client certificate signed by the CA on the client, admin and ZooKeeper secure ports. */
  readonly clientCertAuth: boolean;
}

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof logLevels)[number];

export const configLimits = {
  membersMax: 64,
  tickMsMin: 1,
  tickMsMax: 10_000,
  tickMsDefault: 100,
  clusterSecretBytesMin: 16,
  memberIdMax: 0xffff_ffff,
  /** 64 MiB of log before a snapshot: replay at start stays a few seconds. */
  raftStateBytesMaxDefault: 64 * 1024 * 1024,
  raftStateBytesMin: 1024,
  requestTimeoutMsDefault: 1000,
  requestTimeoutMsMax: 60_000,
  zkPortDefault: 2181,
  etcdPortDefault: 2379,
  etcdProgressNotifyMsDefault: 600_000,
  etcdProgressNotifyMsMin: 100,
  etcdProgressNotifyMsMax: 86_400_000,
  zkTickMsDefault: 2000,
  zkTickMsMin: 10,
  zkTickMsMax: 60_000,
} as const;

/** The env-file key that holds the cluster secret. */
export const SECRET_ENV_KEY = 'FLOTILLA_CLUSTER_SECRET';

/** Raw settings as they come from flags or the JSON file, before validation. */
export interface ConfigInput {
  id?: unknown;
  peers?: unknown;
  dataDir?: unknown;
  host?: unknown;
  advertiseHost?: unknown;
  peerPort?: unknown;
  clientPort?: unknown;
  adminPort?: unknown;
  tickMs?: unknown;
  clusterSecret?: unknown;
  clusterSecretFile?: unknown;
  logLevel?: unknown;
  raftStateBytesMax?: unknown;
  requestTimeoutMs?: unknown;
  readMode?: unknown;
  zkPort?: unknown;
  etcdPort?: unknown;
  etcdProgressNotifyMs?: unknown;
  zkTickMs?: unknown;
  zkSuperDigest?: unknown;
  tlsCert?: unknown;
  tlsKey?: unknown;
  tlsCa?: unknown;
  clientCertAuth?: unknown;
  zkSecurePort?: unknown;
  shards?: unknown;
  shardUnsafe?: unknown;
  allowFaults?: unknown;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const inputKeys: ReadonlySet<string> = new Set([
  'id',
  'peers',
  'dataDir',
  'host',
  'advertiseHost',
  'peerPort',
  'clientPort',
  'adminPort',
  'tickMs',
  'clusterSecret',
  'clusterSecretFile',
  'logLevel',
  'raftStateBytesMax',
  'requestTimeoutMs',
  'readMode',
  'zkPort',
  'etcdPort',
  'etcdProgressNotifyMs',
  'zkTickMs',
  'zkSuperDigest',
  'tlsCert',
  'tlsKey',
  'tlsCa',
  'clientCertAuth',
  'zkSecurePort',
  'shards',
  'shardUnsafe',
  'allowFaults',
]);

/** Checks the shape of a parsed JSON config file: an object with known keys only. */
export function configFileInput(raw: unknown, file: string): ConfigInput {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${file}: the configuration is not a JSON object`);
  for (const key of Object.keys(raw)) {
    if (!inputKeys.has(key)) throw new ConfigError(`${file}: unknown setting "${key}" (known: ${[...inputKeys].join(', ')})`);
  }
  return raw as ConfigInput;
}

/**
 * Merges the file and the flags (flags win) and validates. `secretFromFile` is the secret
 * read from clusterSecretFile, if one was named.
 */
export function resolveConfig(file: ConfigInput, flags: ConfigInput, secretFromFile: string | undefined): ServerConfig {
  const merged: ConfigInput = { ...file };
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  const id = memberId(merged.id, 'id');
  const members = parsePeers(merged.peers);
  const self = members.get(id);
  if (self === undefined) throw new ConfigError(`member ${id} is not in the peer list (${describePeers(members)})`);
  const host = optionalString(merged.host, 'host') ?? self.host;
  const secret = secretFromFile ?? optionalString(merged.clusterSecret, 'clusterSecret');
  if (secret === undefined) throw new ConfigError(`no cluster secret: pass --cluster-secret-file (an env-file with ${SECRET_ENV_KEY}=...), or set clusterSecret`);
  if (Buffer.byteLength(secret) < configLimits.clusterSecretBytesMin) throw new ConfigError(`the cluster secret must have at least ${configLimits.clusterSecretBytesMin} bytes`);
  const dataDir = optionalString(merged.dataDir, 'dataDir');
  if (dataDir === undefined) throw new ConfigError('no data directory: pass --data <dir>');
  return {
    id,
    members,
    dataDir,
    host,
    advertiseHost: optionalString(merged.advertiseHost, 'advertiseHost') ?? self.host,
    peerPort: merged.peerPort === undefined ? self.port : port(merged.peerPort, 'peerPort'),
    clientPort: merged.clientPort === undefined ? 0 : port(merged.clientPort, 'clientPort'),
    adminPort: merged.adminPort === undefined ? 0 : port(merged.adminPort, 'adminPort'),
    tickMs: merged.tickMs === undefined ? configLimits.tickMsDefault : tickMs(merged.tickMs),
    clusterSecret: secret,
    logLevel: logLevel(merged.logLevel),
    raftStateBytesMax:
      merged.raftStateBytesMax === undefined
        ? configLimits.raftStateBytesMaxDefault
        : integerIn(merged.raftStateBytesMax, 'raftStateBytesMax', configLimits.raftStateBytesMin, Number.MAX_SAFE_INTEGER),
    requestTimeoutMs: merged.requestTimeoutMs === undefined ? configLimits.requestTimeoutMsDefault : integerIn(merged.requestTimeoutMs, 'requestTimeoutMs', 1, configLimits.requestTimeoutMsMax),
    readMode: readMode(merged.readMode),
    zkPort: merged.zkPort === undefined ? configLimits.zkPortDefault : port(merged.zkPort, 'zkPort'),
    etcdPort: merged.etcdPort === undefined ? configLimits.etcdPortDefault : port(merged.etcdPort, 'etcdPort'),
    etcdProgressNotifyMs:
      merged.etcdProgressNotifyMs === undefined
        ? configLimits.etcdProgressNotifyMsDefault
        : integerIn(merged.etcdProgressNotifyMs, 'etcdProgressNotifyMs', configLimits.etcdProgressNotifyMsMin, configLimits.etcdProgressNotifyMsMax),
    zkTickMs: merged.zkTickMs === undefined ? configLimits.zkTickMsDefault : integerIn(merged.zkTickMs, 'zkTickMs', configLimits.zkTickMsMin, configLimits.zkTickMsMax),
    zkSuperDigest: superDigest(merged.zkSuperDigest),
    ...tlsSettings(merged),
    ...shardSettings(merged.shards, members),
    ...shardUnsafe(merged.shardUnsafe),
    ...(booleanSetting(merged.allowFaults, 'allowFaults') ? { allowFaults: true } : {}),
  };
}

function shardUnsafe(raw: unknown): { shardUnsafe?: 'serve-before-arrival' } {
  if (raw === undefined) return {};
  if (raw === 'serve-before-arrival') return { shardUnsafe: raw };
  throw new ConfigError(`shardUnsafe: ${JSON.stringify(raw)} is not the test-only 'serve-before-arrival'`);
}

function shardSettings(raw: unknown, members: ReadonlyMap<NodeId, Address>): { shards?: ShardLayout } {
  if (raw === undefined) return {};
  if (typeof raw !== 'string') throw new ConfigError('shards: expected a layout like "ctrl=1,2,3;100=1,2,3"');
  let layout: ShardLayout;
  try {
    layout = parseShardLayout(raw);
  } catch (error) {
    if (!(error instanceof ShardLayoutError)) throw error;
    throw new ConfigError(`shards: ${error.message}`);
  }
  for (const id of [...layout.ctrl, ...[...layout.groups.values()].flat()]) {
    if (!members.has(id)) throw new ConfigError(`shards: member ${id} is not in the peer list`);
  }
  return { shards: layout };
}

function tlsSettings(merged: ConfigInput): { tls: TlsSettings | undefined; zkSecurePort: number | undefined } {
  const certFile = optionalString(merged.tlsCert, 'tlsCert');
  const keyFile = optionalString(merged.tlsKey, 'tlsKey');
  const caFile = optionalString(merged.tlsCa, 'tlsCa');
  const clientCertAuth = booleanSetting(merged.clientCertAuth, 'clientCertAuth');
  const zkSecurePort = merged.zkSecurePort === undefined ? undefined : port(merged.zkSecurePort, 'zkSecurePort');
  const given = [certFile, keyFile, caFile].filter((file) => file !== undefined).length;
  if (given === 0) {
    if (clientCertAuth) throw new ConfigError('clientCertAuth needs TLS: pass --tls-cert, --tls-key and --tls-ca');
    if (zkSecurePort !== undefined) throw new ConfigError('zkSecurePort needs TLS: pass --tls-cert, --tls-key and --tls-ca');
    return { tls: undefined, zkSecurePort: undefined };
  }
  if (certFile === undefined || keyFile === undefined || caFile === undefined) throw new ConfigError('TLS needs all three of --tls-cert, --tls-key and --tls-ca (tlsCert, tlsKey, tlsCa)');
  return { tls: { certFile, keyFile, caFile, clientCertAuth }, zkSecurePort };
}

function booleanSetting(raw: unknown, what: string): boolean {
  if (raw === undefined || raw === false || raw === 'false') return false;
  if (raw === true || raw === 'true') return true;
  throw new ConfigError(`${what}: ${JSON.stringify(raw)} is not true or false`);
}

function integerIn(raw: unknown, what: string, min: number, max: number): number {
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) throw new ConfigError(`${what}: ${JSON.stringify(raw)} is not an integer from ${min} to ${max}`);
  return value;
}

function superDigest(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.split(':').length !== 2) throw new ConfigError(`zkSuperDigest: ${JSON.stringify(raw)} is not "user:base64hash"`);
  return raw;
}

function readMode(raw: unknown): KvReadMode {
  if (raw === undefined) return 'read-index';
  if (raw === 'read-index' || raw === 'unsafe-leader-local' || raw === 'unsafe-local') return raw;
  throw new ConfigError(`readMode: ${JSON.stringify(raw)} is not 'read-index' (or the test-only 'unsafe-leader-local', 'unsafe-local')`);
}

/** Parses "1=host:port,2=host:port" (or an array of "id=host:port", or {"1": "host:port"}). */
export function parsePeers(raw: unknown): Map<NodeId, Address> {
  let items: [string, string][];
  if (typeof raw === 'string')
    items = raw
      .split(',')
      .filter((item) => item.trim().length > 0)
      .map(splitPeer);
  else if (Array.isArray(raw)) items = raw.map((item) => splitPeer(requireString(item, 'peers[]')));
  else if (typeof raw === 'object' && raw !== null) items = Object.entries(raw).map(([key, value]) => [key, requireString(value, `peers.${key}`)]);
  else throw new ConfigError('no peer list: pass --peers 1=host:port,2=host:port,3=host:port (every member, this one included)');
  if (items.length === 0 || items.length > configLimits.membersMax) throw new ConfigError(`the peer list must name 1 to ${configLimits.membersMax} members`);
  const members = new Map<NodeId, Address>();
  for (const [idText, addressText] of items) {
    const id = memberId(idText.trim(), 'peer id');
    if (members.has(id)) throw new ConfigError(`member ${id} appears twice in the peer list`);
    members.set(id, parseAddress(addressText.trim(), `peer ${id}`));
  }
  return new Map([...members].sort(([a], [b]) => a - b));
}

/** Parses "host:port" (an IPv6 host in brackets). */
export function parseAddress(text: string, what: string): Address {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text);
  if (match === null) throw new ConfigError(`${what}: "${text}" is not host:port`);
  const host = match[1]!.replace(/^\[|\]$/g, '');
  return { host, port: port(Number(match[2]), what) };
}

/** Reads KEY=VALUE lines; '#' starts a comment line; values may be quoted. */
export function parseEnvFile(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.length === 0 || line.startsWith('#')) continue;
    const equals = line.indexOf('=');
    if (equals <= 0) continue;
    const key = line
      .slice(0, equals)
      .replace(/^export\s+/, '')
      .trim();
    const value = line
      .slice(equals + 1)
      .trim()
      .replace(/^(['"])(.*)\1$/, '$2');
    values.set(key, value);
  }
  return values;
}

export function secretFromEnvFile(text: string, file: string): string {
  const secret = parseEnvFile(text).get(SECRET_ENV_KEY);
  if (secret === undefined || secret.length === 0) throw new ConfigError(`${file} has no ${SECRET_ENV_KEY}=... line`);
  return secret;
}

/** The configuration for logs: everything but the secret. */
export function describeConfig(config: ServerConfig): object {
  return {
    id: config.id,
    peers: describePeers(config.members),
    dataDir: config.dataDir,
    host: config.host,
    advertiseHost: config.advertiseHost,
    peerPort: config.peerPort,
    clientPort: config.clientPort,
    adminPort: config.adminPort,
    tickMs: config.tickMs,
    raftStateBytesMax: config.raftStateBytesMax,
    requestTimeoutMs: config.requestTimeoutMs,
    readMode: config.readMode,
    zkPort: config.zkPort,
    etcdPort: config.etcdPort,
    etcdProgressNotifyMs: config.etcdProgressNotifyMs,
    zkTickMs: config.zkTickMs,
    ...(config.tls === undefined ? {} : { tls: config.tls }),
    ...(config.zkSecurePort === undefined ? {} : { zkSecurePort: config.zkSecurePort }),
    ...(config.shards === undefined ? {} : { shards: describeShardLayout(config.shards) }),
    ...(config.shardUnsafe === undefined ? {} : { shardUnsafe: config.shardUnsafe }),
    ...(config.allowFaults === true ? { allowFaults: true } : {}),
  };
}

export function formatAddress(address: Address): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function describePeers(members: ReadonlyMap<NodeId, Address>): string {
  return [...members].map(([id, address]) => `${id}=${formatAddress(address)}`).join(',');
}

function splitPeer(item: string): [string, string] {
  const equals = item.indexOf('=');
  if (equals <= 0) throw new ConfigError(`peer "${item}" is not id=host:port`);
  return [item.slice(0, equals), item.slice(equals + 1)];
}

function memberId(raw: unknown, what: string): NodeId {
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > configLimits.memberIdMax) {
    throw new ConfigError(`${what}: member ids are integers from 1 to ${configLimits.memberIdMax}, not ${JSON.stringify(raw)}`);
  }
  return nodeId(value);
}

function port(raw: unknown, what: string): number {
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) throw new ConfigError(`${what}: ${JSON.stringify(raw)} is not a port (0-65535)`);
  return value;
}

function tickMs(raw: unknown): number {
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < configLimits.tickMsMin || value > configLimits.tickMsMax) {
    throw new ConfigError(`tickMs: ${JSON.stringify(raw)} is not an integer from ${configLimits.tickMsMin} to ${configLimits.tickMsMax}`);
  }
  return value;
}

function logLevel(raw: unknown): LogLevel {
  if (raw === undefined) return 'info';
  if (typeof raw === 'string' && (logLevels as readonly string[]).includes(raw)) return raw as LogLevel;
  throw new ConfigError(`logLevel: ${JSON.stringify(raw)} is not one of ${logLevels.join(', ')}`);
}

function optionalString(raw: unknown, what: string): string | undefined {
  if (raw === undefined) return undefined;
  return requireString(raw, what);
}

function requireString(raw: unknown, what: string): string {
  if (typeof raw !== 'string' || raw.length === 0) throw new ConfigError(`${what}: expected a non-empty string`);
  return raw;
}
