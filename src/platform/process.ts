// The OS process, for the command-line shells (cli/, server/): arguments, output,
// exit codes, signals, standard input and the process id. Kept here so that everything
// else stays free of process state.

export function argv(): string[] {
  return process.argv;
}

export function processId(): number {
  return process.pid;
}

/**
 * Makes standard output and error blocking when they are pipes. On POSIX, Node writes to a
 * pipe asynchronously: whatever the pipe (64 KiB on Linux) did not take at once waits in
 * the process, and process.exit() drops it silently (`flotilla kv get big | wc -c` printed
 * 65536). With blocking pipes every write has reached the pipe when it returns, so exit()
 * anywhere loses nothing; a slow reader then slows the command, as with any Unix tool.
 * Terminals are blocking on Linux already and files are written synchronously.
 * `setBlocking` is libuv's uv_stream_set_blocking, which Node applies itself on Windows.
 */
export function makeOutputBlocking(): void {
  for (const stream of [process.stdout, process.stderr]) {
    const handle = (stream as unknown as { _handle?: { setBlocking?: (blocking: boolean) => number } })._handle;
    handle?.setBlocking?.(true);
  }
}

export function writeOut(text: string | Uint8Array): void {
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

export function isInputTerminal(): boolean {
  return process.stdin.isTTY === true;
}

export function onSignal(signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP', handler: () => void): void {
  process.on(signal, handler);
}

export class InputTooLargeError extends Error {
  override name = 'InputTooLargeError';
}

/**
 * All of standard input, up to `bytesMax` bytes. Rejects with InputTooLargeError as soon as
 * more arrives (without reading the rest), so a runaway pipe cannot fill the memory.
 */
export function readStandardInput(bytesMax: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const input = process.stdin;
    const cleanup = () => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > bytesMax) {
        cleanup();
        reject(new InputTooLargeError(`standard input has more than ${bytesMax} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, total));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
  });
}
