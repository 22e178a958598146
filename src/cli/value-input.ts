// Where a command's value comes from: the command line, a file (`--file PATH`) or standard
// input (`--file -`). A command-line argument is limited by the kernel (Linux refuses to
// start a program with an argument over MAX_ARG_STRLEN, 128 KiB: "Argument list too long"),
// so larger values must come from a file or a pipe. Both are read up to the service's own
// limit and refused beyond it before anything is sent.

import { readBytesFile } from '../platform/files.js';
import { InputTooLargeError, readStandardInput } from '../platform/process.js';

/** Linux's MAX_ARG_STRLEN: the longest single argument a program can be started with. */
export const ARGUMENT_BYTES_MAX = 128 * 1024;

/** `--file`'s name for standard input. */
export const STDIN_NAME = '-';

export const valueFileHelp = `read the value from a file (${STDIN_NAME}: standard input) instead of the command line`;

export class ValueTooLargeError extends Error {
  override name = 'ValueTooLargeError';
}

/** The command was used wrongly (exit code 2, as a bad flag). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * The value given as an argument or with --file, as bytes. Exactly one of the two must be
 * given (a UsageError otherwise). A file or standard input longer than `bytesMax` is
 * refused with ValueTooLargeError, naming `limitName`.
 */
export async function valueFrom(argument: string | undefined, file: string | undefined, bytesMax: number, limitName: string): Promise<Uint8Array> {
  if (argument !== undefined && file !== undefined) throw new UsageError('give the value either as an argument or with --file, not both');
  if (argument !== undefined) return Buffer.from(argument, 'utf8');
  if (file === undefined) throw new UsageError(`missing the value: give it as an argument, or --file PATH, or --file ${STDIN_NAME} to read standard input`);
  try {
    return file === STDIN_NAME ? await readStandardInput(bytesMax) : readBytesFile(file, bytesMax);
  } catch (error) {
    if (error instanceof InputTooLargeError) throw new ValueTooLargeError(`${error.message}: the limit is ${bytesMax} bytes (${limitName})`);
    throw error;
  }
}

/** Whether an fs error (ENOENT, EACCES, EISDIR) came from reading --file. */
export function isFileError(error: unknown): error is NodeJS.ErrnoException {
  return typeof (error as { code?: unknown } | undefined)?.code === 'string' && typeof (error as { syscall?: unknown }).syscall === 'string';
}
