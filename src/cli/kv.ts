// `flotilla kv put|get|append|del|cas|scan`: the key/value service from the command line,
// through FlotillaClient (server/client.ts). Human output by default; `--json` prints one
// JSON object per command (values as UTF-8 text, or base64 when they are not valid UTF-8).
// A value comes from the command line, or with --file from a file or standard input (the
// kernel limits one argument to 128 KiB; value-input.ts).
//
// Exit codes: 0 done (a cas that did not swap is still 0; see `swapped`); 1 the request
// failed (unavailable, refused); 2 bad usage; 4 a write's outcome is unknown (it may have
// applied).

import { type Command, InvalidArgumentError } from 'commander';
import { exit, writeErr, writeOut } from '../platform/process.js';
import { parseAddress, type Address } from '../server/config.js';
import { ClientError, FlotillaClient, KvError, OutcomeUnknownError } from '../server/client.js';
import { ShardedClient } from '../server/sharded-client.js';
import { kvDefaults } from '../kv/index.js';
import { localCluster } from './local-cluster.js';
import { TlsLoadError } from '../platform/tls.js';
import { addTlsOptions, clientTls, type TlsFlags } from './tls-options.js';
import { ARGUMENT_BYTES_MAX, STDIN_NAME, UsageError, ValueTooLargeError, isFileError, valueFileHelp, valueFrom } from './value-input.js';

export const kvExitCodes = { ok: 0, failed: 1, usage: 2, outcomeUnknown: 4 } as const;

interface KvFlags extends TlsFlags {
  endpoints: string;
  /** Route by key through the sharded service (members started with --shards). */
  sharded?: boolean;
  json?: boolean;
  serializable?: boolean;
  timeoutMs: string;
}

interface ValueFlags extends KvFlags {
  file?: string;
}

const limitsHelp = `
Limits: a key has 1 to ${kvDefaults.keyBytesMax} bytes, a value at most ${kvDefaults.valueBytesMax} (${kvDefaults.valueBytesMax / 1024} KiB, valueBytesMax);
a larger value is refused at once (value-too-large) and is not applied. A value on the
command line is also limited by the OS to ${ARGUMENT_BYTES_MAX} bytes (${ARGUMENT_BYTES_MAX / 1024} KiB): for a larger one use
--file PATH, or --file ${STDIN_NAME} to read standard input:
  flotilla kv put notes --file ${STDIN_NAME} < notes.txt
A value that is not valid UTF-8 is printed as base64:... (--json too).
When every member refuses the connection (nothing listens), a command fails at once.
Exit codes: 0 done, 1 failed (not applied), 2 bad usage, 4 outcome unknown (a write may
have applied).`;

export function registerKv(program: Command): void {
  const kv = program
    .command('kv')
    .description('read and write the key/value service of a running cluster')
    .addHelpText('after', limitsHelp)
    // Usage errors exit 2 (kvExitCodes.usage); --help still exits 0. Subcommands inherit it.
    .exitOverride((error) => exit(error.exitCode === 0 ? kvExitCodes.ok : kvExitCodes.usage));
  const common = (command: Command) =>
    addTlsOptions(command)
      .option('--endpoints <list>', 'client addresses of the members, host:port,...', localCluster.clientAddresses().join(','))
      .option('--json', 'print the result as JSON')
      .option('--timeout-ms <ms>', 'give up after this long (a write may then have applied)', '10000');
  const reads = (command: Command) => common(command).option('--serializable', "read any member's local state (may be stale; no leader needed)");
  const writes = (command: Command) => common(command).option('--file <path>', valueFileHelp).addHelpText('after', limitsHelp);
  const sharded = (command: Command) => command.option('--sharded', "the sharded key/value service (members started with --shards): the key's group, found through the shard controller");

  sharded(reads(kv.command('get').argument('<key>').description('read a key (linearizable by default)'))).action((key: string, flags: KvFlags) =>
    runMaybeSharded(
      flags,
      async (client) => {
        const value = await client.get(key);
        return { json: { key, value }, human: value };
      },
      async (client) => {
        const { value, version } = await client.get(key, { consistency: consistency(flags) });
        return { json: { key, value: value === null ? null : text(value), version }, human: value === null ? `(not found)` : text(value) };
      },
    ),
  );
  sharded(
    writes(
      kv
        .command('put')
        .argument('<key>')
        .argument('[value]', `the value (or --file; at most ${ARGUMENT_BYTES_MAX / 1024} KiB here)`)
        .description('set a key'),
    ),
  ).action((key: string, value: string | undefined, flags: ValueFlags) =>
    runMaybeSharded(
      flags,
      async (client) => {
        await client.put(key, text(await valueArgument(value, flags)));
        return { json: { key }, human: 'OK' };
      },
      async (client) => {
        const { version } = await client.put(key, await valueArgument(value, flags));
        return { json: { key, version }, human: `OK (version ${version})` };
      },
    ),
  );
  sharded(writes(kv.command('append').argument('<key>').argument('[value]', 'the value to append (or --file)').description("append to a key's value (creates it if absent)"))).action(
    (key: string, value: string | undefined, flags: ValueFlags) =>
      runMaybeSharded(
        flags,
        async (client) => {
          await client.append(key, text(await valueArgument(value, flags)));
          return { json: { key }, human: 'OK' };
        },
        async (client) => {
          const { version } = await client.append(key, await valueArgument(value, flags));
          return { json: { key, version }, human: `OK (version ${version})` };
        },
      ),
  );
  common(kv.command('del').argument('<key>').description('delete a key')).action((key: string, flags: KvFlags) =>
    run(flags, async (client) => {
      const { existed } = await client.delete(key);
      return { json: { key, existed }, human: existed ? 'deleted' : '(not found)' };
    }),
  );
  writes(
    kv.command('cas').argument('<key>').argument('<version>').argument('[value]', 'the new value (or --file)').description('set a key only if its version is <version> (0: only if absent)'),
  ).action((key: string, version: string, value: string | undefined, flags: ValueFlags) =>
    run(flags, async (client) => {
      const result = await client.cas(key, await valueArgument(value, flags), nonNegative(version, 'version'));
      return { json: { key, swapped: result.swapped, version: result.version }, human: result.swapped ? `OK (version ${result.version})` : `not swapped: the key's version is ${result.version}` };
    }),
  );
  reads(kv.command('scan').argument('[prefix]', 'key prefix', '').description('list keys with a prefix, in order'))
    .option('--limit <n>', 'at most this many entries', '100')
    .option('--after <key>', 'start after this key (the `next` of the previous page)', '')
    .action((prefix: string, flags: KvFlags & { limit: string; after: string }) =>
      run(flags, async (client) => {
        const page = await client.scan(prefix, { limit: nonNegative(flags.limit, '--limit'), after: flags.after, consistency: consistency(flags) });
        const entries = page.entries.map((entry) => ({ key: entry.key, value: text(entry.value), version: entry.version }));
        const lines = entries.map((entry) => `${entry.key}\t${entry.value}`);
        if (page.next !== null) lines.push(`(more: --after ${JSON.stringify(page.next)})`);
        return { json: { entries, next: page.next }, human: lines.length === 0 ? '(no keys)' : lines.join('\n') };
      }),
    );
}

/** The value argument or --file's contents, refused locally beyond the service's valueBytesMax. */
async function valueArgument(argument: string | undefined, flags: ValueFlags): Promise<Uint8Array> {
  try {
    return await valueFrom(argument, flags.file, kvDefaults.valueBytesMax, 'valueBytesMax of the key/value service');
  } catch (error) {
    if (error instanceof ValueTooLargeError) throw new KvError('value-too-large', `${error.message}; not applied`);
    throw error;
  }
}

type Output = { json: object; human: string };

/** With --sharded, `sharded` on a ShardedClient; else `plain` on a FlotillaClient. */
function runMaybeSharded(flags: KvFlags, sharded: (client: ShardedClient) => Promise<Output>, plain: (client: FlotillaClient) => Promise<Output>): Promise<void> {
  if (flags.sharded !== true) return run(flags, plain);
  if (flags.serializable === true) {
    writeErr("flotilla kv: usage: --serializable does not apply with --sharded (a sharded read always goes through its group's log)\n");
    exit(kvExitCodes.usage);
  }
  return runWith(flags, () => new ShardedClient({ endpoints: endpoints(flags.endpoints), callDeadlineMs: nonNegative(flags.timeoutMs, '--timeout-ms'), tls: clientTls(flags) }), sharded);
}

function run(flags: KvFlags, body: (client: FlotillaClient) => Promise<Output>): Promise<void> {
  return runWith(flags, () => new FlotillaClient({ endpoints: endpoints(flags.endpoints), callDeadlineMs: nonNegative(flags.timeoutMs, '--timeout-ms'), tls: clientTls(flags) }), body);
}

async function runWith<C extends { close(): void }>(flags: KvFlags, open: () => C, body: (client: C) => Promise<Output>): Promise<void> {
  let client: C | undefined;
  let code: number = kvExitCodes.ok;
  try {
    client = open();
    const out = await body(client);
    writeOut(flags.json === true ? `${JSON.stringify(out.json)}\n` : `${out.human}\n`);
  } catch (error) {
    const failure = describeFailure(error);
    code = failure.code;
    if (flags.json === true) writeOut(`${JSON.stringify({ error: failure.name, message: failure.message })}\n`);
    else writeErr(`flotilla kv: ${failure.name}: ${failure.message}\n`);
  } finally {
    client?.close();
  }
  exit(code);
}

/** An operating error as an exit code, a name and a message; anything else is a bug and is rethrown. */
export function describeFailure(error: unknown): { code: number; name: string; message: string } {
  if (error instanceof OutcomeUnknownError) return { code: kvExitCodes.outcomeUnknown, name: error.code, message: error.message };
  if (error instanceof ClientError || error instanceof KvError) return { code: kvExitCodes.failed, name: error.code, message: error.message };
  if (error instanceof UsageError || error instanceof InvalidArgumentError || error instanceof TlsLoadError) return { code: kvExitCodes.usage, name: 'usage', message: error.message };
  if (isFileError(error)) return { code: kvExitCodes.failed, name: 'file', message: `cannot read the value: ${error.message}` };
  throw error;
}

export function endpoints(list: string): Address[] {
  const items = list.split(',').filter((item) => item.trim().length > 0);
  if (items.length === 0) throw new InvalidArgumentError('--endpoints: no addresses given');
  return items.map((item) => {
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

export function nonNegative(raw: string, what: string): number {
  if (!/^\d+$/.test(raw)) throw new InvalidArgumentError(`${what}: ${JSON.stringify(raw)} is not a non-negative integer`);
  return Number(raw);
}

/** UTF-8 text if the bytes are valid UTF-8, else "base64:...". */
function text(bytes: Uint8Array): string {
  const buffer = Buffer.from(bytes);
  const decoded = buffer.toString('utf8');
  return Buffer.from(decoded, 'utf8').equals(buffer) ? decoded : `base64:${buffer.toString('base64')}`;
}
