// Starting `flotilla` subprocesses (local MapReduce workers, test clusters). The command
// is the same program that is running: from the compiled tree, `node dist/src/cli/main.js`;
// from the sources under tsx, `node --import <tsx> src/cli/main.ts`. Which one is decided
// by this module's own file name, so both layouts work without configuration.

import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

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
  const child = spawn(command, [...prefix, ...args], {
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
