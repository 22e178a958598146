// Who is primary, decided by test-and-set on a ZooKeeper-compatible service (Flotilla's
// own, through flotilla/zk, as an external system would use it). Scales et al. §2.3 use an
// atomic test-and-set on shared storage; here it is one multi-op transaction:
//
//   /pb/<service>           persistent; data {"epoch": E, "inSync": "host:port" | null}
//   /pb/<service>/primary   ephemeral;  data {"epoch": E, "address": "host:port"}
//   /pb/<service>/backup    ephemeral;  data {"address": "host:port"}
//
// Going live is   multi(check /pb/<service> at version V, setData it to {E+1, null},
//                       create /pb/<service>/primary {E+1, me})
// so it succeeds for exactly one contender, only while no primary node exists, and only
// if nobody changed the service record since the contender read it (at version V). A
// backup may contend only if the record names it `inSync` at the epoch it replicates: the
// primary names its backup there once the backup holds its snapshot, and clears the name
// (a versioned write) *before* it drops a backup and serves alone — so a backup that was
// cut off can never go live with state older than what the lone primary acknowledged. A
// fresh process may go live only at epoch 1, when there never was a primary.

import { Err, isZkError, type Stat, type ZkClient } from '../zkclient/index.js';

export const pbRoot = '/pb';
const serviceNamePattern = /^[A-Za-z0-9_.-]{1,64}$/;

export class PbConfigError extends Error {
  override name = 'PbConfigError';
}

export function checkServiceName(name: string): string | undefined {
  if (!serviceNamePattern.test(name) || name === '.' || name === '..') return `service name ${JSON.stringify(name)} must be 1-64 letters, digits, '_', '.' or '-'`;
  return undefined;
}

export interface ServicePaths {
  readonly service: string;
  readonly primary: string;
  readonly backup: string;
}

export function servicePaths(service: string): ServicePaths {
  const base = `${pbRoot}/${service}`;
  return { service: base, primary: `${base}/primary`, backup: `${base}/backup` };
}

export interface ServiceRecord {
  readonly epoch: number;
  readonly inSync: string | null;
}

export interface PrimaryRecord {
  readonly epoch: number;
  readonly address: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function parse(data: Uint8Array | null, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(decoder.decode(data ?? new Uint8Array())) as unknown;
    if (typeof value === 'object' && value !== null) return value as Record<string, unknown>;
  } catch {
    // Reported below.
  }
  throw new PbConfigError(`${what} does not hold a JSON object; was it written by something else?`);
}

export function decodeServiceRecord(data: Uint8Array | null): ServiceRecord {
  const fields = parse(data, 'the service node');
  const epoch = fields['epoch'];
  const inSync = fields['inSync'];
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) throw new PbConfigError('the service node has no valid epoch');
  if (inSync !== null && typeof inSync !== 'string') throw new PbConfigError('the service node has an invalid inSync');
  return { epoch, inSync };
}

export function decodePrimaryRecord(data: Uint8Array | null): PrimaryRecord {
  const fields = parse(data, 'the primary node');
  const epoch = fields['epoch'];
  const address = fields['address'];
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 1) throw new PbConfigError('the primary node has no valid epoch');
  if (typeof address !== 'string' || !/^[^\s]+:\d{1,5}$/.test(address)) throw new PbConfigError('the primary node has no valid address');
  return { epoch, address };
}

export function encodeRecord(record: ServiceRecord | PrimaryRecord | { address: string }): Uint8Array {
  return encoder.encode(JSON.stringify(record));
}

/** Creates /pb and /pb/<service> (epoch 0: never had a primary) if absent. */
export async function ensureServicePaths(client: ZkClient, paths: ServicePaths): Promise<void> {
  for (const [path, data] of [
    [pbRoot, null],
    [paths.service, encodeRecord({ epoch: 0, inSync: null })],
  ] as const) {
    try {
      await client.create(path, data, { mode: 'persistent' });
    } catch (error) {
      if (!isZkError(error, Err.nodeExists)) throw error;
    }
  }
}

export async function readService(client: ZkClient, paths: ServicePaths): Promise<{ record: ServiceRecord; stat: Stat }> {
  const { data, stat } = await client.getData(paths.service);
  return { record: decodeServiceRecord(data), stat };
}

/**
 * The test-and-set: go live at `epoch` if the service record is still at `version` and no
 * primary node exists. Returns the record's new version, or undefined if another won.
 */
export async function tryGoLive(client: ZkClient, paths: ServicePaths, version: number, epoch: number, address: string): Promise<number | undefined> {
  try {
    const results = await client.multi([
      { op: 'check', path: paths.service, version },
      { op: 'setData', path: paths.service, data: encodeRecord({ epoch, inSync: null }), version },
      { op: 'create', path: paths.primary, data: encodeRecord({ epoch, address }), mode: 'ephemeral' },
    ]);
    void results;
    return version + 1;
  } catch (error) {
    if (isZkError(error, Err.badVersion) || isZkError(error, Err.nodeExists)) return undefined;
    throw error;
  }
}

/** The primary names (or clears) its in-sync backup; refused (false) if the record moved on without it. */
export async function setInSync(client: ZkClient, paths: ServicePaths, version: number, epoch: number, inSync: string | null): Promise<number | undefined> {
  try {
    const stat = await client.setData(paths.service, encodeRecord({ epoch, inSync }), version);
    return stat.version;
  } catch (error) {
    if (isZkError(error, Err.badVersion)) return undefined;
    throw error;
  }
}
