// A real, standalone Apache ZooKeeper 3.8 (Debian's `zookeeper` package) on 127.0.0.1, for
// the compatibility tests: they run their bodies against it today and against Flotilla later
// (target.ts). Reference: docs/zookeeper.md §0.2 (how it was run when the
// notes were written) and §2.11 (four-letter words).
//
// Each server gets a fresh temporary directory holding zoo.cfg and its data. The client port
// is picked by binding port 0 on loopback, closing, and handing the number to the JVM; if
// another process takes it in between, the JVM dies with "Address already in use" and we
// try again with a new port. stop() always kills the JVM (SIGTERM, then SIGKILL after a
// grace period) and removes the directory.
//
// A test process can die without running its cleanup (SIGKILL, a runner that gives up), and
// an orphaned JVM would hold its port and memory forever. So the JVM runs under a small shell
// in its own process group, holding a pipe from us: when the pipe closes, however we died, the
// shell's watcher kills the JVM. A process 'exit' hook also SIGKILLs any group still running.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const JAVA_PATH = '/usr/bin/java';
/** Debian's jar; its manifest Class-Path names every dependency under /usr/share/java. */
export const ZOOKEEPER_JAR_PATH = '/usr/share/java/zookeeper.jar';
/** Optional: gives the server a log (to stderr) instead of slf4j's silent no-op logger. */
const SLF4J_SIMPLE_JAR_PATH = '/usr/share/java/slf4j-simple.jar';

const READY_TIMEOUT_MS = 20_000;
const READY_POLL_MS = 100;
const STOP_GRACE_MS = 3_000;
const BIND_ATTEMPTS_MAX = 5;
const OUTPUT_LINES_MAX = 200;
const FOUR_LETTER_TIMEOUT_MS = 5_000;
const FOUR_LETTER_BYTES_MAX = 1 << 20;
const TICK_TIME_MS_DEFAULT = 2_000;

export interface RealZooKeeperOptions {
  /** ZooKeeper's tickTime; sessions may last 2..20 ticks. Default 2000 (ZooKeeper's own). */
  tickTimeMs?: number;
  /**
   * Run as a one-server ensemble (QuorumPeerMain, standaloneEnabled=false,
   * reconfigEnabled=true) instead of standalone, so /zookeeper/config holds a configuration
   * and reconfig is enabled. Its two peer ports are picked like the client port.
   */
  ensemble?: boolean;
  /** A superuser digest id (user:base64(sha1(user:password))), as zookeeper.DigestAuthenticationProvider.superDigest. */
  superDigest?: string;
}

export interface RealZooKeeper {
  readonly host: string;
  readonly port: number;
  /** `host:port`, as every ZooKeeper client takes it. */
  readonly connectString: string;
  /** The last lines the JVM printed (its log, when slf4j-simple is present), for failure messages. */
  describeOutput(): string;
  /**
   * How the JVM exited, or undefined while it runs. A test that takes this server's answers
   * as the reference checks it afterwards: a server that died mid-run answers nothing, and
   * nothing is not a reference.
   */
  exitDescription(): string | undefined;
  /** Kills the JVM and removes its directory. Safe to call more than once. */
  stop(): Promise<void>;
}

/** True when Java and Debian's ZooKeeper jars are installed (`apt-get install zookeeper`). */
export function realZooKeeperAvailable(): boolean {
  return existsSync(JAVA_PATH) && existsSync(ZOOKEEPER_JAR_PATH);
}

/**
 * Why the real-ZooKeeper tests cannot run here, or undefined when they can. On CI (env CI set)
 * a missing package is a failure, not a skip: this throws.
 */
export function realZooKeeperSkipReason(): string | undefined {
  if (realZooKeeperAvailable()) return undefined;
  const reason = `real ZooKeeper not installed: need ${JAVA_PATH} and ${ZOOKEEPER_JAR_PATH} (apt-get install zookeeper)`;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '') {
    throw new Error(`${reason}; CI must install it, so this is a failure, not a skip`);
  }
  return reason;
}

/**
 * Sends a four-letter word (`ruok`, `srvr`, `mntr`, …) on a fresh connection and returns
 * everything the server writes until it closes the connection.
 */
export function fourLetter(host: string, port: number, word: string, timeoutMs = FOUR_LETTER_TIMEOUT_MS): Promise<string> {
  if (Buffer.byteLength(word) !== 4) throw new Error(`a four-letter word is 4 bytes, got ${JSON.stringify(word)}`);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`four-letter word ${word} to ${host}:${port}: no close within ${timeoutMs} ms`));
    }, timeoutMs);
    // write, not end: the server answers and closes; a half-close first is not what
    // clients do, and a server may take it as the client leaving.
    socket.once('connect', () => socket.write(word));
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > FOUR_LETTER_BYTES_MAX) {
        socket.destroy(new Error(`four-letter word ${word}: reply exceeds ${FOUR_LETTER_BYTES_MAX} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('close', (hadError) => {
      clearTimeout(timer);
      if (!hadError) resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not read the bound port'))));
    });
  });
}

/**
 * `sh -c WATCHDOG_SCRIPT name DIR java …` runs the JVM in the background and kills it when
 * our stdin reaches end of file, i.e. when the test process has closed the pipe or died; the
 * orphaned server's directory DIR is then removed too. SIGTERM to the shell is passed on to
 * the JVM; the shell exits with the JVM's status. Background jobs of a non-interactive shell
 * read /dev/null, hence the copy of stdin on fd 3 for the watcher. The shell itself writes
 * nowhere: it reports a killed job on stderr, whose reader may be dead, and SIGPIPE would
 * stop it before the clean-up. Once the JVM is gone the watcher is stopped, so it can never
 * kill a process that reused the JVM's pid.
 */
const WATCHDOG_SCRIPT = `
dir=$1
shift
exec 3<&0 0</dev/null
"$@" 3<&- &
jvm=$!
( cat <&3 >/dev/null; : >"$dir/.orphaned"; kill -KILL "$jvm" ) >/dev/null 2>&1 &
watcher=$!
exec 3<&- 1>/dev/null 2>&1
trap '' PIPE
trap 'kill -TERM "$jvm" 2>/dev/null' TERM
while :; do
  wait "$jvm"
  status=$?
  kill -0 "$jvm" 2>/dev/null || break
done
kill "$watcher" 2>/dev/null
if [ -e "$dir/.orphaned" ]; then rm -rf "$dir"; fi
exit "$status"
`;

/** Servers not yet exited, with their directories. */
const running = new Map<ChildProcess, string>();
let exitHookInstalled = false;

/** Signals the process group led by `child` (the shell, the JVM, the watcher): only what we started. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [child, dir] of running) {
      killGroup(child, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

export async function startRealZooKeeper(options: RealZooKeeperOptions = {}): Promise<RealZooKeeper> {
  const skip = realZooKeeperSkipReason();
  if (skip !== undefined) throw new Error(skip);
  const tickTimeMs = options.tickTimeMs ?? TICK_TIME_MS_DEFAULT;
  if (!Number.isInteger(tickTimeMs) || tickTimeMs <= 0) throw new Error(`tickTimeMs must be a positive integer, got ${tickTimeMs}`);
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-real-zk-'));
  const failures: string[] = [];
  try {
    for (let attempt = 1; attempt <= BIND_ATTEMPTS_MAX; attempt++) {
      const port = await freeLoopbackPort();
      const peerPorts = options.ensemble === true ? [await freeLoopbackPort(), await freeLoopbackPort()] : undefined;
      const server = new ServerProcess(dir, port, tickTimeMs, peerPorts, options.superDigest);
      await server.writeConfig();
      server.spawn();
      const outcome = await server.waitReady();
      if (outcome === 'ready') return server.handle();
      await server.kill();
      failures.push(`attempt ${attempt} on port ${port}: ${outcome}\n${server.describeOutput()}`);
      if (!/Address already in use|BindException/.test(server.describeOutput())) break;
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`real ZooKeeper did not start:\n${failures.join('\n---\n')}`);
}

class ServerProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private exitDescription: string | undefined;
  private readonly output: string[] = [];
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    private readonly port: number,
    private readonly tickTimeMs: number,
    /** The quorum and election ports of a one-server ensemble; undefined: standalone. */
    private readonly peerPorts: readonly number[] | undefined = undefined,
    private readonly superDigest: string | undefined = undefined,
  ) {}

  private get configPath(): string {
    return join(this.dir, 'zoo.cfg');
  }

  async writeConfig(): Promise<void> {
    // forceSync=no and a small preAllocSize (KiB) keep a test server fast and small; unknown
    // keys become zookeeper.* system properties, which is where ZooKeeper reads these two.
    const lines = [
      `tickTime=${this.tickTimeMs}`,
      `dataDir=${join(this.dir, 'data')}`,
      `clientPort=${this.port}`,
      'clientPortAddress=127.0.0.1',
      '4lw.commands.whitelist=*',
      'admin.enableServer=false',
      'maxClientCnxns=0',
      'forceSync=no',
      'preAllocSize=1024',
    ];
    if (this.peerPorts !== undefined) {
      lines.push('initLimit=10', 'syncLimit=5', 'standaloneEnabled=false', 'reconfigEnabled=true', `server.1=127.0.0.1:${this.peerPorts[0]}:${this.peerPorts[1]}:participant;127.0.0.1:${this.port}`);
      await mkdir(join(this.dir, 'data'), { recursive: true });
      await writeFile(join(this.dir, 'data', 'myid'), '1\n');
    }
    await writeFile(this.configPath, `${lines.join('\n')}\n`);
  }

  spawn(): void {
    const classPath = [ZOOKEEPER_JAR_PATH, ...(existsSync(SLF4J_SIMPLE_JAR_PATH) ? [SLF4J_SIMPLE_JAR_PATH] : [])].join(':');
    const java = [
      JAVA_PATH,
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      '-XX:-UsePerfData',
      '-Xmx256m',
      '-Dorg.slf4j.simpleLogger.showDateTime=true',
      '-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS',
      ...(this.superDigest === undefined ? [] : [`-Dzookeeper.DigestAuthenticationProvider.superDigest=${this.superDigest}`]),
      '-cp',
      classPath,
      this.peerPorts === undefined ? 'org.apache.zookeeper.server.ZooKeeperServerMain' : 'org.apache.zookeeper.server.quorum.QuorumPeerMain',
      this.configPath,
    ];
    // detached: the shell leads a new process group, so one kill(-pid) reaches all of it.
    const child = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'real-zookeeper', this.dir, ...java], {
      cwd: this.dir,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdin?.on('error', () => {});
    running.set(child, this.dir);
    installExitHook();
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        this.output.push(line);
        if (this.output.length > OUTPUT_LINES_MAX) this.output.shift();
      });
    }
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        running.delete(child);
        this.exitDescription = `exited with code ${code}, signal ${signal}`;
        resolve();
      });
      child.once('error', (error) => {
        running.delete(child);
        this.exitDescription = `could not start: ${error.message}`;
        resolve();
      });
    });
  }

  /** 'ready' once `ruok` answers `imok`; otherwise why not. */
  async waitReady(): Promise<string> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastError = 'no answer yet';
    while (Date.now() < deadline) {
      if (this.exitDescription !== undefined) return this.exitDescription;
      try {
        const answer = await fourLetter('127.0.0.1', this.port, 'ruok', 1_000);
        if (answer === 'imok') return 'ready';
        lastError = `ruok answered ${JSON.stringify(answer)}`;
      } catch (error) {
        lastError = (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    }
    return `ruok did not answer imok within ${READY_TIMEOUT_MS} ms (last: ${lastError})`;
  }

  describeOutput(): string {
    return this.output.join('\n');
  }

  /** SIGTERM, then SIGKILL after STOP_GRACE_MS; resolves when the JVM has exited. */
  kill(): Promise<void> {
    this.stopped ??= (async () => {
      const child = this.child;
      if (child === undefined) return;
      if (this.exitDescription === undefined) {
        child.kill('SIGTERM'); // the shell forwards it to the JVM
        const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_GRACE_MS);
        await this.exited;
        clearTimeout(timer);
      }
      child.stdin?.end(); // releases the watchdog, which has nothing left to kill
    })();
    return this.stopped;
  }

  handle(): RealZooKeeper {
    const child = this.child;
    if (child?.pid === undefined) throw new Error('handle() before spawn()');
    let stopping: Promise<void> | undefined;
    return {
      host: '127.0.0.1',
      port: this.port,
      connectString: `127.0.0.1:${this.port}`,
      describeOutput: () => this.describeOutput(),
      exitDescription: () => this.exitDescription,
      stop: () => {
        stopping ??= (async () => {
          await this.kill();
          await rm(this.dir, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
  }
}
