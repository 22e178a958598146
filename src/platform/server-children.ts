// `flotilla server` members as child processes, for `flotilla start` and the process-level
// tests: spawned through spawn.ts (compiled or under tsx, like the parent), with their
// stdout and stderr delivered line by line.

import { createInterface } from 'node:readline';
import { spawnFlotilla, type ChildExit } from './spawn.js';

export interface ServerChild {
  readonly pid: number;
  readonly exited: Promise<ChildExit>;
  /** True until the process has exited. */
  isRunning(): boolean;
  kill(signal: 'SIGTERM' | 'SIGINT' | 'SIGKILL'): void;
}

export interface ServerChildOptions {
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly onStdoutLine: (line: string) => void;
  readonly onStderrLine: (line: string) => void;
}

export function spawnServerChild(options: ServerChildOptions): ServerChild {
  const handle = spawnFlotilla(options.args, { output: 'pipe', ...(options.cwd === undefined ? {} : { cwd: options.cwd }) });
  let running = true;
  const exited = handle.exited.then((exit) => {
    running = false;
    return exit;
  });
  const stdout = handle.process.stdout;
  const stderr = handle.process.stderr;
  if (stdout !== null) createInterface({ input: stdout, crlfDelay: Infinity }).on('line', options.onStdoutLine);
  if (stderr !== null) createInterface({ input: stderr, crlfDelay: Infinity }).on('line', options.onStderrLine);
  return {
    pid: handle.pid,
    exited,
    isRunning: () => running,
    kill: (signal) => {
      if (running) handle.process.kill(signal);
    },
  };
}
