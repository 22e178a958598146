// Drives Debian's zkCli.sh (the Java client's shell, ZooKeeper 3.8.0) through its standard
// input, the way a person or a script would, against any server that speaks the protocol.
//
// zkCli.sh runs `java … ZooKeeperMain` as a child of bash (no exec), so the script is started
// in its own process group and a timeout kills that group (our child's pid, negated): both
// the shell and the JVM go.
//
// Without a terminal, zkCli reads one command per line, runs each to completion before the
// next, and ends at `quit`. It prints results (get, stat, ls, version) on stdout and most
// confirmations and errors ("Created /a", "Node does not exist: /a") on stderr, and the
// watcher thread prints "WATCHER::" / "WatchedEvent …" lines on stdout at any time. To tell
// which output belongs to which command, runZkCli puts two markers before every command:
// `ls` of a path that does not exist (a unique line on stderr) and `version` (a line on
// stdout). Before, not after: zkCli exits with the status of the last command it ran, which
// thus stays the user's. The per-command view strips markers, watcher events and slf4j
// noise; the raw streams are returned untouched.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { JAVA_PATH } from './real-zookeeper.js';

export const ZKCLI_PATH = '/usr/share/zookeeper/bin/zkCli.sh';
/** zkCli.sh passes CLIENT_JVMFLAGS to java; these shave start-up time of a short-lived JVM. */
const CLIENT_JVM_FLAGS = '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData';
const TIMEOUT_MS_DEFAULT = 30_000;
const OUTPUT_BYTES_MAX = 8 << 20;
const VERSION_LINE = /^ZooKeeper CLI version: /;

export interface ZkCliOptions {
  /** Kill zkCli (shell and JVM) after this long. Default 30 s. */
  timeoutMs?: number;
  /** Add the marker commands and fill `commands`. Default true. */
  splitByCommand?: boolean;
  /** More java flags after the defaults (the TLS settings of a secure client port). */
  jvmFlags?: readonly string[];
}

export interface ZkCliCommandOutput {
  readonly command: string;
  /** Lines this command printed on stdout, without watcher events; no trailing newline. */
  readonly stdout: string;
  /** Lines this command printed on stderr, without slf4j noise; no trailing newline. */
  readonly stderr: string;
}

export interface ZkCliResult {
  /** Raw stdout, markers included. */
  readonly stdout: string;
  /** Raw stderr, markers included. */
  readonly stderr: string;
  /** Exit code; -1 if killed by a signal (see timedOut). */
  readonly code: number;
  readonly timedOut: boolean;
  /** One entry per command, in order; fewer only if zkCli died or timed out part way. */
  readonly commands: readonly ZkCliCommandOutput[];
  /** "WatchedEvent state:… type:… path:…" lines, in the order printed. */
  readonly events: readonly string[];
}

export function zkCliAvailable(): boolean {
  return existsSync(ZKCLI_PATH) && existsSync(JAVA_PATH);
}

/** Why zkCli tests cannot run here, or undefined. On CI (env CI set) a missing zkCli throws. */
export function zkCliSkipReason(): string | undefined {
  if (zkCliAvailable()) return undefined;
  const reason = `zkCli.sh not installed: need ${ZKCLI_PATH} and ${JAVA_PATH} (apt-get install zookeeper)`;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '') {
    throw new Error(`${reason}; CI must install it, so this is a failure, not a skip`);
  }
  return reason;
}

/**
 * Runs zkCli.sh -server `connectString`, feeds `commands` (one per line) and `quit` on stdin,
 * and returns what it printed. Never rejects because a command failed; rejects only if the
 * script cannot be started.
 */
export async function runZkCli(connectString: string, commands: readonly string[], options: ZkCliOptions = {}): Promise<ZkCliResult> {
  for (const command of commands) {
    if (/[\r\n]/.test(command)) throw new Error(`a zkCli command is one line: ${JSON.stringify(command)}`);
  }
  const timeoutMs = options.timeoutMs ?? TIMEOUT_MS_DEFAULT;
  const split = options.splitByCommand ?? true;
  const nonce = randomBytes(6).toString('hex');
  const markerPath = (index: number) => `/zkcli-mark-${nonce}-${index}`;
  const lines = split ? commands.flatMap((command, index) => [`ls ${markerPath(index)}`, 'version', command]) : [...commands];
  const raw = await runScript(connectString, [...lines, 'quit'], timeoutMs, [CLIENT_JVM_FLAGS, ...(options.jvmFlags ?? [])].join(' '));
  const events = raw.stdout.split('\n').filter((line) => WATCHED_EVENT_LINE.test(line));
  // The last command's output runs to the end of the streams, so it is complete only if
  // zkCli got to `quit` by itself.
  const complete = !raw.timedOut && raw.code >= 0;
  const perCommand = split ? splitOutput(raw.stdout, raw.stderr, commands, markerPath, complete) : [];
  return { ...raw, commands: perCommand, events };
}

interface RawRun {
  stdout: string;
  stderr: string;
  code: number;
  timedOut: boolean;
}

function runScript(connectString: string, lines: readonly string[], timeoutMs: number, jvmFlags: string): Promise<RawRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(ZKCLI_PATH, ['-server', connectString], {
      detached: true, // own process group, so a timeout can kill bash and java together
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, CLIENT_JVMFLAGS: jvmFlags },
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let bytes = 0;
    let timedOut = false;
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group is already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > OUTPUT_BYTES_MAX) {
        killGroup();
        return;
      }
      into.push(chunk);
    };
    child.stdout.on('data', collect(stdout));
    child.stderr.on('data', collect(stderr));
    child.stdin.on('error', () => {}); // zkCli may exit before reading everything
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      killGroup(); // a JVM that outlived its shell, if any
      resolve({
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        code: code ?? -1,
        timedOut,
      });
    });
    child.stdin.end(`${lines.join('\n')}\n`);
  });
}

const WATCHED_EVENT_LINE = /^WatchedEvent state:\S+ type:\S+ path:\S*/;
/** Printed by ZooKeeperMain's watcher as one println("\nWATCHER::\n"). */
const WATCHER_BANNER = '\nWATCHER::\n\n';
const STDERR_NOISE = /^SLF4J: /;

function splitOutput(stdoutRaw: string, stderrRaw: string, commands: readonly string[], markerPath: (index: number) => string, complete: boolean): ZkCliCommandOutput[] {
  const stdoutLines = stdoutRaw
    .split(WATCHER_BANNER)
    .join('')
    .split('\n')
    .filter((line) => !WATCHED_EVENT_LINE.test(line));
  const stderrLines = stderrRaw.split('\n').filter((line) => !STDERR_NOISE.test(line));
  const isVersion = (line: string) => VERSION_LINE.test(line);
  const stderrMarker = (index: number) => stderrLines.indexOf(`Node does not exist: ${markerPath(index)}`);
  const result: ZkCliCommandOutput[] = [];
  // Invariant: outAt/errAt index the first line after command `index`'s own markers.
  let outAt = nthIndex(stdoutLines, 0, 0, isVersion) + 1;
  let errAt = stderrMarker(0) + 1;
  if (outAt === 0 || errAt === 0) return result;
  for (const [index, command] of commands.entries()) {
    const last = index === commands.length - 1;
    // A user's own `version` prints a version line before the next marker's.
    const userVersionLines = /^\s*version\s*$/.test(command) ? 1 : 0;
    const outEnd = last ? stdoutLines.length : nthIndex(stdoutLines, outAt, userVersionLines, isVersion);
    const errEnd = last ? stderrLines.length : stderrMarker(index + 1);
    if (outEnd < 0 || errEnd < 0 || (last && !complete)) break;
    const out = stdoutLines.slice(outAt, outEnd);
    result.push({ command, stdout: trimBlankEdges(out).join('\n'), stderr: trimBlankEdges(stderrLines.slice(errAt, errEnd)).join('\n') });
    outAt = outEnd + 1;
    errAt = errEnd + 1;
  }
  return result;
}

/** Index of the (skip+1)-th line at or after `from` matching `match`, or -1. */
function nthIndex(lines: readonly string[], from: number, skip: number, match: (line: string) => boolean): number {
  let remaining = skip;
  for (let i = from; i < lines.length; i++) {
    if (!match(lines[i]!)) continue;
    if (remaining === 0) return i;
    remaining--;
  }
  return -1;
}

function trimBlankEdges(lines: readonly string[]): string[] {
  let start = 0;
  let end = lines.length;
  while (start < end && lines[start]!.trim() === '') start++;
  while (end > start && lines[end - 1]!.trim() === '') end--;
  return lines.slice(start, end);
}

// ---- Parsers for what zkCli prints -------------------------------------------------------

/** The Stat block printed by `stat`, `get -s`, `ls -s` and `set -s`. */
export interface ZkCliStat {
  readonly cZxid: bigint;
  readonly ctime: string;
  readonly mZxid: bigint;
  readonly mtime: string;
  readonly pZxid: bigint;
  readonly cversion: number;
  readonly dataVersion: number;
  readonly aclVersion: number;
  readonly ephemeralOwner: bigint;
  readonly dataLength: number;
  readonly numChildren: number;
}

const STAT_FIELDS = ['cZxid', 'ctime', 'mZxid', 'mtime', 'pZxid', 'cversion', 'dataVersion', 'aclVersion', 'ephemeralOwner', 'dataLength', 'numChildren'] as const;

/** Parses the `key = value` Stat lines in `text`; undefined unless all eleven are present. */
export function parseStat(text: string): ZkCliStat | undefined {
  const found = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^(\w+) = (.*)$/.exec(line);
    if (match !== null && (STAT_FIELDS as readonly string[]).includes(match[1]!)) found.set(match[1]!, match[2]!);
  }
  if (!STAT_FIELDS.every((field) => found.has(field))) return undefined;
  const hex = (field: string) => BigInt(found.get(field)!);
  const int = (field: string) => {
    const value = Number(found.get(field));
    if (!Number.isInteger(value)) throw new Error(`stat field ${field} is not an integer: ${found.get(field)}`);
    return value;
  };
  return {
    cZxid: hex('cZxid'),
    ctime: found.get('ctime')!,
    mZxid: hex('mZxid'),
    mtime: found.get('mtime')!,
    pZxid: hex('pZxid'),
    cversion: int('cversion'),
    dataVersion: int('dataVersion'),
    aclVersion: int('aclVersion'),
    ephemeralOwner: hex('ephemeralOwner'),
    dataLength: int('dataLength'),
    numChildren: int('numChildren'),
  };
}

/** The children printed by `ls` as `[a, b]`; undefined if no such line. */
export function parseLs(text: string): string[] | undefined {
  for (const line of text.split('\n')) {
    const match = /^\[(.*)\]$/.exec(line);
    if (match === null) continue;
    return match[1] === '' ? [] : match[1]!.split(', ');
  }
  return undefined;
}

/** The path in zkCli's "Created /path" confirmation; undefined if none. */
export function parseCreated(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const match = /^Created (\/.*)$/.exec(line);
    if (match !== null) return match[1];
  }
  return undefined;
}
