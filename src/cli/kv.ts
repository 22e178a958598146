// `flotilla kv put|get|append|del|cas|scan`: the key/value service from the command line,
// through FlotillaClient (server/client.ts). Human output by default; `--json` prints one
// JSON object per command (values as UTF-8 text, or base64 when they are not valid UTF-8).
//
// Exit codes: 0 done (a cas that did not swap is still 0; see `swapped`); 1 the request
// failed (unavailable, refused); 4 a write's outcome is unknown (it may have applied).

import { type Command, InvalidArgumentError } from 'commander';
import { exit, writeErr, writeOut } from '../platform/process.js';
import { parseAddress, type Address } from '../server/config.js';
import { ClientError, FlotillaClient, KvError, OutcomeUnknownError } from '../server/client.js';
import { localCluster } from './start.js';

export const kvExitCodes = { ok: 0, failed: 1, outcomeUnknown: 4 } as const;

interface KvFlags {
  endpoints: string;
  json?: boolean;
  serializable?: boolean;
  timeoutMs: string;
}

export function registerKv(program: Command): void {
  const kv = program.command('kv').description('read and write the key/value service of a running cluster');
  const common = (command: Command) => command
    .option('--endpoints <list>', 'client addresses of the members, host:port,...', localCluster.clientAddresses().join(','))
    .option('--json', 'print the result as JSON')
    .option('--timeout-ms <ms>', 'give up after this long (a write may then have applied)', '10000');
  const reads = (command: Command) => common(command).option('--serializable', 'read any member\'s local state (may be stale; no leader needed)');

  reads(kv.command('get').argument('<key>').description('read a key (linearizable by default)'))
    .action((key: string, flags: KvFlags) => run(flags, async (client) => {
      const { value, version } = await client.get(key, { consistency: consistency(flags) });
      return { json: { key, value: value === null ? null : text(value), version }, human: value === null ? `(not found)` : text(value) };
    }));
  common(kv.command('put').argument('<key>').argument('<value>').description('set a key'))
    .action((key: string, value: string, flags: KvFlags) => run(flags, async (client) => {
      const { version } = await client.put(key, value);
      return { json: { key, version }, human: `OK (version ${version})` };
    }));
  common(kv.command('append').argument('<key>').argument('<value>').description('append to a key\'s value (creates it if absent)'))
    .action((key: string, value: string, flags: KvFlags) => run(flags, async (client) => {
      const { version } = await client.append(key, value);
      return { json: { key, version }, human: `OK (version ${version})` };
    }));
  common(kv.command('del').argument('<key>').description('delete a key'))
    .action((key: string, flags: KvFlags) => run(flags, async (client) => {
      const { existed } = await client.delete(key);
      return { json: { key, existed }, human: existed ? 'deleted' : '(not found)' };
    }));
  common(kv.command('cas').argument('<key>').argument('<version>').argument('<value>').description('set a key only if its version is <version> (0: only if absent)'))
    .action((key: string, version: string, value: string, flags: KvFlags) => run(flags, async (client) => {
      const result = await client.cas(key, value, nonNegative(version, 'version'));
      return { json: { key, swapped: result.swapped, version: result.version }, human: result.swapped ? `OK (version ${result.version})` : `not swapped: the key's version is ${result.version}` };
    }));
  reads(kv.command('scan').argument('[prefix]', 'key prefix', '').description('list keys with a prefix, in order'))
    .option('--limit <n>', 'at most this many entries', '100')
    .option('--after <key>', 'start after this key (the `next` of the previous page)', '')
    .action((prefix: string, flags: KvFlags & { limit: string; after: string }) => run(flags, async (client) => {
      const page = await client.scan(prefix, { limit: nonNegative(flags.limit, '--limit'), after: flags.after, consistency: consistency(flags) });
      const entries = page.entries.map((entry) => ({ key: entry.key, value: text(entry.value), version: entry.version }));
      const lines = entries.map((entry) => `${entry.key}\t${entry.value}`);
      if (page.next !== null) lines.push(`(more: --after ${JSON.stringify(page.next)})`);
      return { json: { entries, next: page.next }, human: lines.length === 0 ? '(no keys)' : lines.join('\n') };
    }));
}

async function run(flags: KvFlags, body: (client: FlotillaClient) => Promise<{ json: object; human: string }>): Promise<void> {
  const client = new FlotillaClient({ endpoints: endpoints(flags.endpoints), callDeadlineMs: nonNegative(flags.timeoutMs, '--timeout-ms') });
  let code: number = kvExitCodes.ok;
  try {
    const out = await body(client);
    writeOut(flags.json === true ? `${JSON.stringify(out.json)}\n` : `${out.human}\n`);
  } catch (error) {
    code = error instanceof OutcomeUnknownError ? kvExitCodes.outcomeUnknown : kvExitCodes.failed;
    if (!(error instanceof ClientError || error instanceof KvError)) throw error;
    if (flags.json === true) writeOut(`${JSON.stringify({ error: error.code, message: error.message })}\n`);
    else writeErr(`flotilla kv: ${error.code}: ${error.message}\n`);
  } finally {
    client.close();
  }
  exit(code);
}

function endpoints(list: string): Address[] {
  return list.split(',').filter((item) => item.trim().length > 0).map((item) => {
    try {
      return parseAddress(item.trim(), '--endpoints');
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  });
}

function consistency(flags: KvFlags): 'linearizable' | 'serializable' {
  return flags.serializable === true ? 'serializable' : 'linearizable';
}

function nonNegative(raw: string, what: string): number {
  if (!/^\d+$/.test(raw)) throw new InvalidArgumentError(`${what}: ${JSON.stringify(raw)} is not a non-negative integer`);
  return Number(raw);
}

/** UTF-8 text if the bytes are valid UTF-8, else "base64:...". */
function text(bytes: Uint8Array): string {
  const buffer = Buffer.from(bytes);
  const decoded = buffer.toString('utf8');
  return Buffer.from(decoded, 'utf8').equals(buffer) ? decoded : `base64:${buffer.toString('base64')}`;
}
