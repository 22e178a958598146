// The OS process, for the command-line shells (cli/, server/): arguments, output,
// exit codes, signals. Kept here so that everything else stays free of process state.

export function argv(): string[] {
  return process.argv;
}

export function writeOut(text: string): void {
  process.stdout.write(text);
}

export function writeErr(text: string): void {
  process.stderr.write(text);
}

export function exit(code: number): never {
  process.exit(code);
}

export function setExitCode(code: number): void {
  process.exitCode = code;
}

export function isTerminal(): boolean {
  return process.stdout.isTTY === true;
}

export function onSignal(signal: 'SIGINT' | 'SIGTERM', handler: () => void): void {
  process.on(signal, handler);
}
