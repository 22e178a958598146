// Starting `flotilla` subprocesses (local MapReduce workers, test clusters). The command
// is the same program that is running: from the compiled tree, `node dist/src/cli/main.js`;
// from the sources under tsx, `node --import <tsx> src/cli/main.ts`. Which one is decided
// by this module's own file name, so both layouts work without configuration.

import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { assert } from '../stdx/assert.js';

export interface FlotillaCommand {
  command: string;
  /** Arguments before the flotilla subcommand. */
  args: string[];
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildHandle {
  readonly pid: number;
  readonly process: ChildProcess;
  /** Resolves when the process has exited; never rejects (a spawn failure is code 127). */
  readonly exited: Promise<ChildExit>;
  kill(signal?: NodeJS.Signals): void;
}

export interface SpawnOptions {
  cwd?: string;
  /** What happens to the child's stdout and stderr. */
  output: 'inherit' | 'pipe' | 'ignore';
}

const runningFromSource = import.meta.url.endsWith('.ts');

export function flotillaCommand(): FlotillaCommand {
  const main = fileURLToPath(new URL(runningFromSource ? '../cli/main.ts' : '../cli/main.js', import.meta.url));
  if (!runningFromSource) return { command: process.execPath, args: [main] };
  return { command: process.execPath, args: ['--import', tsxLoaderUrl(), main] };
}

/** The tsx loader as an absolute URL, so the child finds it whatever its working directory. */
function tsxLoaderUrl(): string {
  const require = createRequire(import.meta.url);
  return pathToFileURL(require.resolve('tsx')).href;
}

export function spawnFlotilla(args: readonly string[], options: SpawnOptions): ChildHandle {
  const { command, args: prefix } = flotillaCommand();
  return startChild(command, [...prefix, ...args], options);
}

/**
 * Starts a child that runs one exported function of a flotilla module, `entry(args)`,
 * instead of the whole CLI. For processes that need one command's code only (the local
 * workers of `mr run`): loading every other command and the server modules was a third of
 * a worker's start-up under tsx. `moduleUrl` is the caller's own `import.meta.url`, so the
 * source and the compiled layouts both work. The function's promise must settle; a
 * rejection ends the child with an error, as an uncaught one in the CLI would.
 */
export function spawnFlotillaEntry(moduleUrl: string, entry: string, args: readonly string[], options: SpawnOptions): ChildHandle {
  assert(moduleUrl.startsWith('file:'), 'entry modules are files');
  assert(/^[A-Za-z_$][\w$]*$/.test(entry), 'entry is an export name');
  const loader = runningFromSource ? ['--import', tsxLoaderUrl()] : [];
  const script = `const m = await import(${JSON.stringify(moduleUrl)}); await m.${entry}(process.argv.slice(1));`;
  // '--' ends node's own options: everything after it is process.argv[1...] of the script.
  return startChild(process.execPath, [...loader, '--input-type=module', '-e', script, '--', ...args], options);
}

function startChild(command: string, args: readonly string[], options: SpawnOptions): ChildHandle {
  const child = spawn(command, args, {
    cwd: options.cwd,
    stdio: ['ignore', options.output, options.output],
  });
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: 127, signal: null }));
  });
  return {
    pid: child.pid ?? -1,
    process: child,
    exited,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
